"""The report rollups (migration 0220; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10): daily
aggregates of fills, refused attempts, alerts and overstock days, and how a report reads
them so that its numbers are exact and fast at city scale.

A rollup holds the city days before its watermark (``rollup_state.upto``), as of its last
refresh (``server.db.rollup_refresh``). :func:`source` gives a report one FROM item covering
any period: the rollup for the days before the watermark, and the rollup's own defining
function (``cyl_fills_daily`` …) over the raw table for the days from the watermark on — today
and whatever the refresh has not closed yet. Both halves come from one SQL definition, so a
report cannot drift from its rollup, and a year's report reads ~365 rows per station instead
of ~12 million fills. The role scope and the filters go on the FROM item's columns
(``district_code``, ``company_id``, ``station_id`` / ``site_id`` — the raw tables' own
names, so ``server.kernel.scope`` applies unchanged); PostgreSQL pushes them into both halves.

What "exact" means: the days before the watermark are counted as they stood at the last
refresh; a row arriving later for such a day (a gun's buffered fill, a bulk upload) counts
from the next refresh ([reports] rollup_refresh_s) — for fills older than
:data:`RECENT_DAYS`, from the next day's first refresh (migration 0221). A day is only closed
:data:`CLOSE_AFTER` after it ends, so a batch committed just after midnight still lands in
the live half. Alerts are counted by the day they were raised (``first_at``), which a later
repeat does not move; their ``occurrences`` and ``unresolved`` are as of the refresh for
closed days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from server.domain.localtime import city_zone
from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = [
    "ALERTS",
    "CLOSE_AFTER",
    "DENIALS",
    "FILLS",
    "LOCK_KEY",
    "OVERSTOCK",
    "RECENT_DAYS",
    "Rollup",
    "Watermark",
    "closed_until",
    "refresh_own",
    "source",
    "watermark",
]

LOCK_KEY: Final = 0x0C72_0220
"""The transaction-scoped advisory lock of a refresh (``cyl_rollups_refresh`` in 0220 takes
it): one process at a time refreshes, whichever asked first."""

CLOSE_AFTER: Final = dt.timedelta(minutes=15)
"""How long after a city day ends it is closed into the rollups: ingest commits a batch
within seconds, a gun back from a short network loss sends its buffered fills within
minutes; a quarter hour keeps those in the live half instead of waiting a refresh."""


RECENT_DAYS: Final = 7
"""Closed days of fills refreshed at every round (migration 0221's recent view); the days
before them are refreshed once a day. A week holds a gun's buffered fills and an enterprise's
weekly upload, while a round reads a week of fills instead of the whole history (a year of a
1M-cylinder city is 12M fills: docs/BENCHMARKS.md "Reports")."""


@dataclass(frozen=True)
class Rollup:
    """One rollup: the view reports read, the function defining each of its rows, its key
    and measure columns (in the function's order)."""

    view: str
    function: str
    keys: tuple[str, ...]
    measures: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return ("day", *self.keys, *self.measures)


FILLS: Final = Rollup(
    "rollup_fills_day",
    "cyl_fills_daily",
    ("station_id", "company_id", "district_code"),
    ("fills", "completed", "aborted", "overfill", "underfill", "net_kg"),
)
DENIALS: Final = Rollup(
    "rollup_denials_day",
    "cyl_denials_daily",
    ("site_id", "company_id", "district_code", "reason"),
    ("attempts",),
)
ALERTS: Final = Rollup(
    "rollup_alerts_day",
    "cyl_alerts_daily",
    ("site_id", "company_id", "district_code", "kind"),
    ("alerts", "occurrences", "unresolved"),
)
OVERSTOCK: Final = Rollup(
    "rollup_overstock_day",
    "cyl_overstock_daily",
    ("site_id", "company_id", "district_code"),
    ("peak_full", "permitted", "alerts"),
)


@dataclass(frozen=True)
class Watermark:
    """``rollup_state``: the zone the rollups are in, how they are kept, and the first city
    day they do not hold (None: nothing rolled up yet)."""

    tz: str
    mode: str
    upto: dt.date | None
    refreshed_at: dt.datetime | None
    duration_ms: int | None
    split: dt.date | None = None

    def usable_upto(self, tz: str) -> dt.date | None:
        """The watermark for a reader in zone *tz*: none when the rollups are in another
        zone (the setting changed; the next refresh rebuilds them)."""
        return self.upto if self.tz == tz else None

    def as_json(self) -> dict[str, Any]:
        return {
            "tz": self.tz,
            "mode": self.mode,
            "upto": self.upto,
            "refreshed_at": self.refreshed_at,
            "duration_ms": self.duration_ms,
            "split": self.split,
        }


async def watermark(db: asyncpg.Pool | asyncpg.Connection) -> Watermark | None:
    row = await db.fetchrow(
        """SELECT tz, mode, upto, refreshed_at, duration_ms, split
             FROM rollup_state WHERE name = 'reports'"""
    )
    return Watermark(**dict(row)) if row else None


def closed_until(now: dt.datetime, settings: Settings) -> dt.date:
    """The watermark a refresh at *now* sets: the city day of *now* − :data:`CLOSE_AFTER`
    (the days before it are closed)."""
    return (now - CLOSE_AFTER).astimezone(city_zone(settings.alerts)).date()


def source(
    rollup: Rollup,
    q: Sql,
    settings: Settings,
    first: dt.date,
    last: dt.date,
    upto: dt.date | None,
) -> str:
    """A parenthesised FROM item (alias it) with *rollup*'s columns for the city days
    [*first*, *last*]: the rollup's rows before *upto*, the defining function over the raw
    table for the days from *upto* on."""
    cols = ", ".join(rollup.columns)
    parts: list[str] = []
    live_first = first
    if upto is not None and first < upto:
        rolled_last = min(last, upto - dt.timedelta(days=1))
        parts.append(
            f"SELECT {cols} FROM {rollup.view} "
            f"WHERE day >= {q.add(first)}::date AND day <= {q.add(rolled_last)}::date"
        )
        live_first = rolled_last + dt.timedelta(days=1)
    if live_first <= last:
        zone = city_zone(settings.alerts)
        t0 = dt.datetime.combine(live_first, dt.time(), zone)
        t1 = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        parts.append(
            f"SELECT {cols} FROM {rollup.function}("
            f"{q.add(settings.alerts.timezone)}::text, {q.add(t0)}::timestamptz, "
            f"{q.add(t1)}::timestamptz)"
        )
    if not parts:  # an empty period (first > last) has no rows
        parts.append(f"SELECT {cols} FROM {rollup.view} WHERE false")
    return "(" + " UNION ALL ".join(parts) + ")"


async def refresh_own(
    db: asyncpg.Pool | asyncpg.Connection,
    function: str,
    settings: Settings,
    *extra: Any,
    upto: dt.date,
    split: dt.date,
    wait: bool,
    full: bool,
    bound_s: float,
) -> bool:
    """One call of a rollup's own refresh *function* — ``cyl_abnormal_refresh`` (migration
    0227), ``cyl_fill_days_refresh`` (0230), ``cyl_deliveries_refresh`` (0229): each takes
    (upto, zone, wait, split, full, *extra) and keeps its own watermark
    (``server.db.rollup_refresh`` runs them after the other rollups, under the same lock).
    False when another process holds the lock and *wait* is false; *bound_s* bounds the call
    (the pool's usual command bound would cut an honest refresh of the history)."""
    args = (upto, settings.alerts.timezone, wait, split, full, *extra)
    marks = ", ".join(f"${i}" for i in range(1, len(args) + 1))
    done = await db.fetchval(f"SELECT {function}({marks})", *args, timeout=bound_s)
    return bool(done)
