"""Inspection/scrap date derivation and compliance status (docs/ARCHITECTURE.md §4, DOMAIN.md "Dates")."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.domain import (
    ComplianceStatus,
    add_years,
    compliance_status,
    derive_next_inspection,
    derive_scrap_date,
    is_inspection_overdue,
    is_scrapped,
    public_label,
)
from server.kernel.settings import Dates, load_settings

SETTINGS = load_settings(environ={})
RULES = SETTINGS.dates
TODAY = date(2025, 6, 15)
D = timedelta(days=1)


def test_default_rules_are_domain_md() -> None:
    # the numbers the rest of this file relies on; if a city changes them, tests still hold
    # because every expectation below is computed from RULES
    assert RULES.inspection_interval_years == 4
    assert RULES.design_life_years == 8
    assert RULES.absolute_scrap_age_years == 12
    assert RULES.inspection_due_days == 30
    assert RULES.scrap_due_days == 90


# ------------------------------------------------------------------ add_years


@pytest.mark.parametrize(
    ("start", "years", "expected"),
    [
        (date(2024, 2, 29), 4, date(2028, 2, 29)),  # leap to leap
        (date(2024, 2, 29), 1, date(2025, 2, 28)),  # leap day to a common year: earlier
        (date(2024, 2, 29), 3, date(2027, 2, 28)),
        (date(2020, 2, 29), 5, date(2025, 2, 28)),
        (date(2024, 2, 29), 8, date(2032, 2, 29)),
        (date(2024, 2, 29), 12, date(2036, 2, 29)),
        (date(2096, 2, 29), 4, date(2100, 2, 28)),  # 2100 is not a leap year
        (date(1996, 2, 29), 4, date(2000, 2, 29)),  # 2000 is
        (date(2023, 2, 28), 4, date(2027, 2, 28)),
        (date(2023, 2, 28), 1, date(2024, 2, 28)),  # never moves to the 29th
        (date(2023, 3, 1), 1, date(2024, 3, 1)),
        (date(2025, 2, 28), 3, date(2028, 2, 28)),
        (date(2025, 12, 31), 4, date(2029, 12, 31)),
        (date(2025, 1, 1), 0, date(2025, 1, 1)),
        (date(2028, 2, 29), -4, date(2024, 2, 29)),
        (date(2024, 2, 29), -1, date(2023, 2, 28)),
    ],
)
def test_add_years(start: date, years: int, expected: date) -> None:
    assert add_years(start, years) == expected


def test_add_years_out_of_range() -> None:
    with pytest.raises(ValueError):
        add_years(date(9999, 1, 1), 1)


@hsettings(database=None, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), st.integers(-50, 50))
def test_add_years_never_later_than_same_day_of_month(d: date, years: int) -> None:
    moved = add_years(d, years)
    assert moved.year == d.year + years
    assert moved.month == d.month
    assert moved.day <= d.day  # never later than the same day of the month
    if (d.month, d.day) != (2, 29):
        assert moved.day == d.day
    else:
        assert moved.day in (28, 29)


# ------------------------------------------------------------------ derivation


@pytest.mark.parametrize(
    ("manufactured", "last", "expected"),
    [
        (date(2024, 2, 29), None, date(2028, 2, 29)),
        (date(2021, 2, 28), date(2023, 2, 28), date(2027, 2, 28)),
        (date(2020, 2, 29), date(2024, 2, 29), date(2028, 2, 29)),
        (date(2016, 2, 29), None, date(2020, 2, 29)),
        (date(2021, 5, 10), date(2025, 2, 28), date(2029, 2, 28)),
        (date(2021, 5, 10), None, date(2025, 5, 10)),
        (date(2021, 5, 10), date(2021, 5, 10), date(2025, 5, 10)),  # inspected the day made
    ],
)
def test_derive_next_inspection(manufactured: date, last: date | None, expected: date) -> None:
    assert derive_next_inspection(manufactured, last, RULES) == expected


def test_derive_next_inspection_leap_day_to_common_year() -> None:
    three = msgspec.structs.replace(RULES, inspection_interval_years=3)
    assert derive_next_inspection(date(2024, 2, 29), None, three) == date(2027, 2, 28)
    assert derive_next_inspection(date(2020, 1, 1), date(2024, 2, 29), three) == date(2027, 2, 28)


def test_derive_next_inspection_rejects_inspection_before_manufacture() -> None:
    with pytest.raises(ValueError, match="before manufacture"):
        derive_next_inspection(date(2022, 1, 2), date(2022, 1, 1), RULES)


def test_changed_interval_changes_next_inspection() -> None:
    five = msgspec.structs.replace(RULES, inspection_interval_years=5)
    assert derive_next_inspection(date(2021, 5, 10), None, RULES) == date(2025, 5, 10)
    assert derive_next_inspection(date(2021, 5, 10), None, five) == date(2026, 5, 10)


@pytest.mark.parametrize(
    ("manufactured", "extended", "expected"),
    [
        (date(2024, 2, 29), None, date(2032, 2, 29)),
        (date(2023, 2, 28), None, date(2031, 2, 28)),
        (date(2021, 6, 15), None, date(2029, 6, 15)),
        # a passed inspection extends the life ...
        (date(2021, 6, 15), date(2031, 6, 15), date(2031, 6, 15)),
        # ... up to exactly manufacture + 12 y ...
        (date(2021, 6, 15), date(2033, 6, 15), date(2033, 6, 15)),
        # ... and never past it
        (date(2021, 6, 15), date(2033, 6, 16), date(2033, 6, 15)),
        (date(2021, 6, 15), date(2040, 1, 1), date(2033, 6, 15)),
        (date(2024, 2, 29), date(2037, 1, 1), date(2036, 2, 29)),
        (date(2023, 2, 28), date(2040, 1, 1), date(2035, 2, 28)),
        # an inspection that shortens the life is honoured (stricter, never laxer)
        (date(2021, 6, 15), date(2027, 1, 1), date(2027, 1, 1)),
        (date(2021, 6, 15), date(2021, 6, 15), date(2021, 6, 15)),
    ],
)
def test_derive_scrap_date(manufactured: date, extended: date | None, expected: date) -> None:
    assert derive_scrap_date(manufactured, RULES, extended) == expected


def test_derive_scrap_date_leap_manufacture_common_cap_year() -> None:
    # 2024-02-29 + 13 y: 2037 is not leap, so the cap is 28 February
    thirteen = msgspec.structs.replace(RULES, absolute_scrap_age_years=13)
    assert derive_scrap_date(date(2024, 2, 29), thirteen, date(2040, 1, 1)) == date(2037, 2, 28)
    seven = msgspec.structs.replace(RULES, design_life_years=7)
    assert derive_scrap_date(date(2024, 2, 29), seven) == date(2031, 2, 28)


def test_derive_scrap_date_rejects_date_before_manufacture() -> None:
    with pytest.raises(ValueError, match="before manufacture"):
        derive_scrap_date(date(2021, 6, 15), RULES, date(2021, 6, 14))


def test_changed_design_life_changes_scrap_date() -> None:
    ten = msgspec.structs.replace(RULES, design_life_years=10)
    assert derive_scrap_date(date(2021, 6, 15), RULES) == date(2029, 6, 15)
    assert derive_scrap_date(date(2021, 6, 15), ten) == date(2031, 6, 15)


def test_changed_absolute_age_changes_cap() -> None:
    ten = msgspec.structs.replace(RULES, absolute_scrap_age_years=10)
    extended = date(2032, 6, 15)
    assert derive_scrap_date(date(2021, 6, 15), RULES, extended) == extended
    assert derive_scrap_date(date(2021, 6, 15), ten, extended) == date(2031, 6, 15)


def test_cap_applies_even_to_a_design_life_above_it() -> None:
    odd = msgspec.structs.replace(RULES, design_life_years=15)
    assert derive_scrap_date(date(2021, 6, 15), odd) == date(2033, 6, 15)


@hsettings(database=None, deadline=None)
@given(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31)),
    st.one_of(st.none(), st.integers(0, 40 * 366)),
)
def test_scrap_date_never_past_absolute_age(manufactured: date, extend_days: int | None) -> None:
    extended = None if extend_days is None else manufactured + timedelta(days=extend_days)
    scrap = derive_scrap_date(manufactured, RULES, extended)
    assert manufactured <= scrap <= add_years(manufactured, RULES.absolute_scrap_age_years)


# ------------------------------------------------------------------ compliance status


def status_of(
    next_inspection: date | None,
    scrap: date | None,
    status: str = "in_service",
    today: date = TODAY,
    rules: Dates = RULES,
) -> ComplianceStatus:
    return compliance_status(status, next_inspection, scrap, today, rules)


FAR = TODAY + timedelta(days=3 * 365)  # a date well outside every warning window


def test_ok() -> None:
    assert status_of(FAR, FAR) is ComplianceStatus.OK


@pytest.mark.parametrize(
    ("scrap", "expected"),
    [
        (TODAY - D, ComplianceStatus.SCRAPPED),  # the day before
        (TODAY, ComplianceStatus.SCRAPPED),  # the scrap day itself: out of use
        (TODAY + D, ComplianceStatus.SCRAP_DUE),  # the day after
        (TODAY + timedelta(days=RULES.scrap_due_days), ComplianceStatus.SCRAP_DUE),
        (TODAY + timedelta(days=RULES.scrap_due_days + 1), ComplianceStatus.OK),
        (None, ComplianceStatus.OK),  # unknown scrap date: that rule does not fire
    ],
)
def test_scrap_edges(scrap: date | None, expected: ComplianceStatus) -> None:
    assert status_of(FAR, scrap) is expected


@pytest.mark.parametrize(
    ("next_inspection", "expected"),
    [
        (TODAY - D, ComplianceStatus.OVERDUE),
        (TODAY, ComplianceStatus.INSPECTION_DUE),  # the inspection day is still in date
        (TODAY + D, ComplianceStatus.INSPECTION_DUE),
        (TODAY + timedelta(days=RULES.inspection_due_days), ComplianceStatus.INSPECTION_DUE),
        (TODAY + timedelta(days=RULES.inspection_due_days + 1), ComplianceStatus.OK),
        (None, ComplianceStatus.OVERDUE),  # un-dated cylinder must not be filled
    ],
)
def test_inspection_edges(next_inspection: date | None, expected: ComplianceStatus) -> None:
    assert status_of(next_inspection, FAR) is expected


def test_status_scrapped_wins_over_good_dates() -> None:
    assert status_of(FAR, FAR, status="scrapped") is ComplianceStatus.SCRAPPED
    assert status_of(None, None, status="scrapped") is ComplianceStatus.SCRAPPED


@pytest.mark.parametrize("status", ["in_inspection", "lost", "suspended", "not_activated"])
def test_other_statuses_do_not_change_compliance(status: str) -> None:
    assert status_of(FAR, FAR, status=status) is ComplianceStatus.OK
    assert status_of(TODAY - D, FAR, status=status) is ComplianceStatus.OVERDUE


def test_both_dates_unknown() -> None:
    assert status_of(None, None) is ComplianceStatus.OVERDUE


def test_leap_day_edges() -> None:
    # made 2024-02-29: next inspection 2028-02-29 (in date that day), scrap 2032-02-29
    nxt = derive_next_inspection(date(2024, 2, 29), None, RULES)
    scrap = derive_scrap_date(date(2024, 2, 29), RULES)
    assert status_of(nxt, scrap, today=date(2028, 2, 29)) is ComplianceStatus.INSPECTION_DUE
    assert status_of(nxt, scrap, today=date(2028, 3, 1)) is ComplianceStatus.OVERDUE
    assert status_of(FAR + timedelta(days=3650), scrap, today=date(2032, 2, 28)) is (
        ComplianceStatus.SCRAP_DUE
    )
    assert status_of(FAR + timedelta(days=3650), scrap, today=date(2032, 2, 29)) is (
        ComplianceStatus.SCRAPPED
    )
    # inspected 2025-02-28 → next 2029-02-28; 2029-03-01 is the first overdue day
    nxt = derive_next_inspection(date(2022, 1, 1), date(2025, 2, 28), RULES)
    assert status_of(nxt, FAR + timedelta(days=3650), today=date(2029, 2, 28)) is (
        ComplianceStatus.INSPECTION_DUE
    )
    assert status_of(nxt, FAR + timedelta(days=3650), today=date(2029, 3, 1)) is (
        ComplianceStatus.OVERDUE
    )


def test_window_spans_leap_day() -> None:
    # 30 days from 2024-02-01 is 2024-03-02 (29 days in Feb 2024)
    today = date(2024, 2, 1)
    assert status_of(date(2024, 3, 2), FAR, today=today) is ComplianceStatus.INSPECTION_DUE
    assert status_of(date(2024, 3, 3), FAR, today=today) is ComplianceStatus.OK


# Every combination of positions, checked against the precedence written as a list.
SCRAP_POSITIONS: dict[str, tuple[date | None, set[ComplianceStatus]]] = {
    "scrap_past": (TODAY - D, {ComplianceStatus.SCRAPPED}),
    "scrap_today": (TODAY, {ComplianceStatus.SCRAPPED}),
    "scrap_within": (TODAY + timedelta(days=RULES.scrap_due_days), {ComplianceStatus.SCRAP_DUE}),
    "scrap_far": (TODAY + timedelta(days=RULES.scrap_due_days + 1), set()),
    "scrap_none": (None, set()),
}
NEXT_POSITIONS: dict[str, tuple[date | None, set[ComplianceStatus]]] = {
    "next_past": (TODAY - D, {ComplianceStatus.OVERDUE}),
    "next_today": (TODAY, {ComplianceStatus.INSPECTION_DUE}),
    "next_within": (
        TODAY + timedelta(days=RULES.inspection_due_days),
        {ComplianceStatus.INSPECTION_DUE},
    ),
    "next_far": (TODAY + timedelta(days=RULES.inspection_due_days + 1), set()),
    "next_none": (None, {ComplianceStatus.OVERDUE}),
}
STATUS_POSITIONS: dict[str, set[ComplianceStatus]] = {
    "in_service": set(),
    "lost": set(),
    "scrapped": {ComplianceStatus.SCRAPPED},
}
PRECEDENCE = [
    ComplianceStatus.SCRAPPED,
    ComplianceStatus.OVERDUE,
    ComplianceStatus.SCRAP_DUE,
    ComplianceStatus.INSPECTION_DUE,
]


@pytest.mark.parametrize(
    ("status", "scrap_key", "next_key"),
    list(itertools.product(STATUS_POSITIONS, SCRAP_POSITIONS, NEXT_POSITIONS)),
)
def test_precedence_every_combination(status: str, scrap_key: str, next_key: str) -> None:
    scrap, scrap_fires = SCRAP_POSITIONS[scrap_key]
    nxt, next_fires = NEXT_POSITIONS[next_key]
    fires = STATUS_POSITIONS[status] | scrap_fires | next_fires
    expected = next((c for c in PRECEDENCE if c in fires), ComplianceStatus.OK)
    assert status_of(nxt, scrap, status=status) is expected


def test_enum_order_is_precedence() -> None:
    assert [*PRECEDENCE, ComplianceStatus.OK] == list(ComplianceStatus)
    assert [c.value for c in ComplianceStatus] == [
        "scrapped",
        "overdue",
        "scrap_due",
        "inspection_due",
        "ok",
    ]


def test_changed_inspection_due_days_changes_status() -> None:
    nxt = TODAY + timedelta(days=40)
    assert status_of(nxt, FAR) is ComplianceStatus.OK
    wider = msgspec.structs.replace(RULES, inspection_due_days=45)
    assert status_of(nxt, FAR, rules=wider) is ComplianceStatus.INSPECTION_DUE


def test_changed_scrap_due_days_changes_status() -> None:
    scrap = TODAY + timedelta(days=100)
    assert status_of(FAR, scrap) is ComplianceStatus.OK
    wider = msgspec.structs.replace(RULES, scrap_due_days=120)
    assert status_of(FAR, scrap, rules=wider) is ComplianceStatus.SCRAP_DUE
    narrower = msgspec.structs.replace(RULES, scrap_due_days=0)
    assert status_of(FAR, TODAY + D, rules=narrower) is ComplianceStatus.OK


def test_helpers() -> None:
    assert is_inspection_overdue(None, TODAY)
    assert is_inspection_overdue(TODAY - D, TODAY)
    assert not is_inspection_overdue(TODAY, TODAY)
    assert is_scrapped("scrapped", None, TODAY)
    assert is_scrapped("in_service", TODAY, TODAY)
    assert not is_scrapped("in_service", TODAY + D, TODAY)
    assert not is_scrapped("in_service", None, TODAY)


# ------------------------------------------------------------------ public labels

ZH = {
    ComplianceStatus.OK: "合格",
    ComplianceStatus.SCRAP_DUE: "合格",
    ComplianceStatus.INSPECTION_DUE: "待检",
    ComplianceStatus.OVERDUE: "过期",
    ComplianceStatus.SCRAPPED: "报废",
}
EN = {
    ComplianceStatus.OK: "Compliant",
    ComplianceStatus.SCRAP_DUE: "Compliant",
    ComplianceStatus.INSPECTION_DUE: "Inspection due",
    ComplianceStatus.OVERDUE: "Overdue",
    ComplianceStatus.SCRAPPED: "Scrapped",
}


@pytest.mark.parametrize("c", list(ComplianceStatus))
def test_public_label(c: ComplianceStatus) -> None:
    assert public_label(c) == ZH[c]
    assert public_label(c, "zh-CN") == ZH[c]
    assert public_label(c, "en") == EN[c]
    assert public_label(c, "en-US") == EN[c]
    assert public_label(c, "EN-gb") == EN[c]
    assert public_label(c, "fr") == ZH[c]  # unknown language: the default, Chinese
    assert public_label(c, "") == ZH[c]


def test_public_label_accepts_plain_value() -> None:
    assert public_label(ComplianceStatus("inspection_due"), "en") == "Inspection due"
