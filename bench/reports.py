"""Reports benchmark (DESIGN §10: every report answers its page's data in ≤ 1 s p95 at 1M
cylinders with 12 months of history, for a city-wide regulator, without a full scan per
request; large exports stream with flat memory). Recorded in docs/BENCHMARKS.md "Reports".

What runs: a real server process (``server.app.create_app``, no pages, no ingest, the rollup
round off so that no refresh competes with the timings) on a loopback port, and this process
as its HTTP client. For every report of the catalogue (``GET /api/v1/reports``) and two
callers — a city-wide regulator and the admin of the company holding most cylinders —
``--runs`` requests of the page's data (the report's defaults: the last
``[reports] default_range_days``, by day) and, for a report with a period, of a year by month;
p50 / p95 / max per report. Then the largest drill-down export — every fill of the history
behind ``fill-volume`` as CSV, and a month of them as XLSX — with the server's resident
memory sampled every 20 ms (baseline, peak, at 10 / 50 / 100 % of the bytes).

The history: ``server.seed.seed_city(history_months=…)`` when the seed has it (``cylwatch
seed --history-months``); until then ``--history synthetic`` writes a plain one here (each
cylinder filled once a month at a station of its owner, ~1 % aborted, a few per mille over-
and underfilled, refusals at ~2 % of fills concentrated in a few stations, business alerts and
overstock days) and says so in the record. The rollups are then refreshed once and the
refresh is timed: the cost every ``[reports] rollup_refresh_s`` pays.

    python bench/reports.py [--database-url URL] [--cylinders N] [--months M]
                            [--history auto|seed|synthetic] [--runs R] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import inspect
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCHMARKS_MD,
    bench_settings,
    load_line,
    machine_line,
    percentile,
    record_section,
    redacted,
    run,
)
from server.db.pool import connect

MARK = "cylwatch-bench:reports"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench_reports"
TARGET_P95_S = 1.0
"""DESIGN §10: a report's page data in ≤ 1 s at the 95th percentile."""
XLSX_ROWS_MAX = 1_048_575
"""An XLSX sheet holds 1,048,576 rows with its header: the XLSX export is measured on a
period that fits."""
USERS = {"regulator": "bench_regulator", "company_admin": "bench_company_admin"}
RETRIES = 5
"""Times a request cut by a restart of the shared PostgreSQL is run again."""
SLOW_S = 10.0
"""A report whose warm-up takes longer is timed twice, not --runs times: ten times the
target says what there is to say, and a year of one at 40 s a run would hold the bench for
an hour."""


# ---------------------------------------------------------------- the city and its history


def seed_has_history() -> bool:
    try:
        from server.seed import seed_city
    except ImportError:  # a seed being rewritten in this tree: no history from it now
        return False
    return "history_months" in inspect.signature(seed_city).parameters


