"""Lookup benchmark (docs/ARCHITECTURE.md §10): cylinder by tag p99 ≤ 5 ms and a cylinder's trajectory
≤ 20 ms, at 1,000,000 cylinders.

Why both paths: the raw SQL figure shows what the index gives; the API figure is what a
regulator's browser or a field officer's phone gets — routing, bearer-token check in Redis,
role scope in SQL, JSON — measured over a real loopback socket against the real aiohttp app
running in this process. Requests are sequential (latency, not throughput), after a warm-up,
with tags drawn at random (fixed seed) from the whole table.

    python bench/lookup.py [--database-url URL] [--lookups 5000] [--trajectories 500]

The first run seeds the bench database (server.seed.seed_city, minutes); later runs reuse it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCHMARKS_MD,
    BUSY_EVENTS,
    CITY_CYLINDERS,
    DEFAULT_DSN,
    bench_client,
    bench_settings,
    ensure_trajectories,
    load_line,
    machine_line,
    percentile,
    prepare_city,
    record_section,
    redacted,
    run,
    summary_ms,
)
from server.db.pool import connect

TARGET_LOOKUP_P99_MS = 5.0
"""docs/ARCHITECTURE.md §10: cylinder lookup by tag p99 ≤ 5 ms at 1M cylinders."""
TARGET_TRAJECTORY_MS = 20.0
"""docs/ARCHITECTURE.md §10: trajectory of a cylinder ≤ 20 ms (judged here at p99)."""

LOOKUP_SQL = """SELECT c.*, o.code AS owner_code, o.name AS owner_name
                  FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
                 WHERE c.tag = $1"""
TRAJECTORY_SQL = """SELECT e.* FROM events e WHERE e.cylinder_id = $1
                     ORDER BY e.ts, e.received_at, e.msg_id"""


def verdict(name: str, value_ms: float, target_ms: float) -> str:
    ok = value_ms <= target_ms
    word = "meets" if ok else "MISSES"
    return f"{name}: p99 {value_ms:.2f} ms {word} the target of {target_ms:g} ms"


async def main(args: argparse.Namespace) -> int:
    settings = bench_settings(args.database_url)
    count = await prepare_city(settings, args.cylinders)
    started = dt.datetime.now(dt.UTC)
    conn = await connect(settings)
    try:
        machine = await machine_line(conn)
        print(machine)
        busy = await ensure_trajectories(conn)
        lo, hi = await conn.fetchrow("SELECT min(id), max(id) FROM cylinders")
        rng = random.Random(args.random_seed)
        ids = [rng.randint(lo, hi) for _ in range(args.lookups * 2)]
        rows = await conn.fetch("SELECT id, tag FROM cylinders WHERE id = ANY($1)", ids)
        by_id = {r["id"]: r["tag"] for r in rows}
        tags = [by_id[i] for i in ids if i in by_id][: args.lookups]
        traj_rows = await conn.fetchval(
            "SELECT count(*) FROM events WHERE cylinder_id = $1", busy[0]
        )
        print(
            f"city: {count:,} cylinders in {redacted(args.database_url)}; {len(tags):,} random "
            f"tags; busy cylinders have {traj_rows} events (≥ {BUSY_EVENTS} added)"
        )

        lookup = await conn.prepare(LOOKUP_SQL)
        traj = await conn.prepare(TRAJECTORY_SQL)
        for tag in tags[: args.warmup]:
            await lookup.fetchrow(tag)
        samples: list[float] = []
        for tag in tags:
            t0 = time.perf_counter()
            row = await lookup.fetchrow(tag)
            samples.append(time.perf_counter() - t0)
            assert row is not None
        sql_lookup = samples
        print(f"tag lookup, raw SQL (prepared, asyncpg):   {summary_ms(sql_lookup)}")

        samples = []
        for i in range(args.trajectories + args.warmup // 10):
            cid = busy[i % len(busy)]
            t0 = time.perf_counter()
            events = await traj.fetch(cid)
            if i >= args.warmup // 10:
                samples.append(time.perf_counter() - t0)
            assert len(events) >= BUSY_EVENTS
        sql_traj = samples
        print(f"trajectory, raw SQL ({traj_rows} events):    {summary_ms(sql_traj)}")
    finally:
        await conn.close()

    api_lookup: list[float] = []
    api_traj: list[float] = []
    api_cpu_ms = float("nan")
    if not args.no_api:
        async with bench_client(settings) as (client, headers):

            async def get(path: str, params: dict[str, Any]) -> bytes:
                resp = await client.get(path, params=params, headers=headers)
                body: bytes = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {path} {params}: {resp.status} {body[:300]!r}")
                return body

            for tag in tags[: args.warmup]:
                await get("/api/v1/cylinders", {"tag": tag})
            c0 = time.process_time()
            for tag in tags:
                t0 = time.perf_counter()
                body = await get("/api/v1/cylinders", {"tag": tag})
                api_lookup.append(time.perf_counter() - t0)
                if tag.encode() not in body:
                    raise RuntimeError(f"lookup of {tag} did not return it")
            api_cpu_ms = (time.process_time() - c0) / len(tags) * 1e3
            print(f"tag lookup, GET /api/v1/cylinders?tag=:  {summary_ms(api_lookup)}")
            print(f"  CPU of this process (client + server) per lookup: {api_cpu_ms:.2f} ms")
            # the whole trajectory in one page (page_size up to http.page_size_max)
            size = {"page_size": str(settings.http.page_size_max)}
            for i in range(args.trajectories + args.warmup // 10):
                cid = busy[i % len(busy)]
                t0 = time.perf_counter()
                await get(f"/api/v1/cylinders/{cid}/trajectory", size)
                if i >= args.warmup // 10:
                    api_traj.append(time.perf_counter() - t0)
            print(f"trajectory, GET …/trajectory (one page):  {summary_ms(api_traj)}")

    measured = [
        ("lookup by tag, raw SQL (prepared)", sql_lookup, TARGET_LOOKUP_P99_MS),
        (f"trajectory, raw SQL ({traj_rows} events)", sql_traj, TARGET_TRAJECTORY_MS),
    ]
    if api_lookup:
        measured += [
            ("lookup by tag, `GET /api/v1/cylinders?tag=`", api_lookup, TARGET_LOOKUP_P99_MS),
            (
                f"trajectory, `GET /api/v1/cylinders/{{id}}/trajectory` ({traj_rows} events, "
                "one page)",
                api_traj,
                TARGET_TRAJECTORY_MS,
            ),
        ]
    print()
    for name, samples, target in measured:
        print(verdict(name, percentile([s * 1e3 for s in samples], 99), target))
    after = load_line()
    print(f"after the run: {after}")
    if args.record:
        text = section(args, machine, after, started, count, len(tags), measured, api_cpu_ms)
        record_section(MARK, text, Path(args.record))
        print(f"recorded in {args.record}")
    return 0


MARK = "cylwatch-bench:lookup"

NOTES = """\
- **Raw SQL** is the query alone through asyncpg (prepared): what the indexes give.
  **API** is the whole request through the real application on a loopback socket:
  routing, the bearer token checked in Redis, the role scope in SQL, the compliance status
  and JSON; client and server share this process.
