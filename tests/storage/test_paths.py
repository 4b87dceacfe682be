"""Both storage paths on one server: `[storage] timescaledb = "auto"` takes hypertables with
compression when the server can give them, and `"off"` takes native partitions even when
it could (README "Storage")."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import pytest

from server.db.migrate import migrate
from tests.storage.databases import migrated, timescaledb_usable, with_storage

TIME_SERIES = {"events", "fills", "telemetry", "positions", "dead_letters"}
COMPRESS_AFTER = "30 days"  # the compression policy 0001 sets on every hypertable
COMPRESSION = {  # (segment by, order by) of migration 0225; dead_letters left to TimescaleDB
    "telemetry": (["cylinder_id"], ["ts DESC"]),
    "positions": (["vehicle_id"], ["ts DESC"]),
    "events": ([], ["cylinder_id", "ts DESC"]),
    "fills": ([], ["cylinder_id", "ts DESC"]),
}


async def compression_settings(pool: asyncpg.Pool) -> dict[str, tuple[list[str], list[str]]]:
    rows = await pool.fetch(
        """SELECT hypertable_name AS t, attname, segmentby_column_index AS seg,
                  orderby_column_index AS ord, orderby_asc AS asc
             FROM timescaledb_information.compression_settings
            ORDER BY 1, seg NULLS LAST, ord NULLS LAST"""
    )
    out: dict[str, tuple[list[str], list[str]]] = {}
    for r in rows:
        segment, order = out.setdefault(r["t"], ([], []))
        if r["seg"] is not None:
            segment.append(r["attname"])
        if r["ord"] is not None:
            order.append(r["attname"] + ("" if r["asc"] else " DESC"))
    return out


async def natively_partitioned(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
    )
    return {r["relname"] for r in rows}


async def test_auto_takes_the_path_the_server_offers(
    settings: Any, pool: asyncpg.Pool, record_property: Any
) -> None:
    """Hypertables with compression where TimescaleDB is preloaded; native partitions where
    it is not. Both outcomes are asserted, and which one ran is recorded, never skipped."""
    usable = await timescaledb_usable(pool)
    path = "hypertables" if usable else "native partitions"
    record_property("storage_path", path)
    print(f"storage path on this server: {path}")
    async with migrated(settings, "auto") as db:
        assert db.result.storage.hypertables is usable, db.result.storage
        if not usable:
            assert await natively_partitioned(db.pool) >= TIME_SERIES
            return
        rows = await db.pool.fetch(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        )
        assert {r["hypertable_name"]: r["compression_enabled"] for r in rows} == dict.fromkeys(
            TIME_SERIES, True
        )
        policies = await db.pool.fetch(
            "SELECT hypertable_name, config->>'compress_after' AS after"
            " FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        )
        assert {r["hypertable_name"]: r["after"] for r in policies} == dict.fromkeys(
            TIME_SERIES, COMPRESS_AFTER
        )
        assert not await natively_partitioned(db.pool) & TIME_SERIES
        assert await compression_settings(db.pool) == COMPRESSION


async def test_off_takes_native_partitions_though_installed(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="server.db.migrate"):
        async with migrated(settings, "off") as db:
            assert not db.result.storage.hypertables
            assert 'timescaledb = "off"' in db.result.storage.reason
            assert not await db.pool.fetchval(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            )
            assert await natively_partitioned(db.pool) >= TIME_SERIES
            for table in TIME_SERIES:
                assert await db.pool.fetchval("SELECT to_regclass($1)::text", f"{table}_default")
            # the choice sticks: a later run under "auto" keeps the native partitions
            again = await migrate(with_storage(db.dsn, "auto"), db.dsn)
            assert not again.storage.hypertables
            assert "created without TimescaleDB" in again.storage.reason
            assert not await db.pool.fetchval(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            )
    said = [r for r in caplog.records if "time series of" in r.getMessage()]
    assert len(said) == 2  # one line per run, saying which storage and why
