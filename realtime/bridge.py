"""Redis pub/sub between processes: any server process delivers what any process published.

docs/ARCHITECTURE.md §2: ingest workers and server processes are separate; Redis carries live events
between them and nothing lives only in one process's memory.

- Every event published on a process's local bus by that process (``origin`` None) is
  encoded once and PUBLISHed to ``[realtime] redis_channel`` stamped with the process's
  origin id. Publishing only enqueues; one task sends the queue in pipelined batches,
  so a slow or absent Redis never blocks ingest or the bus (the oldest queued events are
  dropped past ``bridge_queue_max``, counted and logged).
- One long-lived subscriber task per server process receives the channel and republishes
  into the local bus the events of *other* origins: a process never gets its own events
  back (no echo), and local subscribers see each event exactly once.
- When Redis goes away the subscriber logs it, retries with exponential backoff
  (``bridge_reconnect_min_s`` → ``bridge_reconnect_max_s``) and logs when it is back.
  Events published while it was away are lost for live views (pub/sub keeps nothing);
  the database has them, and snapshots on (re)subscribe read the database.

The channel is ``[realtime] redis_channel`` suffixed with the database name
(:func:`bridge_channel`): processes of one platform share it, a test session never hears a
demo server on the same Redis.

Wire format: ``header + b"\\n" + row``. The header is a JSON array of the `Event` fields;
the row is `Event.data` as JSON. orjson never emits a raw newline, so the first newline
splits them, and the row bytes travel on to the websocket frames unchanged (`Event.raw`).

A process without aiohttp (``cylwatch ingest --workers N``) calls :func:`attach_publisher`
with its own bus: the same publisher, without a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from realtime.protocol import row_bytes
from server.kernel.events import Bus, Event
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

# Events that never cross processes: each process computes its own KPIs.
LOCAL_CHANNELS = frozenset({"kpis"})
_PUBLISH_BATCH = 500
"""PUBLISHes per pipeline round trip (a batching granularity, not a behaviour setting)."""
_POLL_S = 0.1
"""The subscriber wakes this often to notice a stop request. It is not cancelled instead:
redis-py's blocking pubsub read can swallow a cancellation and block again."""


def bridge_channel(settings: Settings) -> str:
    """The Redis channel: ``[realtime] redis_channel`` + ``:`` + the PostgreSQL database name.

    Live events only mean something to processes sharing a database. Redis pub/sub ignores
    the Redis database number, so without this a test session (its own database) and a
    demo server on the same Redis would see each other's events.
    """
    dbname = urlsplit(settings.services.database_url).path.lstrip("/") or "postgres"
    return f"{settings.realtime.redis_channel}:{dbname}"


