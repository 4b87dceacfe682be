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
``cylwatch reports refresh``). The reader takes the rolled-up half only once both views are
filled (migration 0232), so a restored or never refreshed rollup reads the raw tables.

The report folds the rows per cylinder first (:func:`flows`: one row per cylinder with a flag
per way and state — it counts each cylinder once over the period, which no count per company
and day could give) and looks those cylinders up by id for their owner and the role scope
(``server.api.report_cylinders_abnormal``): a 1M city's year is ~290k rolled-up rows folded
to ~28k cylinders, where joining the rows to the whole of ``cylinders`` twice per request
took most of 1–3 s (docs/BENCHMARKS.md "Reports").
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = ["COLUMNS", "FLOW_FLAGS", "flows", "source"]

COLUMNS: Final = ("day", "cylinder_id", "how", "scrapped", "overdue")

FLOW_FLAGS: Final = {
    "filled_overdue": "m.how = 'fill' AND NOT m.scrapped AND m.overdue",
    "filled_scrapped": "m.how = 'fill' AND m.scrapped",
    "moved_overdue": "m.how = 'move' AND NOT m.scrapped AND m.overdue",
    "moved_scrapped": "m.how = 'move' AND m.scrapped",
}
"""A flow kind → the rows (alias ``m``) that make a cylinder count in it: scrapped first, as
the compliance precedence has it (a row both scrapped and overdue is scrapped); a cylinder
counts in every kind one of its rows of the period makes it."""


def source(q: Sql, settings: Settings, start: dt.datetime, end: dt.datetime) -> str:
    """A FROM item (alias it) with :data:`COLUMNS` for the instants [*start*, *end*) — whole
    city days, as a report's period: ``cyl_abnormal_rows``, which splits them at the rollup's
    watermark (the same split for a report's cells and their drill-downs)."""
    return (
        f"cyl_abnormal_rows({q.add(settings.alerts.timezone)}::text, "
        f"{q.add(start)}::timestamptz, {q.add(end)}::timestamptz, "
        f"{q.add(settings.dates.inspection_interval_years)}::integer)"
    )


def flows(q: Sql, settings: Settings, start: dt.datetime, end: dt.datetime) -> str:
    """A SELECT of one row per cylinder filled or moved on while unsafe in [*start*, *end*):
    ``cylinder_id`` and a boolean per :data:`FLOW_FLAGS` kind. Unscoped: the caller looks
    the cylinders up for the owner and the role scope."""
    flags = ", ".join(f"bool_or({cond}) AS {kind}" for kind, cond in FLOW_FLAGS.items())
    return f"""SELECT m.cylinder_id, {flags}
                 FROM {source(q, settings, start, end)} m GROUP BY m.cylinder_id"""
