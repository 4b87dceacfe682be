"""What the activity reports share (``server.api.report_activity`` and
``server.api.report_activity_legacy``; docs/API.md "Reports"; docs/ARCHITECTURE.md §9): the
rollup FROM items of a report's period and of its previous period, read through
``server.db.rollups`` so that a year's report answers from the daily rollups and today from
the raw tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from server.api.report_frame import Column, ReportContext
from server.db import rollups
from server.db.rollups import Rollup
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = ["KEY_COLUMNS", "Sources", "bucket_range", "keyed", "sources"]

_MONTHS: Final = {"month": 1, "quarter": 3, "year": 12}
"""Calendar months in one bucket of each month-based ``group``."""

KEY_COLUMNS: Final = {
    "fills": ("r.district_code", "r.company_id", "r.station_id"),
    "events": ("r.district_code", "r.company_id", "r.site_id"),
    "alerts": ("r.district_code", "r.company_id", "r.site_id"),
}
"""The scope entity of each rollup's rows and its (district, company, station) columns: the
raw tables' own, so ``ReportContext.where`` scopes a rollup row as its raw rows."""


class Sources:
    """The rollup FROM items of one report run (the watermark read once per run)."""

    def __init__(self, ctx: ReportContext, upto: dt.date | None) -> None:
        self.ctx = ctx
        self.upto = upto

    def period(self, rollup: Rollup, q: Sql) -> str:
        f = self.ctx.f
        return rollups.source(rollup, q, self.ctx.settings, f.first, f.last, self.upto)

    def previous(self, rollup: Rollup, q: Sql) -> str:
        f = self.ctx.f
        return rollups.source(rollup, q, self.ctx.settings, f.prev_first, f.prev_last, self.upto)

    def where(self, entity: str, q: Sql) -> list[str]:
        """The role scope and the filters on a rollup row ``r`` of *entity*."""
        district, company, station = KEY_COLUMNS[entity]
        return self.ctx.where(entity, "r", q, district, company, station)


async def sources(ctx: ReportContext) -> Sources:
    state = await rollups.watermark(ctx.pool)
    upto = state.usable_upto(ctx.settings.alerts.timezone) if state else None
    return Sources(ctx, upto)


def keyed(key: str, type_: str = "text") -> Column:
    """A legacy report's column: its label is its key, so the CSV/XLSX header stays the
    machine-readable one that scripts reading these files were written against."""
    return Column(key, key, key, type_)


def _add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    return dt.date(day.year + m // 12, m % 12 + 1, 1)


def bucket_range(ctx: ReportContext, keys: Mapping[str, str]) -> tuple[dt.datetime, dt.datetime]:
    """The instants [start, end) of the row whose ``period`` key is sent (its bucket's days
    within the report's period), or the whole period when it is not: what a drill-down on
    a rollup's days bounds the raw rows by."""
    f = ctx.f
    raw = keys.get("period")
    if raw is None:
        return f.start, f.end
    try:
        first = dt.date.fromisoformat(raw)
    except ValueError:
        raise bad_query("period", f"expected a date YYYY-MM-DD, got {raw!r}") from None
    try:
        if f.group == "day":
            after = first + dt.timedelta(days=1)
        elif f.group == "week":
            after = first + dt.timedelta(days=7)
        else:
            after = _add_months(first, _MONTHS[f.group])
    except (OverflowError, ValueError):
        raise bad_query("period", "out of range") from None
    first, after = max(first, f.first), min(after, f.last + dt.timedelta(days=1))
    zone = f.start.tzinfo
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(max(after, first), dt.time(), zone)
    return start, end
