"""Telling subscriptions that live rows were lost on the way, and giving them the state back.

A subscription can miss rows without its client being slow (docs/WEBSOCKET.md "Resync"):
the Redis bridge (`realtime.bridge`) lost its subscription — Redis restarted, or closed it
past its ``client-output-buffer-limit pubsub`` — or rows another process published never
arrived (a gap in that process's sequence numbers: its publisher dropped them from a full
queue, or Redis was unreachable). The database has every row; the live stream does not.
Silently carrying on would leave a regulator's screen without an alert it should show, so
every subscription of the channel gets:

1. a ``resync`` notice ``{"id": <subscription>, "type": "resync", "channel", "reason"}``:
   the client knows rows may be missing;
2. on channels with a snapshot, a fresh snapshot frame, read *after* the notice. The
   subscription buffers live rows meanwhile, as at subscribe (`realtime.hub.Hub.subscribe`),
   so there is no gap and no repeat between the snapshot and what follows. Streams without
   a snapshot (``fills``, ``events``, ``devices``) get the notice alone; the REST API has
   their rows.

The snapshot is read once per group (its subscriptions share channel, scope rule and
filter, so they see the same rows). One round runs per group at a time; a loss reported
while a round reads its snapshot runs one more round after it, since the lost row may have
been committed after that snapshot was read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from realtime import protocol as proto

if TYPE_CHECKING:
    from realtime.hub import Group, GroupKey, Hub

log = logging.getLogger(__name__)


class Resyncs:
    """The resync rounds of one hub, and how many notices they sent (for ``/metrics``)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.rounds = 0
        self.notices = 0
        self.failed = 0
        """Rounds whose snapshot could not be read: the notice went out, the state did not."""
        self._running: set[GroupKey] = set()
        self._again: dict[GroupKey, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def request(self, group: Group, reason: str) -> None:
        """Start a round for *group*, or one more after the round it is in."""
        if group.key in self._running:
            self._again[group.key] = reason
            return
        self._running.add(group.key)
        task = asyncio.get_running_loop().create_task(self._rounds(group, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _rounds(self, group: Group, reason: str | None) -> None:
        try:
            while reason is not None and self.hub.groups.get(group.key) is group:
                await self._round(group, reason)
                reason = self._again.pop(group.key, None)
        finally:
            self._running.discard(group.key)
            self._again.pop(group.key, None)

    async def _round(self, group: Group, reason: str) -> None:
        # subscriptions still reading their first snapshot get everything up to it anyway
        subs = [s for s in group.subs if not s.buffering]
        if not subs:
            return
        self.rounds += 1
        for sub in subs:
            sub.buffering = True
            sub.buffer = []
            sub.conn.send(proto.resync_frame(sub.id, sub.channel, reason))
        self.notices += len(subs)
        key = group.key
        try:
            snapshot = await self.hub.snapshot(
                subs[0].conn.principal, key.channel, key.rule, key.filter
            )
        except Exception:
            log.exception("resync of %s: the snapshot could not be read", key.channel)
            self.failed += 1
            snapshot = None
        for sub in subs:
            if sub.conn.subscriptions.get(sub.id) is not sub:
                continue  # unsubscribed or gone meanwhile
            if snapshot is None and key.channel == proto.POSITIONS:
                # no snapshot frame of buffered rows alone: a client would take it for the
                # whole map. Positions are superseded by the next fix anyway.
                sub.buffer = []
                sub.buffering = False
                continue
            group.finish_snapshot(sub, snapshot)
