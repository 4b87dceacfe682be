"""Redis pub/sub between processes: any server process delivers what any process published.

docs/ARCHITECTURE.md §2: ingest workers and server processes are separate; Redis carries live events
between them and nothing lives only in one process's memory.

- Every event published on a process's local bus by that process (``origin`` None) is
  encoded once and PUBLISHed to ``[realtime] redis_channel`` stamped with the process's
  origin id and a sequence number per channel. Publishing only enqueues; one task sends
  the queue in pipelined batches, so a slow or absent Redis never blocks ingest or the
  bus. Past ``bridge_queue_max`` queued events one is dropped, the oldest droppable one
  first (``positions``, ``kpis``: a newer one supersedes it, as in the websocket queues,
  docs/WEBSOCKET.md "Slow clients"); an alert or a fill goes only when nothing droppable
  is left. Every drop is counted on ``/metrics`` (`realtime.metrics`), and once the queue
  has drained a *tick* (no event, the channel's last number) tells the subscribers how far
  each channel that lost events got, so a loss at the end of a burst is noticed at once.
- One long-lived subscriber task per server process receives the channel and republishes
  into the local bus the events of *other* origins: a process never gets its own events
  back (no echo), and local subscribers see each event exactly once.
- When Redis goes away (or closes the subscriber, e.g. past its
  ``client-output-buffer-limit pubsub``) the subscriber logs it, retries with exponential
  backoff (``bridge_reconnect_min_s`` → ``bridge_reconnect_max_s``) and logs when it is
  back. Events published meanwhile are lost for live views (pub/sub keeps nothing); the
  database has them. So once subscribed again it asks the hub to *resync* every
  subscription (`realtime.resync`: a ``resync`` notice, then a fresh snapshot), and it does
  the same for a channel whose sequence from another process skips numbers (a gap: that
  publisher dropped them, or Redis lost them). A loss is never silent to a live client.

The channel is ``[realtime] redis_channel`` suffixed with the database name
(:func:`bridge_channel`): processes of one platform share it, a test session never hears a
demo server on the same Redis.

Wire format: ``header + b"\\n" + row``. The header is a JSON array of the `Event` fields
and the sequence number (a header of the 9 fields alone, from an older process, carries no
sequence and is never taken for a gap); the row is `Event.data` as JSON. orjson never emits a raw newline, so the first newline
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

from realtime.protocol import DROPPABLE_CHANNELS, RESYNC_GAP, RESYNC_RECONNECTED, row_bytes
from server.kernel.events import Bus, Event
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

# Events that never cross processes: each process computes its own KPIs.
LOCAL_CHANNELS = frozenset({"kpis"})
_PUBLISH_BATCH = 500
"""PUBLISHes per pipeline round trip (a batching granularity, not a behaviour setting)."""
_ORIGINS_MAX = 10_000
"""Sequences followed at most (origin × channel): past this the table starts afresh, which
only misses a gap straddling that moment. Processes and CLI calls each bring a new origin."""
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


def encode(event: Event, origin: str, seq: int | None = None) -> bytes:
    fields = [
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
    if seq is not None:
        fields.append(seq)
    return orjson.dumps(fields) + b"\n" + row_bytes(event)


def encode_tick(origin: str, channel: str, seq: int) -> bytes:
    """No event: "my last number on *channel* is *seq*". Sent after drops, so a subscriber
    notices lost events at the end of a burst too, not only when the next event comes."""
    return orjson.dumps([origin, channel, None, None, None, None, None, None, None, seq, 1]) + (
        b"\n{}"
    )


def decode_sequenced(message: bytes) -> tuple[Event, int | None, bool]:
    """The inverse of :func:`encode` and :func:`encode_tick`: the event, its sequence number
    (None: none sent) and whether it is only a tick (no event to deliver).

    Raises ValueError on a malformed message (a process older than ticks says so of one)."""
    head, sep, raw = message.partition(b"\n")
    if not sep:
        raise ValueError("no header separator")
    fields = orjson.loads(head)
    if not isinstance(fields, list) or len(fields) not in (9, 10, 11):
        raise ValueError("bad header")
    origin, channel, district, company_id, site_id, lat, lon, key, ts = fields[:9]
    seq = fields[9] if len(fields) >= 10 else None
    data = orjson.loads(raw)
    if not isinstance(channel, str) or not isinstance(data, dict):
        raise ValueError("bad channel or data")
    if seq is not None and not isinstance(seq, int):
        raise ValueError("bad sequence number")
    event = Event(channel, data, district, company_id, site_id, lat, lon, key, ts, origin, raw)
    return event, seq, len(fields) == 11


def decode(message: bytes) -> Event:
    """The event of :func:`decode_sequenced`."""
    return decode_sequenced(message)[0]


def _client(url: str, settings: Settings, name: str) -> Redis:
    """A connection of its own, named *name* in Redis's ``CLIENT LIST`` (``cylwatch:pub:`` or
    ``cylwatch:sub:`` + the origin), so an operator sees whose output buffer grows there."""
    # No hidden retries inside redis-py: the loops here own reconnection, so it is logged.
    return Redis.from_url(
        url,
        socket_connect_timeout=settings.services.connect_timeout_s,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
        client_name=name,
    )


class RedisPublisher:
    """Queues encoded events and PUBLISHes them in pipelined batches from one task.

    Two queues share one bound, as a websocket's do (`realtime.connection`): must-deliver
    events are sent first and dropped last. ``dropped`` counts every event not sent,
    ``dropped_must`` those of them that were not droppable (alerts, fills, ...): each of
    those shows as a gap to the subscribers, which resync their clients.
    """

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
        self.dropped_must = 0
        self._urgent: deque[tuple[str, bytes]] = deque()
        self._droppable: deque[bytes] = deque()
        self._seq: dict[str, int] = {}
        self._tails: set[str] = set()
        """Channels that lost must-deliver events since their last tick (`encode_tick`)."""
        self._queue_max = rt.bridge_queue_max
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._redis: Redis | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._down_since: float | None = None

    @property
    def queued(self) -> int:
        return len(self._urgent) + len(self._droppable)

    def publish(self, event: Event) -> None:
        """Queue *event* for Redis (synchronous; never waits)."""
        channel = event.channel
        if channel in LOCAL_CHANNELS:
            return
        # numbered when queued, so that an event dropped here is a gap downstream
        seq = self._seq[channel] = self._seq.get(channel, 0) + 1
        message = encode(event, self.origin, seq)
        if channel in DROPPABLE_CHANNELS:
            self.enqueue(message, droppable=True)
        else:
            self.enqueue(message, channel=channel)

    def enqueue(self, message: bytes, *, droppable: bool = False, channel: str = "") -> None:
        if self.queued >= self._queue_max:
            self.dropped += 1
            if self._droppable:
                self._droppable.popleft()  # the stalest position: a newer one supersedes it
            elif droppable:
                return
            else:
                self._tails.add(self._urgent.popleft()[0])
                self.dropped_must += 1
                if self.dropped_must == 1 or self.dropped_must % self._queue_max == 0:
                    log.warning(
                        "realtime publisher: %d events queued for Redis, none droppable;"
                        " %d alert/fill/... event(s) dropped so far (subscribers resync)",
                        self.queued,
                        self.dropped_must,
                    )
        if droppable:
            self._droppable.append(message)
        else:
            self._urgent.append((channel, message))
        self._wake.set()

    def _queue_ticks(self) -> None:
        for channel in self._tails:
            if channel in self._seq:
                self._urgent.append(
                    (channel, encode_tick(self.origin, channel, self._seq[channel]))
                )
        self._tails.clear()

    def attach(self, bus: Bus, own: Callable[[Event], bool]) -> None:
        """Forward every event of *bus* that *own* accepts (this process's events)."""
        self._remove_listener = bus.listen(None, self.publish, own)

    def start(self) -> None:
        self._redis = _client(self.url, self.settings, f"cylwatch:pub:{self.origin}")
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
                log.warning("realtime publisher: %d event(s) unsent at shutdown", self.queued)
            self._task = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _run(self) -> None:
        assert self._redis is not None
        rt = self.settings.realtime
        delay = rt.bridge_reconnect_min_s
        urgent, droppable = self._urgent, self._droppable
        while True:
            if not urgent and not droppable:
                if self._tails and self._down_since is None:
                    self._queue_ticks()  # the burst is sent: say how far each channel got
                    continue
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            must_batch = [urgent.popleft() for _ in range(min(len(urgent), _PUBLISH_BATCH))]
            must = len(must_batch)
            batch = [message for _, message in must_batch]
            batch += [
                droppable.popleft() for _ in range(min(len(droppable), _PUBLISH_BATCH - must))
            ]
            try:
                pipe = self._redis.pipeline(transaction=False)
                for message in batch:
                    pipe.publish(self.channel, message)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                self.dropped_must += must
                self._tails.update(channel for channel, _ in must_batch)
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


Resync = Callable[[frozenset[str] | None, str], None]
"""``(channels, reason)``: rows of *channels* (None: all) may be lost; tell the clients
(`realtime.hub.Hub.resync`)."""


class RedisBridge:
    """Both directions for a server process: publish own events, deliver everyone else's.

    ``disconnects`` counts subscriptions lost, ``gaps`` the events of other processes
    known never to have arrived (by their sequence numbers), ``resyncs`` the times the hub
    was asked to resync; *on_loss* is how it is asked.
    """

    def __init__(self, bus: Bus, settings: Settings, on_loss: Resync | None = None) -> None:
        self.bus = bus
        self.settings = settings
        self.origin = new_origin()
        self.publisher = RedisPublisher(settings, origin=self.origin)
        self.received = 0
        self.delivered = 0
        self.bad_messages = 0
        self.disconnects = 0
        self.gaps = 0
        self.resyncs = 0
        self.on_loss = on_loss
        self._seqs: dict[tuple[str, str], int] = {}
        self._gapped: set[str] = set()
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
            event, seq, tick = decode_sequenced(message)
        except (ValueError, TypeError) as exc:
            self.bad_messages += 1
            log.warning("realtime bridge: ignoring a malformed message (%s): %.80r", exc, message)
            return
        if event.origin == self.origin:
            return
        if seq is not None and event.origin is not None:
            self._follow(event.origin, event.channel, seq, tick)
        if tick:
            return
        self.delivered += 1
        self.bus.publish(event)

    def _follow(self, origin: str, channel: str, seq: int, tick: bool) -> None:
        """Note *seq*; a jump past the next number (for a tick: past the last one heard) is
        a gap: resync that channel soon."""
        key = (origin, channel)
        last = self._seqs.get(key)
        if last is None and len(self._seqs) >= _ORIGINS_MAX:
            self._seqs.clear()
        self._seqs[key] = seq
        if last is None:
            return  # first heard: nothing to compare with
        missing = seq - last - (0 if tick else 1)
        if missing <= 0:
            return
        self.gaps += missing
        if channel in DROPPABLE_CHANNELS:
            return  # superseded by the next row anyway: counted, no resync
        if not self._gapped:
            asyncio.get_running_loop().call_soon(self._resync_gapped)
        self._gapped.add(channel)

    def _resync_gapped(self) -> None:
        """One request for the gaps of one read burst (scheduled by `_follow`)."""
        channels = frozenset(self._gapped)
        self._gapped.clear()
        log.warning(
            "realtime bridge: events of other processes lost on the way (%d so far);"
            " resyncing the subscriptions of %s",
            self.gaps,
            ", ".join(sorted(channels)),
        )
        self._resync(channels, RESYNC_GAP)

    def _resync(self, channels: frozenset[str] | None, reason: str) -> None:
        self.resyncs += 1
        if self.on_loss is not None:
            self.on_loss(channels, reason)

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
            client = _client(url, self.settings, f"cylwatch:sub:{self.origin}")
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(bridge_channel(self.settings))
                if down_since is not None:
                    log.info(
                        "realtime bridge: subscribed to Redis %s again after %.1f s;"
                        " resyncing every subscription",
                        url,
                        time.monotonic() - down_since,
                    )
                    down_since = None
                    self._seqs.clear()  # what was missed is resynced as a whole
                    self._resync(None, RESYNC_RECONNECTED)
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
                    self.disconnects += 1
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
