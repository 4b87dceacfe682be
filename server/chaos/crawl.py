"""A websocket client slowed to a crawl while live events flow (issue 10 item 1).

docs/WEBSOCKET.md "Slow clients" promises that nothing waits on a client: each connection
has a send queue of ``[realtime] client_queue_max`` frames (`realtime.connection`), a full
queue first drops stale ``positions`` frames and, once only must-deliver frames (alerts)
are left, closes the client with **1013** and throws its queue away. Frames are encoded
once per group and shared by every queue (docs/ARCHITECTURE.md §6), so a queue costs
references, not copies. This module shows it from the outside, on a real `cylwatch serve`:

- a few *fast* clients and one *slow* client subscribe to ``alerts`` and ``positions`` as
  the dashboard does; the slow one has a tiny receive buffer and then reads one frame a
  second (or nothing at all), so the server's socket buffers fill and its queue with them;
- alerts and positions are published through Redis at a steady rate
  (`server.chaos.serving.LivePublisher`, as `cylwatch ingest` publishes);
- measured: alerts each fast client received against those published, their
  publish → frame latency, the server's RSS before, at its peak and after, when the server
  cut the slow client (its ``ws_slow_closes_total``), the close code the slow client reads
  when it drains its socket, and when the server let go of its TCP connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import WSMsgType

from server.chaos.serving import LivePublisher, ServeProcess
from server.kernel.events import Event

__all__ = ["CrawlConfig", "CrawlReport", "run_crawl"]

SLOW_RCVBUF: Final = 4096
"""The slow client's socket receive buffer (the kernel doubles it): a phone on a bad link
holds little in flight, and a small buffer lets the server's side fill in seconds."""
SAMPLE_S: Final = 0.25
"""How often the server's RSS and slow-close counter are read during the crawl."""
SLOW_CLOSES: Final = "cylwatch_realtime_ws_slow_closes_total"
CONNECTIONS: Final = "cylwatch_realtime_ws_connections"
DISTRICT: Final = "410105"
"""The district of every row (admin sees all; a district is a scope key like in production)."""
BBOX: Final = (113.60, 34.75, 113.70, 34.85)
"""Where the rows are: inside DISTRICT's square of tests/conftest.py."""
ALERT_ID_BASE: Final = 3_000_000_000
"""Alert ids of the crawl: far above any id a test database holds."""
DRAIN_TIMEOUT_S: Final = 15.0
"""How long the slow client may take to read what its socket still holds once it stops
crawling (a few hundred KB on loopback: well under a second)."""
SUBSCRIBE_TIMEOUT_S: Final = 10.0
"""A subscribe's result and snapshot on a loaded machine (a snapshot reads PostgreSQL)."""
PUBLISH_TICK_S: Final = 0.01
"""The publisher's tick: the events due are sent each tick, so the rate is steady to 10 ms."""


@dataclass
class CrawlConfig:
    rate: float = 200.0
    """Events a second, alerts and positions taking turns (a busy district's live feed)."""
    duration_s: float = 20.0
    fast_clients: int = 4
    read_interval_s: float | None = 1.0
    """The slow client reads one frame this often; None: it never reads again."""
    wake_on_cut: bool = False
    """The slow client reads everything it holds as soon as the server has cut it (it can
    then read the close frame); else it stays as it is until the traffic is over."""
    detail_bytes: int = 256
    """Text in each alert's details: an alert row of about 0.7 KB, as ingest's are."""
    vehicles: int = 50
    settle_s: float = 3.0
    """After the traffic, how long the fast clients get to read what is still in flight."""


