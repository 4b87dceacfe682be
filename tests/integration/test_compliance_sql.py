"""The compliance SQL (server.db.compliance) agrees with the domain, row by row, on PostgreSQL.

Random days (leap days and the far past and future included), random thresholds, and
inspection / scrap dates drawn around every boundary the rule has — the day itself, the
edges of both warning windows, 29 February — or missing altogether (NULL). For each row the
``CASE`` must give :func:`server.domain.dates.compliance_status`, and the ``WHERE`` of each
status must select the row exactly when that is its status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.db.compliance import (
    COMPLIANCE_VALUES,
    ComplianceBounds,
    compliance_case,
    compliance_where,
)
from server.domain.dates import ComplianceStatus, compliance_status
from server.domain.statuses import CYLINDER_STATUSES
from server.kernel.scope import Sql
from server.kernel.settings import Dates, Settings, load_settings

WINDOW_MAX = 400
"""Largest warning window drawn (days); the default windows are 30 and 90."""

days = st.one_of(
    st.dates(date(1901, 1, 1), date(2098, 12, 31)),
    st.sampled_from([date(2024, 2, 29), date(2000, 2, 29), date(2023, 2, 28), date(2100, 2, 28)]),
)
windows = st.integers(0, WINDOW_MAX)


Row = tuple[str, date | None, date | None]
Case = tuple[date, int, int, list[Row]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A day, the two warning windows, and rows of (status, next inspection, scrap date)."""
    day = draw(days)
    inspection_due, scrap_due = draw(windows), draw(windows)

    def around() -> st.SearchStrategy[date | None]:
        edges = [0, inspection_due, scrap_due]
        offsets = st.one_of(
            st.sampled_from([e + d for e in edges for d in (-1, 0, 1)]),
            st.integers(-3 * WINDOW_MAX, 3 * WINDOW_MAX),
        )
        return st.one_of(
            st.none(),
            offsets.map(lambda o: day + timedelta(days=o)),
            st.sampled_from([date(2024, 2, 29), date(2028, 2, 29)]),
        )

    rows = draw(
        st.lists(st.tuples(st.sampled_from(CYLINDER_STATUSES), around(), around()), max_size=40)
    )
    return day, inspection_due, scrap_due, rows


@pytest.fixture(scope="module")
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    yield c
    await c.close()


def _sql(bounds: ComplianceBounds) -> tuple[str, list[object]]:
    """CASE and every WHERE over rows passed as arrays (NULLs and all), in one statement."""
    q = Sql()
    statuses, nexts, scraps = q.add(None), q.add(None), q.add(None)
    wheres = ", ".join(
        f"{compliance_where(s, 'c', q, bounds)} AS is_{s}" for s in COMPLIANCE_VALUES
    )
    sql = f"""SELECT c.i, {compliance_case("c", q, bounds)} AS st, {wheres}
                FROM unnest({statuses}::text[], {nexts}::date[], {scraps}::date[])
                     WITH ORDINALITY AS c(status, next_inspection_date, scrap_date, i)
               ORDER BY c.i"""
    return sql, q.params


@given(case=cases())
@hsettings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_sql_agrees_with_the_domain(
    conn: asyncpg.Connection,
    settings: Settings,
    case: Case,
) -> None:
    day, inspection_due, scrap_due, rows = case
    rules = msgspec.structs.replace(
        settings.dates, inspection_due_days=inspection_due, scrap_due_days=scrap_due
    )
    sql, params = _sql(ComplianceBounds.of(day, rules))
    params[:3] = [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]]
    got = await conn.fetch(sql, *params)
    assert len(got) == len(rows)
    for (status, next_insp, scrap), rec in zip(rows, got, strict=True):
        expected = compliance_status(status, next_insp, scrap, day, rules)
        where = {s for s in COMPLIANCE_VALUES if rec[f"is_{s}"]}
        assert (rec["st"], where) == (expected.value, {expected.value}), (
            status,
            next_insp,
            scrap,
            day,
        )


def test_the_case_follows_the_domain_precedence() -> None:
    """The statuses are tested in the enum's order: most severe first, ``ok`` last."""
    q = Sql()
    case = compliance_case("c", q, ComplianceBounds.of(date(2024, 2, 29), _default_rules()))
    positions = [case.index(f"'{s.value}'") for s in ComplianceStatus]
    assert positions == sorted(positions)
    assert tuple(s.value for s in ComplianceStatus) == COMPLIANCE_VALUES


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        compliance_where("fine", "c", Sql(), ComplianceBounds.of(date.today(), _default_rules()))


def _default_rules() -> Dates:
    return load_settings(environ={}).dates
