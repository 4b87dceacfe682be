"""Upload to the provincial / national platform: the outbox triggers and the sender
(docs/OUTBOUND.md "Upload").

The platform is a fake (``tests.outbound.fakes.FakePlatform``) because the provincial
platform cannot run here. It fails at random from a fixed seed: 500s, and batches it stores
but never answers (timeouts). It stores each change once by its outbox id, as the receiver
is asked to. The properties checked: every change reaches it (nothing lost), each change
travels in exactly one batch whose content never changes between tries (so nothing is sent
twice under another name after a restart), with two senders at once and one killed mid-run.
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

from ingest.records import TABLES, insert_dedupe, micros
from server.kernel.settings import Settings, Upstream
from server.outbound.upstream import UpstreamSender, write_switch
from tests.conftest import World
from tests.outbound.fakes import PLATFORM_TOKEN, FakePlatform, wait_until

TIMEOUT_S = 0.3


def upstream_rules(settings: Settings, url: str, **over: Any) -> Upstream:
    values: dict[str, Any] = {
        "enabled": True,
        "endpoint_url": url,
        "api_key": PLATFORM_TOKEN,
        "source_id": "410100",
        "timeout_s": TIMEOUT_S,
        "batch_size": 25,
        "max_attempts": 30,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.2,
        "poll_interval_s": 0.05,
        "claim_timeout_s": 30.0,
    }
    values.update(over)
    return msgspec.structs.replace(settings.upstream, **values)


async def clear(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM upstream_outbox")
    await pool.execute("DELETE FROM upstream_batches")


@pytest.fixture
async def switched_on(pool: asyncpg.Pool) -> AsyncIterator[None]:
    await clear(pool)
    await write_switch(pool, True)
    yield
    await write_switch(pool, False)
    await clear(pool)


async def new_cylinder(conn: asyncpg.Connection | asyncpg.Pool, world: World) -> int:
    today = world.today
    return int(
        await conn.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                      next_inspection_date, scrap_date)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5) RETURNING id""",
            f"UP-{secrets.token_hex(5)}",
            world.companies["A"],
            today - dt.timedelta(days=100),
            today + dt.timedelta(days=1000),
            today + dt.timedelta(days=2500),
        )
    )


def fill_row(world: World, msg_id: str, ts: dt.datetime) -> tuple[Any, ...]:
    return (
        ts, ts, msg_id, ts - dt.timedelta(seconds=40), "GUN-A", world.sites["STA-A1"],
        world.companies["A"], "410105", None, "TAG-A-OK", "YSP35.5", 14.5, 15.0, 29.5,
        "completed", "ok", "op-1", '{"valve": true}', None,
    )  # fmt: skip


def staged_fill_row(world: World, msg_id: str, ts: dt.datetime) -> tuple[Any, ...]:
    """A fill as ingest stages it for ``insert_dedupe``: its times in microseconds."""
    row = fill_row(world, msg_id, ts)
    return (micros(row[0]), micros(row[1]), row[2], micros(row[3]), *row[4:])


