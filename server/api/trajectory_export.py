"""A cylinder's trajectory as a file: ``GET /api/v1/cylinders/{id}/trajectory?format=csv|xlsx``.

Why a file: an inspector or a regulator hands a cylinder's history to someone else — a
court, an insurer, the owner — and that is a spreadsheet, not a screenshot of a page. The
rows are the trajectory's (every event of the cylinder, oldest first), the same scope (the
route has already answered 404 for a cylinder out of it, ``server.api.cylinders``) and the
same privacy: coordinates only for the roles that may read positions (a delivery's are the
customer's door; docs/SECURITY.md "Privacy"). Written by the platform's one table writer
(``server.kernel.tabular.stream_table``: streamed, formula-like text neutralised), times in
the city's zone (docs/ARCHITECTURE.md §4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import orjson
from aiohttp import web

from server.api.rows import iter_rows
from server.domain.localtime import city_zone
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.principal import Principal
from server.kernel.scope import can_read
from server.kernel.tabular import stream_table

__all__ = ["FILE_COLUMNS", "trajectory_file"]

FILE_COLUMNS: Final = (
    "time",
    "kind",
    "biz_step",
    "disposition",
    "site_code",
    "site_name",
    "company_name",
    "district_code",
    "device_id",
    "operator",
    "lat",
    "lon",
    "details",
    "tag",
    "msg_id",
)
"""What happened, where, by whom, with the event's recorded details (JSON); the time in the
city's zone with its offset (ISO 8601)."""

_SELECT: Final = """SELECT e.ts, e.kind, e.biz_step, e.disposition, s.code AS site_code,
    s.name AS site_name, co.name AS company_name, e.district_code, e.device_id, e.operator,
    e.lat, e.lon, e.details, e.tag, e.msg_id
  FROM events e LEFT JOIN sites s ON s.id = e.site_id
  LEFT JOIN companies co ON co.id = e.company_id
 WHERE e.cylinder_id = $1
 ORDER BY e.ts, e.received_at, e.msg_id"""
"""Oldest first, in the order of the JSON trajectory."""


async def _rows(
    rows: AsyncIterator[Sequence[Any]], zone: dt.tzinfo, positions: bool
) -> AsyncIterator[list[Any]]:
    lat, lon, details = (
        FILE_COLUMNS.index("lat"),
        FILE_COLUMNS.index("lon"),
        FILE_COLUMNS.index("details"),
    )
    async for r in rows:
        out = list(r)
        out[0] = out[0].astimezone(zone)
        if not positions:
            out[lat] = out[lon] = None
        out[details] = orjson.dumps(out[details]).decode() if out[details] else None
        yield out


async def trajectory_file(
    request: web.Request, p: Principal, cylinder_id: int, fmt: str, tag: str
) -> web.StreamResponse:
    """Every event of a cylinder the caller may see (checked by the caller) as CSV or XLSX."""
    zone = city_zone(request.app[SETTINGS].alerts)
    # the select's column names in FILE_COLUMNS order, "time" being e.ts
    names = ["ts", *FILE_COLUMNS[1:]]
    rows = iter_rows(request.app[POOL], _SELECT, [cylinder_id], names)
    name = f"trajectory-{_safe(tag)}"
    return await stream_table(
        request, fmt, name, FILE_COLUMNS, _rows(rows, zone, can_read(p, "positions"))
    )


def _safe(tag: str) -> str:
    """A tag as part of a file name (header-safe ASCII; anything else becomes '_')."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in tag)
