"""Websocket subscriptions and fan-out (docs/ARCHITECTURE.md §6).

Shape of the fan-out, and why:

- A `Connection` (`realtime.connection`) owns a bounded frame queue (must-deliver frames
  ahead of droppable map updates) and one writer task; the hub only *enqueues*, so the bus,
  the other clients and ingest never wait on a slow client.
- Subscriptions with the same channel, the same role scope (`realtime.scope.Rule`) and the
  same filter share a `Group`: one bus listener, one predicate evaluation and one JSON
  encoding per event for the whole group, however many clients are in it. A city-wide
  map open on 1,000 screens is one group.
- A frame differs between subscribers only by the subscription id, so it is spliced from
  bytes: ``prefix(id) + data + b"}"`` — the data is encoded once per event (alerts, fills)
  or once per coalescing window (positions).
- Positions are coalesced per group: the latest row per `Event.key` is kept and flushed at
  most once per ``position_coalesce_ms``, so each subscription sees at most one frame per
  window.
- A new subscription joins its group *buffering* before its snapshot is read, so an event
  published while the snapshot query runs is neither lost nor shown before the snapshot;
  buffered rows already present in the snapshot are not sent twice.
- Every subscription is released when its connection ends; when a group's last
  subscription goes, its bus listener goes with it.
- The ``inbox`` channel has one group for all its subscriptions (`InboxGroup`): each row
  names its users and goes to their subscriptions only, found through the index below.
- Connections are indexed by user: a user holds at most ``ws_connections_per_user_max``
  sockets per process, and when the kernel announces ended sessions
  (`server.kernel.principal.SESSIONS_ENDED_CHANNEL`, carried to every process by the Redis
  bridge) the sockets of those sessions get a ``session_ended`` error and close with 4410
  (docs/WEBSOCKET.md "Close codes"). Nothing queued for them is sent any more.
- When rows may have been lost on their way to this process (the Redis bridge lost its
  subscription, or another process's sequence has a gap), `Hub.resync` tells the
  subscriptions of those channels and sends them a fresh snapshot (`realtime.resync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from realtime import protocol as proto
from realtime.connection import Connection, Drops, Subscription
from realtime.resync import Resyncs
from realtime.scope import LiveFilter, Predicate, Rule, compile_predicate
from server.domain.messages import CHANNEL_INBOX
from server.kernel.events import Bus, Event
from server.kernel.principal import SESSIONS_ENDED_CHANNEL, Principal
from server.kernel.settings import Realtime

log = logging.getLogger(__name__)

Row = Mapping[str, Any]

# ------------------------------------------------------------------ serialize once


def data_bytes(event: Event) -> bytes:
    """``[row]``: the data of a one-row event frame (the row is encoded once per event)."""
    return b"[" + proto.row_bytes(event) + b"]"


def row_key(event: Event) -> str:
    """Identity for coalescing and snapshot de-duplication."""
    if event.key is not None:
        return event.key
    data = event.data
    kind, ident = data.get("kind"), data.get("id")
    if kind is not None and ident is not None:
        return f"{kind}:{ident}"
    return f"#{id(event)}"


# ------------------------------------------------------------------ groups


class Group:
    """Subscriptions sharing channel, scope rule and filter: one listener, one encoding."""

    def __init__(self, hub: Hub, key: GroupKey, predicate: Predicate | None) -> None:
        self.hub = hub
        self.key = key
        self.channel = key.channel
        self.predicate = predicate
        self.subs: list[Subscription] = []
        self._remove_listener: Callable[[], None] | None = None

    def start(self, bus: Bus) -> None:
        self._remove_listener = bus.listen(self.channel, self.on_event, self.predicate)

    def stop(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None

    def on_event(self, event: Event) -> None:
        data = data_bytes(event)
        for sub in self.subs:
            if sub.buffering:
                sub.buffer.append(event)
            else:
                sub.conn.send(b"".join((sub.prefix, data, b"}")), sub.droppable, sub.id)

    def finish_snapshot(self, sub: Subscription, snapshot: list[Row] | None) -> None:
        """Send the snapshot, then what was published while it was read, minus repeats."""
        buffered = sub.buffer
        sub.buffer = []
        sub.buffering = False
        seen: set[Any] = set()
        if snapshot is not None:
            sub.conn.send(
                proto.event_prefix(sub.id, sub.channel, snapshot=True)
                + proto.dumps(snapshot)
                + b"}"
            )
            seen = {ident for row in snapshot if (ident := _identity(row)) is not None}
        for event in buffered:
            if seen and _identity(event.data) in seen:
                continue
            sub.conn.send(b"".join((sub.prefix, data_bytes(event), b"}")), sub.droppable, sub.id)


def _identity(row: Row) -> Any:
    """A row's version: the same alert with the same count and state is the same row."""
    ident = row.get("id")
    if ident is None:
        return None
    return (ident, row.get("count"), row.get("state"), row.get("last_at"))


