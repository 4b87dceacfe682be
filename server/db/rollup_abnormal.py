"""The abnormal circulation rollup (migration 0227; docs/ARCHITECTURE.md §9 "Reports"; DESIGN
§10): one row per city day, cylinder and way it circulated (``fill`` | ``move``) on which an
overdue or scrapped cylinder was filled or moved on, with its state that day — what
``abnormal-cylinders`` (``server.api.report_cylinders_flow``) counts, so that a year of it
reads a few hundred thousand rows instead of joining 50 million fills and scans.

Read as the other rollups (``server.db.rollups.source``): the materialized rows for the days
before the rollup's own watermark, the defining function ``cyl_abnormal_daily`` over the raw
tables from it on. The rows depend on the zone and on ``[dates] inspection_interval_years``
(the next inspection of a cylinder never inspected before the day), so a reader whose
settings differ from the rollup's reads the raw tables until the next refresh rebuilds it.
A row's state is as of the last refresh: an inspection recorded late for an old day counts
from the refresh that rebuilds that day (the history: the next day's first round, or
``cylwatch reports refresh``).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = ["COLUMNS", "source"]

COLUMNS: Final = ("day", "cylinder_id", "how", "scrapped", "overdue")


def source(q: Sql, settings: Settings, start: dt.datetime, end: dt.datetime) -> str:
    """A FROM item (alias it) with :data:`COLUMNS` for the instants [*start*, *end*) — whole
    city days, as a report's period: ``cyl_abnormal_rows``, which splits them at the rollup's
    watermark (the same split for a report's cells and their drill-downs)."""
    return (
        f"cyl_abnormal_rows({q.add(settings.alerts.timezone)}::text, "
        f"{q.add(start)}::timestamptz, {q.add(end)}::timestamptz, "
        f"{q.add(settings.dates.inspection_interval_years)}::integer)"
    )
