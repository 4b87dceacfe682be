"""The fill-day rollup (migration 0230; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10): per
cylinder and city year, the days it had a completed fill, as a ``bit(366)`` — what
``recovery-rate`` (``server.api.report_cylinders_flow``) asks of the fills ("filled at least
once in the period"), so that a year reads one row per cylinder instead of a year of fills.

Read as the other rollups (``server.db.rollups.source``): the rows for the days before the
rollup's own watermark, each year's row tested against a mask of the period's days in that
year, and the raw completed fills from the watermark on. The rows are in the city zone they
were made in: a reader in another zone (the setting changed) reads the raw fills until the
next refresh rebuilds them. A closed day's fill stored late counts from the refresh that
rebuilds its day (the recent days at every round, older ones the next day or with
``cylwatch reports refresh``), as for every rollup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from server.domain.localtime import city_zone
from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = [
    "VIEWS",
    "YEAR_BITS",
    "Filled",
    "Mark",
    "bits",
    "filled",
    "mask",
    "usable_mark",
]

YEAR_BITS: Final = 366
"""The bits of a year's row: one per day of the longest (leap) year; a common year leaves
the last one unset."""

VIEWS: Final = ("rollup_fill_days_hist_mv", "rollup_fill_days_recent_mv")
"""The history (up to the split) and the recent days: a cylinder's year has at most one row
in each, a row in both when it was filled on both sides of the split."""


@dataclass(frozen=True)
class Mark:
    """What a reader needs of the rollup's state: its watermark (the first city day it does
    not hold) and the first year it has a row in (None: no fill before the watermark), so
    that a period reaching back years before the first fill joins no empty years."""

    upto: dt.date
    first_year: int | None


async def usable_mark(db: asyncpg.Pool | asyncpg.Connection, settings: Settings) -> Mark | None:
    """The rollup's :class:`Mark` for a reader in the city zone of *settings*: None when it
    was never refreshed or was made in another zone (then the raw fills answer).

    Two statements, not one: PostgreSQL refuses a statement naming a view never filled when
    it starts, before any row decides whether the view would be read, so the first years are
    asked only once both views have rows (a view, once filled, stays filled). A report asked
    before the first refresh failed with a 500 (a full test run met it)."""
    row = await db.fetchrow(
        """SELECT s.tz, s.upto FROM rollup_fill_days_state s
            WHERE s.name = 'fill_days'
              AND (SELECT bool_and(v.ispopulated) FROM pg_matviews v
                    WHERE v.schemaname = 'public' AND v.matviewname = ANY($1::text[]))""",
        list(VIEWS),
    )
    if row is None or row["tz"] != settings.alerts.timezone or row["upto"] is None:
        return None
    first_year = await db.fetchval(
        """SELECT least((SELECT min(h.year) FROM rollup_fill_days_hist_mv h),
                        (SELECT min(r.year) FROM rollup_fill_days_recent_mv r))"""
    )
    return Mark(row["upto"], first_year)


def bits(text: str) -> str:
    """A bit-string literal of *text* (``0`` and ``1`` only, which the masks are made of),
    written into the statement rather than passed as a parameter: asyncpg prepares a
    statement, PostgreSQL plans it generically from its sixth run, and a generic plan casts a
    ``$n::text::bit(n)`` parameter again for every row it tests — the report took 0.05 s for
    its first five runs and 0.3 s from the sixth on at 100k cylinders."""
    if text.strip("01"):
        raise ValueError("a bit string holds 0 and 1 only")
    return f"B'{text}'"


def mask(first: dt.date, last: dt.date) -> str:
    """The bits of the days [*first*, *last*] (one city year) in that year's row, as text."""
    jan1 = dt.date(first.year, 1, 1)
    a, b = (first - jan1).days, (last - jan1).days
    return "0" * a + "1" * (b - a + 1) + "0" * (YEAR_BITS - 1 - b)


@dataclass(frozen=True)
class Filled:
    """What :func:`filled` adds to a query over cylinders: LEFT JOINs (each at most one row
    per cylinder) and, per period asked, a boolean SQL expression "had a completed fill on a
    city day of the period"."""

    joins: str
    per_period: tuple[str, ...]


def filled(
    q: Sql,
    settings: Settings,
    periods: Sequence[tuple[dt.date, dt.date]],
    mark: Mark | None,
    alias: str = "c",
) -> Filled:
    """Whether each cylinder *alias* was filled in each of *periods* (city days [first,
    last]): its rows of the rollup for the days before its watermark (*mark*; None: read
    the raw fills only) — one join per view and year touched that holds rows, keeping only the rows with a bit of some period set, so a cylinder meets each
    join once and nothing needs a DISTINCT — and the raw completed fills of the days from
    the watermark on (few: today and the days not closed yet). Several periods (a report's and the
    previous one) are answered by the same joins, in one pass over the cylinders."""
    masks: dict[int, list[tuple[int, str]]] = {}  # year -> (period index, mask)
    live: list[tuple[int, dt.date, dt.date]] = []
    for i, (first, last) in enumerate(periods):
        live_first = first
        if mark is not None and first < mark.upto:
            rolled_last = min(last, mark.upto - dt.timedelta(days=1))
            # before the first year with a row the rollup holds no fill: nothing to join
            since = rolled_last.year + 1 if mark.first_year is None else mark.first_year
            for year in range(max(first.year, since), rolled_last.year + 1):
                a = max(first, dt.date(year, 1, 1))
                b = min(rolled_last, dt.date(year, 12, 31))
                masks.setdefault(year, []).append((i, bits(mask(a, b))))
            live_first = rolled_last + dt.timedelta(days=1)
        if live_first <= last:
            live.append((i, live_first, last))
    joins: list[str] = []
    tests: list[list[str]] = [[] for _ in periods]
    zero = bits("0" * YEAR_BITS)
    for year, year_masks in masks.items():
        for view in VIEWS:
            j = f"fd{len(joins)}"
            # the rows with a bit of some period set, a flag per period: coalesce (not
            # strict) makes the planner compute each flag in the view's scan, below the
            # outer join, so a join's hash holds the flags instead of the 366 bits
            hit = {i: f"r.days & {m} <> {zero}" for i, m in year_masks}
            flags = ", ".join(f"coalesce({test}, false) AS p{i}" for i, test in hit.items())
            joins.append(
                f"LEFT JOIN (SELECT r.cylinder_id, {flags} FROM {view} r"
                f" WHERE r.year = {q.add(year)} AND ({' OR '.join(hit.values())})) {j}"
                f" ON {j}.cylinder_id = {alias}.id"
            )
            for i in hit:
                tests[i].append(f"coalesce({j}.p{i}, false)")
    zone = city_zone(settings.alerts)
    for i, first, last in live:
        j = f"fd{len(joins)}"
        t0 = dt.datetime.combine(first, dt.time(), zone)
        t1 = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT f.cylinder_id FROM fills f"
            f" WHERE f.ts >= {q.add(t0)}::timestamptz AND f.ts < {q.add(t1)}::timestamptz"
            f" AND f.result = 'completed') {j} ON {j}.cylinder_id = {alias}.id"
        )
        tests[i].append(f"{j}.cylinder_id IS NOT NULL")
    return Filled("\n".join(joins), tuple(f"({' OR '.join(t)})" if t else "false" for t in tests))
