"""The fill-authorization reply path: a process of its own — event loop, MQTT connection
and PostgreSQL connections — so a gun's answer never waits behind the batch writer.

Why (docs/ARCHITECTURE.md §11, docs/BENCHMARKS.md "Fill authorization"): measured with 1,000
telemetry msg/s in the background, the reply's time went into queueing inside the worker's
one event loop — waiting for an authorizer connection whose result sat unread while the loop
ran batch work (p99 0.5–0.8 s) — while the same query from a process of its own took p99
~20–50 ms and never waited on a lock. A thread with its own loop was tried first and was
worse (p99 0.75–0.96 s, runaway queues): every wake-up of the reply thread has to take the
GIL back from the batch thread (up to the 5 ms switch interval, longer when the holder is
preempted on a loaded machine). A process has its own interpreter and is scheduled on its
own; it does nothing but answer guns.

- The reply process (:mod:`ingest.reply_child`, started by the worker and restarted if it
  dies) holds an MQTT connection (client id ``<worker>-auth``, a persistent session like the
  worker's) subscribed to requests only: ``$share/<group>/cyl/v1/gun/+/auth``. MQTT has no
  filter for "everything but", so the batch connection's ``$share/<group>/cyl/v1/#`` still
  receives a copy of each request: the worker drops it on its topic, before parsing, and
  acks it at once (:func:`is_auth_request`); the copy answered and stored is the reply
  process's.
- Each request is decided as before (:class:`ingest.auth.FillAuthorizer`: one query on the
  reply process's own connections, the pure rule of ``server.domain``), the reply is
  published, then the answered request goes to the worker over a socket pair and is stored
  with the worker's next batch (its rows, counters, alerts and live events as before).
- Zero loss: the reply process acks a request only when the worker reports the batch holding
  it committed (:meth:`ReplyProcess.committed`), in arrival order; if either side dies, the
  unacked requests are redelivered to the persistent session and (``msg_id``, ``ts``)
  de-duplication absorbs a second answer's row.

:class:`Answerer` is the answering itself, shared with the worker's in-loop fallback (used
only by harnesses that give the worker an in-memory transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import msgspec

from ingest.auth import AuthOutcome, FillAuthorizer, reply_topic_for
from ingest.metrics import Metrics
from ingest.schemas import GunAuth, MessageKind, Parsed
from ingest.store.context import Item
from ingest.transport import BrokerAddress, Incoming, Transport, TransportError
from server.domain.localtime import city_date
from server.kernel.settings import Settings

__all__ = [
    "Answerer",
    "Handed",
    "ReplyProcess",
    "ReplyTicket",
    "db_away",
    "is_auth_request",
    "read_frame",
    "reply_subscription",
    "write_frame",
]

log = logging.getLogger(__name__)

RETRYABLE: Final[tuple[type[BaseException], ...]] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, starting up
    asyncpg.exceptions.TransactionRollbackError,  # deadlock, serialization failure
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
)
"""The database is away, not the data wrong: the same request (or batch: the worker's
``TRANSIENT_DB_ERRORS`` is this tuple) is tried again after a pause (`db_away`)."""


CLOSED_CONNECTION: Final = "the underlying connection is closed"
"""asyncpg's words for a call on a connection that is gone (its ``InterfaceError`` has no
subclass of its own for it)."""


def db_away(exc: BaseException) -> bool:
    """*exc* says the database went away (`RETRYABLE`), itself or through the error it was
    raised while handling. A connection closed under an open transaction surfaces as
    asyncpg's ``InterfaceError`` ("cannot call Transaction.__aexit__(): the underlying
    connection is closed"), raised while the transaction handled the lost connection — or
    alone, when the connection closed before the commit. Taken for bad data, it split the
    batch and would have dead-lettered a good message of one (tests/ingest/test_zero_loss.py,
    a PostgreSQL restart in the middle of a commit)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, RETRYABLE):
            return True
        if isinstance(cur, asyncpg.InterfaceError) and CLOSED_CONNECTION in str(cur):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


STABLE_AFTER_S: Final = 60.0
"""A reply process that ran this long before dying is restarted at once, not backed off."""

STOP_WAIT_S: Final = 15.0
"""How long the worker waits for the reply process to leave after asking it to."""


def reply_subscription(settings: Settings) -> str:
    """The reply path's filter: gun requests only, in the workers' shared group (the
    broker's ingest role grants ``$share/<group>/cyl/v1/#``, which covers it)."""
    return f"$share/{settings.ingest.shared_group}/cyl/v1/gun/+/auth"


def is_auth_request(topic: str) -> bool:
    """``cyl/v1/gun/{id}/auth`` exactly (not ``…/auth/reply``): the reply path's own."""
    return topic.startswith("cyl/v1/gun/") and topic.endswith("/auth") and topic.count("/") == 4