async def prepare(
    settings: Any, cylinders: int, months: int, history: str, refresh_rollups: bool = True
) -> dict[str, Any]:
    from server.db.migrate import migrate

    dsn = settings.services.database_url
    await migrate(settings, dsn)
    conn = await connect(settings, dsn)
    try:
        have = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
        with_seed = history in ("seed", "auto") and seed_has_history()
        if history == "seed" and not with_seed:
            raise SystemExit(
                "this bench needs `cylwatch seed --history-months` (server.seed.seed_city"
                " with history_months), which is not in this tree yet; run with"
                " --history synthetic meanwhile"
            )
        source = "seed" if with_seed else "synthetic"
        seed_s = None
        if have == 0:
            from server.seed import seed_city

            kwargs: dict[str, Any] = {"cylinders": cylinders, "progress": True}
            if with_seed:
                kwargs["history_months"] = months
            print(f"seeding {cylinders:,} cylinders into {redacted(dsn)} ({source} history)")
            started = time.perf_counter()
            await seed_city(conn, settings, **kwargs)
            seed_s = time.perf_counter() - started
            print(f"seeded in {seed_s:.0f} s")
        fills = int(await conn.fetchval("SELECT count(*) FROM fills"))
        if fills < cylinders * months // 2:
            if history == "seed":
                raise SystemExit(
                    f"{redacted(dsn)} holds {fills:,} fills only: drop it to seed a history"
                )
            source = "synthetic"
            started = time.perf_counter()
            await synthetic_history(conn, months)
            print(f"synthetic history written in {time.perf_counter() - started:.0f} s")
        else:
            source = await conn.fetchval(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM fills WHERE msg_id LIKE 'bench-rep-%')"
                " THEN 'synthetic' ELSE 'seed' END"
            )
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM cylinders) AS cylinders,
                      (SELECT count(*) FROM fills) AS fills,
                      (SELECT min(ts) FROM fills) AS since,
                      (SELECT count(*) FROM events WHERE kind = 'fill_refused') AS refusals,
                      (SELECT count(*) FROM alerts) AS alerts,
                      (SELECT count(*) FROM sites WHERE kind = 'filling_station') AS stations,
                      (SELECT count(*) FROM companies) AS companies"""
        )
        from server.db.rollup_refresh import refresh

        refresh_s = round_s = float("nan")  # --no-refresh: the rollups as an earlier run left them
        if refresh_rollups:
            started = time.perf_counter()
            await refresh(conn, settings, wait=True, full=True)
            refresh_s = time.perf_counter() - started
            # a round of the schedule: the recent week of fills, refusals, alerts, overstock
            started = time.perf_counter()
            await refresh(conn, settings, wait=True)
            round_s = time.perf_counter() - started
            await conn.execute("ANALYZE")
        sizes = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM rollup_fills_day) AS fill_rows,
                      (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)
                         FROM pg_inherits WHERE inhparent = 'fills'::regclass)
                      + pg_total_relation_size('fills') AS fills_bytes"""
        )
        print(
            f"rollups refreshed in {refresh_s:.1f} s ({sizes['fill_rows']:,} fill-day rows),"
            f" a round in {round_s:.1f} s"
        )
        return {
            **dict(counts),
            **dict(sizes),
            "refresh_s": refresh_s,
            "round_s": round_s,
            "seed_s": seed_s,
            "source": source,
        }
    finally:
        await conn.close()