def new_origin() -> str:
    """A process's identity on the channel: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def encode(event: Event, origin: str) -> bytes:
    header = orjson.dumps(
        [
            origin,
            event.channel,
            event.district,
            event.company_id,
            event.site_id,
            event.lat,
            event.lon,
            event.key,
            event.ts,
        ]
    )
    return header + b"\n" + row_bytes(event)


def decode(message: bytes) -> Event:
    """The inverse of :func:`encode`; raises ValueError on a malformed message."""
    head, sep, raw = message.partition(b"\n")
    if not sep:
        raise ValueError("no header separator")
    origin, channel, district, company_id, site_id, lat, lon, key, ts = orjson.loads(head)
    data = orjson.loads(raw)
    if not isinstance(channel, str) or not isinstance(data, dict):
        raise ValueError("bad channel or data")
    return Event(channel, data, district, company_id, site_id, lat, lon, key, ts, origin, raw)


def _client(url: str, settings: Settings) -> Redis:
    # No hidden retries inside redis-py: the loops here own reconnection, so it is logged.
    return Redis.from_url(
        url,
        socket_connect_timeout=settings.services.connect_timeout_s,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
    )


class RedisPublisher:
    """Queues encoded events and PUBLISHes them in pipelined batches from one task."""

    def __init__(
        self, settings: Settings, *, origin: str | None = None, redis_url: str | None = None
    ) -> None:
        rt = settings.realtime
        self.settings = settings
        self.url = redis_url or settings.services.redis_url
        self.channel = bridge_channel(settings)
        self.origin = origin or new_origin()
        self.published = 0
        self.dropped = 0
        self._queue: deque[bytes] = deque()
        self._queue_max = rt.bridge_queue_max
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._redis: Redis | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._down_since: float | None = None

    def publish(self, event: Event) -> None:
        """Queue *event* for Redis (synchronous; never waits)."""
        if event.channel in LOCAL_CHANNELS:
            return
        self.enqueue(encode(event, self.origin))

    def enqueue(self, message: bytes) -> None:
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._wake.set()

    def attach(self, bus: Bus, own: Callable[[Event], bool]) -> None:
        """Forward every event of *bus* that *own* accepts (this process's events)."""
        self._remove_listener = bus.listen(None, self.publish, own)

    def start(self) -> None:
        self._redis = _client(self.url, self.settings)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-publisher")

    async def aclose(self) -> None:
        """Stop listening, send what is queued (bounded by the connect timeout), close."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.settings.services.connect_timeout_s)
            except TimeoutError:
                log.warning("realtime publisher: %d event(s) unsent at shutdown", len(self._queue))
            self._task = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _run(self) -> None:
        assert self._redis is not None
        rt = self.settings.realtime
        delay = rt.bridge_reconnect_min_s
        queue = self._queue
        while True:
            if not queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), _PUBLISH_BATCH))]
            try:
                pipe = self._redis.pipeline(transaction=False)
                for message in batch:
                    pipe.publish(self.channel, message)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning(
                        "realtime publisher: Redis %s unreachable (%s); live events are dropped "
                        "until it is back (start it: scripts/services.sh)",
                        self.url,
                        exc,
                    )
                if self._closing:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, rt.bridge_reconnect_max_s)
                continue
            if self._down_since is not None:
                log.info(
                    "realtime publisher: Redis %s is back after %.1f s (%d event(s) dropped)",
                    self.url,
                    time.monotonic() - self._down_since,
                    self.dropped,
                )
                self._down_since = None
            delay = rt.bridge_reconnect_min_s
            self.published += len(batch)


async def attach_publisher(bus: Bus, settings: Settings) -> RedisPublisher:
    """For a process with no websocket server (a separate ingest process).

    Every event published on *bus* is sent to Redis, where every server process picks it
    up. Call ``await publisher.aclose()`` at shutdown to flush and stop.
    """
    publisher = RedisPublisher(settings)
    publisher.attach(bus, lambda e: e.origin is None)
    publisher.start()
    return publisher


class RedisBridge:
    """Both directions for a server process: publish own events, deliver everyone else's."""

    def __init__(self, bus: Bus, settings: Settings) -> None:
        self.bus = bus
        self.settings = settings
        self.origin = new_origin()
        self.publisher = RedisPublisher(settings, origin=self.origin)
        self.received = 0
        self.delivered = 0
        self.bad_messages = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def _own(self, event: Event) -> bool:
        return event.origin is None or event.origin == self.origin

    async def start(self) -> None:
        self.publisher.attach(self.bus, self._own)
        self.publisher.start()
        self._task = asyncio.get_running_loop().create_task(
            self._subscribe_loop(), name="redis-subscriber"
        )

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(self._task), self.settings.services.connect_timeout_s
                )
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.publisher.aclose()

    def deliver(self, message: bytes) -> None:
        """One message from Redis into the local bus, unless it is our own."""
        self.received += 1
        try:
            event = decode(message)
        except (ValueError, TypeError) as exc:
            self.bad_messages += 1
            log.warning("realtime bridge: ignoring a malformed message (%s): %.80r", exc, message)
            return
        if event.origin == self.origin:
            return
        self.delivered += 1
        self.bus.publish(event)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _subscribe_loop(self) -> None:
        rt = self.settings.realtime
        url = self.settings.services.redis_url
        delay = rt.bridge_reconnect_min_s
        down_since: float | None = None
        while not self._stop.is_set():
            client = _client(url, self.settings)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(bridge_channel(self.settings))
                if down_since is not None:
                    log.info(
                        "realtime bridge: subscribed to Redis %s again after %.1f s",
                        url,
                        time.monotonic() - down_since,
                    )
                    down_since = None
                self.connected.set()
                delay = rt.bridge_reconnect_min_s
                while not self._stop.is_set():
                    message: dict[str, Any] | None = await pubsub.get_message(timeout=_POLL_S)
                    if message is not None and message.get("type") == "message":
                        self.deliver(message["data"])
            except (RedisError, OSError) as exc:
                self.connected.clear()
                if down_since is None:
                    down_since = time.monotonic()
                log.warning(
                    "realtime bridge: Redis %s lost (%s: %s); live events from other processes "
                    "stop until it is back; retrying in %.1f s",
                    url,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, rt.bridge_reconnect_max_s)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
                except (RedisError, OSError):  # pragma: no cover - closing a dead socket
                    pass