class PositionGroup(Group):
    """Keeps the latest row per key and flushes at most once per coalescing window."""

    def __init__(self, hub: Hub, key: GroupKey, predicate: Predicate | None) -> None:
        super().__init__(hub, key, predicate)
        self.pending: dict[str, bytes] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.window_s = hub.settings.position_coalesce_ms / 1000

    def stop(self) -> None:
        super().stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_event(self, event: Event) -> None:
        self.pending[row_key(event)] = proto.row_bytes(event)
        for sub in self.subs:
            if sub.buffering:
                sub.buffer.append(event)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window_s, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self.pending:
            return
        data = b"[" + b",".join(self.pending.values()) + b"]"
        self.pending.clear()
        self.hub.position_frames += 1
        for sub in self.subs:
            if not sub.buffering:
                sub.conn.send(b"".join((sub.prefix, data, b"}")), True, sub.id)

    def finish_snapshot(self, sub: Subscription, snapshot: list[Row] | None) -> None:
        """One snapshot frame: stored positions, overwritten by newer live ones (by key)."""
        merged: dict[str, Row] = {}
        for row in snapshot or ():
            merged[f"{row.get('kind')}:{row.get('id')}"] = row
        for event in sub.buffer:
            merged[row_key(event)] = event.data
        sub.buffer = []
        sub.buffering = False
        sub.conn.send(
            proto.event_prefix(sub.id, sub.channel, snapshot=True)
            + proto.dumps(list(merged.values()))
            + b"}",
            True,
            sub.id,
        )


class KpiGroup(Group):
    """No bus listener: the KPI task computes one row per group per tick and sends it."""

    def start(self, bus: Bus) -> None:
        return None

    def deliver(self, row: Row) -> None:
        data = proto.dumps([row])
        for sub in self.subs:
            if not sub.buffering:
                sub.conn.send(b"".join((sub.prefix, data, b"}")), True, sub.id)


class InboxGroup(Group):
    """Every ``inbox`` subscription of this process: each row goes to the users it names.

    An inbox event carries ``{"users": [ids], "row": {...}}`` (``realtime.inbox``); the row
    is encoded once and sent to the subscriptions of those users only — found through the
    hub's index of connections by user when the row names fewer users than there are
    subscriptions, else by testing each subscription — and the list of users is never sent.
    The snapshot is the subscriber's counts (unread messages, notices to sign).
    """

    def start(self, bus: Bus) -> None:
        # no predicate: the rule (RECIPIENTS) admits nothing; routing by user is done here
        self._remove_listener = bus.listen(self.channel, self.on_event)

    def _subs_of(self, users: list[int]) -> list[Subscription]:
        if len(users) < len(self.subs):
            out: list[Subscription] = []
            for uid in users:
                for conn in self.hub.by_user.get(uid, ()):
                    out.extend(s for s in conn.subscriptions.values() if s.group is self)
            return out
        wanted = set(users)
        return [s for s in self.subs if s.conn.principal.user_id in wanted]

    def on_event(self, event: Event) -> None:
        users, row = event.data.get("users"), event.data.get("row")
        if not isinstance(users, list) or not isinstance(row, Mapping):
            return
        data: bytes | None = None
        for sub in self._subs_of(users):
            if sub.buffering:
                sub.buffer.append(event)
                continue
            if data is None:
                data = proto.dumps([row])
            sub.conn.send(b"".join((sub.prefix, data, b"}")), False, sub.id)

    def finish_snapshot(self, sub: Subscription, snapshot: list[Row] | None) -> None:
        buffered = sub.buffer
        sub.buffer = []
        sub.buffering = False
        sub.conn.send(
            proto.event_prefix(sub.id, sub.channel, snapshot=True)
            + proto.dumps(snapshot or [])
            + b"}"
        )
        for event in buffered:
            data = proto.dumps([event.data["row"]])
            sub.conn.send(b"".join((sub.prefix, data, b"}")), False, sub.id)


@dataclass(frozen=True, slots=True)
class GroupKey:
    channel: str
    rule: Rule
    filter: LiveFilter
    extra: tuple[Rule, ...] = ()
    """kpis: the rules of every entity the KPIs count (`realtime.kpis.KPI_ENTITIES`)."""


SnapshotFn = Callable[[Principal, str, Rule, LiveFilter], Awaitable[list[Row] | None]]


