"""The ingest worker: MQTT in, batches committed, acks after commit, live events out.

One worker is one MQTT v5 session with a fixed client id (``<prefix>-<index>``), a session
expiry and ``clean_start = False``, subscribed with QoS 1 to the shared subscription
``$share/<group>/cyl/v1/#`` so N workers split the traffic (docs/ARCHITECTURE.md §2, §5). Zero loss rests
on three rules:

- a QoS 1 message is acknowledged only after the batch holding it is committed, in
  arrival order (an ack queue of slots; a slot is sent when it and all before it are done);
- an ack belongs to one connection: after a reconnect the old slots are dropped unsent —
  the broker redelivers those messages and ``(msg_id, ts)`` de-duplication absorbs them;
- a batch that cannot be committed (PostgreSQL down) is kept and retried with backoff,
  never dropped; a batch that fails for a data reason is split in halves until the one
  bad message is isolated and dead-lettered, so one poison message cannot wedge a worker.

``client.messages`` is read by a single long-lived task (cancelling a pending read can
drop a message). Fill-authorization requests are answered by a process of their own, with
its own event loop, MQTT connection and PostgreSQL connections (:mod:`ingest.replies`), so
no batch can hold a gun's answer up; this connection's copy of a request is dropped on its
topic, and the answered request joins a batch afterwards (docs/ARCHITECTURE.md §11).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

from ingest import housekeeping
from ingest.auth import FillAuthorizer
from ingest.metrics import Metrics, probe_loop_lag
from ingest.mqtt_link import BrokerBackoff
from ingest.replies import (
    RETRYABLE,
    Answerer,
    ReplyProcess,
    ReplyTicket,
    db_away,
    is_auth_request,
)
from ingest.schemas import Ignored, MessageKind, Parsed, Rejected, parse
from ingest.store.batch import YIELD_EVERY, BatchResult, BatchStore
from ingest.store.context import Item
from ingest.transport import (
    TRANSPORTS,
    Incoming,
    Transport,
    TransportError,
    make_transport,
    parse_mqtt_url,
)
from server.kernel.districts import District, DistrictIndex, load_districts
from server.kernel.events import Bus, Event
from server.kernel.settings import Settings

__all__ = ["TRANSIENT_DB_ERRORS", "IngestWorker", "subscription_topic"]

log = logging.getLogger(__name__)

TRANSIENT_DB_ERRORS: Final = RETRYABLE
"""Errors after which the same batch is retried unchanged: the database is away, not
the data wrong."""

COMMITS_IN_FLIGHT: Final = 1
"""Batches of one worker written concurrently (each on its own pooled connection). 2 was
measured (docs/BENCHMARKS.md "Ingest transport"): slower, not faster — consecutive batches
lock the same cylinder rows (``FOR UPDATE``), so the second waits for the first's commit
and both hold their locks longer; 1 keeps the write path strictly sequential."""

STOP_GRACE_S: Final = 10.0
"""On stop, how long to keep trying to commit what was received before leaving it
unacknowledged for the broker to redeliver."""


def subscription_topic(settings: Settings) -> str:
    return f"$share/{settings.ingest.shared_group}/cyl/v1/#"


@dataclass(slots=True)
class _Slot:
    """One received message's place in the ack order."""

    mid: int
    qos: int
    generation: int
    done: bool = False


TransportFactory = Callable[[], Transport]

Pending = tuple[Item, "_Slot | ReplyTicket | None", float]
"""A message waiting for a batch: the item, its ack slot (on the worker's connection, or on
the reply process's), when it was queued."""


