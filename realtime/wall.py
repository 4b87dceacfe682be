"""The command-centre wall over ``/ws``: its ``wall`` channel and the ``wall_switch`` command
(docs/WEBSOCKET.md; DESIGN §8 "an authorised user switches the wall's layout live" 授权控制;
docs/ARCHITECTURE.md §6).

- ``subscribe`` to ``wall`` (admins and regulators, no filter): the snapshot is the layout the
  subscriber's own wall shows now — its scope is what the account sees
  (``server.domain.wall.scope_of``: ``city``, or its districts) — then one row each time
  that wall is switched or its layout changes, published by whichever server process made
  the change (the Redis bridge carries it). Routing costs nothing new: the scope rides in
  ``Event.district`` and the subscription's rule is ``district ∈ {scope}``, so the hub's plain
  `Group` hands a switch to the walls of that scope only, one group per scope however many
  walls watch it.
- ``wall_switch`` ``{layout, scope?}``: the same switch as ``POST
  /api/v1/wall-layouts/{id}/activate`` (``server.db.wall_layouts.switch``: the same checks,
  audit row and event); the result is the wall's new ``{scope, layout, switched_at,
  switched_by}``. A phone on ``/m`` already holds a socket, so a switch costs one frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import asyncpg
from aiohttp import web

from realtime import protocol as proto
from realtime.connection import Connection
from realtime.hub import GroupKey, Hub
from realtime.scope import LiveFilter, Rule
from server.db import wall_layouts as store
from server.domain import wall as domain
from server.kernel.appkeys import BUS, POOL
from server.kernel.errors import service_down

__all__ = ["CHANNEL_WALL", "snapshot", "subscribe", "switch"]

CHANNEL_WALL: Final = domain.CHANNEL_WALL

_REFUSALS: Final = {
    "not_found": proto.NOT_FOUND,
    "forbidden": proto.FORBIDDEN,
    "invalid": proto.INVALID_SCOPE,
    "conflict": proto.INVALID_SCOPE,
}


def _refuse(conn: Connection, msg_id: int, code: str, message: str, field: str | None) -> None:
    conn.send(proto.error_frame(msg_id, code, message, field))


async def subscribe(hub: Hub, conn: Connection, cmd: proto.Subscribe) -> None:
    """Join the group of the subscriber's wall (see the module docstring)."""
    p = conn.principal
    if p.role not in domain.SWITCH_ROLES:
        _refuse(conn, cmd.id, proto.FORBIDDEN, f"role {p.role} has no wall", "channel")
        return
    flt = cmd.filter
    if flt is not None and (flt.bbox is not None or flt.district is not None or flt.company):
        _refuse(conn, cmd.id, proto.INVALID_FILTER, "filter: the wall takes no filter", "filter")
        return
    if len(conn.subscriptions) >= hub.settings.subscriptions_max:
        _refuse(
            conn,
            cmd.id,
            proto.TOO_MANY_SUBSCRIPTIONS,
            f"at most {hub.settings.subscriptions_max} subscriptions per connection",
            None,
        )
        return
    scope = domain.scope_of(p.city_wide, p.districts)
    key = GroupKey(CHANNEL_WALL, Rule("district", frozenset({scope})), LiveFilter())
    if not await hub.subscribe(conn, cmd.id, key):
        _refuse(
            conn, cmd.id, proto.UNAVAILABLE, "the current state cannot be read; try again", None
        )


async def snapshot(pool: asyncpg.Pool, rule: Rule) -> list[Mapping[str, Any]]:
    """The layout the wall of the rule's scope shows now (one row)."""
    scope = str(next(iter(rule.values)))
    return [await store.current(pool, scope)]


async def switch(request: web.Request, conn: Connection, cmd: proto.WallSwitch) -> None:
    """Run a ``wall_switch`` command; every outcome is a result frame."""
    app = request.app
    try:
        row = await store.switch(
            app[POOL],
            app[BUS],
            conn.principal,
            cmd.layout,
            cmd.scope,
            remote=request.remote,
            via="ws",
        )
    except store.WallRefusal as exc:
        _refuse(conn, cmd.id, _REFUSALS[exc.kind], str(exc), exc.field)
        return
    except Exception as exc:
        if not service_down(exc):
            raise
        _refuse(conn, cmd.id, proto.UNAVAILABLE, "the database cannot be reached; try again", None)
        return
    conn.send(proto.result_frame(cmd.id, row))
