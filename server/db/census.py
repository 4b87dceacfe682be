"""The cylinder census (migration 0226; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10): which
relation the reports counting today's cylinders read, and as of when.

``cylinder_census`` is a narrow snapshot of ``cylinders`` refreshed in the rollups' round
(``server.db.rollup_refresh``); ``rollup_state.census_at`` is the moment of its snapshot. A
report aggregates over the census and says ``as_of`` that moment; on a database whose census
was never filled it reads ``cylinders`` itself (as of now: ``as_of`` is None), so a fresh
city's reports are not empty. The census has the columns of ``cylinders`` the aggregates and
the role scope read, under the same names, so one query text serves either relation.

``in-use-distribution`` reads its counts made at the refresh (migration 0234,
``rollup_in_use_mv``: per district and owner, with the customers holding cylinders in several
such pairs listed) when they were made for the day asked (:func:`in_use_day`), the census
otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import asyncpg

__all__ = ["CENSUS", "IN_USE", "LIVE", "Census", "census", "in_use_day"]

CENSUS: Final = "cylinder_census"
LIVE: Final = "cylinders"
IN_USE: Final = "rollup_in_use_mv"


@dataclass(frozen=True)
class Census:
    """The relation to count over and the moment its rows stand at (None: live)."""

    relation: str
    as_of: dt.datetime | None


async def census(db: asyncpg.Pool | asyncpg.Connection) -> Census:
    """The census when it has been filled, else ``cylinders`` itself."""
    at = await db.fetchval("SELECT census_at FROM rollup_state WHERE name = 'reports'")
    if at is None:
        return Census(LIVE, None)
    return Census(CENSUS, at)


async def in_use_day(
    db: asyncpg.Pool | asyncpg.Connection, tz: str, today: dt.date
) -> dt.datetime | None:
    """The census moment :data:`IN_USE` counts when it was made in zone *tz* for *today*,
    else None (then the report counts over :func:`census`). Its state is asked of
    ``pg_matviews`` in the same statement: PostgreSQL refuses a statement naming a view that
    holds no data (``server.db.rollup_fill_days.usable_mark``)."""
    at = await db.fetchval(
        """SELECT s.census_at FROM rollup_in_use_state s
            WHERE s.name = 'in_use' AND s.tz = $1 AND s.day = $2
              AND (SELECT coalesce(bool_and(v.ispopulated), false) FROM pg_matviews v
                    WHERE v.schemaname = 'public' AND v.matviewname = $3)""",
        tz,
        today,
        IN_USE,
    )
    return at if isinstance(at, dt.datetime) else None