async def outbox(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT entity, op FROM upstream_outbox ORDER BY id")
    return [(r["entity"], r["op"]) for r in rows]


async def test_triggers_write_the_outbox_with_the_change(
    pool: asyncpg.Pool, world: World, switched_on: None
) -> None:
    cyl = await new_cylinder(pool, world)
    assert await outbox(pool) == [("cylinder", "created")]
    # live state (ingest's updates), or an archive field set to the value it has: no change
    await pool.execute(
        """UPDATE cylinders SET last_seen_at = now(), lat = 34.8, lon = 113.6, fill_state = 'full',
                  district_code = '410105' WHERE id = $1""",
        cyl,
    )
    await pool.execute("UPDATE cylinders SET spec = spec, status = status WHERE id = $1", cyl)
    assert len(await outbox(pool)) == 1
    await pool.execute(
        "UPDATE cylinders SET next_inspection_date = next_inspection_date + 1 WHERE id = $1", cyl
    )
    await pool.execute("UPDATE cylinders SET status = 'scrapped' WHERE id = $1", cyl)
    assert (await outbox(pool))[1:] == [("cylinder", "updated"), ("cylinder", "scrapped")]
    record = await pool.fetchval("SELECT record FROM upstream_outbox ORDER BY id DESC LIMIT 1")
    assert record["status"] == "scrapped" and record["id"] == cyl
    assert "lat" not in record and "location_customer_id" not in record

    # rolled back with its transaction: nothing to upload
    with contextlib.suppress(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await new_cylinder(conn, world)
            raise RuntimeError("the registration fails")
    assert len(await outbox(pool)) == 3

    # fills: ingest's COPY-then-INSERT, a redelivery, a plain COPY (the table is a hypertable
    # or partitioned: row triggers fire on its chunks/partitions)
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spec = TABLES["fills"]
    async with pool.acquire() as conn, conn.transaction():
        got = await insert_dedupe(conn, spec, [staged_fill_row(world, "up-f1", ts)])
        assert len(got) == 1
    async with pool.acquire() as conn, conn.transaction():
        assert await insert_dedupe(conn, spec, [staged_fill_row(world, "up-f1", ts)]) == set()
    async with pool.acquire() as conn:
        # COPY straight into fills (binary COPY has no jsonb encoder: checks left out)
        row = fill_row(world, "up-f2", ts)[:-2]
        columns = spec.column_names[:-2]
        await conn.copy_records_to_table("fills", records=[row], columns=columns)
    fills = await pool.fetch("SELECT record FROM upstream_outbox WHERE entity = 'fill' ORDER BY id")
    assert [f["record"]["msg_id"] for f in fills] == ["up-f1", "up-f2"]
    assert "pre_check" not in fills[0]["record"]

    # switched off: the same writes leave no trace
    await write_switch(pool, False)
    before = len(await outbox(pool))
    await new_cylinder(pool, world)
    async with pool.acquire() as conn, conn.transaction():
        await insert_dedupe(conn, spec, [staged_fill_row(world, "up-f3", ts)])
    assert len(await outbox(pool)) == before


async def make_changes(pool: asyncpg.Pool, world: World, fills: int, cylinders: int) -> list[int]:
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tag = secrets.token_hex(3)
    async with pool.acquire() as conn, conn.transaction():
        rows = [
            staged_fill_row(world, f"up-{tag}-{i}", ts - dt.timedelta(minutes=i))
            for i in range(fills)
        ]
        await insert_dedupe(conn, TABLES["fills"], rows)
        for _ in range(cylinders):
            cyl = await new_cylinder(conn, world)
            await conn.execute("UPDATE cylinders SET stamp = 'S-' || id WHERE id = $1", cyl)
    return [r["id"] for r in await pool.fetch("SELECT id FROM upstream_outbox ORDER BY id")]


async def stop(*tasks: asyncio.Task[None]) -> None:
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t


async def test_every_change_arrives_once_through_failures_and_a_restart(
    aiohttp_server: Any, pool: asyncpg.Pool, settings: Settings, world: World, switched_on: None
) -> None:
    platform = FakePlatform(seed=1308, hang_s=TIMEOUT_S * 2)
    server = await aiohttp_server(platform.app())
    rules = upstream_rules(settings, str(server.make_url("/upload")), claim_timeout_s=1.0)
    ids = await make_changes(pool, world, fills=240, cylinders=30)
    assert len(ids) == 300
    first = [asyncio.create_task(UpstreamSender(pool, rules).run()) for _ in range(2)]

    async def some_stored() -> bool:
        return len(platform.stored) >= 100

    await wait_until(some_stored, 60)
    await stop(*first)  # killed mid-run: a batch may be in flight, stored or not
    later = asyncio.create_task(UpstreamSender(pool, rules).run())

    async def all_delivered() -> bool:
        left = await pool.fetchval(
            """SELECT (SELECT count(*) FROM upstream_outbox WHERE batch_id IS NULL)
                    + (SELECT count(*) FROM upstream_batches WHERE state <> 'delivered')"""
        )
        return bool(left == 0)

    try:
        await wait_until(all_delivered, 120)
    finally:
        await stop(later)
    assert platform.unauthorized == 0
    assert await pool.fetchval("SELECT max(attempts) FROM upstream_batches") > 1  # retries ran
    assert sorted(platform.stored) == ids  # nothing lost
    assert set(platform.stored_count.values()) == {1}
    assert platform.batch_changed == []  # a batch is the same on every try
    # each change travelled in exactly one batch (never re-batched under another id)
    carried = [oid for batch in platform.batches.values() for oid in batch]
    assert sorted(carried) == ids
    in_db = await pool.fetch("SELECT id, batch_id FROM upstream_outbox ORDER BY id")
    assert {r["id"]: r["batch_id"] for r in in_db} == {
        oid: bid for bid, batch in platform.batches.items() for oid in batch
    }
    stored = platform.stored[ids[0]]
    assert stored["entity"] == "fill" and stored["data"]["station_code"] == "STA-A1"
    assert any(r["entity"] == "cylinder" and r["op"] == "updated" for r in platform.stored.values())


async def test_a_refused_batch_is_dead_at_once_and_a_failing_one_after_its_attempts(
    aiohttp_server: Any, pool: asyncpg.Pool, settings: Settings, world: World, switched_on: None
) -> None:
    platform = FakePlatform(seed=1309, hang_s=0, p_error=0, p_hang=0, refuse=True)
    server = await aiohttp_server(platform.app())
    rules = upstream_rules(settings, str(server.make_url("/upload")), batch_size=10)
    await make_changes(pool, world, fills=5, cylinders=0)
    sender = UpstreamSender(pool, rules)
    task = asyncio.create_task(sender.run())

    async def dead() -> bool:
        return bool(
            await pool.fetchval("SELECT count(*) FROM upstream_batches WHERE state = 'dead'")
        )

    try:
        await wait_until(dead, 30)
    finally:
        await stop(task)
    batch = await pool.fetchrow("SELECT * FROM upstream_batches")
    assert batch["attempts"] == 1 and batch["last_error"].startswith("HTTP 400")

    platform.refuse, platform.p_error = False, 1.0  # now it only ever fails: 500
    await make_changes(pool, world, fills=3, cylinders=0)
    rules = msgspec.structs.replace(rules, max_attempts=3)
    sender = UpstreamSender(pool, rules)
    task = asyncio.create_task(sender.run())

    async def both_dead() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM upstream_batches WHERE state = 'dead'")
        return bool(n == 2)

    try:
        await wait_until(both_dead, 30)
    finally:
        await stop(task)
    second = await pool.fetchrow("SELECT * FROM upstream_batches ORDER BY id DESC LIMIT 1")
    assert second["attempts"] == 3 and second["last_error"].startswith("HTTP 500")
    assert sender.counters.values["retries_total"] == 2
    assert "cylwatch_upstream_batches_dead_total 1" in sender.counters.render()
