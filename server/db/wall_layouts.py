"""Wall layouts in PostgreSQL, and the switch of a wall's layout (docs/API.md "Wall layouts").

One module for every writer, because a switch comes in two ways — ``POST
/api/v1/wall-layouts/{id}/activate`` (``server.api.wall_layouts``) and the websocket command
``wall_switch`` (``realtime.wall``) — and both must check the same rules
(``server.domain.wall.may_switch``), write the same row, audit it in the same transaction and
tell the walls the same way: an `Event` on the ``wall`` channel whose ``district`` carries the
wall's scope, so the hub routes it to the walls of that scope only (in every server process:
the Redis bridge carries it). A change of a layout some wall shows is told the same way, so
the wall redraws the new version without a reload.

Rows leave as the JSON the wall draws (`layout_json`): ``{id, name, columns, rows, windows,
version, ...}``; the default layout (no row for a scope) has ``id`` null.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal

import asyncpg
import msgspec

from server.domain import wall
from server.kernel.audit import audit
from server.kernel.events import Bus, Event
from server.kernel.principal import Principal

__all__ = [
    "WallRefusal",
    "create",
    "current",
    "delete",
    "get",
    "layout_json",
    "list_layouts",
    "publish",
    "switch",
    "update",
]

Refusal = Literal["not_found", "forbidden", "invalid", "conflict"]

_SELECT: Final = """SELECT l.id, l.name, l.grid_columns, l.grid_rows, l.windows, l.version,
       l.created_at, l.updated_at, cu.username AS created_by, uu.username AS updated_by,
       coalesce((SELECT array_agg(c.scope ORDER BY c.scope) FROM wall_current c
                  WHERE c.layout_id = l.id), '{}') AS showing
  FROM wall_layouts l
  LEFT JOIN users cu ON cu.id = l.created_by
  LEFT JOIN users uu ON uu.id = l.updated_by"""


class WallRefusal(Exception):
    """A write that may not happen: *kind* decides the status (404, 403, 400, 409)."""

    def __init__(self, kind: Refusal, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def layout_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored layout as the API and the wall see it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "columns": row["grid_columns"],
        "rows": row["grid_rows"],
        "windows": row["windows"],
        "version": row["version"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "updated_by": row["updated_by"],
        "updated_at": _iso(row["updated_at"]),
        "showing": list(row["showing"]),
    }


def default_json() -> dict[str, Any]:
    """Today's wall, for a scope with no current layout."""
    d = wall.DEFAULT
    return {
        "id": None,
        "name": d.name,
        "columns": d.columns,
        "rows": d.rows,
        "windows": msgspec.to_builtins(d.windows),
        "version": 0,
    }


async def get(db: asyncpg.Connection | asyncpg.Pool, layout_id: int) -> dict[str, Any] | None:
    row = await db.fetchrow(f"{_SELECT} WHERE l.id = $1", layout_id)
    return None if row is None else layout_json(row)


async def list_layouts(
    db: asyncpg.Pool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Layouts by name (what a person picks from), and how many there are."""
    rows = await db.fetch(
        f"{_SELECT} ORDER BY lower(l.name), l.id LIMIT $1 OFFSET $2", limit, offset
    )
    total = await db.fetchval("SELECT count(*) FROM wall_layouts")
    return [layout_json(r) for r in rows], int(total or 0)


async def current(db: asyncpg.Connection | asyncpg.Pool, scope: str) -> dict[str, Any]:
    """What the wall of *scope* shows: ``{scope, layout, switched_at, switched_by}``."""
    row = await db.fetchrow(
        """SELECT c.layout_id, c.switched_at, u.username AS switched_by
             FROM wall_current c LEFT JOIN users u ON u.id = c.switched_by
            WHERE c.scope = $1""",
        scope,
    )
    layout = None if row is None else await get(db, row["layout_id"])
    return {
        "scope": scope,
        "layout": layout if layout is not None else default_json(),
        "switched_at": None if row is None else _iso(row["switched_at"]),
        "switched_by": None if row is None else row["switched_by"],
    }


async def currents(db: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every wall with a layout chosen: ``{scope, layout_id, name, switched_at, switched_by}``."""
    rows = await db.fetch(
        """SELECT c.scope, c.layout_id, l.name, c.switched_at, u.username AS switched_by
             FROM wall_current c JOIN wall_layouts l ON l.id = c.layout_id
             LEFT JOIN users u ON u.id = c.switched_by ORDER BY c.scope"""
    )
    return [{**dict(r), "switched_at": _iso(r["switched_at"])} for r in rows]


def publish(bus: Bus, row: Mapping[str, Any]) -> None:
    """Tell the walls of ``row["scope"]`` what they show now (the ``wall`` channel)."""
    bus.publish(Event(channel=wall.CHANNEL_WALL, data=dict(row), district=str(row["scope"])))


def _values(layout: wall.Layout) -> tuple[str, int, int, Any]:
    return layout.name.strip(), layout.columns, layout.rows, msgspec.to_builtins(layout.windows)


async def create(
    pool: asyncpg.Pool, p: Principal, layout: wall.Layout, remote: str | None
) -> dict[str, Any]:
    """Store a validated layout (``server.domain.wall.validate``); a taken name is a conflict."""
    name, cols, rows, windows = _values(layout)
    try:
        async with pool.acquire() as conn, conn.transaction():
            new_id = await conn.fetchval(
                """INSERT INTO wall_layouts (name, grid_columns, grid_rows, windows,
                                             created_by, updated_by)
                   VALUES ($1, $2, $3, $4, $5, $5) RETURNING id""",
                name,
                cols,
                rows,
                windows,
                p.user_id,
            )
            await audit(
                conn, p, "wall_layout.create", "wall_layout", new_id, {"name": name}, remote
            )
    except asyncpg.UniqueViolationError:
        raise WallRefusal("conflict", f"a layout named {name!r} exists", "name") from None
    out = await get(pool, new_id)
    assert out is not None
    return out


async def update(
    pool: asyncpg.Pool,
    bus: Bus,
    p: Principal,
    layout_id: int,
    layout: wall.Layout,
    version: int,
    remote: str | None,
) -> dict[str, Any]:
    """Replace a layout if *version* is still its version; the walls showing it redraw."""
    name, cols, rows, windows = _values(layout)
    try:
        async with pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                "SELECT version, name FROM wall_layouts WHERE id = $1 FOR UPDATE", layout_id
            )
            if old is None:
                raise WallRefusal("not_found", f"no wall layout {layout_id}")
            if old["version"] != version:
                raise WallRefusal(
                    "conflict",
                    f"the layout changed meanwhile (version {old['version']}, not {version}):"
                    " reload it and edit again",
                    "version",
                )
            await conn.execute(
                """UPDATE wall_layouts SET name = $2, grid_columns = $3, grid_rows = $4,
                          windows = $5, version = version + 1, updated_by = $6,
                          updated_at = now()
                    WHERE id = $1""",
                layout_id,
                name,
                cols,
                rows,
                windows,
                p.user_id,
            )
            await audit(
                conn,
                p,
                "wall_layout.update",
                "wall_layout",
                layout_id,
                {"name": name, "from_name": old["name"], "version": version + 1},
                remote,
            )
    except asyncpg.UniqueViolationError:
        raise WallRefusal("conflict", f"a layout named {name!r} exists", "name") from None
    out = await get(pool, layout_id)
    assert out is not None
    for scope in out["showing"]:
        publish(bus, await current(pool, scope))
    return out


