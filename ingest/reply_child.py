"""The fill-authorization process: answers gun requests, nothing else (``ingest.replies``).

Started by its worker as ``python -m ingest.reply_child FD``; FD is one end of a socket pair
on which the worker sends the settings first, then ``committed`` / ``drain`` / ``close``,
and this process sends ``ready``, each answered (or refused) request as a
:class:`~ingest.replies.Handed` (the worker counts requests and refusals from these), its latency samples as ``metrics`` and
``drained``. It leaves when asked, or when the worker is gone
(end of the socket): then nothing more is acked and the broker redelivers what was not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from ingest.auth import FillAuthorizer
from ingest.metrics import AUTH_PHASES, LatencyWindow, Metrics, probe_loop_lag
from ingest.mqtt_link import BrokerBackoff
from ingest.replies import Answerer, Handed, read_frame, reply_subscription, write_frame
from ingest.schemas import GunAuth, Parsed, Rejected, parse
from ingest.store.context import Item
from ingest.transport import BrokerAddress, Incoming, Transport, TransportError, make_transport
from server.kernel.settings import Settings

__all__ = ["main"]

log = logging.getLogger(__name__)

METRICS_EVERY_S: Final = 0.5
"""How often this process's new latency samples and counts go to the worker, whose
``/metrics`` shows them: fresh enough for a scrape, a few hundred floats a message."""


@dataclass(slots=True)
class _Slot:
    """A request's place in this connection's ack order."""

    rid: int
    mid: int
    qos: int
    generation: int
    done: bool = False


class ReplyService:
    """The reply path proper: its MQTT connection, its pool, the answering, the acks."""

    def __init__(
        self,
        settings: Settings,
        address: BrokerAddress,
        client_id: str,
        dsn: str,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.settings = settings
        self.address = address
        self.client_id = client_id
        self.dsn = dsn
        self.writer = writer
        self.metrics = Metrics(client_id)
        self._skew = timedelta(hours=settings.ingest.max_future_skew_h)
        self._transport: Transport | None = None
        self._generation = 0
        self._next_rid = 0
        self._acks: deque[_Slot] = deque()
        self._slots: dict[int, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._shipped: dict[str, int] = {}

    def _send(self, message: object) -> None:
        if not self.writer.is_closing():
            write_frame(self.writer, message)

    # ------------------------------------------------------------------ life

    async def run(self, reader: asyncio.StreamReader) -> None:
        pool = await self._create_pool()
        authorizer = FillAuthorizer(self.settings, pool, self.metrics)
        answerer = Answerer(self.settings, authorizer, self.metrics)
        helpers = [
            asyncio.create_task(probe_loop_lag(self.metrics.reply_loop_lag)),
            asyncio.create_task(self._ship_metrics()),
        ]
        mqtt = asyncio.create_task(self._connection_loop(answerer))
        try:
            await self._commands(reader)
        finally:
            mqtt.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mqtt  # DISCONNECT after the acks written so far
            for task in [*helpers, *self._tasks]:
                task.cancel()
            self._ship()
            await authorizer.close()
            await pool.close()

    async def _commands(self, reader: asyncio.StreamReader) -> None:
        """The worker's messages until ``close`` or its end of the socket."""
        while True:
            try:
                message = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                log.warning("ingest %s: the worker is gone; leaving", self.client_id)
                return
            kind = message[0]
            if kind == "committed":
                self._committed(message[1])
            elif kind == "drain":
                self._stopping = True
                if self._tasks:
                    await asyncio.wait(set(self._tasks), timeout=message[1])
                self._ship()
                self._send(("drained",))
            elif kind == "close":
                return

    async def _create_pool(self) -> asyncpg.Pool:
        from server.db.pool import create_pool
        from server.kernel.services import ServiceUnavailable

        n = max(1, self.settings.ingest.auth_connections)
        delay = self.settings.ingest.reconnect_min_s
        while True:
            try:
                # connections open as requests need them (min_size 0): a database away at
                # start is retried per request, like the worker's own
                return await create_pool(self.settings, dsn=self.dsn, min_size=0, max_size=n)
            except ServiceUnavailable as exc:
                log.warning("ingest %s: %s; retrying in %.1f s", self.client_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.ingest.reconnect_max_s)

    # ------------------------------------------------------------------ MQTT

    async def _connection_loop(self, answerer: Answerer) -> None:
        settings = self.settings.ingest
        backoff = BrokerBackoff(settings.reconnect_min_s, settings.reconnect_max_s)
        topic = reply_subscription(self.settings)
        while True:
            transport = make_transport(
                settings.transport,
                self.address,
                client_id=self.client_id,
                session_expiry_s=settings.session_expiry_s,
                receive_maximum=settings.receive_maximum,
                timeout_s=self.settings.services.connect_timeout_s,
            )
            try:
                async with transport:
                    self._generation += 1
                    self._transport = transport
                    self.metrics.reply_connected = True
                    await transport.subscribe(topic, 1)
                    log.info("ingest %s subscribed to %s", self.client_id, topic)
                    backoff.connected()
                    self._send(("ready",))
                    async for incoming in transport.messages():
                        self._on_message(incoming, answerer)
            except TransportError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "ingest %s: MQTT broker at %s unavailable (%s); waiting %.1f s before"
                    " reconnecting (unanswered requests will be redelivered)",
                    self.client_id,
                    self.address.url,
                    exc,
                    delay,
                )
            else:
                delay = backoff.next_delay()
            finally:
                self._transport = None
                self.metrics.reply_connected = False
            await asyncio.sleep(delay)

    def _on_message(self, incoming: Incoming, answerer: Answerer) -> None:
        if self._stopping:
            return  # not acked: redelivered to this session later
        started = time.perf_counter()
        self._next_rid += 1
        slot = _Slot(self._next_rid, incoming.mid, incoming.qos, self._generation)
        self._acks.append(slot)
        self._slots[slot.rid] = slot
        now = datetime.now(UTC)
        try:
            result = parse(incoming.topic, incoming.payload, now, self._skew)
        except Exception as exc:  # parse never raises; belt and braces for the process
            log.exception("parser failed on %s", incoming.topic[:200])
            result = Rejected(f"undecodable: {type(exc).__name__}")
        item = Item(incoming.topic, incoming.payload, now)
        if isinstance(result, Parsed) and isinstance(result.body, GunAuth):
            item.parsed = result
            task = asyncio.create_task(self._answer(answerer, item, slot, incoming, started))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        # junk on a gun's auth topic: the batch stores it as a dead letter, nothing answered
        item.reject = result.reason if isinstance(result, Rejected) else "unknown topic"
        self._send(Handed.of(slot.rid, item))

    async def _answer(
        self, answerer: Answerer, item: Item, slot: _Slot, incoming: Incoming, started: float
    ) -> None:
        answered = await answerer.answer(
            item, incoming, started, self._transport, lambda: False, self.client_id
        )
        if answered:
            self._send(Handed.of(slot.rid, item))

    def _committed(self, rids: list[int]) -> None:
        for rid in rids:
            slot = self._slots.pop(rid, None)
            if slot is not None:
                slot.done = True
        transport = self._transport
        while self._acks and self._acks[0].done:
            slot = self._acks.popleft()
            if slot.qos and transport is not None and slot.generation == self._generation:
                transport.ack(slot.mid, slot.qos)
        if len(self._slots) > len(self._acks):  # slots of a dead connection, never to ack
            live = {s.rid for s in self._acks}
            self._slots = {rid: s for rid, s in self._slots.items() if rid in live}

    # ------------------------------------------------------------------ figures

    async def _ship_metrics(self) -> None:
        while True:
            await asyncio.sleep(METRICS_EVERY_S)
            self._ship()

    def _ship(self) -> None:
        m = self.metrics
        windows: dict[str, LatencyWindow] = {
            "auth_latency": m.auth_latency,
            "reply_loop_lag": m.reply_loop_lag,
            **{f"phase:{p}": m.auth_phases[p] for p in AUTH_PHASES},
        }
        samples: dict[str, list[float]] = {}
        for name, window in windows.items():
            new = window.count - self._shipped.get(name, 0)
            if new:
                samples[name] = window.recent(new)
                self._shipped[name] = window.count
        self._send(("metrics", samples, m.reply_connected))


async def _main(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        start: tuple[Any, ...] = await read_frame(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    _, settings, address, client_id, dsn, level = start
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s [{client_id}] %(levelname)s %(name)s: %(message)s",
    )
    service = ReplyService(settings, address, client_id, dsn, writer)
    try:
        await service.run(reader)
    finally:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # its life is its worker's: a Ctrl-C or a SIGTERM to the process group stops the worker,
    # which commits, lets this process send its acks, then closes it
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        import uvloop

        uvloop.run(_main(int(args[0])))
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio's loop works
        asyncio.run(_main(int(args[0])))


if __name__ == "__main__":
    main()
