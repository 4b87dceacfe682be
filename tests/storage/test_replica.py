"""Reads from a real streaming replica (docs/DEPLOY.md "Read replica", server/db/replica.py).

The shared test server must not be reconfigured or restarted, so this builds a pair of its
own from the machine's PostgreSQL binaries: a primary with ``wal_level=replica`` on a spare
port, and a hot standby made from it with ``pg_basebackup -R`` on another. A small city is
migrated and written on the primary; a server whose ``[services] database_replica_url`` is
the standby answers reports from it, and a server without one answers the same reports from
the primary alone, for comparison. Then the standby's replay is paused (it falls behind),
resumed, and finally the standby is stopped dead: every report still answers, from the
primary, and ``/metrics`` says where reads go and how often they fell back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from server.app import create_app
from server.db.migrate import migrate
from server.db.pool import create_pool
from server.db.replica import READS, ReadRouter
from tests.conftest import build_world, login
from tests.tools import missing

pytestmark = pytest.mark.slow

PG_BIN = Path("/usr/lib/postgresql/15/bin")  # the machine's PostgreSQL 15 (Debian layout)
SERVER_USER = "postgres"  # initdb refuses to run as root; the packaged server's account
MAX_LAG_S = 1.5
"""The bound under test: long enough that a report read just after replay is paused still
comes from the (behind) replica, short enough to keep the test quick."""
CHECK_S = 0.2
"""The check interval under test: detection within the bound plus this."""
WAIT_S = 15.0
"""Longest any state change may take before the test calls it broken."""


def _spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Node:
    """One PostgreSQL server of the pair: its data directory and port."""

    data: Path
    port: int

    def dsn(self, database: str = "cylwatch") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, *options: str) -> None:
        opts = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data.parent}",
            "-c fsync=off",
            *options,
        ]
        log = self.data.parent / f"{self.data.name}.log"
        run("pg_ctl", "-D", str(self.data), "-o", " ".join(opts), "-l", str(log), "-w", "start")

    def kill(self) -> None:
        """Stop at once, as a crash would (``-m immediate``)."""
        if (self.data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def run(program: str, *args: str) -> None:
    """A server program, as the server's account when the tests run as root."""
    command = [str(PG_BIN / program), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", SERVER_USER, "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@dataclass
class Pair:
    primary: Node
    standby: Node


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A primary and its streaming standby, removed afterwards whatever happened."""
    for program in ("initdb", "pg_ctl", "pg_basebackup"):
        if not (PG_BIN / program).exists():
            missing(
                f"PostgreSQL 15 server programs ({PG_BIN / program})",
                "apt-get install postgresql-15",
            )
    directory = Path(tempfile.mkdtemp(prefix="cylwatch-replica-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(directory, account.pw_uid, account.pw_gid)
    p = Pair(Node(directory / "primary", _spare_port()), Node(directory / "standby", _spare_port()))
    try:
        run(
            "initdb",
            "-D",
            str(p.primary.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        with (p.primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        p.primary.start("-c wal_level=replica", "-c max_wal_senders=4")
        run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(p.primary.port), "-U", "postgres"),
            *("-D", str(p.standby.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
        )
        p.standby.start("-c hot_standby=on")
        yield p
    finally:
        p.standby.kill()
        p.primary.kill()
        shutil.rmtree(directory, ignore_errors=True)


def _settings(settings: Any, primary: str, replica: str) -> Any:
    services = msgspec.structs.replace(
        settings.services,
        database_url=primary,
        database_replica_url=replica,
        replica_max_lag_s=MAX_LAG_S,
        replica_check_interval_s=CHECK_S,
        db_pool_min=1,
    )
    return msgspec.structs.replace(
        settings,
        services=services,
        storage=msgspec.structs.replace(settings.storage, timescaledb="off"),
        reports=msgspec.structs.replace(settings.reports, rollup_refresh_s=0.0),
    )


@pytest.fixture(scope="module")
async def city(pair: Pair, settings: Any) -> AsyncIterator[tuple[Any, Any, asyncpg.Pool, Any]]:
    """The migrated primary with the small city of tests/conftest.py; settings with and
    without the replica; a pool on the primary to write with."""
    with_replica = _settings(settings, pair.primary.dsn(), pair.standby.dsn())
    primary_only = _settings(settings, pair.primary.dsn(), "")
    await migrate(primary_only, pair.primary.dsn())
    pool = await create_pool(primary_only, min_size=1, max_size=2)
    try:
        world = await build_world(pool, primary_only)
        yield with_replica, primary_only, pool, world
    finally:
        await pool.close()


async def _add_fill(pool: asyncpg.Pool, world: Any, n: int) -> None:
    """A completed fill of company A, a minute ago (today, in the city's day)."""
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code, tag,
                              spec, net_kg, result, assessment)
           VALUES ($1, $2, 'GUN-STA-A1', $3, $4, '410105', 'TAG-A-OK', 'YSP35.5', $5,
                   'completed', 'ok')""",
        dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        f"replica-test-{n}-{time.monotonic_ns()}",
        world.sites["STA-A1"],
        world.companies["A"],
        Decimal("14.5"),
    )


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def _until(check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until *check* holds (polled every 50 ms), or fail after WAIT_S."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < WAIT_S, "no change within the wait"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_reports_read_from_the_replica_and_fall_back(
    aiohttp_client: Any, pair: Pair, city: Any
) -> None:
    with_replica, primary_only, pool, world = city
    await _add_fill(pool, world, 0)
    app = create_app(with_replica, with_pages=True)
    client = await aiohttp_client(app)
    reference = await aiohttp_client(create_app(primary_only, with_pages=False))
    auth = await login(client, "t_regulator")
    ref_auth = await login(reference, "t_regulator")
    today = world.today.isoformat()
    report = f"/api/v1/reports/fill-volume?from={today}&to={today}&company=TEST-A"
    drill = f"/api/v1/reports/fill-volume/drill?from={today}&to={today}&company=TEST-A"
    drill += f"&measure=fills&period={today}&code=TEST-A"

    async def body(c: Any = client, h: dict[str, str] = auth, path: str = report) -> Any:
        resp = await c.get(path, headers=h)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def fills() -> int:
        totals = (await body())["totals"]
        return int(totals["fills"]) if totals else 0

    async def metrics() -> str:
        resp = await client.get("/metrics")
        assert resp.status == 200
        return str(await resp.text())

    async def on_replica() -> bool:
        return _metric(await metrics(), "cylwatch_db_reads_on_replica") == 1

    async def on_primary() -> bool:
        return not await on_replica()

    router = app[READS]
    started = await _until(on_replica)
    assert router.pool() is router.replica

    # the replica's answers are the primary's: the report, its drill-down, its CSV export
    replayed = await _until(lambda: _equal(body(), body(reference, ref_auth)))
    assert (await body())["totals"]["fills"] == 1
    assert await body(path=drill) == await body(reference, ref_auth, drill)
    csv = await client.get(drill + "&format=csv", headers=auth)
    assert csv.status == 200 and (await csv.text()).count("\n") == 2  # header and one fill

    # a fill written on the primary shows in the replica's report once replayed
    await _add_fill(pool, world, 1)
    replay_s = await _until(lambda: _is(fills(), 2))
    assert router.pool() is router.replica

    # replay paused: the replica falls behind. Until the lag passes the bound reads stay on
    # it (the new fill is not there yet: proof they do come from the replica) ...
    standby = await asyncpg.connect(pair.standby.dsn())
    try:
        await standby.execute("SELECT pg_wal_replay_pause()")
        await _add_fill(pool, world, 2)
        assert await fills() == 2
        # ... then they go to the primary, which has it, and the metric says so
        lag_detect_s = await _until(on_primary)
        text = await metrics()
        assert _metric(text, "cylwatch_db_replica_lag_seconds") > MAX_LAG_S
        assert _metric(text, 'cylwatch_db_replica_fallbacks_total{reason="lag"}') == 1
        assert await fills() == 3
        await standby.execute("SELECT pg_wal_replay_resume()")
        back_s = await _until(on_replica)
        assert await fills() == 3
        assert _metric(await metrics(), "cylwatch_db_replica_lag_seconds") < MAX_LAG_S
    finally:
        await standby.close()

    # a query that is wrong is not the replica's fault: it fails, and is not run twice
    with pytest.raises(asyncpg.UndefinedTableError):
        await router.run(lambda p: p.fetchval("SELECT 1 FROM no_such_table"))
    assert router.fallbacks["error"] == 0 and router.pool() is router.replica

    # the replica dies under a stream of requests: none fails, all count every fill
    answers: list[int] = []
    stop = asyncio.Event()

    async def keep_asking() -> None:
        while not stop.is_set():
            answers.append(await fills())

    asker = asyncio.create_task(keep_asking())
    killed = time.monotonic()
    await asyncio.to_thread(pair.standby.kill)
    kill_s = time.monotonic() - killed
    await _until(on_primary)
    failover_s = time.monotonic() - killed
    await asyncio.sleep(CHECK_S * 3)
    stop.set()
    await asker  # a failed request would raise here
    assert answers and set(answers) == {3}
    text = await metrics()
    down = _metric(text, 'cylwatch_db_replica_fallbacks_total{reason="down"}')
    error = _metric(text, 'cylwatch_db_replica_fallbacks_total{reason="error"}')
    assert down + error >= 1
    assert str(_metric(text, "cylwatch_db_replica_lag_seconds")) == "nan"

    # a read caught on the dead replica before a check noticed (the report, the CSV export
    # of its drill-down) is run again on the primary: counted once each, by the read itself
    # or by a check that came first
    router.on_replica = True
    assert await fills() == 3
    router.on_replica = True
    csv = await client.get(drill + "&format=csv", headers=auth)
    assert csv.status == 200 and (await csv.text()).count("\n") == 4
    text = await metrics()
    fell_back = _metric(text, 'cylwatch_db_replica_fallbacks_total{reason="down"}')
    fell_back += _metric(text, 'cylwatch_db_replica_fallbacks_total{reason="error"}')
    assert fell_back == down + error + 2
    assert not router.on_replica

    print(  # the figures docs/RELIABILITY.md quotes (pytest -s shows them)
        f"\nreplica: first check {started:.2f} s, same answers after {replayed:.2f} s,"
        f" a new fill replayed in {replay_s:.2f} s, lag over {MAX_LAG_S} s detected"
        f" {lag_detect_s:.2f} s after the pause, back on the replica {back_s:.2f} s after"
        f" resume; replica killed (pg_ctl -m immediate, {kill_s:.2f} s) → reads on the"
        f" primary {failover_s:.2f} s after the kill began ({down:.0f} by a check,"
        f" {error:.0f} by a failed read run again), {len(answers)} requests meanwhile, none failed"
    )


async def _equal(a: Awaitable[Any], b: Awaitable[Any]) -> bool:
    return bool(await a == await b)


async def _is(a: Awaitable[int], value: int) -> bool:
    return await a == value


async def test_a_read_failed_by_the_replica_runs_again_on_the_primary(
    pair: Pair, city: Any
) -> None:
    """The retry itself, with no background check to race: a dead replica's connection
    error sends the query (and a streamed one before its first row) to the primary."""
    with_replica, _, pool, _ = city
    pair.standby.kill()  # already dead when the first test ran to its end
    dead = await create_pool(with_replica, dsn=pair.standby.dsn(), min_size=0, max_size=1)
    try:
        router = ReadRouter(pool, dead, with_replica)
        router.on_replica = True
        count = await pool.fetchval("SELECT count(*) FROM fills")
        assert await router.run(lambda p: p.fetchval("SELECT count(*) FROM fills")) == count
        assert router.fallbacks == {"down": 0, "lag": 0, "error": 1}
        assert router.pool() is pool

        async def rows(p: asyncpg.Pool) -> AsyncIterator[int]:
            async with p.acquire() as conn:
                for r in await conn.fetch("SELECT 1 AS one FROM fills"):
                    yield r["one"]

        router.on_replica = True
        assert [r async for r in router.iterate(rows)] == [1] * count
        assert router.fallbacks["error"] == 2
    finally:
        await dead.close()


async def test_a_server_starts_with_its_replica_away(
    aiohttp_client: Any, pair: Pair, city: Any
) -> None:
    """A replica down at start-up delays nothing: reports answer from the primary."""
    with_replica, _, pool, world = city
    pair.standby.kill()
    await _add_fill(pool, world, 3)
    count = await pool.fetchval("SELECT count(*) FROM fills")
    client = await aiohttp_client(create_app(with_replica, with_pages=True))
    auth = await login(client, "t_regulator")
    today = world.today.isoformat()
    resp = await client.get(
        f"/api/v1/reports/fill-volume?from={today}&to={today}&company=TEST-A", headers=auth
    )
    assert resp.status == 200 and (await resp.json())["totals"]["fills"] == count
    await asyncio.sleep(CHECK_S * 2)  # a check or two, finding it away
    text = await (await client.get("/metrics")).text()
    assert _metric(text, "cylwatch_db_reads_on_replica") == 0
    assert str(_metric(text, "cylwatch_db_replica_lag_seconds")) == "nan"
