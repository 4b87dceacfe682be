"""The recovery census (migration 0233; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10): one row
per activated cylinder of the cylinder census (``server.db.census``) with the fleet columns
``recovery-rate`` (``server.api.report_cylinders_flow``) reads and its fill days of three city
years as one ``bit(1098)`` — the census joined to the fill-day rollup (migration 0230,
``server.db.rollup_fill_days``) once per refresh instead of once per request.

A period's "filled" is one AND of the row's bits with a mask of the period's days before the
watermark (the fill-day watermark the view was made with), and the raw completed fills from
the watermark on (``rollup_fill_days.filled`` without a mark: today and what the refresh has
not closed). A period beginning before the view's first year, a reader in another zone, or a
view never filled is not answered here (:func:`covers`, :func:`usable_mark`): the report reads
the census and the fill-day rollup then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from server.db import rollup_fill_days
from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = ["RELATION", "YEARS", "Mark", "covers", "filled", "usable_mark"]

RELATION: Final = "rollup_recovery_mv"
YEARS: Final = 3
"""City years of bits a row holds (the last closed day's and the two before it): a year's
period and its previous one reach at most 730 days back."""
BITS: Final = YEARS * rollup_fill_days.YEAR_BITS


@dataclass(frozen=True)
class Mark:
    """The view's state: the first city day its bits do not hold, the year of its first bits,
    and the census snapshot its fleet columns are of (the report's ``as_of``)."""

    upto: dt.date
    first_year: int
    census_at: dt.datetime


async def usable_mark(db: asyncpg.Pool | asyncpg.Connection, settings: Settings) -> Mark | None:
    """The view's :class:`Mark` for a reader in the zone of *settings*; None before its first
    refresh or when made in another zone. The view's state is asked of ``pg_matviews`` in the
    same statement: PostgreSQL refuses a statement naming a view never filled (migration
    0230's lesson, ``rollup_fill_days.usable_mark``)."""
    row = await db.fetchrow(
        """SELECT s.upto, s.first_year, s.census_at FROM rollup_recovery_state s
            WHERE s.name = 'recovery' AND s.tz = $1 AND s.upto IS NOT NULL
              AND s.census_at IS NOT NULL
              AND (SELECT coalesce(bool_and(v.ispopulated), false) FROM pg_matviews v
                    WHERE v.schemaname = 'public' AND v.matviewname = $2)""",
        settings.alerts.timezone,
        RELATION,
    )
    if row is None:
        return None
    return Mark(row["upto"], row["first_year"], row["census_at"])


def covers(mark: Mark, periods: Sequence[tuple[dt.date, dt.date]]) -> bool:
    """Whether the view's bits hold every day of *periods* (city days [first, last]) before
    its watermark."""
    return all(
        first >= mark.upto or first >= dt.date(mark.first_year, 1, 1) for first, _ in periods
    )


def _mask(mark: Mark, first: dt.date, last: dt.date) -> str:
    """The bits of the days [*first*, *last*] in a row, as text (each year's block as the
    fill-day rows lay it out)."""
    bits = ["0"] * BITS
    for year in range(first.year, last.year + 1):
        a = max(first, dt.date(year, 1, 1))
        b = min(last, dt.date(year, 12, 31))
        block = (year - mark.first_year) * rollup_fill_days.YEAR_BITS
        jan1 = dt.date(year, 1, 1)
        for i in range((a - jan1).days, (b - jan1).days + 1):
            bits[block + i] = "1"
    return "".join(bits)


def filled(
    q: Sql,
    settings: Settings,
    periods: Sequence[tuple[dt.date, dt.date]],
    mark: Mark,
    alias: str = "c",
) -> rollup_fill_days.Filled:
    """Whether each row *alias* of the view had a completed fill in each of *periods* (which
    :func:`covers` must hold): its bits before the watermark, the raw fills from it on."""
    rolled: list[str | None] = []
    live: list[tuple[dt.date, dt.date]] = []
    for first, last in periods:
        test = None
        if first < mark.upto:
            days = _mask(mark, first, min(last, mark.upto - dt.timedelta(days=1)))
            zero = rollup_fill_days.bits("0" * BITS)
            test = f"{alias}.days & {rollup_fill_days.bits(days)} <> {zero}"
        rolled.append(test)
        # an empty period (first > last) where nothing is after the watermark: no join
        live.append((max(first, mark.upto), last))
    raw = rollup_fill_days.filled(q, settings, live, None, alias)
    tests = tuple(
        f"({r} OR {t})" if r is not None else t for r, t in zip(rolled, raw.per_period, strict=True)
    )
    return rollup_fill_days.Filled(raw.joins, tests)
