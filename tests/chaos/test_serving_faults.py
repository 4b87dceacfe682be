"""Faults on the serving side (issue 10 item 1, docs/RELIABILITY.md "Faults of services"):
a `cylwatch serve` process killed with SIGKILL under an open dashboard, and a websocket
client slowed to a crawl while live events flow.

Both run a real `cylwatch serve --no-ingest` (`server.chaos.serving`) on a port, a database
(the session's small city, ``tests.conftest.build_world``, in a fresh database of its own:
the kill must not touch what other tests share), a Redis database number and a live channel
of its own, and publish live rows through Redis as a separate `cylwatch ingest` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis import Redis

from server.chaos.crawl import CrawlConfig, CrawlReport, run_crawl
from server.chaos.services import free_port
from server.chaos.serving import (
    RESTART_DELAY_S,
    LivePublisher,
    ServeProcess,
    login_token,
    serve_env,
)
from server.kernel.events import Event
from server.kernel.settings import load_settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, wait_ready
from tests.browser.data import row_of
from tests.conftest import ADMIN_DSN, PASSWORD, World, build_world
from tests.tools import missing

pytestmark = pytest.mark.slow

SERVE_REDIS_DB = 13
"""The served process's Redis database number: the session's is 15, the API fuzzer's 14
(tests/fuzz/conftest.py); login limits, sessions and push dedupe keys left here reach no
other test, and the fixture empties it at the end."""
DOWN_SHOWN_BOUND_S = 2.0
"""The page says it lost the server within this of the kill: the browser sees the TCP
connection reset at once (the kernel closes a killed process's sockets)."""
RESUBSCRIBED_BOUND_S = 10.0
"""From the restarted server answering to the page subscribed again: the page's back-off
(``[realtime] page_reconnect_min_s`` 0.5 s, doubling with ±25 % jitter) has grown to
4 s (×1.25) during a 2 s ``RestartSec`` and a start of 3–8 s on a loaded machine, so its
next try comes at most ~8 s after the server listens; then a subscribe round trip."""
SHOWN_BOUND_S = 2.0
"""A live alert reaches the resubscribed page within this (1 s on a quiet machine,
tests/browser/test_dashboard.py)."""
CRAWL = CrawlConfig(rate=300.0, duration_s=20.0, fast_clients=4, detail_bytes=4096)
"""150 alerts/s of ~4.4 KB (a long details note) and 150 positions/s: about 0.7 MB/s to each
client. The volume is what matters: before the server's queue for a client fills, the
socket's send buffer does, and Linux grows it up to 4 MB on loopback (``tcp_wmem``); at a
realistic 0.7 KB a row that alone takes half a minute."""
CUT_BOUND_S = 15.0
"""The server cuts the crawling client within this of the traffic's start: ~6 s to fill the
send buffer, ~2 s more for the 256-frame queue."""
LATENCY_P99_BOUND_MS = 500.0
"""The fast clients' alert latency stays within this while one client crawls (the soak's
p99 at 600 msg/s was ~200 ms, docs/BENCHMARKS.md "Soak"): nothing waits on the slow one."""
RELEASE_BOUND_S = 8.0
"""The server lets go of a cut client that does not answer the close within
``[realtime] ws_close_timeout_s`` (5 s), plus the sampling's 0.25 s and a loaded machine."""
RSS_GROWTH_BOUND = 3 * 2**20
"""The server's RSS may grow this much over the crawl (measured: 0.8–1.1 MiB — allocator
noise, the fast clients' frames in flight). A queue that did not bound the slow client would
keep every frame published to it after it stopped (frames are shared bytes, so the growth
would be their size): ``CrawlReport.bytes_owed``, 8.3 MiB here, asserted above the bound."""


@dataclasses.dataclass
class ServeDatabase:
    dsn: str
    world: World
    """Its city: ids of this database, not the session's."""


@pytest.fixture(scope="module")
async def serve_database(
    settings: Any, test_db_name: str, fresh_databases: Any
) -> AsyncIterator[ServeDatabase]:
    """A migrated database with `world`'s city (users of every role), for the served process."""
    from server.db.pool import create_pool

    name = f"{test_db_name}_serve"
    dsn = await fresh_databases.create(name)
    pool = await create_pool(settings, dsn=dsn, min_size=1, max_size=2)
    try:
        world = await build_world(pool, settings)
    finally:
        await pool.close()
    yield ServeDatabase(dsn, world)
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def serve(settings: Any, serve_database: ServeDatabase, tmp_path: Path) -> Iterator[ServeProcess]:
    """`cylwatch serve` on a spare port with its own Redis number and live channel."""
    redis_url = urlsplit(settings.services.redis_url)._replace(path=f"/{SERVE_REDIS_DB}").geturl()
    base = dict(os.environ)
    base.update(
        {
            "CYL_MQTT_URL": settings.services.mqtt_url,
            "CYL_PRIVACY__ID_HASH_KEY_FILE": settings.privacy.id_hash_key_file,
            "CYL_AUTH__SECURE_COOKIES": "false",
            "CYL_AUTH__ARGON2_TIME_COST": "1",
            "CYL_AUTH__ARGON2_MEMORY_KIB": "1024",
            "CYL_UPLOADS__DIR": settings.uploads.dir,
        }
    )
    channel = f"cylwatch:chaos-serve:{secrets.token_hex(4)}"
    proc = ServeProcess(
        serve_env(base, serve_database.dsn, redis_url, channel), free_port(), tmp_path / "serve.log"
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        # its sessions and the push dedupe keys of every alert published (a day's TTL)
        with Redis.from_url(redis_url) as redis:
            redis.flushdb()


@pytest.fixture
async def publisher(serve: ServeProcess) -> AsyncIterator[LivePublisher]:
    """What a separate ingest process publishes, on the served process's channel."""
    pub = LivePublisher(load_settings(environ=serve.env))
    await pub.start()
    yield pub
    await pub.aclose()


class SocketLog:
    """Every websocket the page opens: when, the subscribe ids it sent, the ids confirmed."""

    def __init__(self) -> None:
        self.opened: list[float] = []
        self.sent: list[set[int]] = []
        self.confirmed: list[dict[int, float]] = []

    def __call__(self, ws: Any) -> None:
        n = len(self.opened)
        self.opened.append(time.monotonic())
        self.sent.append(set())
        self.confirmed.append({})

        def sent(payload: str | bytes) -> None:
            msg = json.loads(payload)
            if msg.get("type") == "subscribe":
                self.sent[n].add(msg["id"])

        def received(payload: str | bytes) -> None:
            msg = json.loads(payload)
            if msg.get("type") == "result" and msg.get("success") and msg["id"] in self.sent[n]:
                self.confirmed[n].setdefault(msg["id"], time.monotonic())

        ws.on("framesent", sent)
        ws.on("framereceived", received)

    def subscribed_at(self, n: int) -> float | None:
        """When socket *n* had every subscription of the first socket confirmed."""
        if n >= len(self.opened) or not self.sent[0]:
            return None
        done = self.confirmed[n]
        if len(self.sent[n]) < len(self.sent[0]) or set(done) != self.sent[n]:
            return None
        return max(done.values())


async def until(check: Any, within_s: float, what: str) -> float:
    """``time.monotonic()`` once the async *check* is truthy; fails after *within_s*."""
    deadline = time.monotonic() + within_s
    while True:
        if await check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s} s")
        await asyncio.sleep(0.02)


async def _store_alert(dsn: str, company: int) -> int:
    """An alert row as an ingest worker stores it while no server is up (no live event)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id,
                       district_code, first_at, last_at, lat, lon, count, details)
                   VALUES ('leak', 'critical', 'cylinder', $1, $2, '410105', now(), now(),
                           34.79, 113.64, 1, '{"leak_ppm": 2400}'::jsonb)
                   RETURNING id""",
                f"DOWN-{secrets.token_hex(3)}",
                company,
            )
        )
    finally:
        await conn.close()


