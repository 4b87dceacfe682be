"""The deliveries rollup (migration 0229; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10): one
row per city day, company, district and site with the day's ``deliver`` scans and those to a
real-name customer — what ``sales`` and ``real-name-progress`` (``server.api.report_business``)
count, so that a year of them reads a few hundred thousand rows instead of a year of delivery
scans.

Read as the other rollups (``server.db.rollups.source`` with :data:`DELIVERIES`): the
materialized rows for the days before the rollup's own watermark (:func:`watermark`), the
defining function ``cyl_deliveries_daily`` over the raw events from it on. The key columns are
the raw events' own (``district_code``, ``company_id``, ``site_id``), so the role scope and the
filters (``ReportContext.where`` on entity ``events``) apply to a rollup row as to its events,
and PostgreSQL pushes them into both halves. A closed day is counted as of the last refresh;
the rows depend on the zone only, so a reader in another zone reads the raw events until the
next refresh rebuilds the rollup.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import asyncpg

from server.db.rollups import Rollup
from server.kernel.settings import Settings

__all__ = ["DELIVERIES", "watermark"]

DELIVERIES: Final = Rollup(
    "rollup_deliveries_day",
    "cyl_deliveries_daily",
    ("company_id", "district_code", "site_id"),
    ("deliveries", "real_name"),
)


async def watermark(db: asyncpg.Pool | asyncpg.Connection, settings: Settings) -> dt.date | None:
    """The first city day the rollup does not hold, for a reader in the configured zone; None
    before the first refresh or when the rollup was made in another zone (then every day is
    read from the raw events)."""
    upto = await db.fetchval(
        "SELECT upto FROM rollup_deliveries_state WHERE name = 'deliveries' AND tz = $1",
        settings.alerts.timezone,
    )
    return upto if isinstance(upto, dt.date) else None
