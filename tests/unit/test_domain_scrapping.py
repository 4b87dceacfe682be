"""Scrapping rules of the domain (server.domain.transitions): the reason a record keeps and
what a direct scrap does to the scrap date (docs/API.md "Periodic inspection and scrapping")."""

from __future__ import annotations

from datetime import date

import pytest

from server.domain.statuses import SCRAP_REASONS, SCRAPPED
from server.domain.transitions import (
    InspectionRefused,
    Rule,
    TransitionRefused,
    apply_scrap,
    scrap_reason_of,
)

MADE = date(2020, 5, 1)


def test_a_pass_names_no_reason_a_fail_defaults_to_failed_inspection() -> None:
    assert scrap_reason_of("pass", None, None) is None
    assert scrap_reason_of("fail", None, None) == "failed_inspection"
    assert scrap_reason_of("scrap", "over_age", None) == "over_age"
    for reason in SCRAP_REASONS:
        assert scrap_reason_of("scrap", reason, "why") == reason


@pytest.mark.parametrize(
    ("result", "reason", "note", "field"),
    [
        ("pass", "damage", None, "scrap_reason"),
        ("fail", "melted", None, "scrap_reason"),
        ("scrap", "other", None, "notes"),
        ("scrap", "other", "   ", "notes"),
    ],
)
def test_refused_reasons_name_the_field(
    result: str, reason: str, note: str | None, field: str
) -> None:
    with pytest.raises(InspectionRefused) as exc:
        scrap_reason_of(result, reason, note)
    assert exc.value.field == field


def _scrap(scrap_date: date, scrapped_on: date) -> date:
    return apply_scrap(
        status="in_service", manufacture_date=MADE, scrap_date=scrap_date, scrapped_on=scrapped_on
    )


def test_a_direct_scrap_moves_the_scrap_date_forward_only() -> None:
    assert _scrap(date(2028, 5, 1), date(2026, 1, 2)) == date(2026, 1, 2)
    assert _scrap(date(2025, 5, 1), date(2026, 1, 2)) == date(2025, 5, 1)  # an earlier one stands
    with pytest.raises(InspectionRefused) as exc:
        _scrap(date(2028, 5, 1), date(2019, 1, 1))  # before manufacture
    assert exc.value.field == "scrapped_on"


def test_scrapping_twice_is_refused() -> None:
    with pytest.raises(TransitionRefused) as exc:
        apply_scrap(
            status=SCRAPPED,
            manufacture_date=MADE,
            scrap_date=date(2028, 5, 1),
            scrapped_on=date(2026, 1, 2),
        )
    assert exc.value.rule == Rule.FINAL