@pytest.mark.browser
async def test_kill_9_of_the_server_the_open_dashboard_reconnects_and_shows_live_alerts(
    serve: ServeProcess, publisher: LivePublisher, serve_database: ServeDatabase
) -> None:
    """The dashboard open in Chromium; the server killed with SIGKILL and started again
    ``RestartSec`` later on its port. The page says it lost the link, opens a new socket
    by itself, sends every subscription again (each confirmed by the server), shows the
    alert stored while it was cut off and a live alert published after the return."""
    from playwright.async_api import ViewportSize, async_playwright

    from dashboard.build_assets import ensure_assets

    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium at {CHROMIUM}", "apt-get install chromium")
    ensure_assets()
    await serve.wait_ready()
    await publisher.wait_subscribers(1)
    company = serve_database.world.companies["A"]

    def alert(aid: int) -> None:
        row = row_of(aid, company_id=company)
        publisher.publish(Event("alerts", row, district="410105", company_id=company))

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                base_url=serve.url,
                viewport=ViewportSize(width=VIEWPORT["width"], height=VIEWPORT["height"]),
                locale="zh-CN",
                bypass_csp=True,
            )
            resp = await context.request.post(
                "/api/v1/auth/login", data={"username": "t_admin", "password": PASSWORD}
            )
            assert resp.ok, await resp.text()
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sockets = SocketLog()
            page.on("websocket", sockets)
            await page.goto("/")
            await wait_ready(page, timeout_ms=20_000)
            indicator = page.locator("#live-indicator")

            async def state() -> str:
                return str(await indicator.get_attribute("data-state"))

            await until(lambda: _true(sockets.subscribed_at(0)), 10, "first subscriptions")
            assert len(sockets.sent[0]) >= 2  # positions and alerts at least
            # the path works before the fault: an alert reaches the page
            before = 2_100_000_000 + secrets.randbelow(1_000_000)
            alert(before)
            # generous: the first live frame on a page still loading its map under a loaded
            # CI machine (a full run once missed 5 s); the measured figure is the later one
            await page.locator(f'[data-alert-id="{before}"]').wait_for(timeout=15_000)

            killed_at = serve.kill()
            down_at = await until(
                lambda: _is(state(), "reconnecting"), DOWN_SHOWN_BOUND_S, "shown as reconnecting"
            )
            shown_text = await indicator.inner_text()
            raised_while_down = await _store_alert(serve_database.dsn, company)
            await asyncio.sleep(max(0.0, RESTART_DELAY_S - (time.monotonic() - killed_at)))
            serve.start()
            ready_at = await serve.wait_ready()
            resubscribed_at = await until(
                lambda: _true(sockets.subscribed_at(len(sockets.opened) - 1)),
                RESUBSCRIBED_BOUND_S,
                "resubscribed after the restart",
            )
            assert await state() == "live"
            # what was raised while the page was cut off comes back with the resubscription
            missed = page.locator(f'[data-alert-id="{raised_while_down}"]')
            await until(lambda: _count(missed), SHOWN_BOUND_S, "alert raised while down")
            await publisher.wait_subscribers(1)
            after = before + 1
            published_at = time.monotonic()
            alert(after)
            item = page.locator(f'[data-alert-id="{after}"]')
            shown_at = await until(lambda: _count(item), SHOWN_BOUND_S, "live alert after restart")
            attempts = len(sockets.opened) - 1
            print(
                f"\nkill-serve: shown as reconnecting {down_at - killed_at:.2f} s after the kill "
                f"({shown_text!r}); restarted after {serve.started_at - killed_at:.2f} s, "
                f"answering {ready_at - serve.started_at:.2f} s later; page resubscribed "
                f"{resubscribed_at - ready_at:.2f} s after that ({resubscribed_at - killed_at:.2f}"
                f" s after the kill, {attempts} websocket(s) opened since the first); "
                f"live alert shown {shown_at - published_at:.2f} s after publication"
            )
            assert "重连" in shown_text
            assert not errors, errors
            await context.close()
        finally:
            await browser.close()


