"""Status transitions and periodic inspection outcomes (server.domain.transitions)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.dates import add_years
from server.domain.statuses import CYLINDER_STATUSES, ROLES, SCRAPPED
from server.domain.transitions import (
    FINAL_STATUSES,
    InspectionOutcome,
    InspectionRefused,
    Rule,
    TransitionRefused,
    apply_inspection,
    check_transition,
    statuses_for,
)
from server.kernel.settings import load_settings

RULES = load_settings(environ={}).dates
MADE = date(2020, 2, 29)
D = timedelta(days=1)
INSPECTED = date(2024, 2, 28)


def _refusal(old: str, new: str, role: str | None) -> Rule | None:
    try:
        check_transition(old, new, role)
    except TransitionRefused as exc:
        assert exc.old_status in (old, None) and exc.new_status == new and exc.message
        return exc.rule
    return None


@given(
    st.sampled_from(CYLINDER_STATUSES),
    st.sampled_from(CYLINDER_STATUSES),
    st.sampled_from((*ROLES, None)),
)
def test_scrapped_never_returns_to_use(old: str, new: str, role: str | None) -> None:
    rule = _refusal(old, new, role)
    if old in FINAL_STATUSES and new != old:
        assert rule is not None
    if role is None:  # the importer: the life cycle alone
        assert rule == (Rule.FINAL if old == SCRAPPED and new != old else None)


def test_roles_set_only_their_statuses() -> None:
    assert statuses_for("admin") == frozenset(CYLINDER_STATUSES)
    for role in ("regulator", "officer", "station_operator"):
        assert statuses_for(role) == frozenset()
    assert _refusal("in_service", "scrapped", "company_admin") == Rule.ROLE_MAY_NOT_SET
    assert _refusal("in_service", "not_activated", "inspector") == Rule.ROLE_MAY_NOT_SET
    assert _refusal("in_service", "in_service", "regulator") == Rule.ROLE_MAY_NOT_SET
    assert _refusal("in_service", "scrapped", "inspector") is None
    assert _refusal(SCRAPPED, SCRAPPED, "admin") is None


def test_company_returns_only_found_cylinders_to_service() -> None:
    for old in CYLINDER_STATUSES:
        expected = None if old in ("in_service", "lost") else Rule.ROLE_MAY_NOT_RETURN
        assert _refusal(old, "in_service", "company_admin") == expected
    assert _refusal("suspended", "in_service", "inspector") is None
    assert _refusal(SCRAPPED, "in_service", "admin") == Rule.FINAL


def _inspect(result: str, status: str = "in_service", **kw: Any) -> InspectionOutcome:
    args: dict[str, Any] = {
        "status": status,
        "manufacture_date": MADE,
        "last_inspection_date": None,
        "next_inspection_date": add_years(MADE, RULES.inspection_interval_years),
        "scrap_date": add_years(MADE, RULES.design_life_years),
        "inspected_on": INSPECTED,
        "result": result,
        "rules": RULES,
    }
    args.update(kw)
    return apply_inspection(**args)


def test_pass_derives_next_inspection_and_ends_suspension() -> None:
    for status in ("in_service", "in_inspection", "suspended", "lost", "not_activated"):
        out = _inspect("pass", status)
        assert out.next_inspection_date == add_years(INSPECTED, RULES.inspection_interval_years)
        back = status in ("in_service", "in_inspection", "suspended")
        assert out.status == ("in_service" if back else status)
        assert out.last_inspection_date == INSPECTED


def test_pass_caps_the_agency_scrap_date() -> None:
    out = _inspect("pass", given_scrap_date=date(2040, 1, 1))
    assert out.scrap_date == add_years(MADE, RULES.absolute_scrap_age_years)
    assert out.scrap_date_capped is True
    out = _inspect("pass", given_scrap_date=date(2029, 1, 1))
    assert (out.scrap_date, out.scrap_date_capped) == (date(2029, 1, 1), False)


def test_fail_and_scrap_scrap() -> None:
    for result in ("fail", "scrap"):  # GB/T 8334-2022: 合格 or 报废, nothing between
        out = _inspect(result)
        assert out.status == SCRAPPED
        assert out.scrap_date == INSPECTED


def test_last_inspection_never_moves_back() -> None:
    out = _inspect("fail", last_inspection_date=date(2024, 3, 1))
    assert out.last_inspection_date == date(2024, 3, 1)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"result": "maybe"}, "result"),
        ({"inspected_on": MADE - D}, "inspected_on"),
        ({"given_next_inspection": INSPECTED}, "next_inspection_date"),
        ({"given_scrap_date": MADE - D}, "scrap_date"),
    ],
)
def test_impossible_dates_name_the_field(kw: dict[str, Any], field: str) -> None:
    args = {"result": "pass", **kw}
    with pytest.raises(InspectionRefused) as exc:
        _inspect(**args)
    assert exc.value.field == field


def test_a_scrapped_cylinder_is_not_inspected() -> None:
    for result in ("pass", "fail", "scrap"):
        with pytest.raises(TransitionRefused) as exc:
            _inspect(result, SCRAPPED)
        assert exc.value.rule == Rule.FINAL