async def delete(pool: asyncpg.Pool, p: Principal, layout_id: int, remote: str | None) -> None:
    """Delete a layout no wall shows (switch those walls to another first)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT name FROM wall_layouts WHERE id = $1 FOR UPDATE", layout_id
        )
        if row is None:
            raise WallRefusal("not_found", f"no wall layout {layout_id}")
        showing = await conn.fetch(
            "SELECT scope FROM wall_current WHERE layout_id = $1 ORDER BY scope", layout_id
        )
        if showing:
            scopes = ", ".join(r["scope"] for r in showing)
            raise WallRefusal(
                "conflict", f"the wall of {scopes} shows this layout: switch it first"
            )
        await conn.execute("DELETE FROM wall_layouts WHERE id = $1", layout_id)
        await audit(
            conn, p, "wall_layout.delete", "wall_layout", layout_id, {"name": row["name"]}, remote
        )


async def switch(
    pool: asyncpg.Pool,
    bus: Bus,
    p: Principal,
    layout_id: int,
    scope: str | None,
    *,
    remote: str | None,
    via: str,
) -> dict[str, Any]:
    """Make *layout_id* the layout of the wall of *scope* (None: the caller's own wall).

    Checked (the same for REST and the websocket): the scope's form, who may switch it, the
    layout's existence; a read-only kiosk session never switches. Audited with *via* (``api``
    or ``ws``), then published to the walls of that scope once the transaction committed.
    """
    if p.read_only:
        raise WallRefusal("forbidden", "a wall's kiosk session may watch, never switch")
    target = scope if scope is not None else wall.scope_of(p.city_wide, p.districts)
    if not wall.scope_valid(target):
        raise WallRefusal(
            "invalid", "scope: 'city' or district codes, ascending, comma-separated", "scope"
        )
    if not wall.may_switch(p.role, p.city_wide, p.districts, target):
        raise WallRefusal(
            "forbidden", f"role {p.role} may not switch the wall of {target}", "scope"
        )
    async with pool.acquire() as conn, conn.transaction():
        if target != wall.CITY:
            known = await conn.fetchval(
                "SELECT count(*) FROM districts WHERE code = ANY($1::text[])", target.split(",")
            )
            if known != len(target.split(",")):
                raise WallRefusal("invalid", f"scope: no such district in {target}", "scope")
        name = await conn.fetchval(
            "SELECT name FROM wall_layouts WHERE id = $1 FOR SHARE", layout_id
        )
        if name is None:
            raise WallRefusal("not_found", f"no wall layout {layout_id}", "layout")
        previous = await conn.fetchval(
            "SELECT layout_id FROM wall_current WHERE scope = $1", target
        )
        await conn.execute(
            """INSERT INTO wall_current (scope, layout_id, switched_by, switched_at)
               VALUES ($1, $2, $3, now())
               ON CONFLICT (scope) DO UPDATE
                  SET layout_id = EXCLUDED.layout_id, switched_by = EXCLUDED.switched_by,
                      switched_at = EXCLUDED.switched_at""",
            target,
            layout_id,
            p.user_id,
        )
        await audit(
            conn,
            p,
            "wall.switch",
            "wall_layout",
            layout_id,
            {"scope": target, "name": name, "from_layout": previous, "via": via},
            remote,
        )
        row = await current(conn, target)
    publish(bus, row)
    return row