@dataclass(frozen=True, slots=True)
class ReplyTicket:
    """Where a request handed over by the reply process is acked: that process (its
    incarnation: one that died cannot ack any more) and the request's number there."""

    incarnation: int
    rid: int


HandOver = Callable[[Item, ReplyTicket], None]
"""Give an answered (or refused) request to the batch writer, with its ticket."""


class Handed(msgspec.Struct, array_like=True):
    """A request the reply process hands to the worker: answered (``auth``) or refused
    (``reject``: junk on a gun's auth topic, for the dead letters). Sent as MessagePack —
    pickling the item (its ``Parsed``, ``AuthOutcome`` dataclasses) cost ~100–400 µs a
    request here, this ~5 µs."""

    rid: int
    topic: str
    payload: bytes
    received_at: datetime
    reject: str | None = None
    device_id: str = ""
    body: GunAuth | None = None
    ts: datetime | None = None
    auth: AuthOutcome | None = None

    @classmethod
    def of(cls, rid: int, item: Item) -> Handed:
        parsed = item.parsed
        if parsed is None or not isinstance(parsed.body, GunAuth):
            return cls(rid, item.topic, item.payload, item.received_at, item.reject or "?")
        return cls(
            rid,
            item.topic,
            item.payload,
            item.received_at,
            None,
            parsed.device_id,
            parsed.body,
            parsed.ts,
            item.auth,
        )

    def item(self) -> Item:
        item = Item(self.topic, self.payload, self.received_at, reject=self.reject)
        if self.body is not None and self.ts is not None:
            item.parsed = Parsed(MessageKind.AUTH, "gun", self.device_id, self.body, self.ts)
            item.auth = self.auth
        return item


_LEN = struct.Struct(">I")
_PICKLED = b"P"
_HANDED = b"H"
_encode = msgspec.msgpack.Encoder().encode
_decode_handed = msgspec.msgpack.Decoder(Handed).decode


def write_frame(writer: asyncio.StreamWriter, message: object) -> None:
    """One message on the socket pair: a 4-byte length, a kind byte, the body — a
    :class:`Handed` as MessagePack, anything else (settings, commands, figures: a few a
    second) pickled; both ends are this program, the pair is the worker's and its child's."""
    if isinstance(message, Handed):
        body = _HANDED + _encode(message)
    else:
        body = _PICKLED + pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LEN.pack(len(body)) + body)


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message; :class:`asyncio.IncompleteReadError` when the other side left."""
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    body = await reader.readexactly(size)
    if body[:1] == _HANDED:
        return _decode_handed(body[1:])
    return pickle.loads(body[1:])  # noqa: S301 - our own child


class Answerer:
    """Decide one request, publish the reply, record where the time went."""

    def __init__(self, settings: Settings, authorizer: FillAuthorizer, metrics: Metrics) -> None:
        self.settings = settings
        self.authorizer = authorizer
        self.metrics = metrics

    async def answer(
        self,
        item: Item,
        incoming: Incoming,
        started: float,
        transport: Transport | None,
        abandoned: Callable[[], bool],
        who: str,
    ) -> bool:
        """Set ``item.auth``; False if given up (the worker is stopping, database away)."""
        parsed = item.parsed
        assert parsed is not None and isinstance(parsed.body, GunAuth)
        body = parsed.body
        m = self.metrics
        m.auth_phases["queued"].add(time.perf_counter() - started)
        delay = self.settings.ingest.reconnect_min_s
        while True:
            now = datetime.now(UTC)
            try:
                outcome = await self.authorizer.decide(
                    parsed.device_id, body.tag, city_date(now, self.settings.alerts), now, started
                )
                break
            except Exception as exc:
                if not db_away(exc):
                    raise
                if abandoned():
                    return False
                log.warning(
                    "ingest %s: cannot authorize fill (PostgreSQL unavailable: %s);"
                    " retrying in %.1f s",
                    who,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.ingest.reconnect_max_s)
        reply = self.authorizer.reply_payload(body.msg_id, outcome, int(now.timestamp() * 1000))
        own = reply_topic_for(parsed.device_id)
        topic = own
        if incoming.response_topic and (
            incoming.response_topic == own or incoming.response_topic.startswith(own + "/")
        ):
            # only inside the gun's own reply space: a device must not be able to make the
            # platform publish "allow" onto another gun's topic
            topic = incoming.response_topic
        m.auth_requests += 1
        if not outcome.decision.allowed:
            m.auth_denied += 1
        if transport is not None:
            publishing = time.perf_counter()
            try:
                await transport.publish(topic, reply, 1, correlation_data=incoming.correlation_data)
            except TransportError as exc:
                log.warning("ingest %s: auth reply to %s not sent: %s", who, topic, exc)
            m.auth_phases["publish"].add(time.perf_counter() - publishing)
        # receipt → broker's PUBACK of the reply: an upper bound of what the gun waits
        m.auth_latency.add(time.perf_counter() - started)
        item.auth = outcome
        return True


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait for the child to leave (it does once its socket closes); kill it if it lingers
    or if we are cancelled — never leave it running unwatched."""
    try:
        await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(asyncio.CancelledError):
            await proc.wait()
        raise