async def synthetic_history(conn: Any, months: int) -> None:
    """Fills, refusals and alerts over *months* (see the module docstring), written by SQL."""
    print(f"writing a synthetic {months}-month history (fills, refusals, alerts)")
    ids = await conn.fetchrow("SELECT min(id) AS lo, max(id) AS hi FROM cylinders")
    step = 100_000
    for lo in range(ids["lo"], ids["hi"] + 1, step):
        await conn.execute(
            """
            WITH st AS (
                SELECT company_id, array_agg(id ORDER BY id) AS ids,
                       array_agg(district_code ORDER BY id) AS districts
                  FROM sites WHERE kind = 'filling_station' GROUP BY company_id
            )
            INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code,
                               cylinder_id, tag, spec, net_kg, result, assessment)
            SELECT now() - make_interval(days => 30 * g.m)
                         - make_interval(secs => (c.id * 7919 + g.m * 104729) % (30 * 86400)),
                   'bench-rep-' || c.id || '-' || g.m, 'GUN-BENCH',
                   st.ids[1 + (c.id % cardinality(st.ids))], c.owner_company_id,
                   st.districts[1 + (c.id % cardinality(st.ids))], c.id, c.tag, c.spec,
                   CASE WHEN h.v % 1000 < 3 THEN 15.3 WHEN h.v % 100 < 2 THEN 13.8 ELSE 14.6 END,
                   CASE WHEN h.v % 100 = 99 THEN 'aborted' ELSE 'completed' END,
                   CASE WHEN h.v % 1000 < 3 THEN 'overfill' WHEN h.v % 100 < 2 THEN 'underfill'
                        ELSE 'ok' END
              FROM cylinders c
              JOIN st ON st.company_id = c.owner_company_id
             CROSS JOIN generate_series(0, $3::int - 1) AS g(m)
             CROSS JOIN LATERAL (SELECT (c.id * 31 + g.m * 17) AS v) h
             WHERE c.id >= $1 AND c.id < $2
            ON CONFLICT DO NOTHING
            """,
            lo,
            lo + step,
            months,
        )
        print(f"  fills for cylinders {lo:,}..{min(lo + step, ids['hi']):,}", flush=True)
    # refusals: ~2 % of fills, most at one station in eight (the few a regulator hunts)
    await conn.execute(
        """
        INSERT INTO events (ts, msg_id, tag, kind, site_id, company_id, district_code, details)
        SELECT f.ts - interval '3 minutes', 'bench-rep-deny-' || f.msg_id, f.tag, 'fill_refused',
               f.station_id, f.company_id, f.district_code,
               jsonb_build_object('reasons', jsonb_build_array(
                   (ARRAY['not_owner', 'overdue_inspection', 'scrapped', 'unknown_tag'])
                   [1 + (f.cylinder_id % 4)]))
          FROM fills f
         WHERE f.msg_id LIKE 'bench-rep-%'
           AND (f.cylinder_id % 50 = 0 OR (f.station_id % 8 = 0 AND f.cylinder_id % 10 = 0))
        ON CONFLICT DO NOTHING
        """
    )
    # business alerts: one per ~200 cylinder-months, a kind each; resolved after a while
    await conn.execute(
        """
        INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                            district_code, state, count, first_at, last_at, details)
        SELECT (ARRAY['repeat_fill', 'out_of_region', 'circulation_violation', 'foreign_cylinder',
                      'suspected_illegal_fill', 'cloned_tag'])[1 + (f.cylinder_id % 6)],
               'warning', 'cylinder', f.tag || '-' || f.msg_id, f.company_id, f.station_id,
               f.district_code, 'resolved', 1 + f.cylinder_id % 3, f.ts, f.ts + interval '1 hour',
               '{}'::jsonb
          FROM fills f
         WHERE f.msg_id LIKE 'bench-rep-%' AND f.cylinder_id % 200 = 7
        """
    )
    # overstock: a station in ten is over its permit two days a month
    await conn.execute(
        """
        INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                            district_code, state, count, first_at, last_at, details)
        SELECT 'overstock', 'critical', 'site', s.code || '-' || g.m, s.company_id, s.id,
               s.district_code, 'resolved', 4,
               now() - make_interval(days => 30 * g.m + 2), now() - make_interval(days => 30 * g.m),
               jsonb_build_object('full', 1000 + 10 * g.m + s.id % 50, 'permitted', 1000)
          FROM sites s CROSS JOIN generate_series(0, $1::int - 1) AS g(m)
         WHERE s.kind = 'filling_station' AND s.id % 10 = 3
        """,
        months,
    )
    await conn.execute("ANALYZE fills; ANALYZE events; ANALYZE alerts")


async def ensure_users(conn: Any, settings: Any) -> tuple[dict[str, str], str]:
    """A city-wide regulator and the admin of the company holding most cylinders, with a
    fresh password each run; returns the password and that company's code."""
    from server.kernel.passwords import hash_password

    password = secrets.token_urlsafe(16)
    pw_hash = hash_password(settings.auth, password)
    company = await conn.fetchrow(
        """SELECT o.id, o.code FROM companies o JOIN cylinders c ON c.owner_company_id = o.id
            GROUP BY o.id ORDER BY count(*) DESC LIMIT 1"""
    )
    for role, name in USERS.items():
        await conn.execute(
            """INSERT INTO users (username, password_hash, role, company_id, districts)
               VALUES ($1, $2, $3, $4, '{}')
               ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                   role = EXCLUDED.role, company_id = EXCLUDED.company_id, active = true""",
            name,
            pw_hash,
            role,
            company["id"] if role == "company_admin" else None,
        )
    return dict.fromkeys(USERS.values(), password), company["code"]


# ---------------------------------------------------------------- the server


SERVE = """
import sys
from aiohttp import web
from bench.common import bench_settings
from server.app import create_app
web.run_app(create_app(bench_settings(sys.argv[1]), with_pages=False), host="127.0.0.1",
            port=int(sys.argv[2]), print=None, access_log=None)
"""


