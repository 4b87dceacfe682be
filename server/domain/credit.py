"""Credit evaluation (信用评价): the ledger's vocabulary, a score from its events, the grades.

DOMAIN.md "Credit evaluation": credit is a ledger of dated events, good and bad, each with
its points and source; the score of a day counts the events of the rolling window up to it
(``[credit] window_months``) — base + good − bad, each kind's total held within its cap —
and the grade comes from the score (thresholds) or from the company's rank in the city
(the best and the worst few), as ``[credit] grading`` says. Every number is a setting
(docs/CONFIG.md "[credit]"); this module only decides, pure like the rest of the domain
(docs/ARCHITECTURE.md §4): the recomputation round (``server.db.credit_round``) gathers the
sums and writes what these functions return, and pages read the stored snapshots.

Arithmetic is in ``Decimal`` so that 0.5-point events add up exactly (forty refusals are
exactly the 20-point cap, never 19.999999).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal, TypeVar

from server.kernel.settings import Credit

__all__ = [
    "DERIVED_KINDS",
    "GRADES",
    "KINDS",
    "MANUAL_KINDS",
    "STICKY_KINDS",
    "CreditKind",
    "KindTotal",
    "Line",
    "Scored",
    "event_points",
    "grade_all",
    "grade_by_rank",
    "grade_by_thresholds",
    "month_start",
    "ranks",
    "score",
    "snapshot_days",
    "window_start",
]


class CreditKind(StrEnum):
    """What a ledger entry is about. Declaration order is the breakdown's order."""

    denied_attempt = "denied_attempt"
    """A gun refused because the cylinder was not the company's, overdue or scrapped
    (``[credit] denied_reasons``): counted per station and day from the trajectory."""
    overfill = "overfill"
    """An overfill alert, each fill it counted."""
    overstock_day = "overstock_day"
    """A day a site held more full cylinders than permitted (from its overstock alerts)."""
    suspected_illegal_fill = "suspected_illegal_fill"
    """A suspected illegal fill (黑充装嫌疑) alert, each time it was raised."""
    complaint_upheld = "complaint_upheld"
    """A complaint closed as upheld."""
    rectification_overdue = "rectification_overdue"
    """A safety-inspection rectification past its deadline (no source yet: issue 8)."""
    licence_lapsed = "licence_lapsed"
    """The company's or one of its stations' licence suspended, revoked or expired."""
    good_conduct = "good_conduct"
    """Recorded by a regulator, with its points and reason (the only good events)."""
    bad_conduct = "bad_conduct"
    """Recorded by a regulator, with its points and reason."""


KINDS: Final[tuple[str, ...]] = tuple(k.value for k in CreditKind)
MANUAL_KINDS: Final[tuple[str, ...]] = (CreditKind.good_conduct, CreditKind.bad_conduct)
"""Kinds only a person records (POST /api/v1/companies/{id}/credit/events)."""
DERIVED_KINDS: Final[tuple[str, ...]] = tuple(k for k in KINDS if k not in MANUAL_KINDS)
"""Kinds the recomputation round derives from facts; their points are ``[credit] points``."""
GOOD_KINDS: Final[frozenset[str]] = frozenset({CreditKind.good_conduct})
STICKY_KINDS: Final[frozenset[str]] = frozenset({CreditKind.licence_lapsed})
"""Derived kinds seen in present state, not in a history: a licence expired last spring and
renewed since leaves no trace in the licence's columns, so once the round has recorded the
lapse it keeps it (other derived entries follow their facts, and go if a fact is corrected)."""

Grade = Literal["A", "B", "C", "D"]
GRADES: Final[tuple[Grade, ...]] = ("A", "B", "C", "D")
"""Best first."""

MONTHS_PER_YEAR: Final = len(calendar.month_abbr) - 1


def _dec(value: float) -> Decimal:
    """A setting's float as the decimal a person wrote (0.1 stays 0.1)."""
    return Decimal(str(value))


def event_points(kind: str, count: int, cfg: Credit) -> Decimal:
    """Signed points of *count* events of a derived *kind* (bad kinds are negative)."""
    if kind not in DERIVED_KINDS:
        raise ValueError(f"{kind!r} is not derived from facts: its points are a person's")
    return -_dec(cfg.points[kind]) * count  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class KindTotal:
    """The window's entries of one kind: how many events, and their signed points."""

    count: int
    points: Decimal


@dataclass(frozen=True, slots=True)
class Line:
    """One kind in a score's breakdown: the raw points, the cap, what counted."""

    kind: str
    count: int
    raw: Decimal
    cap: Decimal | None
    points: Decimal

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "count": self.count,
            "raw": float(self.raw),
            "cap": None if self.cap is None else float(self.cap),
            "points": float(self.points),
            "capped": self.points != self.raw,
        }