class ReplyProcess:
    """The worker's side of the reply process (see the module docstring).

    Driven by the worker: :meth:`start` (spawn; *on_ready* is called each time the child has
    subscribed), *hand_over* for each request it sends, :meth:`committed` after each commit,
    :meth:`drain` when stopping (the child takes no more requests and finishes those being
    answered — they reach the batch writer), then :meth:`close` once the last batch is
    committed (the child sends its acks before disconnecting). A child that dies is
    restarted with the same client id, so its session's unacked requests come back to it.
    """

    def __init__(
        self,
        settings: Settings,
        address: BrokerAddress,
        client_id: str,
        metrics: Metrics,
        hand_over: HandOver,
        on_ready: Callable[[], None],
        *,
        dsn: str | None = None,
    ) -> None:
        self.settings = settings
        self.address = address
        self.client_id = client_id
        self.metrics = metrics
        self._hand_over = hand_over
        self._on_ready = on_ready
        self._dsn = dsn or settings.services.database_url
        self._incarnation = 0
        self._writer: asyncio.StreamWriter | None = None
        self._drained = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self.pid: int | None = None
        """The running child's process id (tests and operators)."""

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.client_id}-sup")

    def committed(self, tickets: list[ReplyTicket]) -> None:
        """The batch holding these requests is committed: the child may ack them."""
        rids = [t.rid for t in tickets if t.incarnation == self._incarnation]
        writer = self._writer
        if rids and writer is not None and not writer.is_closing():
            write_frame(writer, ("committed", rids))

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a bounded wait
        """Take no more requests; wait (at most *timeout*) for those being answered."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        self._drained.clear()
        write_frame(writer, ("drain", timeout))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout + 1)

    async def close(self) -> None:
        """Ask the child to send its acks and leave; wait for it (then kill it)."""
        self._closing = True
        writer = self._writer
        if writer is not None and not writer.is_closing():
            write_frame(writer, ("close",))
        if self._supervisor is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._supervisor), STOP_WAIT_S)
            except TimeoutError:
                self._supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._supervisor

    # ------------------------------------------------------------------ the child

    async def _supervise(self) -> None:
        delay = self.settings.ingest.reconnect_min_s
        while not self._closing:
            began = time.monotonic()
            try:
                await self._run_child()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest %s: the reply process failed", self.client_id)
            self.metrics.reply_connected = False
            if self._closing:
                break
            if time.monotonic() - began > STABLE_AFTER_S:
                delay = self.settings.ingest.reconnect_min_s
            log.error(
                "ingest %s: the fill-authorization process exited; restarting it in %.1f s"
                " (its unanswered requests are redelivered to it)",
                self.client_id,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.ingest.reconnect_max_s)

    async def _run_child(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # the child imports this very code, wherever the worker found it
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ingest.reply_child",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        finally:
            theirs.close()
        self.pid = proc.pid
        self._incarnation += 1
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=ours)
            level = logging.getLogger().getEffectiveLevel()
            start = ("start", self.settings, self.address, self.client_id, self._dsn, level)
            write_frame(writer, start)
            self._writer = writer
            while True:
                self._dispatch(await read_frame(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the child left (asked to, or died)
        finally:
            self._writer = None
            if writer is not None:
                writer.close()
            else:
                ours.close()
            self._drained.set()
            await _reap(proc)

    def _dispatch(self, message: Handed | tuple[Any, ...]) -> None:
        if isinstance(message, Handed):
            self._hand_over(message.item(), ReplyTicket(self._incarnation, message.rid))
            return
        kind = message[0]
        if kind == "metrics":
            self._merge_metrics(message[1], message[2])
        elif kind == "ready":
            self._on_ready()
        elif kind == "drained":
            self._drained.set()

    def _merge_metrics(self, samples: dict[str, list[float]], connected: bool) -> None:
        m = self.metrics
        for name, values in samples.items():
            if name.startswith("phase:"):
                window = m.auth_phases[name[6:]]
            elif name == "auth_latency":
                window = m.auth_latency
            else:
                window = m.reply_loop_lag
            for value in values:
                window.add(value)
        m.reply_connected = connected
