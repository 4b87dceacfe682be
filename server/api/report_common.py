"""What the reports of ``server.api.reports`` share (docs/ARCHITECTURE.md §9 "Reports under
/api/v1/reports/{name}"): who runs them, their formats and query parameters, the day range of
an activity report in the city's time zone, the role scope and filters of their WHERE clause,
and answering small aggregates as JSON or a streamed table. A module of its own so that a
report in a module of its own (``server.api.report_safety``) uses them without importing the
catalogue that lists it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from server.api.common import Param, q_district, today
from server.api.params import company_filter
from server.domain.localtime import city_zone
from server.kernel.appkeys import SETTINGS
from server.kernel.errors import bad_query
from server.kernel.http import json_response, q_date
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.tabular import stream_table

__all__ = [
    "ACTIVITY_ROLES",
    "COMMON",
    "CYL_REPORT_ROLES",
    "DEFAULT_RANGE_DAYS",
    "FORMATS",
    "RANGE",
    "days",
    "filters",
    "respond",
]

CYL_REPORT_ROLES = ("admin", "regulator", "officer", "company_admin", "inspector")
ACTIVITY_ROLES = ("admin", "regulator", "officer", "company_admin")
FORMATS = ("json", "csv", "xlsx")
DEFAULT_RANGE_DAYS = 30
"""Range of an activity report when `from` is omitted: a presentation default (a month on
screen), not a policy number."""
COMMON = (
    Param("district", description="6-digit district code"),
    Param("company", description="company code or id"),
)
RANGE = (
    Param("from", "date", "first day (city time; default: 30 days ago)"),
    Param("to", "date", "last day, inclusive (default: today)"),
)


def days(request: web.Request) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """The inclusive day range and its [start, end) instants in the city's time zone."""
    settings = request.app[SETTINGS]
    zone = city_zone(settings.alerts)
    last = q_date(request, "to") or today(settings)
    try:
        first = q_date(request, "from") or last - dt.timedelta(days=DEFAULT_RANGE_DAYS)
    except OverflowError:
        raise bad_query("from", "out of range") from None
    if first > last:
        raise bad_query("to", "must not be before from")
    start = dt.datetime.combine(first, dt.time(), zone)
    try:
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    except OverflowError:
        raise bad_query("to", "out of range") from None
    return first, last, start, end


def filters(
    request: web.Request,
    p: Principal,
    entity: str,
    alias: str,
    q: Sql,
    district_col: str,
    company_col: str,
) -> list[str]:
    where = [scope_where(p, entity, alias, q)]
    district = q_district(request)
    if district:
        where.append(f"{district_col} = {q.add(district)}")
    comp = company_filter(request, company_col, q)
    if comp:
        where.append(comp)
    return where


async def respond(
    request: web.Request,
    fmt: str,
    name: str,
    header: Sequence[str],
    rows: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> web.StreamResponse:
    """Small aggregated reports: JSON, or the same rows as a streamed table."""
    if fmt == "json":
        return json_response({"report": name, **(extra or {}), "rows": rows})

    async def gen() -> AsyncIterator[Sequence[Any]]:
        for r in rows:
            yield [r.get(h) for h in header]

    return await stream_table(request, fmt, name, header, gen())
