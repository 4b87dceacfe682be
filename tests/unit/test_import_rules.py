"""Who may change which field of an archive, and coherent dates (server.domain.record_changes).

The rule both ``PATCH /api/v1/cylinders/{id}`` and the archive import apply; the agreement of
the two doors over real services is tests/archive/test_import_rules.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.record_changes import (
    CHANGEABLE_FIELDS,
    DatesRefused,
    FieldRefused,
    RecordDates,
    check_change,
    check_dates,
    fields_for,
    status_event,
)
from server.domain.statuses import CYLINDER_STATUSES, ROLES
from server.domain.transitions import TransitionRefused, statuses_for

FIELDS = sorted(set().union(*CHANGEABLE_FIELDS.values()) - {"reason"})
FILL_DECIDING = {"next_inspection_date", "scrap_date", "last_inspection_date", "spec"}
"""Fields fill authorization reads (DESIGN §4: overdue, scrapped, the model's maximum)."""
TODAY = date(2026, 6, 15)


def test_the_table_of_docs_api_who_may_write() -> None:
    assert fields_for("company_admin") == {
        "barcode",
        "valve_type",
        "use_registration_no",
        "status",
        "reason",
    }
    inspector = fields_for("inspector")
    assert {"owner_company_id", "tag", "barcode", "district_code"}.isdisjoint(inspector)
    assert inspector >= FILL_DECIDING
    assert fields_for("admin") >= set(FIELDS)
    for role in ("regulator", "officer", "station_operator", "nobody"):
        assert fields_for(role) == frozenset()


def _allowed(role: str, changed: list[str], old: str, new: str) -> bool:
    try:
        check_change(role, changed, old, new)
    except (FieldRefused, TransitionRefused):
        return False
    return True


@given(
    st.sampled_from(ROLES),
    st.lists(st.sampled_from(FIELDS), unique=True, max_size=6),
    st.sampled_from(CYLINDER_STATUSES),
    st.sampled_from(CYLINDER_STATUSES),
)
def test_a_change_is_allowed_only_field_by_field_and_by_the_life_cycle(
    role: str, changed: list[str], old: str, new: str
) -> None:
    ok = _allowed(role, changed, old, new)
    fields_ok = set(changed) <= fields_for(role)
    status_moves = "status" in changed and new != old
    if not fields_ok:
        assert not ok
        with pytest.raises(FieldRefused) as exc:
            check_change(role, changed, old, new)
        # the first refused field in the order given is named
        assert exc.value.field == next(f for f in changed if f not in fields_for(role))
    elif status_moves:
        assert ok == (
            new in statuses_for(role)
            and old != "scrapped"
            and not (role == "company_admin" and new == "in_service" and old not in ("lost",))
        )
    else:
        assert ok
    # a subset of an allowed change is allowed (status kept: no move)
    if ok:
        for i in range(len(changed)):
            assert _allowed(role, changed[:i] + changed[i + 1 :], old, new)


@given(
    st.lists(st.sampled_from(FIELDS), unique=True, min_size=1), st.sampled_from(CYLINDER_STATUSES)
)
def test_a_company_never_moves_what_the_gun_decides_on(changed: list[str], old: str) -> None:
    if FILL_DECIDING & set(changed):
        assert not _allowed("company_admin", changed, old, old)


def test_status_events() -> None:
    assert status_event("scrapped").value == "scrap"
    assert status_event("lost").value == "lost"
    assert {status_event(s).value for s in ("in_service", "suspended", "in_inspection")} == {
        "status_change"
    }


days = st.integers(min_value=-4000, max_value=4000).map(lambda n: TODAY + timedelta(days=n))


@given(days, st.none() | days, days, days)
def test_coherent_dates(made: date, last: date | None, next_: date, scrap: date) -> None:
    coherent = (
        made <= TODAY
        and (last is None or made <= last <= TODAY)
        and next_ > made
        and (last is None or next_ > last)
        and scrap >= made
    )
    try:
        check_dates(RecordDates(made, last, next_, scrap), TODAY)
    except DatesRefused as exc:
        assert not coherent
        assert exc.field in {
            "manufacture_date",
            "last_inspection_date",
            "next_inspection_date",
            "scrap_date",
        }
        assert exc.message
    else:
        assert coherent
