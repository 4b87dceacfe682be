"""How much a month of valve telemetry takes in TimescaleDB before and after compression, with
the settings the migrations give and with other segment-by choices (issue 14 item 6; recorded
in docs/BENCHMARKS.md "TimescaleDB path (issue 14 item 6)").

It needs a PostgreSQL that preloads TimescaleDB (README "Storage"); the database it names is
created and migrated on the hypertable path, and its telemetry is replaced by a generated
month: every valve reports every ``--every-s`` seconds from a place of its own (a few metres
of GPS jitter), valve open or closed, leak ppm well below the alarm, temperature, a battery
running down, signal strength — the fields of ``device_sim``'s valves, values in ranges like
its own, msg_ids as random as a device's UUIDs. Then for each setting it compresses every chunk,
prints the sizes and the time it took, and times the one query that reads telemetry
(``ingest.store.circulation``: a cylinder's latest reads in a window), decompressing before
the next setting; the last one stays applied (by default migration 0225's own).

    python bench/timescale_compression.py --database-url postgresql://postgres@127.0.0.1:5433/cylwatch_bench_tsdb
        [--devices 2000 --days 30 --every-s 300] [--variants auto,cylinder_id] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_settings, load_line, machine_line, redacted
from server.db.migrate import migrate

MIB = 2**20
VARIANTS: dict[str, tuple[str, str | None]] = {
    "auto": ("none stated: TimescaleDB's choice (0001 until 0225)", None),
    "none": ("no segment-by", ""),
    "tag": ("segment by tag", "tag"),
    "cylinder_id": ("segment by cylinder_id (migration 0225)", "cylinder_id"),
}
"""(label, segment-by) of each setting compared; None states nothing (TimescaleDB then
chooses per chunk). The others order by ts DESC within a segment (a valve's readings in
time, newest first: what the reads want)."""
QUERY_SAMPLES = 50
"""Cylinders whose latest reads are timed per variant (a cold first read, then warm)."""
READS = 5
"""Latest reads per cylinder the query asks for (ingest's circulation check asks a few)."""

GENERATE = """
INSERT INTO telemetry (ts, received_at, msg_id, tag, cylinder_id, lat, lon, valve, leak_ppm,
                       temp_c, battery_pct, rssi)
SELECT t, t + interval '1 second', gen_random_uuid()::text, 'BENCH-V' || lpad(d::text, 6, '0'),
       d, 34.70 + (d % 97) * 0.002 + random() * 0.00006, 113.55 + (d / 97) * 0.002
       + random() * 0.00006, CASE WHEN random() < 0.3 THEN 'open' ELSE 'closed' END,
       (random() * 50)::real, (10 + random() * 20)::real,
       (100 - 80 * extract(epoch FROM t - $1) / extract(epoch FROM $2 - $1))::real,
       (-115 + random() * 60)::real
  FROM generate_series($3::int, $4::int) AS d,
       generate_series($1::timestamptz, $2::timestamptz - interval '1 second', $5::interval) AS t
"""
"""One batch of valves' month; every valve's first reading at the month's start. Valves sit
on a grid of 0.002° (~200 m) over Zhengzhou (34.70 N, 113.55 E: the demo city of
config/districts.geojson), with ~3 m of GPS jitter."""


async def sizes(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow("SELECT * FROM hypertable_detailed_size('telemetry')")
    return {
        k: int(row[k] or 0) for k in ("table_bytes", "index_bytes", "toast_bytes", "total_bytes")
    }


def mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"


async def chunks(conn: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch("SELECT show_chunks('telemetry')::text")]


async def read_times(conn: asyncpg.Connection, devices: int, t0: Any, t1: Any) -> str:
    """The circulation check's telemetry read for QUERY_SAMPLES cylinders: p50 and max ms."""
    step = max(1, devices // QUERY_SAMPLES)
    took = []
    for cyl in range(1, devices + 1, step):
        started = time.perf_counter()
        await conn.fetch(
            """SELECT t.ts, t.lat, t.lon FROM telemetry t
                WHERE t.cylinder_id = $1 AND t.ts BETWEEN $2 AND $3
                  AND t.lat IS NOT NULL AND t.lon IS NOT NULL
                ORDER BY t.ts DESC LIMIT $4""",
            cyl,
            t0,
            t1,
            READS,
        )
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return f"read p50 {took[len(took) // 2]:.2f} ms, max {took[-1]:.1f} ms"


async def settings_text(conn: asyncpg.Connection) -> str:
    """The compression settings stated on the hypertable, else those TimescaleDB chose for
    its first compressed chunk (it picks them per chunk when none are stated)."""
    for rel in ("'telemetry'::regclass", "(SELECT show_chunks('telemetry') LIMIT 1)"):
        r = await conn.fetchrow(
            "SELECT segmentby, orderby, orderby_desc FROM _timescaledb_catalog.compression_settings"
            f" WHERE relid = {rel}"
        )
        if r is not None and (r["segmentby"] is not None or r["orderby"] is not None):
            order = ", ".join(
                f"{c}{' DESC' if d else ''}"
                for c, d in zip(r["orderby"] or [], r["orderby_desc"] or [], strict=False)
            )
            where = "" if rel.startswith("'") else " (chosen by TimescaleDB for the chunk)"
            return (
                f"segment by {', '.join(r['segmentby'] or []) or '(none)'}; order by {order}{where}"
            )
    return "none stated (TimescaleDB chooses per chunk)"


async def main(args: argparse.Namespace) -> None:
    settings = bench_settings(args.database_url)
    result = await migrate(settings, args.database_url)
    if not result.storage.hypertables:
        raise SystemExit(f"no hypertables at {redacted(args.database_url)}: {result.storage}")
    conn = await asyncpg.connect(args.database_url, command_timeout=None)
    try:
        print(await machine_line(conn))
        print(
            "timescaledb",
            await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ),
        )
        print(f"telemetry compression now: {await settings_text(conn)}")
        t1 = await conn.fetchval("SELECT date_trunc('day', now()) - interval '1 day'")
        t0 = await conn.fetchval(
            "SELECT $1::timestamptz - make_interval(days => $2)", t1, args.days
        )
        for c in await chunks(conn):
            await conn.execute("SELECT decompress_chunk($1, true)", c)
        held = await conn.fetchval("SELECT count(*) FROM telemetry")
        if args.reuse and held:
            t0, t1 = await conn.fetchrow(
                "SELECT min(ts), max(ts) + interval '1 second' FROM telemetry"
            )
            devices = await conn.fetchval("SELECT count(DISTINCT cylinder_id) FROM telemetry")
            # an earlier run stopped midway leaves its last batch as dead rows: repack first
            await conn.execute("VACUUM FULL telemetry")
            print(f"reusing the {held:,} rows of {devices:,} valves generated by an earlier run")
        else:
            await conn.execute("TRUNCATE telemetry")
            started = time.perf_counter()
            every = dt.timedelta(seconds=args.every_s)
            for first in range(1, args.devices + 1, args.batch):
                last = min(args.devices, first + args.batch - 1)
                await conn.execute(GENERATE, t0, t1, first, last, every)
            devices = args.devices
            print(f"generated in {time.perf_counter() - started:.0f} s")
        await conn.execute("ANALYZE telemetry")
        rows = await conn.fetchval("SELECT count(*) FROM telemetry")
        before = await sizes(conn)
        print(
            f"{rows:,} rows ({devices:,} valves, {t0:%Y-%m-%d} to {t1:%Y-%m-%d}) in"
            f" {len(await chunks(conn))} chunks; uncompressed: {mib(before['total_bytes'])}"
            f" (heap {mib(before['table_bytes'])}, indexes {mib(before['index_bytes'])},"
            f" toast {mib(before['toast_bytes'])}), {before['total_bytes'] / rows:.0f} B/row;"
            f" {await read_times(conn, devices, t0, t1)}; {load_line()}"
        )
        names = args.variants.split(",")
        for i, name in enumerate(names):
            label, segmentby = VARIANTS[name]
            if segmentby is None:
                await conn.execute(
                    "ALTER TABLE telemetry RESET"
                    " (timescaledb.compress_segmentby, timescaledb.compress_orderby)"
                )
            else:
                await conn.execute(
                    "ALTER TABLE telemetry SET (timescaledb.compress_segmentby = $$"
                    + segmentby
                    + "$$, timescaledb.compress_orderby = 'ts DESC')"
                )
            started = time.perf_counter()
            for c in await chunks(conn):
                await conn.execute("SELECT compress_chunk($1)", c)
            took = time.perf_counter() - started
            await conn.execute("ANALYZE telemetry")
            after = await sizes(conn)
            print(
                f"{label} — {await settings_text(conn)}: {mib(after['total_bytes'])}"
                f" (heap {mib(after['table_bytes'])}, indexes {mib(after['index_bytes'])},"
                f" toast {mib(after['toast_bytes'])}),"
                f" {before['total_bytes'] / after['total_bytes']:.1f}× smaller,"
                f" {after['total_bytes'] / rows:.1f} B/row; compressed in {took:.0f} s;"
                f" {await read_times(conn, devices, t0, t1)}; {load_line()}"
            )
            if i < len(names) - 1:
                for c in await chunks(conn):
                    await conn.execute("SELECT decompress_chunk($1, true)", c)
        print(f"left compressed with {await settings_text(conn)}")
    finally:
        await conn.close()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--database-url", required=True, help="a database on a server preloading TimescaleDB"
    )
    p.add_argument("--devices", type=int, default=2000, help="valves (default 2,000)")
    p.add_argument("--days", type=int, default=30, help="days of telemetry (default 30)")
    p.add_argument(
        "--every-s", type=int, default=300, help="seconds between a valve's readings (default 300)"
    )
    p.add_argument("--batch", type=int, default=250, help="valves generated per statement")
    p.add_argument(
        "--variants",
        default="auto,none,tag,cylinder_id",
        help=f"settings compared, in order, of {', '.join(VARIANTS)}; the last stays applied",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the telemetry an earlier run generated (whatever its size) instead of a new month",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
