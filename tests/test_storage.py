"""Storage: migrations are idempotent, time series are partitioned (natively or in
TimescaleDB chunks), the dedupe key holds, the audit log is append-only.

The session database takes whichever path the server offers; the partition and chunk tests
each get a database of their own built on the path they test (README "Storage").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.db.migrate import check_current, discover, migrate
from tests.storage.databases import Migrated, migrated, timescaledb_usable

TIME_SERIES = ("events", "fills", "telemetry", "positions", "dead_letters")
FAR_AHEAD = dt.datetime(2031, 5, 17, 8, 0, tzinfo=dt.UTC)  # a device clock years ahead
INSERT_FAR = (
    "INSERT INTO positions (ts, msg_id, vehicle_id, lat, lon)"
    " VALUES ($1, 'far-1', 'VEH-X', 34.7, 113.6)"
)


@pytest.fixture(scope="module")
async def native(settings: Any, database: str) -> AsyncIterator[Migrated]:
    """Native partitions, although the server may have TimescaleDB installed and loaded."""
    async with migrated(settings, "off") as db:
        yield db


@pytest.fixture(scope="module")
async def hypertables(settings: Any, pool: asyncpg.Pool) -> AsyncIterator[Migrated]:
    if not await timescaledb_usable(pool):
        pytest.skip("this server does not preload timescaledb: no hypertables to test")
    async with migrated(settings, "auto") as db:
        assert db.result.storage.hypertables, db.result.storage
        yield db


async def test_migrate_again_applies_nothing(settings: Any, database: str) -> None:
    result = await migrate(settings, database)
    assert result.applied == []
    assert sorted(result.already) == sorted(m.version for m in discover())
    assert result.changed == []


async def test_schema_is_current(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await check_current(conn) == []


async def test_time_series_are_partitioned_with_default(native: Migrated) -> None:
    pool = native.pool
    assert not await pool.fetchval("SELECT cyl_has_timescale()")
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


async def test_row_beyond_partitions_lands_in_default_then_moves(native: Migrated) -> None:
    """A device clock far ahead must never fail an insert; the month's partition adopts it later."""
    pool = native.pool
    await pool.execute(INSERT_FAR, FAR_AHEAD)
    assert await pool.fetchval("SELECT count(*) FROM positions_default WHERE msg_id = 'far-1'") == 1
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            "SELECT cyl_ensure_partitions('positions', '2031-05-01', '2031-05-01')"
        )
    assert created == 1
    assert await pool.fetchval("SELECT count(*) FROM positions_default WHERE msg_id = 'far-1'") == 0
    assert await pool.fetchval("SELECT count(*) FROM positions_p203105 WHERE msg_id = 'far-1'") == 1


async def test_row_far_ahead_lands_in_its_own_chunk(hypertables: Migrated) -> None:
    """The hypertable path: TimescaleDB makes the week's chunk on insert, none left to adopt."""
    pool = hypertables.pool
    await pool.execute(INSERT_FAR, FAR_AHEAD)
    chunk = await pool.fetchrow(
        """SELECT chunk_schema, chunk_name, range_start, range_end
             FROM timescaledb_information.chunks
            WHERE hypertable_name = 'positions' AND range_start <= $1 AND range_end > $1""",
        FAR_AHEAD,
    )
    assert chunk is not None
    assert chunk["range_end"] - chunk["range_start"] == dt.timedelta(days=7)
    holder = await pool.fetchval(
        "SELECT tableoid::regclass::text FROM positions WHERE msg_id = 'far-1'"
    )
    assert holder == f"{chunk['chunk_schema']}.{chunk['chunk_name']}"
    assert await pool.fetchval("SELECT count(*) FROM ONLY positions") == 0
    # nothing to adopt: the partition helper is a no-op on hypertables
    assert (
        await pool.fetchval("SELECT cyl_ensure_partitions('positions', '2031-05-01', '2031-05-01')")
        == 0
    )


async def test_a_chunk_compresses_and_stays_readable(hypertables: Migrated) -> None:
    """Compression is configured: a chunk compresses by hand (the policy's job is the server's),
    and its rows read back the same."""
    pool = hypertables.pool
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    for i in range(20):
        await pool.execute(
            "INSERT INTO telemetry (ts, msg_id, tag, leak_ppm) VALUES ($1, $2, 'TAG-OLD', $3)",
            old + dt.timedelta(minutes=i),
            f"old-{i}",
            float(i),
        )
    chunks = await pool.fetch(
        "SELECT show_chunks('telemetry', older_than => now() - interval '30 days')::text AS c"
    )
    assert len(chunks) == 1
    await pool.execute("SELECT compress_chunk($1::regclass)", chunks[0]["c"])
    assert await pool.fetchval(
        "SELECT is_compressed FROM timescaledb_information.chunks"
        " WHERE format('%I.%I', chunk_schema, chunk_name) = $1",
        chunks[0]["c"],
    )
    total = await pool.fetchval("SELECT sum(leak_ppm) FROM telemetry WHERE tag = 'TAG-OLD'")
    assert total == sum(range(20))


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
