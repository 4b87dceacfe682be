"""Storage: migrations are idempotent, time series are partitioned, the dedupe key holds,
the audit log is append-only. Runs on plain PostgreSQL (the native-partition path)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from server.db.migrate import check_current, discover, migrate

TIME_SERIES = ("events", "fills", "telemetry", "positions", "dead_letters")


async def test_migrate_again_applies_nothing(settings: Any, database: str) -> None:
    result = await migrate(settings, database)
    assert result.applied == []
    assert sorted(result.already) == sorted(m.version for m in discover())
    assert result.changed == []


async def test_schema_is_current(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await check_current(conn) == []


async def test_time_series_are_partitioned_with_default(pool: asyncpg.Pool) -> None:
    timescale = await pool.fetchval("SELECT cyl_has_timescale()")
    if timescale:
        pytest.skip("TimescaleDB present: hypertables instead of native partitions")
    parted = {
        r["relname"]
        for r in await pool.fetch(
            "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
        )
    }
    assert set(TIME_SERIES) <= parted
    for table in TIME_SERIES:
        assert await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{table}_default")
        this_month = dt.date.today().strftime("%Y%m")
        assert await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{table}_p{this_month}")


async def test_row_beyond_partitions_lands_in_default_then_moves(pool: asyncpg.Pool) -> None:
    """A device clock far ahead must never fail an insert; the month's partition adopts it later."""
    far = dt.datetime(2031, 5, 17, 8, 0, tzinfo=dt.UTC)
    await pool.execute(
        "INSERT INTO positions (ts, msg_id, vehicle_id, lat, lon) VALUES ($1, 'far-1', 'VEH-X', 34.7, 113.6)",
        far,
    )
    assert await pool.fetchval("SELECT count(*) FROM positions_default WHERE msg_id = 'far-1'") == 1
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            "SELECT cyl_ensure_partitions('positions', '2031-05-01', '2031-05-01')"
        )
    assert created == 1
    assert await pool.fetchval("SELECT count(*) FROM positions_default WHERE msg_id = 'far-1'") == 0
    assert await pool.fetchval("SELECT count(*) FROM positions_p203105 WHERE msg_id = 'far-1'") == 1


async def test_same_msg_id_and_ts_is_stored_once(pool: asyncpg.Pool) -> None:
    ts = dt.datetime.now(dt.UTC)
    sql = (
        "INSERT INTO telemetry (ts, msg_id, tag) VALUES ($1, 'dup-1', 'TAG-A-OK')"
        " ON CONFLICT (msg_id, ts) DO NOTHING"
    )
    await pool.execute(sql, ts)
    await pool.execute(sql, ts)
    assert await pool.fetchval("SELECT count(*) FROM telemetry WHERE msg_id = 'dup-1'") == 1


async def test_audit_log_is_append_only(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO audit_log (username, action, entity) VALUES ('t', 'test.write', 'thing')"
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE audit_log SET action = 'forged' WHERE action = 'test.write'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_log WHERE action = 'test.write'")


async def test_one_open_alert_per_kind_and_subject(pool: asyncpg.Pool) -> None:
    now = dt.datetime.now(dt.UTC)
    insert = (
        "INSERT INTO alerts (kind, severity, subject_type, subject_id, first_at, last_at, state)"
        " VALUES ('leak', 'critical', 'cylinder', 'TAG-DEDUPE', $1, $1, $2)"
    )
    await pool.execute(insert, now, "open")
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(insert, now, "acknowledged")
    await pool.execute("UPDATE alerts SET state = 'resolved' WHERE subject_id = 'TAG-DEDUPE'")
    await pool.execute(insert, now, "open")  # a new episode after resolution is a new alert