@dataclass
class CrawlReport:
    published_alerts: int
    published_positions: int
    fast_alerts: list[int]
    """Distinct alerts each fast client received (every one published is the promise)."""
    fast_duplicates: int
    latency_ms: tuple[float, float, float]
    """Fast clients' publish → frame latency of alerts: p50, p99, max."""
    rss_before: int
    rss_peak: int
    rss_after: int
    cut_after_s: float | None
    """From the start of the traffic to the server's 1013 close of the slow client."""
    slow_frames_read: int
    """Frames the slow client read before it started draining (all of its crawl)."""
    slow_close_code: int | None
    """The close code the slow client read (None: it read none)."""
    slow_reset: bool
    """Its connection ended without a close frame: reset by the server."""
    slow_released_s: float | None
    """From the cut until the server held no TCP connection to the slow client."""
    released_while_stuck: bool
    """The server let go of that connection before the slow client read what it held (a
    client that never reads again does not keep a socket and its buffers on the server)."""
    connections_after: int
    """Websockets the server has open at the end (the fast clients only, if all is well)."""
    bytes_owed: int
    """What the slow client was sent nothing of: the bytes of every frame published after
    the cut — what an unbounded queue would have grown by."""
    samples: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since the traffic began, server RSS)."""


def _tiny_rcvbuf(addr: tuple[Any, Any, int, str, tuple[Any, ...]]) -> socket.socket:
    family, kind, proto, _, _ = addr
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    return sock


async def _subscribe(ws: aiohttp.ClientWebSocketResponse) -> int:
    """alerts and positions, as the dashboard; waits for both results. Frames read."""
    await ws.send_str('{"id":1,"type":"subscribe","channel":"alerts"}')
    await ws.send_str('{"id":2,"type":"subscribe","channel":"positions"}')
    confirmed, frames = 0, 0
    while confirmed < 2:
        msg = await ws.receive(timeout=SUBSCRIBE_TIMEOUT_S)
        if msg.type != WSMsgType.TEXT:
            raise RuntimeError(f"subscription refused: {msg.type} {msg.data!r}")
        frames += 1
        body = orjson.loads(msg.data)
        if body.get("type") == "result":
            if not body.get("success"):
                raise RuntimeError(f"subscription refused: {body}")
            confirmed += 1
    return frames


class FastClient:
    """Reads everything at once; records each alert's latency from its publication."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sent_at: dict[int, float]) -> None:
        self.ws = ws
        self.sent_at = sent_at
        self.alerts: set[int] = set()
        self.duplicates = 0
        self.latencies: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                break
            now = time.monotonic()
            body = orjson.loads(msg.data)
            if body.get("channel") != "alerts" or body.get("snapshot"):
                continue
            for row in body.get("data", ()):
                aid = int(row["id"])
                if aid not in self.sent_at:
                    continue  # another publisher's (a chaos round's city raises its own)
                if aid in self.alerts:
                    self.duplicates += 1
                    continue
                self.alerts.add(aid)
                self.latencies.append(now - self.sent_at[aid])


