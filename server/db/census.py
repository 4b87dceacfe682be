"""The cylinder census (migration 0226; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10): which
relation the reports counting today's cylinders read, and as of when.

``cylinder_census`` is a narrow snapshot of ``cylinders`` refreshed in the rollups' round
(``server.db.rollup_refresh``); ``rollup_state.census_at`` is the moment of its snapshot. A
report aggregates over the census and says ``as_of`` that moment; on a database whose census
was never filled it reads ``cylinders`` itself (as of now: ``as_of`` is None), so a fresh
city's reports are not empty. The census has the columns of ``cylinders`` the aggregates and
the role scope read, under the same names, so one query text serves either relation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import asyncpg

__all__ = ["CENSUS", "LIVE", "Census", "census"]

CENSUS: Final = "cylinder_census"
LIVE: Final = "cylinders"


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