async def _true(value: object) -> bool:
    return value is not None


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


async def _count(locator: Any) -> bool:
    return bool(await locator.count())


async def _crawl(serve: ServeProcess, publisher: LivePublisher, cfg: CrawlConfig) -> CrawlReport:
    await serve.wait_ready()
    await publisher.wait_subscribers(1)
    token = await login_token(serve.url, "t_admin", PASSWORD)
    r = await run_crawl(serve, publisher, token, cfg)
    mib = 2**20
    cut = "never" if r.cut_after_s is None else f"{r.cut_after_s:.1f} s"
    released = "never" if r.slow_released_s is None else f"{r.slow_released_s:.1f} s"
    print(
        f"\nslow-client: {r.published_alerts} alerts + {r.published_positions} positions in "
        f"{cfg.duration_s:g} s; fast clients got {r.fast_alerts} alerts "
        f"({r.fast_duplicates} duplicates), latency p50/p99/max "
        f"{r.latency_ms[0]:.0f}/{r.latency_ms[1]:.0f}/{r.latency_ms[2]:.0f} ms; slow client "
        f"read {r.slow_frames_read} frames, cut after {cut}, then read close code "
        f"{r.slow_close_code} (reset: {r.slow_reset}); the server let go of its socket "
        f"{released} after the cut ({'before' if r.released_while_stuck else 'after'} the "
        f"client read what it held); server RSS {r.rss_before / mib:.1f} → peak "
        f"{r.rss_peak / mib:.1f} → {r.rss_after / mib:.1f} MiB; {r.bytes_owed / mib:.1f} MiB "
        f"published after the cut; {r.connections_after} websockets open at the end"
    )
    assert r.cut_after_s is not None and r.cut_after_s < CUT_BOUND_S, serve.log_tail()
    # every other client received everything, once, in time
    assert r.fast_alerts == [r.published_alerts] * cfg.fast_clients
    assert r.fast_duplicates == 0
    assert r.latency_ms[1] < LATENCY_P99_BOUND_MS
    # the slow client's queue is bounded: the server did not keep what it was not sent
    assert r.rss_peak - r.rss_before < RSS_GROWTH_BOUND
    assert r.bytes_owed > RSS_GROWTH_BOUND  # what an unbounded queue would have held
    assert r.connections_after == cfg.fast_clients
    return r


async def test_a_client_crawling_at_a_frame_a_second_is_closed_1013(
    serve: ServeProcess, publisher: LivePublisher
) -> None:
    """It reads one frame a second; once the server has cut it, it reads what its socket
    holds and finds the documented close (docs/WEBSOCKET.md "Slow clients")."""
    r = await _crawl(serve, publisher, dataclasses.replace(CRAWL, wake_on_cut=True))
    assert r.slow_frames_read > 0
    assert r.slow_close_code == 1013
    assert r.slow_released_s is not None


async def test_a_client_that_stopped_reading_is_cut_and_its_socket_let_go(
    serve: ServeProcess, publisher: LivePublisher
) -> None:
    """It never reads again: cut all the same, and the server does not keep its socket and
    buffers for as long as it stays connected (it did, until the client read them)."""
    r = await _crawl(serve, publisher, dataclasses.replace(CRAWL, read_interval_s=None))
    assert r.slow_frames_read == 0
    assert r.released_while_stuck
    assert r.slow_released_s is not None and r.slow_released_s < RELEASE_BOUND_S
    assert r.slow_reset and r.slow_close_code is None  # it could not read the close frame
