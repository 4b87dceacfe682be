"""Shared helpers of the benchmarks (docs/ARCHITECTURE.md §10, recorded in docs/BENCHMARKS.md).

Why these exist: every benchmark must run against the same kind of city (1,000,000
cylinders, seeded by `server.seed.seed_city`, in a database of its own so that a run never
touches real or test data), print the machine it ran on, and measure time and memory the
same way, so that figures from different benchmarks can sit side by side in one document.

- `prepare_city` migrates the bench database and seeds it once (a later run reuses it);
- `ensure_trajectories` adds a deterministic set of extra trajectory events (some
  cylinders with hundreds), because the seed gives each cylinder only a short history;
- `machine_line` is the one-line description of CPU, RAM and PostgreSQL;
- `RssSampler` samples this process's resident memory in a thread (peak and growth);
- `percentile`, `summary_ms` turn latency samples into the figures the docs quote;
- `build_app` / `bench_client` run the real aiohttp app in-process with a bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from server.kernel.settings import Settings, load_settings

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench"
CITY_CYLINDERS = 1_000_000
"""docs/ARCHITECTURE.md §10 states the lookup and export targets at 1M cylinders."""

TRAJECTORY_PREFIX = "bench-traj-"
TRAJECTORY_CYLINDERS = 4_000
"""Cylinders that get extra history (every 250th by id, deterministic)."""
BUSY_CYLINDERS = 40
"""Of those, the first ones by id get BUSY_EVENTS events each: the trajectory worst case."""
BUSY_EVENTS = 250
OTHER_EVENTS = 48
"""Events for each of the other sample cylinders: 40 × 250 + 3,960 × 48 ≈ 200k events."""


def bench_settings(dsn: str) -> Settings:
    """The platform's settings with the bench database (and nothing else) overridden."""
    return load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})


def redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@")
    return dsn


async def prepare_city(settings: Settings, cylinders: int = CITY_CYLINDERS) -> int:
    """Migrate the bench database and seed a city of *cylinders* if it holds none.

    A database that already holds cylinders is used as it is (seeding takes minutes); one
    holding fewer than asked is reported, not topped up, since the seed is all-or-nothing.
    """
    from server.db.migrate import migrate
    from server.db.pool import connect

    dsn = settings.services.database_url
    await migrate(settings, dsn)
    conn = await connect(settings, dsn)
    try:
        count = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
        if count == 0:
            from server.seed import seed_city

            print(f"seeding {cylinders:,} cylinders into {redacted(dsn)} (once; takes minutes)")
            started = time.perf_counter()
            await seed_city(conn, settings, cylinders=cylinders, progress=True)
            count = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
            print(f"seeded {count:,} cylinders in {time.perf_counter() - started:.0f} s")
        elif count < cylinders:
            print(
                f"warning: {redacted(dsn)} holds {count:,} cylinders, fewer than {cylinders:,};"
                " drop the database to reseed"
            )
    finally:
        await conn.close()
    return count


async def ensure_trajectories(conn: asyncpg.Connection) -> list[int]:
    """Add ~200k trajectory events over TRAJECTORY_CYLINDERS cylinders (once); return the
    ids of the busy cylinders (BUSY_EVENTS events each, on top of their seeded history)."""
    sample = await conn.fetch(
        "SELECT id FROM cylinders WHERE id % 250 = 7 ORDER BY id LIMIT $1", TRAJECTORY_CYLINDERS
    )
    ids = [r["id"] for r in sample]
    busy = ids[:BUSY_CYLINDERS]
    if not busy:
        raise RuntimeError("the bench database has no cylinders")
    have = await conn.fetchval(
        "SELECT count(*) FROM events WHERE cylinder_id = $1 AND msg_id LIKE $2",
        busy[-1],
        TRAJECTORY_PREFIX + "%",
    )
    if have >= BUSY_EVENTS:
        return busy
    print(f"adding trajectory events for {len(ids):,} cylinders (once)")
    started = time.perf_counter()
    # events spread back over ~2 years (partitions exist for 3), one every ~2.5 days
    await conn.execute(
        """
        INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
                            site_id, company_id, district_code, details)
        SELECT now() - (g.n * interval '62 hours') - (c.id % 3600) * interval '1 second',
               $1 || c.id || '-' || g.n, c.id, c.tag,
               (ARRAY['fill', 'dispatch', 'deliver', 'return'])[1 + g.n % 4],
               (ARRAY['urn:cylwatch:bizstep:filling', 'shipping', 'retail_selling',
                      'receiving'])[1 + g.n % 4],
               (ARRAY['active', 'in_transit', 'retail_sold', 'returned'])[1 + g.n % 4],
               c.location_site_id, c.owner_company_id, c.district_code, '{}'::jsonb
          FROM cylinders c
         CROSS JOIN LATERAL generate_series(
               1, CASE WHEN c.id = ANY($3::bigint[]) THEN $4::int ELSE $5::int END) AS g(n)
         WHERE c.id = ANY($2::bigint[])
        ON CONFLICT DO NOTHING
        """,
        TRAJECTORY_PREFIX,
        ids,
        busy,
        BUSY_EVENTS,
        OTHER_EVENTS,
    )
    await conn.execute("ANALYZE events")
    print(f"trajectory events added in {time.perf_counter() - started:.0f} s")
    return busy


