"""Compliance status in SQL: the one builder every query uses (docs/ARCHITECTURE.md §4).

Why SQL at all: a city-wide count or a filtered list of 600,000 cylinders must be decided
by PostgreSQL, not by fetching every row into Python. Why one builder: the REST API, the
reports, the dashboard map, the wall's tiles and the live KPIs once each wrote their own
predicates, and one of them treated a missing date differently. Here the SQL is
*generated* from the domain (:class:`server.domain.dates.ComplianceStatus`, whose
declaration order is the precedence), with the thresholds of ``[dates]``
(docs/CONFIG.md), and ``tests/integration/test_compliance_sql.py`` checks row by row, on
a real PostgreSQL, that it agrees with :func:`server.domain.dates.compliance_status` —
NULL dates, leap days and the edges of every window included.

Each status has one *entry* predicate: the condition that puts a cylinder in that status
when no more severe status applies. The CASE tests them in precedence order; the WHERE for
one status is its entry predicate and none of the more severe ones, written on the bare
date columns so that their indexes can serve a filtered list. Every predicate is NULL-safe
(never NULL itself), so that ``NOT`` of one means what it says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from server.domain.dates import ComplianceStatus
from server.domain.statuses import SCRAPPED
from server.kernel.scope import Sql
from server.kernel.settings import Dates

__all__ = [
    "COMPLIANCE_VALUES",
    "ComplianceBounds",
    "compliance_case",
    "compliance_where",
]

COMPLIANCE_VALUES: Final[tuple[str, ...]] = tuple(s.value for s in ComplianceStatus)
"""Every compliance status, most severe first (the domain's precedence)."""


@dataclass(frozen=True)
class ComplianceBounds:
    """The three dates the SQL compares with, computed once per request from ``[dates]``."""

    today: dt.date
    inspection_due_until: dt.date
    scrap_due_until: dt.date

    @classmethod
    def of(cls, day: dt.date, rules: Dates) -> ComplianceBounds:
        """Bounds for the city's *day* (``server.kernel.clock.city_today``)."""
        return cls(
            day,
            day + dt.timedelta(days=rules.inspection_due_days),
            day + dt.timedelta(days=rules.scrap_due_days),
        )


class _Predicates:
    """The entry predicates of one statement; each bound is added as a parameter once, and
    only when used (asyncpg refuses parameters a statement does not reference)."""

    def __init__(self, alias: str, q: Sql, bounds: ComplianceBounds) -> None:
        self._a = f"{alias}." if alias else ""
        self._q = q
        self._bounds = bounds
        self._params: dict[str, str] = {}

    def _p(self, name: str) -> str:
        if name not in self._params:
            self._params[name] = self._q.add(getattr(self._bounds, name))
        return self._params[name]

    def _on_or_before(self, column: str, bound: str) -> str:
        """``column <= bound``, false (not NULL) for a missing date."""
        return f"({self._a}{column} IS NOT NULL AND {self._a}{column} <= {self._p(bound)})"

    def scrapped(self) -> str:
        # server.domain.dates.is_scrapped: status scrapped, or the scrap date has come
        return f"({self._a}status = '{SCRAPPED}' OR {self._on_or_before('scrap_date', 'today')})"

    def overdue(self) -> str:
        # server.domain.dates.is_inspection_overdue: no date at all counts as overdue
        a = self._a
        return f"({a}next_inspection_date IS NULL OR {a}next_inspection_date < {self._p('today')})"

    def scrap_due(self) -> str:
        return self._on_or_before("scrap_date", "scrap_due_until")

    def inspection_due(self) -> str:
        return self._on_or_before("next_inspection_date", "inspection_due_until")


_ENTRY: Final[Mapping[ComplianceStatus, Callable[[_Predicates], str]]] = MappingProxyType(
    {
        ComplianceStatus.SCRAPPED: _Predicates.scrapped,
        ComplianceStatus.OVERDUE: _Predicates.overdue,
        ComplianceStatus.SCRAP_DUE: _Predicates.scrap_due,
        ComplianceStatus.INSPECTION_DUE: _Predicates.inspection_due,
    }
)
_PRECEDENCE: Final[tuple[ComplianceStatus, ...]] = tuple(ComplianceStatus)
_OTHERWISE: Final[ComplianceStatus] = _PRECEDENCE[-1]
# The least severe status is what is left when no entry predicate holds; every other
# status needs one. A status added to the domain without SQL fails here, at import.
if set(_ENTRY) != set(_PRECEDENCE[:-1]):  # pragma: no cover - a programming error
    raise RuntimeError("server.db.compliance: an entry predicate per status but the last")


def compliance_case(alias: str, q: Sql, bounds: ComplianceBounds) -> str:
    """A SQL ``CASE`` giving the compliance status of row *alias*, as text."""
    p = _Predicates(alias, q, bounds)
    whens = " ".join(f"WHEN {_ENTRY[s](p)} THEN '{s.value}'" for s in _PRECEDENCE[:-1])
    return f"CASE {whens} ELSE '{_OTHERWISE.value}' END"


def compliance_where(status: str, alias: str, q: Sql, bounds: ComplianceBounds) -> str:
    """A ``WHERE`` predicate selecting the rows of one compliance *status*.

    ``ValueError`` for a word that is not a status (callers validate the query first).
    """
    wanted = ComplianceStatus(status)
    p = _Predicates(alias, q, bounds)
    more_severe = _PRECEDENCE[: _PRECEDENCE.index(wanted)]
    terms = [f"NOT {_ENTRY[s](p)}" for s in more_severe]
    if wanted is not _OTHERWISE:
        terms.insert(0, _ENTRY[wanted](p))
    return "(" + " AND ".join(terms) + ")"
