"""One websocket client's bounded send queue and writer task (docs/ARCHITECTURE.md §6).

`realtime.hub` fans events out; this module is what happens to a frame once the hub has
chosen a client for it (docs/WEBSOCKET.md "Slow clients"):

- `Connection.send` is synchronous and never waits: it only enqueues, so a client that
  cannot keep up costs the server nothing but its own queue. Must-deliver frames (results,
  alerts, fills...) queue ahead of droppable ones (positions, kpis). When the queue is full
  the stalest droppable frame goes first (a newer one supersedes it); if none is left the
  client is closed with 1013 and its queue is thrown away: it never silently loses an alert.
- Every frame not delivered is counted by reason in the process's `Drops` (one per hub),
  shown on ``/metrics`` (`realtime.metrics`), so a loss is never only a log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from realtime import protocol as proto
from server.kernel.events import Event
from server.kernel.principal import Principal
from server.kernel.settings import Realtime

if TYPE_CHECKING:
    from realtime.hub import Group

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Drops:
    """Frames this process's websockets did not deliver, by reason, and the 1013 closes."""

    superseded: int = 0
    """Stale ``positions``/``kpis`` frames dropped from a full queue for newer ones."""
    slow_client: int = 0
    """Frames thrown away with the queue of a client closed as too slow (1013)."""
    ended: int = 0
    """Frames thrown away with the queue of a connection ended by the server (4410, 1008)."""
    slow_closes: int = 0
    """Clients closed with 1013: their subscriptions lost frames; they must reconnect."""
    sent: int = 0
    """Frames written to sockets."""


@dataclass(eq=False, slots=True)
class Subscription:
    conn: Connection
    id: int
    channel: str
    group: Group
    prefix: bytes
    droppable: bool
    buffering: bool = True
    buffer: list[Event] = field(default_factory=list)


class Connection:
    """One websocket client: who it is, its subscriptions, its queue and writer task."""

    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, settings: Realtime) -> None:
        self.ws = ws
        self.principal = principal
        self.number = next(self._ids)
        self.subscriptions: dict[int, Subscription] = {}
        self.last_id = 0
        self.queue_max = settings.client_queue_max
        self.close_code: int | None = None
        self.close_reason = b""
        self.dropped = 0
        self.sent = 0
        self.drops = Drops()
        """The process's counters (`Hub.register` puts the hub's own here)."""
        # Two queues sharing one bound: frames that must arrive (results, alerts, fills...)
        # go before droppable ones (positions, kpis), so an alert never waits behind a
        # backlog of map updates; order within each queue is kept.
        self._urgent: deque[bytes] = deque()
        self._droppable: deque[tuple[int, bytes]] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.number} {self.principal.username}>"

    # -- enqueue (synchronous: called from bus listeners and timers)

    def send(self, frame: bytes, droppable: bool = False, sub_id: int = 0) -> None:
        """Queue *frame*; never waits. Overflow drops stale positions, then closes (1013)."""
        if self.close_code is not None:
            return
        if len(self._urgent) + len(self._droppable) >= self.queue_max:
            if self._droppable:
                self._droppable.popleft()  # the stalest position frame
                self.dropped += 1
                self.drops.superseded += 1
            elif droppable:
                self.dropped += 1
                self.drops.superseded += 1
                return
            else:
                self._overflow()
                return
        if droppable:
            self._droppable.append((sub_id, frame))
        else:
            self._urgent.append(frame)
        self._wake.set()

    def forget(self, sub_id: int) -> None:
        """Drop queued frames of an ended subscription: none may follow its unsubscribe."""
        if any(owner == sub_id for owner, _ in self._droppable):
            self._droppable = deque(item for item in self._droppable if item[0] != sub_id)

    def _overflow(self) -> None:
        log.warning(
            "websocket %r: %d frames queued and none droppable; closing it (1013)",
            self,
            len(self._urgent),
        )
        self.dropped += len(self._urgent)
        self.drops.slow_client += self.queued
        self.drops.slow_closes += 1
        self._urgent.clear()
        self._droppable.clear()
        self.close_code = proto.CLOSE_TRY_AGAIN_LATER
        self.close_reason = b"send queue full: too slow"
        if self._writer is not None:
            self._writer.cancel()  # it may be blocked on a full socket; it then closes

    def end(self, code: int, reason: bytes, frame: bytes | None = None) -> None:
        """Close with *code* after sending *frame* (an error result); nothing queued before
        it is sent any more, nothing after it is queued. Synchronous, like `send`."""
        if self.close_code is not None:
            return
        self.dropped += self.queued
        self.drops.ended += self.queued
        self._urgent.clear()
        self._droppable.clear()
        if frame is not None:
            self._urgent.append(frame)
        self.close_code = code
        self.close_reason = reason
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._urgent) + len(self._droppable)

    # -- the writer task

    def start_writer(self) -> asyncio.Task[None]:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        return self._writer

    async def _write_loop(self) -> None:
        ws = self.ws
        urgent = self._urgent
        try:
            while True:
                if urgent:
                    frame = urgent.popleft()
                elif self._droppable:
                    frame = self._droppable.popleft()[1]
                elif self.close_code is not None:
                    break
                else:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await ws.send_frame(frame, WSMsgType.TEXT)
                self.sent += 1
                self.drops.sent += 1
        except asyncio.CancelledError:
            if self.close_code is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except (ConnectionError, RuntimeError):
            return  # the peer went away; the handler notices and cleans up
        if self.close_code is not None:
            # drain=False: a client that stopped reading would block a draining close
            await ws.close(code=self.close_code, message=self.close_reason, drain=False)

    async def stop_writer(self) -> None:
        task = self._writer
        if task is None or task.done():
            return
        if self.close_code is None:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