class SlowClient:
    """Subscribes, then reads one frame every *interval* seconds (None: never again)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, interval: float | None) -> None:
        self.ws = ws
        self.interval = interval
        self.frames = 0
        self.close_code: int | None = None
        sockname = ws.get_extra_info("sockname")
        self.port = int(sockname[1]) if sockname else 0
        self.task: asyncio.Task[None] | None = None
        self.drained_at: float | None = None
        self.reset = False
        """The connection ended without a close frame read (the server reset it)."""

    def _closed(self, msg: aiohttp.WSMessage) -> bool:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING) and isinstance(msg.data, int):
                self.close_code = msg.data
            elif self.close_code is None:
                self.reset = True
            return True
        return False

    async def crawl(self) -> None:
        if self.interval is None:
            return
        while not self._closed(await self.ws.receive()):
            self.frames += 1
            await asyncio.sleep(self.interval)

    async def give_up(self, within_s: float) -> None:
        """Stop crawling and read fast what the socket still holds, up to its end."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.drained_at is None:
            self.drained_at = time.monotonic()
            await self._drain(within_s)

    async def _drain(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        with contextlib.suppress(TimeoutError):
            while time.monotonic() < deadline:
                if self._closed(await self.ws.receive(timeout=deadline - time.monotonic())):
                    return


async def _wake(slow: SlowClient, sampler: Sampler) -> None:
    await sampler.cut.wait()
    await slow.give_up(DRAIN_TIMEOUT_S)


def _alert(aid: int, detail_bytes: int) -> Event:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    row = {
        "id": aid,
        "kind": "leak",
        "severity": "critical",
        "subject_type": "cylinder",
        "subject_id": f"CRAWL-{aid}",
        "company_id": None,
        "site_id": None,
        "district": DISTRICT,
        "cylinder_id": None,
        "state": "open",
        "count": 1,
        "first_at": now,
        "last_at": now,
        "lat": 34.8,
        "lon": 113.65,
        "details": {"leak_ppm": 2400, "note": "x" * detail_bytes},
    }
    return Event("alerts", row, district=DISTRICT, lat=34.8, lon=113.65, key=f"alert:{aid}")


def _position(n: int, vehicles: int) -> Event:
    vid = f"CRAWL-VEH-{n % vehicles}"
    west, south, east, north = BBOX
    step = (n // vehicles) % 100 / 100
    lat, lon = south + (north - south) * step, west + (east - west) * step
    row = {
        "kind": "vehicle",
        "id": vid,
        "lat": lat,
        "lon": lon,
        "ts": int(time.time() * 1000),
        "speed_kmh": 30.0,
        "heading": 90.0,
    }
    return Event("positions", row, district=DISTRICT, lat=lat, lon=lon, key=f"vehicle:{vid}")


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Sampler:
    """The server seen from outside every ``SAMPLE_S``: RSS, the slow-close counter, and
    whether it still holds the slow client's TCP connection."""

    def __init__(self, server: ServeProcess, slow_port: int) -> None:
        self.server = server
        self.slow_port = slow_port
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        self.cut_at: float | None = None
        self.cut = asyncio.Event()
        self.released_at: float | None = None
        self.released = asyncio.Event()

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            self.samples.append((now - self.t0, self.server.rss()))
            if self.cut_at is None and await self.server.metric(SLOW_CLOSES) > 0:
                self.cut_at = time.monotonic()
                self.cut.set()
            if self.released_at is None and self.slow_port not in self.server.peers():
                self.released_at = time.monotonic()
                self.released.set()
            await asyncio.sleep(SAMPLE_S)


async def run_crawl(
    server: ServeProcess, publisher: LivePublisher, token: str, cfg: CrawlConfig
) -> CrawlReport:
    """One crawl on a running server; every client is closed at the end."""
    url = f"{server.url}/ws?token={token}"
    sent_at: dict[int, float] = {}
    fast_http = aiohttp.ClientSession()
    slow_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=_tiny_rcvbuf))
    fast: list[FastClient] = []
    sampler_task: asyncio.Task[None] | None = None
    try:
        for _ in range(cfg.fast_clients):
            ws = await fast_http.ws_connect(url, autoping=True)
            await _subscribe(ws)
            fast.append(FastClient(ws, sent_at))
        slow_ws = await slow_http.ws_connect(url, autoping=False, max_msg_size=0)
        slow = SlowClient(slow_ws, cfg.read_interval_s)
        await _subscribe(slow_ws)
        for c in fast:
            c.task = asyncio.create_task(c.read())
        slow.task = asyncio.create_task(slow.crawl())
        rss_before = server.rss()
        sampler = Sampler(server, slow.port)
        sampler_task = asyncio.create_task(sampler.run())
        waker = asyncio.create_task(_wake(slow, sampler)) if cfg.wake_on_cut else None
        published, positions, owed = await _traffic(publisher, cfg, sent_at, sampler)
        await asyncio.sleep(cfg.settle_s)
        rss_after = server.rss()
        drain_at = time.monotonic() if slow.drained_at is None else slow.drained_at
        if waker is not None:
            waker.cancel()
            await asyncio.gather(waker, return_exceptions=True)
        # the slow client gives up crawling and reads what is left
        await slow.give_up(DRAIN_TIMEOUT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sampler.released.wait(), DRAIN_TIMEOUT_S)
        sampler_task.cancel()
        await asyncio.gather(sampler_task, return_exceptions=True)
        lat = [x for c in fast for x in c.latencies]
        cut, released = sampler.cut_at, sampler.released_at
        return CrawlReport(
            published_alerts=published,
            published_positions=positions,
            fast_alerts=[len(c.alerts) for c in fast],
            fast_duplicates=sum(c.duplicates for c in fast),
            latency_ms=(
                1000 * _quantile(lat, 0.5),
                1000 * _quantile(lat, 0.99),
                1000 * _quantile(lat, 1.0),
            ),
            rss_before=rss_before,
            rss_peak=max((rss for _, rss in sampler.samples), default=0),
            rss_after=rss_after,
            cut_after_s=None if cut is None else cut - sampler.t0,
            slow_frames_read=slow.frames,
            slow_close_code=slow.close_code,
            slow_reset=slow.reset,
            slow_released_s=None if cut is None or released is None else released - cut,
            released_while_stuck=released is not None and released < drain_at,
            connections_after=int(await server.metric(CONNECTIONS)),
            bytes_owed=owed,
            samples=sampler.samples,
        )
    finally:
        if sampler_task is not None:
            sampler_task.cancel()
        for c in fast:
            await c.ws.close()
            if c.task is not None:
                await asyncio.gather(c.task, return_exceptions=True)
        await fast_http.close()
        await slow_http.close()


async def _traffic(
    publisher: LivePublisher, cfg: CrawlConfig, sent_at: dict[int, float], sampler: Sampler
) -> tuple[int, int, int]:
    """Publish at ``cfg.rate`` for ``cfg.duration_s``, alerts and positions taking turns:
    (alerts, positions, bytes of the rows published after the server cut the slow client)."""
    ids = itertools.count(ALERT_ID_BASE + int(time.time()) % 1_000_000 * 1000)
    alerts = positions = owed = n = 0
    t0 = time.monotonic()
    end = t0 + cfg.duration_s
    while (now := time.monotonic()) < end:
        due = int((now - t0) * cfg.rate)
        while n < due:
            if n % 2 == 0:
                aid = next(ids)
                event = _alert(aid, cfg.detail_bytes)
                sent_at[aid] = time.monotonic()
                alerts += 1
            else:
                event = _position(n, cfg.vehicles)
                positions += 1
            publisher.publish(event)
            if sampler.cut_at is not None:
                owed += len(orjson.dumps(event.data))
            n += 1
        await asyncio.sleep(PUBLISH_TICK_S)
    return alerts, positions, owed