class Hub:
    """All websocket subscriptions of this process."""

    def __init__(self, bus: Bus, settings: Realtime, snapshot: SnapshotFn) -> None:
        self.bus = bus
        self.settings = settings
        self.snapshot = snapshot
        self.groups: dict[GroupKey, Group] = {}
        self.connections: set[Connection] = set()
        self.by_user: dict[int, set[Connection]] = {}
        self.position_frames = 0
        self.sessions_closed = 0
        self.drops = Drops()
        self.resyncs = Resyncs(self)
        self._remove_sessions_listener = bus.listen(SESSIONS_ENDED_CHANNEL, self.sessions_ended)

    def register(self, conn: Connection) -> bool:
        """Count *conn* in; False (not counted) if its user holds the maximum already."""
        conn.drops = self.drops
        mine = self.by_user.setdefault(conn.principal.user_id, set())
        if len(mine) >= self.settings.ws_connections_per_user_max:
            return False
        mine.add(conn)
        self.connections.add(conn)
        return True

    def sessions_ended(self, event: Event) -> None:
        """Close the sockets of the sessions the kernel ended (see the module docstring)."""
        data = event.data
        sessions = data.get("sessions")
        ended = None if sessions is None else frozenset(sessions)
        keep, api_keys = data.get("keep"), bool(data.get("api_keys"))
        for conn in list(self.by_user.get(int(data["user_id"]), ())):
            sid = conn.principal.session_id
            # a socket opened with an API key has no session: it ends with a deactivation
            hit = api_keys if sid is None else sid != keep and (ended is None or sid in ended)
            if hit:
                self.sessions_closed += 1
                conn.end(
                    proto.CLOSE_SESSION_ENDED,
                    b"session ended",
                    proto.error_frame(None, proto.SESSION_ENDED, "the session ended: log in again"),
                )

    def resync(self, channels: frozenset[str] | None, reason: str) -> None:
        """Rows of *channels* (None: every channel that crosses Redis) may have been lost on
        their way here: every subscription of them gets a ``resync`` notice, then a fresh
        snapshot where the channel has one (docs/WEBSOCKET.md "Resync")."""
        for group in list(self.groups.values()):
            if group.channel in proto.NOT_RESYNCED:
                continue
            if channels is None or group.channel in channels:
                self.resyncs.request(group, reason)

    def kpi_groups(self) -> list[KpiGroup]:
        return [g for g in self.groups.values() if isinstance(g, KpiGroup)]

    def _group(self, key: GroupKey) -> Group:
        group = self.groups.get(key)
        if group is None:
            predicate = compile_predicate(key.rule, key.filter)
            cls: type[Group]
            if key.channel == proto.POSITIONS:
                cls = PositionGroup
            elif key.channel == proto.KPIS:
                cls = KpiGroup
            elif key.channel == CHANNEL_INBOX:
                cls = InboxGroup
            else:
                cls = Group
            group = cls(self, key, predicate)
            group.start(self.bus)
            self.groups[key] = group
        return group

    async def subscribe(self, conn: Connection, sub_id: int, key: GroupKey) -> bool:
        """Join the group buffering, read the snapshot, then send result, snapshot, backlog.

        Returns False (and leaves nothing behind) when the snapshot cannot be read.
        """
        channel = key.channel
        group = self._group(key)
        sub = Subscription(
            conn,
            sub_id,
            channel,
            group,
            proto.event_prefix(sub_id, channel),
            channel in proto.DROPPABLE_CHANNELS,
        )
        group.subs.append(sub)
        conn.subscriptions[sub_id] = sub
        try:
            snapshot = await self.snapshot(conn.principal, channel, key.rule, key.filter)
        except Exception:
            log.exception("snapshot of %s for %r failed", channel, conn)
            self.unsubscribe(conn, sub_id)
            return False
        if conn.subscriptions.get(sub_id) is not sub:
            return True  # the connection ended meanwhile
        conn.send(proto.result_frame(sub_id, {"subscription": sub_id, "channel": channel}))
        group.finish_snapshot(sub, snapshot)
        return True

    def unsubscribe(self, conn: Connection, sub_id: int) -> bool:
        sub = conn.subscriptions.pop(sub_id, None)
        if sub is None:
            return False
        conn.forget(sub_id)
        group = sub.group
        with contextlib.suppress(ValueError):
            group.subs.remove(sub)
        if not group.subs:
            group.stop()
            self.groups.pop(group.key, None)
        return True

    def release(self, conn: Connection) -> None:
        """Drop every subscription of *conn* (it disconnected)."""
        for sub_id in list(conn.subscriptions):
            self.unsubscribe(conn, sub_id)
        self.connections.discard(conn)
        mine = self.by_user.get(conn.principal.user_id)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_user[conn.principal.user_id]

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "groups": len(self.groups),
            "subscriptions": sum(len(c.subscriptions) for c in self.connections),
            "position_frames": self.position_frames,
            "dropped": sum(c.dropped for c in self.connections),
            "sessions_closed": self.sessions_closed,
        }

    def close_all(self) -> None:
        self._remove_sessions_listener()
        self.resyncs.cancel()
        for group in list(self.groups.values()):
            group.stop()
        self.groups.clear()