# ---------------------------------------------------------------- machine and measures


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


async def machine_line(conn: asyncpg.Connection) -> str:
    """CPU model, cores, RAM, Python and PostgreSQL versions, in one line."""
    pg = await conn.fetchval("SHOW server_version")
    buffers = await conn.fetchval("SHOW shared_buffers")
    ram = psutil.virtual_memory().total / 2**30
    return (
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, "
        f"Python {platform.python_version()}, PostgreSQL {pg} (shared_buffers {buffers}), "
        f"{platform.system()} {platform.release()}; {load_line()}"
    )


def load_line() -> str:
    """Load average: the development machine is shared, and a 2-core box at load 6 gives
    every latency figure a different meaning than an idle one."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f}"


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted samples."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(samples_s: Sequence[float]) -> str:
    ms = [s * 1000 for s in samples_s]
    return (
        f"n={len(ms)} p50={percentile(ms, 50):.2f} ms p99={percentile(ms, 99):.2f} ms "
        f"max={max(ms):.2f} ms"
    )


@dataclass
class RssSampler:
    """Resident memory of this process, sampled every *interval* seconds in a thread.

    `baseline` is taken on entry; `peak` is the highest sample; `marks` are labelled
    samples a benchmark takes along the way (e.g. at 10% and 100% of an export) to show
    whether memory grows with the row count.
    """

    interval: float = 0.02
    baseline: int = 0
    peak: int = 0
    marks: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _proc: psutil.Process = field(default_factory=psutil.Process)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def mark(self, label: str) -> None:
        rss = self._proc.memory_info().rss
        self.peak = max(self.peak, rss)
        self.marks.append((label, rss))

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    def report(self) -> str:
        mib = 2**20
        marks = ", ".join(f"{label} {rss / mib:.0f}" for label, rss in self.marks)
        return (
            f"RSS baseline {self.baseline / mib:.0f} MiB, peak {self.peak / mib:.0f} MiB, "
            f"growth {(self.peak - self.baseline) / mib:.0f} MiB"
            + (f" (MiB at {marks})" if marks else "")
        )


# ---------------------------------------------------------------- the app in-process


def build_app(settings: Settings) -> Any:
    """The real application (all routes and middlewares), without pages or ingest."""
    from server.app import create_app

    return create_app(settings, with_pages=False)


BENCH_USER = "bench_admin"


async def ensure_bench_user(conn: asyncpg.Connection, settings: Settings) -> str:
    """An admin login of the benchmarks (a fresh password each run); returns the password."""
    from server.kernel.passwords import hash_password

    password = secrets.token_urlsafe(16)
    await conn.execute(
        """INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'admin')
           ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                                               active = true""",
        BENCH_USER,
        hash_password(settings.auth, password),
    )
    return password


@contextlib.asynccontextmanager
async def bench_client(settings: Settings) -> AsyncIterator[tuple[Any, dict[str, str]]]:
    """An aiohttp test client on a real loopback socket, and bearer headers of an admin."""
    from aiohttp.test_utils import TestClient, TestServer

    from server.db.pool import connect

    conn = await connect(settings)
    try:
        password = await ensure_bench_user(conn, settings)
    finally:
        await conn.close()
    client = TestClient(TestServer(build_app(settings)))
    await client.start_server()
    try:
        resp = await client.post(
            "/api/v1/auth/login", json={"username": BENCH_USER, "password": password}
        )
        if resp.status != 200:
            raise RuntimeError(f"bench login failed: {resp.status} {await resp.text()}")
        token = (await resp.json())["token"]
        client.session.cookie_jar.clear()
        yield client, {"Authorization": f"Bearer {token}"}
    finally:
        await client.close()


ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"


async def load_sim_city(
    dsn: str, seed: int, *, legal_cap: int, illegal_cap: int, customers_cap: int
) -> Any:
    """The simulator's view of the city in *dsn* (``device_sim.world.load_city`` on the city's
    day): the one loader of the ingest, fill-auth and end-to-end benches, each with its caps."""
    from device_sim.runner import city_today
    from device_sim.world import load_city
    from server.kernel.settings import load_settings

    settings = load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})
    conn = await asyncpg.connect(dsn)
    try:
        return await load_city(
            conn,
            today=city_today(settings),
            legal_cap=legal_cap,
            illegal_cap=illegal_cap,
            customers_cap=customers_cap,
            seed=seed,
        )
    finally:
        await conn.close()


def record_section(mark: str, section: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace a benchmark's section of docs/BENCHMARKS.md between its markers, or append
    it: the same convention as bench/ingest.py, so that each benchmark owns its section
    and a re-run never disturbs another's."""
    start, end = f"<!-- {mark} -->", f"<!-- /{mark} -->"
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + block + tail.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def run(main: Any) -> None:
    """Run a benchmark's async main under uvloop, like the server does."""
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:  # pragma: no cover
        asyncio.run(main)