class IngestWorker:
    """Consume, validate, store, authorize, alert. ``run()`` until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        bus: Bus,
        worker_index: int = 0,
        mqtt_url: str | None = None,
        *,
        client_id: str | None = None,
        districts: list[District] | None = None,
        transport_factory: TransportFactory | None = None,
        dsn: str | None = None,
    ) -> None:
        """*transport_factory*: the batch connection (default: ``[ingest] transport`` to
        *mqtt_url*). A harness that gives one (an in-memory transport) gets no reply
        process: requests arriving on it are answered on the worker's own loop. *dsn*: the
        reply process's database (default ``[services] database_url``, the one *pool* is
        expected to use)."""
        self.settings = settings
        self.pool = pool
        self.bus = bus
        self.worker_index = worker_index
        self.client_id = client_id or f"{settings.ingest.client_id_prefix}-{worker_index}"
        self.address = parse_mqtt_url(mqtt_url or settings.services.mqtt_url)
        self.metrics = Metrics(self.client_id)
        self.authorizer = FillAuthorizer(settings, pool, self.metrics)
        """Answers on this loop — only without a reply process (see ``__init__``)."""
        self._answerer = Answerer(settings, self.authorizer, self.metrics)
        self._reply_ready = asyncio.Event()
        self.replies: ReplyProcess | None = None
        """The fill-authorization process's handle (``None`` with an in-memory transport)."""
        if transport_factory is None:
            self.replies = ReplyProcess(
                settings,
                self.address,
                f"{self.client_id}-auth",
                self.metrics,
                self._enqueue_reply,
                self._reply_ready.set,
                dsn=dsn,
            )
        self._batch_subscribed = asyncio.Event()
        self._districts_given = districts
        if transport_factory is None and settings.ingest.transport not in TRANSPORTS:
            raise ValueError(
                f"[ingest] transport must be one of {', '.join(TRANSPORTS)},"
                f" not {settings.ingest.transport!r}"
            )
        self._transport_factory = transport_factory or self._default_transport
        self._store: BatchStore | None = None
        self._skew = timedelta(hours=settings.ingest.max_future_skew_h)
        self._transport: Transport | None = None
        self._generation = 0
        self._acks: deque[_Slot] = deque()
        self._pending: list[Pending] = []
        self._commit_slots = asyncio.Semaphore(COMMITS_IN_FLIGHT)
        self._commits: set[asyncio.Task[None]] = set()
        self._have_items = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._stopping = False
        self._abandon = False
        self._stopped = asyncio.Event()
        self._auth_tasks: set[asyncio.Task[None]] = set()
        self._seq = itertools.count()
        # /metrics reads them at scrape time; bound to the containers (never replaced), not
        # to the worker, so that the metrics hold no reference back to it
        self.metrics.pending = self._pending.__len__
        self.metrics.unacked = self._acks.__len__
        self._reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once subscribed (tests and benchmarks wait on it)."""

    # ------------------------------------------------------------------ plumbing

    def _default_transport(self) -> Transport:
        return make_transport(
            self.settings.ingest.transport,
            self.address,
            client_id=self.client_id,
            session_expiry_s=self.settings.ingest.session_expiry_s,
            receive_maximum=self.settings.ingest.receive_maximum,
            timeout_s=self.settings.services.connect_timeout_s,
        )

    async def _prepare(self) -> BatchStore:
        """District boundaries: the database's (foreign-key targets), else the GeoJSON."""
        delay = self.settings.ingest.reconnect_min_s
        while True:
            try:
                rows = await self.pool.fetch(
                    "SELECT code, name, coalesce(name_en, name) AS name_en, boundary"
                    " FROM districts ORDER BY code"
                )
                break
            except TRANSIENT_DB_ERRORS as exc:
                log.warning(
                    "ingest %s: PostgreSQL unavailable (%s); retrying in %.1f s",
                    self.client_id,
                    _brief(exc),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.ingest.reconnect_max_s)
        known = [r["code"] for r in rows]
        if self._districts_given is not None:
            districts = self._districts_given
        elif rows:
            districts = [District(r["code"], r["name"], r["name_en"], r["boundary"]) for r in rows]
        else:
            districts = load_districts()
        return BatchStore(self.settings, DistrictIndex(districts), known, self.client_id)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Run until :meth:`stop`; never raises for broker or database outages."""
        self._store = await self._prepare()
        if self.replies is not None:
            await self.replies.start()
        else:
            self._reply_ready.set()
        flusher = asyncio.create_task(self._flush_loop(), name=f"{self.client_id}-flush")
        keeper = asyncio.create_task(self._housekeeping_loop(), name=f"{self.client_id}-hk")
        probe = asyncio.create_task(
            probe_loop_lag(self.metrics.loop_lag), name=f"{self.client_id}-lag"
        )
        announcer = asyncio.create_task(self._announce_ready())
        self._reader = asyncio.create_task(self._connection_loop(), name=f"{self.client_id}-mqtt")
        try:
            await self._stopped.wait()
        finally:
            # 1. no new messages are taken (the readers ignore them: unacked, redelivered)
            self._stopping = True
            keeper.cancel()
            probe.cancel()
            announcer.cancel()
            # 2. answered auth requests join the batch; 3. everything received is committed
            abandon = asyncio.get_running_loop().call_later(STOP_GRACE_S, self._give_up)
            try:
                if self.replies is not None:
                    await self.replies.drain(STOP_GRACE_S)
                if self._auth_tasks:
                    await asyncio.wait(self._auth_tasks, timeout=STOP_GRACE_S)
                self._have_items.set()
                self._batch_full.set()
                await flusher
            finally:
                abandon.cancel()
                # 4. disconnect (acks were written before the DISCONNECT): the reply process
                # gets the last batch's "committed" before its "close" — and is closed even
                # if this stop is cancelled, never left running unwatched
                if self.replies is not None:
                    await self.replies.close()
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            for task in self._auth_tasks:
                task.cancel()
            await self.authorizer.close()
            log.info("ingest %s stopped: %s", self.client_id, self.metrics.snapshot())

    def _give_up(self) -> None:
        log.warning(
            "ingest %s: could not commit within %.0f s of stop; %d message(s) left"
            " unacknowledged for redelivery",
            self.client_id,
            STOP_GRACE_S,
            len(self._pending),
        )
        self._abandon = True

    async def stop(self) -> None:
        """Ask :meth:`run` to finish: commit and ack what was received, then disconnect."""
        self._stopped.set()

    # ------------------------------------------------------------------ MQTT

    async def _connection_loop(self) -> None:
        settings = self.settings.ingest
        backoff = BrokerBackoff(settings.reconnect_min_s, settings.reconnect_max_s)
        topic = subscription_topic(self.settings)
        while True:
            transport = self._transport_factory()
            try:
                async with transport:
                    self._generation += 1
                    self._transport = transport
                    self.metrics.connected = True
                    self.metrics.reconnects += 1
                    await transport.subscribe(topic, 1)
                    log.info(
                        "ingest %s connected to %s, subscribed to %s",
                        self.client_id,
                        self.address.url,
                        topic,
                    )
                    backoff.connected()
                    self._batch_subscribed.set()
                    async for incoming in transport.messages():
                        self._on_message(incoming)
            except TransportError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "ingest %s: MQTT broker at %s unavailable (%s); waiting %.1f s before"
                    " reconnecting (unacknowledged messages will be redelivered)",
                    self.client_id,
                    self.address.url,
                    exc,
                    delay,
                )
            else:
                delay = backoff.next_delay()
            finally:
                self._transport = None
                self.metrics.connected = False
            await asyncio.sleep(delay)

    async def _announce_ready(self) -> None:
        """:attr:`ready` once both connections are subscribed (a request published before
        the reply connection's subscription exists would have no one to answer it)."""
        await self._batch_subscribed.wait()
        await self._reply_ready.wait()
        self.ready.set()

    def _on_message(self, incoming: Incoming) -> None:
        """Called for each message, in arrival order, by the one reader task."""
        if self._stopping:
            return  # not acked: the broker redelivers it to this session later
        slot = _Slot(incoming.mid, incoming.qos, self._generation)
        self._acks.append(slot)
        if self.replies is not None and is_auth_request(incoming.topic):
            # the reply process's copy is answered and stored; this one is acked now
            self.metrics.ignored += 1
            slot.done = True
            self._drain_acks()
            return
        self.metrics.received += 1
        now = datetime.now(UTC)
        try:
            result = parse(incoming.topic, incoming.payload, now, self._skew)
        except Exception as exc:  # parse never raises; belt and braces for the worker's life
            log.exception("parser failed on %s", incoming.topic[:200])
            result = Rejected(f"undecodable: {type(exc).__name__}")
        if isinstance(result, Ignored):
            self.metrics.ignored += 1
            slot.done = True
            self._drain_acks()
            return
        item = Item(incoming.topic, incoming.payload, now, seq=next(self._seq))
        if isinstance(result, Rejected):
            item.reject = result.reason
        else:
            item.parsed = result
        if isinstance(result, Parsed) and result.kind is MessageKind.AUTH:
            task = asyncio.create_task(self._authorize(item, slot, incoming, time.perf_counter()))
            self._auth_tasks.add(task)
            task.add_done_callback(self._auth_tasks.discard)
            return
        self._enqueue(item, slot)

    def _enqueue_reply(self, item: Item, slot: ReplyTicket) -> None:
        """From the reply process: an answered (or refused) request for the next batch."""
        m = self.metrics
        m.received += 1
        if item.auth is not None:
            m.auth_requests += 1
            m.auth_denied += not item.auth.decision.allowed
        item.seq = next(self._seq)
        self._enqueue(item, slot)

    def _enqueue(self, item: Item, slot: _Slot | ReplyTicket | None) -> None:
        self._pending.append((item, slot, time.monotonic()))
        self._have_items.set()
        if len(self._pending) >= self.settings.ingest.batch_max_rows:
            self._batch_full.set()

    def _drain_acks(self) -> None:
        """Send the acks at the head of the queue whose batches are committed."""
        transport = self._transport
        while self._acks and self._acks[0].done:
            slot = self._acks.popleft()
            if slot.qos and transport is not None and slot.generation == self._generation:
                transport.ack(slot.mid, slot.qos)

    # ------------------------------------------------------------------ fill authorization

    async def _authorize(self, item: Item, slot: _Slot, incoming: Incoming, started: float) -> None:
        """Without a reply process only (an in-memory harness): answer on this loop."""
        answered = await self._answerer.answer(
            item, incoming, started, self._transport, lambda: self._abandon, self.client_id
        )
        if answered:
            self._enqueue(item, slot)

    # ------------------------------------------------------------------ batches

    async def _flush_loop(self) -> None:
        max_rows = self.settings.ingest.batch_max_rows
        max_wait = self.settings.ingest.batch_max_ms / 1000
        while True:
            await self._have_items.wait()
            if not self._pending:
                self._have_items.clear()
                if self._stopping:
                    break
                continue
            deadline = self._pending[0][2] + max_wait
            while len(self._pending) < max_rows and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._batch_full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_full.wait(), remaining)
            # at most COMMITS_IN_FLIGHT batches are being written at once; with more than
            # one, acks still leave in arrival order (the ack queue waits for the older)
            await self._commit_slots.acquire()
            batch = self._pending[:max_rows]
            del self._pending[:max_rows]
            if not self._pending:
                self._have_items.clear()
                self._batch_full.clear()
                if self._stopping:
                    self._have_items.set()
            task = asyncio.create_task(self._commit_in_slot(batch))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)
            if self._abandon:
                break
        if self._commits:
            await asyncio.wait(set(self._commits))

    async def _commit_in_slot(self, batch: list[Pending]) -> None:
        try:
            await self._commit(batch)
        finally:
            self._commit_slots.release()

    async def _commit(self, batch: list[Pending]) -> None:
        """Commit *batch* (retrying while the database is away), then ack and publish."""
        store = self._store
        assert store is not None
        delay = self.settings.ingest.reconnect_min_s
        items = [b[0] for b in batch]
        while True:
            started = time.perf_counter()
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    result = await store.store(conn, items)
                    stored_at = time.perf_counter()
                result.phases["commit"] = time.perf_counter() - stored_at
                break
            except Exception as exc:
                if not db_away(exc):
                    if len(batch) == 1:
                        await self._poison(batch[0], exc)
                        return
                    log.error(
                        "ingest %s: batch of %d failed (%s); splitting to isolate the bad message",
                        self.client_id,
                        len(batch),
                        _brief(exc),
                    )
                    half = len(batch) // 2
                    await self._commit(batch[:half])
                    await self._commit(batch[half:])
                    return
                self.metrics.db_retries += 1
                log.warning(
                    "ingest %s: PostgreSQL unavailable (%s); holding %d message(s)"
                    " unacknowledged, retrying in %.1f s",
                    self.client_id,
                    _brief(exc),
                    len(batch),
                    delay,
                )
                if self._abandon:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.ingest.reconnect_max_s)
        self._committed(batch, result, time.perf_counter() - started)
        await self._release(result.events)

    def _committed(self, batch: list[Pending], result: BatchResult, seconds: float) -> None:
        m = self.metrics
        m.batches += 1
        m.batch_rows += len(batch)
        m.batch_latency.add(seconds)
        m.stored += result.stored
        m.duplicates += result.duplicates
        m.alerts_raised += result.alerts
        m.batch_phases.update(result.phases)
        for reason in result.dead_letters:
            m.dead_letter(reason)
        replied: list[ReplyTicket] = []
        for _, slot, _ in batch:
            if isinstance(slot, ReplyTicket):
                replied.append(slot)  # acked by the reply process, on its connection
            elif slot is not None:
                slot.done = True
        if replied and self.replies is not None:
            self.replies.committed(replied)

    async def _release(self, events: list[Event]) -> None:
        """Ack the committed messages (in arrival order) and publish their live events,
        giving the loop a turn every few hundred so a waiting gun is answered meanwhile."""
        transport = self._transport
        n = 0
        while self._acks and self._acks[0].done:
            slot = self._acks.popleft()
            if slot.qos and transport is not None and slot.generation == self._generation:
                transport.ack(slot.mid, slot.qos)
            n += 1
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        for i, event in enumerate(events, 1):
            self.bus.publish(event)
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _poison(self, entry: Pending, exc: Exception) -> None:
        """A message that passed validation but cannot be stored: dead-letter it."""
        item = entry[0]
        reason = f"storage failed: {type(exc).__name__}: {str(exc)[:300]}"
        log.error(
            "ingest %s: dead-lettering a message on %s: %s",
            self.client_id,
            item.topic[:200],
            reason,
        )
        bad = Item(item.topic, item.payload, item.received_at, reject=reason, seq=item.seq)
        await self._commit([(bad, entry[1], entry[2])])

    # ------------------------------------------------------------------ periodic rules

    async def _housekeeping_loop(self) -> None:
        interval = self.settings.ingest.housekeeping_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                events = await housekeeping.run_once(self.pool, self.settings)
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("ingest %s: periodic rules skipped (%s)", self.client_id, _brief(exc))
                continue
            except Exception:
                log.exception("ingest %s: periodic rules failed", self.client_id)
                continue
            for event in events:
                self.bus.publish(event)


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
