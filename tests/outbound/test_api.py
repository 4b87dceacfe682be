"""The outbound endpoints (docs/API.md "Outbound"): who sees what, the dead-letter retry and
its audit row, bad input answered with the one error shape."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.api.conftest import call
from tests.outbound.fakes import insert_dead_batch

SMS = "/api/v1/outbound/sms"
BATCHES = "/api/v1/outbound/upstream"


async def test_phone_numbers_are_whole_for_an_admin_only(client: Any, pool: asyncpg.Pool) -> None:
    await pool.execute(
        """INSERT INTO sms_outbox (idem_key, phone, kind, body)
           VALUES ('api:mask', '13912345678', 'notice', '【测试】通知')"""
    )
    try:
        status, body = await call(client, "GET", f"{SMS}?state=queued&kind=notice", "t_admin")
        assert status == 200
        mine = [i for i in body["items"] if i["body"] == "【测试】通知"]
        assert mine[0]["phone"] == "13912345678"
        status, body = await call(client, "GET", SMS, "t_regulator")
        assert status == 200
        mine = [i for i in body["items"] if i["body"] == "【测试】通知"]
        assert mine[0]["phone"] == "139****5678"
        assert "idem_key" not in mine[0]
    finally:
        await pool.execute("DELETE FROM sms_outbox WHERE idem_key = 'api:mask'")


async def test_bad_queries_are_refused(client: Any) -> None:
    for path, field in (
        (f"{SMS}?state=lost", "state"),
        (f"{SMS}?phone=139", "phone"),
        (f"{SMS}?from=yesterday", "from"),
        (f"{BATCHES}?state=gone", "state"),
        (f"{BATCHES}?page=0", "page"),
    ):
        status, body = await call(client, "GET", path, "t_admin")
        assert status == 400, path
        assert body["error"]["code"] == "invalid_query"
        assert body["error"]["details"]["field"] == field


async def test_a_dead_batch_is_listed_and_retried_once(client: Any, pool: asyncpg.Pool) -> None:
    batch = await insert_dead_batch(pool, records=3)
    status, body = await call(client, "GET", f"{BATCHES}?state=dead", "t_admin")
    assert status == 200
    row = next(i for i in body["items"] if i["id"] == batch)
    assert row["records"] == 3 and row["last_error"] == "HTTP 503: maintenance"
    assert row["last_outbox_id"] - row["first_outbox_id"] == 2

    path = f"{BATCHES}/{batch}/retry"
    status, body = await call(client, "POST", path, "t_admin", {"note": "平台已恢复"})
    assert status == 200
    assert body["state"] == "pending" and body["attempts"] == 0
    audit = await pool.fetchrow(
        "SELECT * FROM audit_log WHERE action = 'upstream.retry' AND entity_id = $1", str(batch)
    )
    assert audit["username"] == "t_admin" and audit["details"]["note"] == "平台已恢复"

    status, body = await call(client, "POST", path, "t_admin")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    assert body["error"]["details"]["state"] == "pending"


async def test_bad_retries_are_refused(client: Any, pool: asyncpg.Pool) -> None:
    status, body = await call(client, "POST", f"{BATCHES}/999999999/retry", "t_admin")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await call(client, "POST", f"{BATCHES}/nope/retry", "t_admin")
    assert status == 404 and body["error"]["code"] == "not_found"
    batch = await insert_dead_batch(pool)
    status, body = await call(client, "POST", f"{BATCHES}/{batch}/retry", "t_admin", {"x": 1})
    assert status == 400 and body["error"]["code"] == "invalid_field"
    status, body = await call(
        client, "POST", f"{BATCHES}/{batch}/retry", "t_admin", {"note": "x" * 5000}
    )
    assert status == 400 and body["error"]["details"]["field"] == "note"
    status, _ = await call(client, "POST", f"{BATCHES}/{batch}/retry", "t_regulator")
    assert status == 403
    state = await pool.fetchval("SELECT state FROM upstream_batches WHERE id = $1", batch)
    assert state == "dead"  # nothing half-done
