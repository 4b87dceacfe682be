"""The safety-inspection rollup (migration 0231; docs/ARCHITECTURE.md §9 "Reports"; DESIGN
§10): what the ``safety-inspections`` report (``server.api.report_safety``) counts of a
period's records, per city day, company and district — the records passed and failed
(:data:`RECORDS`) and, per item code, the answers pass / fail / n/a with the newest item
answered (:data:`ITEMS`) — so that a year reads the rollup's rows instead of joining a year of
answers (1.5M at the bench city) to their records and corrections.

Read as the other rollups (``server.db.rollups.source``): the materialized rows for the days
before the rollup's own watermark (:func:`watermark`), the defining functions
``cyl_safety_records_daily`` / ``cyl_safety_items_daily`` over the raw records from it on. The
key columns are the records' own (``district_code``, ``company_id``), so the role scope and
the filters (``ReportContext.where`` on entity ``safety_inspections``) apply to a rollup row as
to its records, and PostgreSQL pushes them into both halves. A closed day is counted as of the
last refresh — a record uploaded late for it, or a correction of one of its records, counts
from the next refresh of that day, as for every rollup; the rows depend on the zone only, so a
reader in another zone reads the raw records until the next refresh rebuilds them.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import asyncpg

from server.db.rollups import Rollup
from server.kernel.settings import Settings

__all__ = ["ITEMS", "RECORDS", "VIEWS", "watermark"]

RECORDS: Final = Rollup(
    "rollup_safety_records_day",
    "cyl_safety_records_daily",
    ("company_id", "district_code"),
    ("records", "passed", "failed"),
)
ITEMS: Final = Rollup(
    "rollup_safety_items_day",
    "cyl_safety_items_daily",
    ("company_id", "district_code", "code"),
    ("newest_item", "records", "passed", "failed", "na"),
)

VIEWS: Final = (
    "rollup_safety_records_hist_mv",
    "rollup_safety_records_recent_mv",
    "rollup_safety_items_hist_mv",
    "rollup_safety_items_recent_mv",
)
"""The materialized views behind :data:`RECORDS` and :data:`ITEMS`: history (up to the
split) and recent days of each."""


async def watermark(db: asyncpg.Pool | asyncpg.Connection, settings: Settings) -> dt.date | None:
    """The first city day the rollup does not hold, for a reader in the configured zone; None
    before the first refresh or when the rollup was made in another zone (then every day is
    read from the raw records).

    The views' state is asked of ``pg_matviews`` in the same statement, not inferred from the
    watermark: PostgreSQL refuses a statement naming a view that holds no data (migration 0230's
    lesson, ``server.db.rollup_fill_days.usable_mark``), so a report names the views only once
    every one of them is filled."""
    upto = await db.fetchval(
        """SELECT s.upto FROM rollup_safety_state s
            WHERE s.name = 'safety' AND s.tz = $1
              AND (SELECT count(*) = cardinality($2::text[]) AND bool_and(v.ispopulated)
                     FROM pg_matviews v
                    WHERE v.schemaname = 'public' AND v.matviewname = ANY($2::text[]))""",
        settings.alerts.timezone,
        list(VIEWS),
    )
    return upto if isinstance(upto, dt.date) else None