@dataclass(frozen=True, slots=True)
class Scored:
    score: Decimal
    lines: tuple[Line, ...]


def _capped(kind: str, raw: Decimal, cfg: Credit) -> tuple[Decimal | None, Decimal]:
    cap_value = cfg.caps.get(kind)
    if cap_value is None:
        return None, raw
    cap = _dec(cap_value)
    if kind in GOOD_KINDS:
        return cap, min(raw, cap)
    return cap, max(raw, -cap)


def score(totals: Mapping[str, KindTotal], cfg: Credit) -> Scored:
    """base + every kind's points, each held within its cap; the breakdown lists every kind
    of the ledger (zeros included, so a page shows what was checked)."""
    unknown = sorted(set(totals) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown credit kinds: {unknown}")
    lines = []
    total = _dec(cfg.base)
    for kind in KINDS:
        t = totals.get(kind, KindTotal(0, Decimal(0)))
        cap, counted = _capped(kind, t.points, cfg)
        lines.append(Line(kind, t.count, t.points, cap, counted))
        total += counted
    return Scored(total, tuple(lines))


def grade_by_thresholds(value: Decimal, cfg: Credit) -> Grade:
    """A at or above ``grade_a``, B at or above ``grade_b``, C at or above ``grade_c``, D below."""
    if value >= _dec(cfg.grade_a):
        return "A"
    if value >= _dec(cfg.grade_b):
        return "B"
    if value >= _dec(cfg.grade_c):
        return "C"
    return "D"


K = TypeVar("K", bound=Hashable)


def ranks(scores: Mapping[K, Decimal]) -> dict[K, int]:
    """Competition ranking, best first: equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(scores.values(), reverse=True)
    first: dict[Decimal, int] = {}
    for i, value in enumerate(ordered):
        first.setdefault(value, i + 1)
    return {key: first[value] for key, value in scores.items()}


def grade_by_rank(scores: Mapping[K, Decimal], cfg: Credit) -> dict[K, Grade]:
    """The best ``rank_top`` companies of the city are A and the worst ``rank_bottom`` D (ties
    share the grade); the others are B at or above ``grade_b``, C below. A company among both
    the best and the worst (a city of few companies) is A: it ranks among the best."""
    values = list(scores.values())
    out: dict[K, Grade] = {}
    for key, value in scores.items():
        better = sum(1 for v in values if v > value)
        worse = sum(1 for v in values if v < value)
        if better < cfg.rank_top:
            out[key] = "A"
        elif worse < cfg.rank_bottom:
            out[key] = "D"
        elif value >= _dec(cfg.grade_b):
            out[key] = "B"
        else:
            out[key] = "C"
    return out


def grade_all(scores: Mapping[K, Decimal], cfg: Credit) -> dict[K, Grade]:
    """Each company's grade as ``[credit] grading`` says, from the city's scores of one day."""
    if cfg.grading == "rank":
        return grade_by_rank(scores, cfg)
    return {key: grade_by_thresholds(value, cfg) for key, value in scores.items()}


# ------------------------------------------------------------------ the calendar


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(first: dt.date, months: int) -> dt.date:
    """The first of the month *months* after (or before) the month starting on *first*."""
    index = first.year * MONTHS_PER_YEAR + first.month - 1 + months
    year, month0 = divmod(index, MONTHS_PER_YEAR)
    return dt.date(year, month0 + 1, 1)


def window_start(as_of: dt.date, cfg: Credit) -> dt.date:
    """The first day the score of *as_of* counts: the window is the ``window_months`` months
    up to and including *as_of* (rolling 12 months: 2025-06-15 counts from 2024-06-16)."""
    months_back = _add_months(month_start(as_of), -cfg.window_months)
    last_day = calendar.monthrange(months_back.year, months_back.month)[1]
    return months_back.replace(day=min(as_of.day, last_day)) + dt.timedelta(days=1)


def snapshot_days(today: dt.date, cfg: Credit) -> list[tuple[dt.date, dt.date]]:
    """``(month, as_of)`` of the monthly snapshots a round writes, oldest first: each past
    month as of its last day, the current month as of *today* (``history_months`` in all)."""
    this_month = month_start(today)
    out = []
    for back in range(cfg.history_months - 1, 0, -1):
        month = _add_months(this_month, -back)
        out.append((month, _add_months(month, 1) - dt.timedelta(days=1)))
    out.append((this_month, today))
    return out