def free_port() -> int:
    """A loopback port nothing listens on (a fixed one collided with a server left over by
    an interrupted run)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(dsn: str, port: int) -> Any:
    env = {
        **os.environ,
        "CYL_REPORTS__ROLLUP_REFRESH_S": "0",
        "CYL_AUTH__SECURE_COOKIES": "false",
    }
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, dsn, str(port)], cwd=root, env=env, stdout=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_up(base: str, proc: Any) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"the server exited ({proc.returncode})")
            if await healthy(s, base):
                return
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not come up")


async def healthy(s: aiohttp.ClientSession, base: str) -> bool:
    """Whether the server reaches its database right now (/healthz answers 200)."""
    with contextlib.suppress(aiohttp.ClientError):
        async with s.get(base + "/healthz") as r:
            return r.status == 200
    return False


async def wait_database(s: aiohttp.ClientSession, base: str) -> None:
    """Wait until the server answers /healthz again (another session's test restarts the
    shared PostgreSQL now and then: a request it cut is run again, not counted)."""
    for _ in range(600):
        if await healthy(s, base):
            return
        await asyncio.sleep(0.5)
    raise SystemExit("PostgreSQL did not come back")


async def login(s: aiohttp.ClientSession, base: str, user: str, password: str) -> dict[str, str]:
    async with s.post(
        base + "/api/v1/auth/login", json={"username": user, "password": password}
    ) as r:
        if r.status != 200:
            raise SystemExit(f"login {user}: {r.status} {await r.text()}")
        token = (await r.json())["token"]
    s.cookie_jar.clear()
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- timing reports


@dataclass
class Timing:
    report: str
    role: str
    variant: str
    status: int
    samples: list[float] = field(default_factory=list)
    rows: int = 0

    def p(self, q: float) -> float:
        return percentile(self.samples, q)


async def time_reports(
    s: aiohttp.ClientSession,
    base: str,
    heads: dict[str, dict[str, str]],
    runs: int,
    only: set[str],
) -> list[Timing]:
    async with s.get(base + "/api/v1/reports", headers=heads["regulator"]) as r:
        catalogue = (await r.json())["items"]
    today = dt.date.today()
    year = f"from={(today - dt.timedelta(days=364)).isoformat()}&to={today.isoformat()}"
    out: list[Timing] = []
    for item in catalogue:
        if only and item["name"] not in only:
            continue
        variants = [("page", item["path"])]
        if "period" in item.get("filters", []):
            group = "&group=month" if "group" in item["filters"] else ""
            variants.append(("year", f"{item['path']}?{year}{group}"))
        for role, h in heads.items():
            for variant, url in variants:
                t = Timing(item["name"], role, variant, 0)
                for i in range(runs + 1):
                    for _ in range(RETRIES):
                        started = time.perf_counter()
                        async with s.get(base + url, headers=h) as r:
                            body = await r.read()
                            t.status = r.status
                        took = time.perf_counter() - started
                        if t.status != 503 or await healthy(s, base):
                            break  # a 503 with the database up is the report's own (a timeout)
                        await wait_database(s, base)  # the machine's PostgreSQL restarted
                    if i:  # the first is a warm-up
                        t.samples.append(took)
                    if t.status != 200 or (took > SLOW_S and i >= 1):
                        break
                if t.status == 200:
                    import orjson

                    js = orjson.loads(body)
                    t.rows = len(js.get("rows") or js.get("items") or [])
                out.append(t)
                if t.samples:
                    print(
                        f"  {item['name']:24} {role:14} {variant:5} p50 {t.p(50) * 1000:7.0f} ms"
                        f"  p95 {t.p(95) * 1000:7.0f} ms  rows {t.rows}",
                        flush=True,
                    )
                else:
                    print(f"  {item['name']:24} {role:14} {variant:5} status {t.status}")
    return out


# ---------------------------------------------------------------- the largest drill export


@dataclass
class Export:
    fmt: str
    period: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    baseline: int = 0
    peak: int = 0
    marks: list[int] = field(default_factory=list)


async def drill_export(
    s: aiohttp.ClientSession,
    base: str,
    h: dict[str, str],
    pid: int,
    fmt: str,
    query: str,
    expected_rows: int,
) -> Export:
    """Stream one drill-down export to nowhere while sampling the server's resident memory."""
    proc = psutil.Process(pid)
    out = Export(fmt, query)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            out.peak = max(out.peak, proc.memory_info().rss)

    out.baseline = out.peak = proc.memory_info().rss
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    url = f"{base}/api/v1/reports/fill-volume/drill?{query}&measure=fills&format={fmt}"
    started = time.perf_counter()
    async with s.get(url, headers=h, timeout=aiohttp.ClientTimeout(total=None)) as r:
        if r.status != 200:
            raise SystemExit(f"drill export {fmt}: {r.status} {await r.text()}")
        async for chunk in r.content.iter_chunked(1 << 16):
            out.bytes += len(chunk)
            if fmt != "csv":
                continue
            out.rows += chunk.count(b"\n")
            # the server's memory at 10 % and 50 % of the rows: "flat" in numbers
            while len(out.marks) < 2 and out.rows >= expected_rows * (0.1, 0.5)[len(out.marks)]:
                out.marks.append(proc.memory_info().rss)
    out.seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    out.peak = max(out.peak, proc.memory_info().rss)
    out.marks.append(proc.memory_info().rss)
    out.rows = out.rows - 1 if fmt == "csv" else expected_rows  # CSV: less its header
    return out


