"""SMS: the queue, the sender and its guarantees (docs/OUTBOUND.md "SMS").

The gateway is a fake (``tests.outbound.fakes.FakeGateway``) because no SMS gateway can run
here. It fails at random from a fixed seed: 500s, requests it takes but never answers
(timeouts), answers that are garbage. It de-duplicates on the client message id the sender
puts on every request, as a real gateway should. The properties checked: every message
ends sent (delivered to the phone exactly once, with the gateway's id recorded) or failed
— none lost — with two senders at once and across a sender killed mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from server.kernel.settings import Settings, Sms
from server.outbound.sms import enqueue_sms, mask_phone, normalize_phone, render
from server.outbound.sms_sender import SmsSender, client_msg_id
from tests.outbound.fakes import API_KEY, API_SECRET, INVALID_PREFIX, FakeGateway, wait_until

TIMEOUT_S = 0.3


def sms_rules(settings: Settings, url: str, **over: Any) -> Sms:
    values: dict[str, Any] = {
        "enabled": True,
        "gateway_url": url,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "timeout_s": TIMEOUT_S,
        "max_attempts": 12,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.2,
        "rate_limit_per_hour": 1000,
        "batch_size": 8,
        "poll_interval_s": 0.05,
        "claim_timeout_s": 30.0,
        "templates": {"notice": "【测试】{name}：{title}"},
    }
    values.update(over)
    return msgspec.structs.replace(settings.sms, **values)


@pytest.fixture
async def clean_queue(pool: asyncpg.Pool) -> AsyncIterator[None]:
    await pool.execute("DELETE FROM sms_outbox")
    yield
    await pool.execute("DELETE FROM sms_outbox")


async def enqueue_many(pool: asyncpg.Pool, rules: Sms, n: int, invalid: int = 0) -> list[int]:
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for i in range(n):
            phone = f"{INVALID_PREFIX}{i:08d}" if i < invalid else f"139{i:08d}"
            new = await enqueue_sms(
                conn,
                rules,
                phone=phone,
                kind="notice",
                params={"name": f"用户{i}", "title": "检验到期"},
                key=f"test:{secrets.token_hex(4)}:{i}",
            )
            assert new is not None
            ids.append(new)
    return ids


async def run_until_final(senders: list[SmsSender], pool: asyncpg.Pool, timeout_s: float) -> None:
    tasks = [asyncio.create_task(s.run()) for s in senders]
    try:

        async def done() -> bool:
            left = await pool.fetchval(
                "SELECT count(*) FROM sms_outbox WHERE state IN ('queued', 'sending')"
            )
            return bool(left == 0)

        await wait_until(done, timeout_s)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def check_exactly_once(pool: asyncpg.Pool, gateway: FakeGateway, ids: list[int]) -> None:
    rows = await pool.fetch("SELECT * FROM sms_outbox WHERE id = ANY($1::bigint[])", ids)
    assert len(rows) == len(ids)
    states = {r["state"] for r in rows}
    assert states <= {"sent", "failed"}, states  # none lost, none stuck
    assert gateway.bad_signatures == 0
    for r in rows:
        key = client_msg_id(r["id"])
        if r["state"] == "sent":
            assert gateway.delivered[key] == 1, (r["id"], gateway.delivered[key])
            assert r["provider_message_id"] == gateway.provider_ids[key]
            assert gateway.texts[key]["text"] == r["body"]
        else:
            assert gateway.delivered[key] <= 1
            refused = r["phone"].startswith(INVALID_PREFIX)
            assert refused or r["attempts"] >= 12, dict(r)
            if refused:
                assert r["attempts"] == 1 and "HTTP 400" in r["last_error"]
    # no claim was ever sent by two senders: each (message, attempt) reached the gateway once
    assert max(gateway.tries.values()) == 1


async def test_two_senders_deliver_every_message_once(
    aiohttp_server: Any, pool: asyncpg.Pool, settings: Settings, clean_queue: None
) -> None:
    gateway = FakeGateway(seed=1301, hang_s=TIMEOUT_S * 2)
    server = await aiohttp_server(gateway.app())
    rules = sms_rules(settings, str(server.make_url("/send")))
    ids = await enqueue_many(pool, rules, 60, invalid=3)
    await run_until_final([SmsSender(pool, rules), SmsSender(pool, rules)], pool, 120)
    await check_exactly_once(pool, gateway, ids)
    sent = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE state = 'sent'")
    assert sent >= 55
    assert gateway.repeats > 0  # lost answers happened, and the repeat was recognised


async def test_a_sender_killed_mid_run_loses_nothing(
    aiohttp_server: Any, pool: asyncpg.Pool, settings: Settings, clean_queue: None
) -> None:
    gateway = FakeGateway(seed=1302, hang_s=TIMEOUT_S * 2, p_hang=0.3)
    server = await aiohttp_server(gateway.app())
    rules = sms_rules(settings, str(server.make_url("/send")), claim_timeout_s=1.0)
    ids = await enqueue_many(pool, rules, 40)
    first = asyncio.create_task(SmsSender(pool, rules).run())

    async def some_sent() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE state = 'sent'")
        return bool(n >= 5)

    await wait_until(some_sent, 60)
    first.cancel()  # mid-run: messages in flight stay "sending"
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await run_until_final([SmsSender(pool, rules)], pool, 120)
    await check_exactly_once(pool, gateway, ids)


async def test_enqueue_is_idempotent_and_transactional(
    pool: asyncpg.Pool, settings: Settings, clean_queue: None
) -> None:
    rules = sms_rules(settings, "http://127.0.0.1:9/send")
    params = {"name": "张三", "title": "整改通知"}
    async with pool.acquire() as conn:
        async with conn.transaction():
            a = await enqueue_sms(
                conn, rules, phone="138 0013 8000", kind="notice", params=params, key="k:1"
            )
            b = await enqueue_sms(
                conn, rules, phone="13800138000", kind="notice", params=params, key="k:1"
            )
        assert a == b
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await enqueue_sms(
                    conn, rules, phone="13800138001", kind="notice", params=params, key="k:2"
                )
                raise RuntimeError("the business change fails")
        with pytest.raises(RuntimeError, match="transaction"):
            await enqueue_sms(
                conn, rules, phone="13800138001", kind="notice", params=params, key="k:3"
            )
    rows = await pool.fetch("SELECT idem_key, phone, body FROM sms_outbox")
    assert [tuple(r) for r in rows] == [("k:1", "13800138000", "【测试】张三：整改通知")]
    off = msgspec.structs.replace(rules, enabled=False)
    async with pool.acquire() as conn, conn.transaction():
        assert await enqueue_sms(conn, off, phone="1", kind="x", params={}, key="k") is None


def test_bad_input_is_refused_before_anything_is_written(settings: Settings) -> None:
    rules = sms_rules(settings, "http://127.0.0.1:9/send")
    with pytest.raises(ValueError, match="kind: no SMS template 'nope'"):
        render(rules, "nope", {})
    with pytest.raises(ValueError, match="params: template 'notice' needs title"):
        render(rules, "notice", {"name": "x"})
    with pytest.raises(ValueError, match="phone"):
        normalize_phone("call me")
    assert mask_phone("13800138000") == "138****8000"
    assert "test-secret" not in repr(rules) and "test-key" not in repr(rules)


async def test_the_hourly_limit_defers_and_never_drops(
    aiohttp_server: Any, pool: asyncpg.Pool, settings: Settings, clean_queue: None
) -> None:
    gateway = FakeGateway(seed=1303, hang_s=0, p_error=0, p_hang=0, p_garbage=0)
    server = await aiohttp_server(gateway.app())
    rules = sms_rules(settings, str(server.make_url("/send")), rate_limit_per_hour=2)
    async with pool.acquire() as conn, conn.transaction():
        for i in range(5):
            await enqueue_sms(
                conn,
                rules,
                phone="13700000001",
                kind="notice",
                params={"name": "李四", "title": str(i)},
                key=f"limit:{i}",
            )
    sender = SmsSender(pool, rules)
    task = asyncio.create_task(sender.run())

    async def settled() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE state = 'sent'")
        return bool(n == 2)

    try:
        await wait_until(settled, 30)
        await asyncio.sleep(rules.poll_interval_s * 5)  # more rounds send nothing more
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    rows = await pool.fetch("SELECT * FROM sms_outbox ORDER BY id")
    assert [r["state"] for r in rows] == ["sent", "sent", "queued", "queued", "queued"]
    oldest = min(r["sent_at"] for r in rows if r["sent_at"])
    for r in rows[2:]:
        assert r["attempts"] == 0 and "hourly limit" in r["last_error"]
        assert r["next_attempt_at"] - oldest == dt.timedelta(hours=1)
    assert sender.counters.values["deferred_total"] >= 3
    assert "cylwatch_sms_sent_total 2" in sender.counters.render()


async def test_a_refused_message_fails_at_once(
    aiohttp_server: Any, pool: asyncpg.Pool, settings: Settings, clean_queue: None
) -> None:
    gateway = FakeGateway(seed=1304, hang_s=0)
    server = await aiohttp_server(gateway.app())
    rules = sms_rules(settings, str(server.make_url("/send")), api_secret="wrong")
    ids = await enqueue_many(pool, rules, 2)
    await run_until_final([SmsSender(pool, rules)], pool, 30)
    rows = await pool.fetch("SELECT * FROM sms_outbox WHERE id = ANY($1::bigint[])", ids)
    assert {(r["state"], r["attempts"]) for r in rows} == {("failed", 1)}
    assert all(r["last_error"].startswith("HTTP 401") for r in rows)
    assert "wrong" not in "".join(r["last_error"] for r in rows)