- The lookup is one probe of the unique index on `tag` (plus the owner company);
  its p50 is a fraction of a millisecond. Its p99 and the API's figures move with the
  machine's load (see the machine line): a 2-core box at load 8–11 makes every
  inter-process hop (client → server → Redis → PostgreSQL and back) wait for a core; a
  profile of the API lookup under that load spent most of its time in socket `send` and
  `epoll` waits, not in Python code.
- The trajectory of a busy cylinder touches every monthly partition of `events`
  (native partitioning: ~40 partitions for 3 years back and 3 months ahead), one index
  probe each; an ad-hoc plan of that query costs ~30 ms of planning alone, which the
  prepared statements here (and asyncpg's statement cache in the API) avoid. A lower time
  bound on the trajectory (e.g. the cylinder's registration time) would let PostgreSQL
  prune partitions.
- **Under load the targets are missed.** The same command on 2026-11-23 at 23:45 UTC, at
  load average 9.5 on the 2 cores, gave: lookup raw SQL p50 0.13 / p99 8.25 ms, API p50
  5.88 / p99 96.9 ms; trajectory raw SQL p99 15.5 ms, API p99 186 ms — all but the raw
  trajectory missed. The code's cost (CPU per request, above) does not change with load;
  the waiting for a core does."""


def section(
    args: argparse.Namespace,
    machine: str,
    after: str,
    started: dt.datetime,
    count: int,
    lookups: int,
    measured: list[tuple[str, list[float], float]],
    api_cpu_ms: float,
) -> str:
    lines = [
        "## Cylinder lookup and trajectory",
        "",
        f"Command: `python bench/lookup.py --database-url {redacted(args.database_url)}"
        f" --lookups {args.lookups} --trajectories {args.trajectories}`"
        f" ({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine.removeprefix('machine: ')}; after the run: {after}.",
        "",
        f"City: {count:,} cylinders; {lookups:,} random tags (fixed seed), sequential "
        f"requests after {args.warmup} warm-up lookups; trajectories of the 40 busiest "
        "cylinders in turn.",
        "",
        "Targets (docs/ARCHITECTURE.md §10): lookup by tag p99 ≤ 5 ms at 1M cylinders; trajectory of a "
        "cylinder ≤ 20 ms (judged at p99).",
        "",
        "| what | n | p50 ms | p99 ms | max ms | target |",
        "|---|---|---|---|---|---|",
    ]
    missed = []
    for name, samples, target in measured:
        ms = [s * 1e3 for s in samples]
        p99 = percentile(ms, 99)
        ok = p99 <= target
        if not ok:
            missed.append(f"{name}: p99 {p99:.2f} ms (target {target:g} ms)")
        lines.append(
            f"| {name} | {len(ms):,} | {percentile(ms, 50):.2f} | {p99:.2f} | {max(ms):.2f} | "
            f"{'met' if ok else 'MISSED'} (p99 ≤ {target:g} ms) |"
        )
    lines.append("")
    if api_cpu_ms == api_cpu_ms:  # not NaN: the API was measured
        lines.append(
            f"CPU time of the benchmark process per API lookup (aiohttp client and server, "
            f"Redis and asyncpg clients together): {api_cpu_ms:.2f} ms — what the code costs "
            "whatever the load."
        )
        lines.append("")
    if missed:
        lines.append("**Missed on this run:** " + "; ".join(missed) + ".")
        lines.append("")
    lines.append(NOTES)
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=DEFAULT_DSN, help=f"default {DEFAULT_DSN}")
    p.add_argument("--cylinders", type=int, default=CITY_CYLINDERS, help="city size to seed")
    p.add_argument("--lookups", type=int, default=5000, help="random tags looked up")
    p.add_argument("--trajectories", type=int, default=500, help="trajectory queries")
    p.add_argument("--warmup", type=int, default=500, help="warm-up lookups (not measured)")
    p.add_argument("--random-seed", type=int, default=20261123)
    p.add_argument("--no-api", action="store_true", help="raw SQL only")
    p.add_argument(
        "--record",
        nargs="?",
        const=str(BENCHMARKS_MD),
        default=None,
        help="write the section into docs/BENCHMARKS.md (or PATH)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    run(main(parse()))
