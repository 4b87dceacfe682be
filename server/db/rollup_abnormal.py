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

import asyncpg

from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = ["COLUMNS", "refresh_abnormal", "source"]

COLUMNS: Final = ("day", "cylinder_id", "how", "scrapped", "overdue")


async def refresh_abnormal(
    db: asyncpg.Pool | asyncpg.Connection,
    settings: Settings,
    *,
    upto: dt.date,
    split: dt.date,
    wait: bool,
    full: bool,
    bound_s: float,
) -> bool:
    """One call of ``cyl_abnormal_refresh`` (``server.db.rollup_refresh`` runs it after the
    other rollups' refresh, under the same lock); False when another process holds the lock
    and *wait* is false; *bound_s* bounds the call (the pool's usual command bound would
    cut an honest refresh of the history)."""
    done = await db.fetchval(
        "SELECT cyl_abnormal_refresh($1, $2, $3, $4, $5, $6)",
        upto,
        settings.alerts.timezone,
        wait,
        split,
        full,
        settings.dates.inspection_interval_years,
        timeout=bound_s,
    )
    return bool(done)


def source(q: Sql, settings: Settings, start: dt.datetime, end: dt.datetime) -> str:
    """A FROM item (alias it) with :data:`COLUMNS` for the instants [*start*, *end*) — whole
    city days, as a report's period: ``cyl_abnormal_rows``, which splits them at the rollup's
    watermark (the same split for a report's cells and their drill-downs)."""
    return (
        f"cyl_abnormal_rows({q.add(settings.alerts.timezone)}::text, "
        f"{q.add(start)}::timestamptz, {q.add(end)}::timestamptz, "
        f"{q.add(settings.dates.inspection_interval_years)}::integer)"
    )