async def count_fills(s: aiohttp.ClientSession, base: str, h: dict[str, str], query: str) -> int:
    """The fills a drill-down of *query* holds, as the report counts them."""
    async with s.get(f"{base}/api/v1/reports/fill-volume?{query}", headers=h) as r:
        return int((await r.json())["totals"]["fills"])


# ---------------------------------------------------------------- the record


def mib(n: int) -> str:
    return f"{n / 2**20:.0f}"


def section(
    args: argparse.Namespace,
    city: dict[str, Any],
    timings: list[Timing],
    exports: list[Export],
    machine: str,
    load_end: str,
    started: dt.datetime,
) -> str:
    cmd = (
        f"python bench/reports.py --cylinders {args.cylinders} --months {args.months}"
        f" --history {args.history} --runs {args.runs}"
        + (f" --export-days {args.export_days}" if args.export_days else "")
        + (f" --only {args.only}" if args.only else "")
        + (" --no-refresh" if args.no_refresh else "")
        + (" --no-export" if args.no_export else "")
    )
    lines = [
        "## Reports",
        "",
        f"Command: `{cmd}` ({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"{machine}; after the run: {load_end}.",
        "",
        f"City: {city['cylinders']:,} cylinders, {city['companies']} companies, "
        f"{city['stations']} filling stations; history ({city['source']}): {city['fills']:,} "
        f"fills since {city['since']:%Y-%m-%d} ({mib(city['fills_bytes'])} MiB with indexes), "
        f"{city['refusals']:,} refused attempts, {city['alerts']:,} alerts"
        + (
            f", seeded by this run in **{city['seed_s'] / 60:.1f} min** (target ≤ 10 min). "
            if city["seed_s"] is not None
            else " (seeded by an earlier run). "
        )
        + (
            "Rollups: as an earlier refresh left them (`--no-refresh`: not refreshed or timed "
            "by this run)."
            if args.no_refresh
            else f"Rollups: a full refresh of all four (`cylwatch reports refresh`, and the "
            f"history of fills once a day) took **{city['refresh_s']:.1f} s** "
            f"({city['fill_rows']:,} fill-day rows); a round of the schedule (the last week of "
            f"fills and refusals, all alerts and overstock days), the cost each "
            f"`[reports] rollup_refresh_s` pays in one process, **{city['round_s']:.1f} s**."
        ),
        "",
        f"Each report: {args.runs} timed requests after one warm-up (2 when one takes over "
        f"{SLOW_S:.0f} s), one at a time, through HTTP "
        "to a server process on the same machine (rollup round off during the timings); "
        "`page` = the report's defaults (what its page loads first), `year` = the last 365 days "
        "by month. Target (DESIGN §10): p95 ≤ 1 s.",
        "",
        "| report | caller | data | runs | p50 ms | p95 ms | max ms | rows | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    missed = []
    for t in timings:
        if not t.samples:
            lines.append(
                f"| {t.report} | {t.role} | {t.variant} | - | - | - | - | - | {t.status} |"
            )
            continue
        ok = t.p(95) <= TARGET_P95_S
        if not ok:
            missed.append(t)
        lines.append(
            f"| {t.report} | {t.role} | {t.variant} | {len(t.samples)} | {t.p(50) * 1000:.0f} | "
            f"{t.p(95) * 1000:.0f} | {max(t.samples) * 1000:.0f} | {t.rows} | "
            f"{'met' if ok else '**MISSED**'} |"
        )
    lines += [
        "",
        "Largest drill-down export (`fill-volume` → its fills, city-wide regulator), the "
        "server process's resident memory sampled every 20 ms:",
        "",
        "| format | period | rows | MiB | s | rows/s | server RSS MiB baseline / peak / growth "
        "| at 10 / 50 / 100 % of rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in exports:
        rate = f"{e.rows / e.seconds:,.0f}" if e.rows and e.seconds else "-"
        lines.append(
            f"| {e.fmt} | {e.period} | {e.rows:,} | {mib(e.bytes)} | {e.seconds:.1f} | {rate} | "
            f"{mib(e.baseline)} / {mib(e.peak)} / {mib(e.peak - e.baseline)} | "
            f"{' / '.join(mib(m) for m in e.marks) if len(e.marks) == 3 else '-'} |"
        )
    lines += ["", "**Where this stands against DESIGN §10:**"]
    if missed:
        names = ", ".join(sorted({f"{t.report} ({t.role}, {t.variant})" for t in missed}))
        lines.append(f"- p95 above 1 s: {names}.")
    else:
        lines.append("- every report's p95 within 1 s for both callers, page and year.")
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> int:
    started = dt.datetime.now(dt.UTC)
    settings = bench_settings(args.database_url)
    city = await prepare(
        settings, args.cylinders, args.months, args.history, refresh_rollups=not args.no_refresh
    )
    conn = await connect(settings)
    try:
        machine = await machine_line(conn)
        passwords, company = await ensure_users(conn, settings)
    finally:
        await conn.close()
    print(machine)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    with server(args.database_url, port) as proc:
        await wait_up(base, proc)
        async with aiohttp.ClientSession() as s:
            heads = {
                role: await login(s, base, name, passwords[name]) for role, name in USERS.items()
            }
            print(f"timing every report ({args.runs} runs; company admin of {company})")
            only = {n for n in (args.only or "").split(",") if n}
            timings = await time_reports(s, base, heads, args.runs, only)
            exports = []
            if not args.no_export:
                since = (
                    (dt.date.today() - dt.timedelta(days=args.export_days - 1)).isoformat()
                    if args.export_days
                    else city["since"].date().isoformat()
                )
                fills_per_day = city["fills"] / max(1, args.months * 30)
                days = max(1, min(30, int(XLSX_ROWS_MAX / max(fills_per_day, 1)) - 1))
                first = (dt.date.today() - dt.timedelta(days=days - 1)).isoformat()
                for fmt, query in (("csv", f"from={since}"), ("xlsx", f"from={first}")):
                    for attempt in range(RETRIES):
                        try:
                            rows = await count_fills(s, base, heads["regulator"], query)
                            exports.append(
                                await drill_export(
                                    s, base, heads["regulator"], proc.pid, fmt, query, rows
                                )
                            )
                            break
                        except (aiohttp.ClientError, KeyError, SystemExit) as exc:
                            print(f"  export {fmt} cut ({exc!r}); again (attempt {attempt + 2})")
                            await wait_database(s, base)
                for e in exports:
                    print(
                        f"  export {e.fmt} {e.period}: {e.rows:,} rows {mib(e.bytes)} MiB in"
                        f" {e.seconds:.1f} s; server RSS {mib(e.baseline)} → {mib(e.peak)} MiB"
                    )
    text = section(args, city, timings, exports, machine, load_line(), started)
    print(text)
    if args.record:
        record_section(MARK, text, Path(args.record))
        print(f"recorded in {args.record}")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_DSN, help=f"default {DEFAULT_DSN}")
    p.add_argument("--cylinders", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--history", choices=("auto", "seed", "synthetic"), default="auto")
    p.add_argument("--runs", type=int, default=20, help="timed requests per report and caller")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--only", help="comma-separated report names (default: every report)")
    p.add_argument("--no-export", action="store_true", help="skip the drill-down exports")
    p.add_argument(
        "--no-refresh",
        action="store_true",
        help="time the rollups as an earlier run refreshed them (no full refresh first)",
    )
    p.add_argument(
        "--export-days",
        type=int,
        default=0,
        help="CSV drill export over the last N days (default: the whole history)",
    )
    p.add_argument(
        "--record",
        nargs="?",
        const=str(BENCHMARKS_MD),
        help="write the section into docs/BENCHMARKS.md (or the given file)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    run(main(parse()))
