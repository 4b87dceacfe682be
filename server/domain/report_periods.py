"""The periods a scheduled report covers (docs/API.md "Scheduled reports"): a daily report
is yesterday's, a weekly one the last whole ISO week (Monday to Sunday), a monthly one the
last whole calendar month — always a period that has closed, so a file never changes after
it is written and two processes asking on the same day name the same period.

Pure: city days in, a period out (docs/ARCHITECTURE.md §4 "domain").
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Final

__all__ = ["FREQUENCIES", "Frequency", "last_closed", "period_label"]


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


FREQUENCIES: Final = tuple(f.value for f in Frequency)
_WEEK_DAYS: Final = 7
_ONE_DAY: Final = dt.timedelta(days=1)


def last_closed(frequency: Frequency | str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last whole period of *frequency* that ended before *today* (inclusive bounds)."""
    freq = Frequency(frequency)
    if freq is Frequency.DAILY:
        day = today - _ONE_DAY
        return day, day
    if freq is Frequency.WEEKLY:
        this_monday = today - dt.timedelta(days=today.weekday())
        return this_monday - dt.timedelta(days=_WEEK_DAYS), this_monday - _ONE_DAY
    first_of_this = today.replace(day=1)
    last = first_of_this - _ONE_DAY
    return last.replace(day=1), last


def period_label(frequency: Frequency | str, first: dt.date, last: dt.date) -> str:
    """How a file and a message name the period: 2026-12-06, 2026-W49, 2026-11."""
    freq = Frequency(frequency)
    if freq is Frequency.DAILY:
        return first.isoformat()
    if freq is Frequency.WEEKLY:
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}"
    del last
    return f"{first.year}-{first.month:02d}"
