"""Licences and entrustments as pure rules (server.domain.licences, server.domain.entrustments):
a licence's state on a day agrees with fill authorization, the regulator's moves, and what a
new or ended entrustment may be."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.authorization import CylinderFacts, Reason, StationFacts, authorize_fill
from server.domain.entrustments import (
    EntrustmentRefused,
    check_new,
    end_date,
    entrustment_state,
    in_force,
)
from server.domain.licences import (
    LICENCE_STATES,
    LicenceRefused,
    check_status_change,
    licence_state,
    licensed,
)
from server.domain.statuses import LICENCE_STATUSES
from server.kernel.settings import load_settings

RULES = load_settings(environ={}).alerts
TODAY = date(2026, 3, 15)
N = RULES.licence_expiring_days


@pytest.mark.parametrize(
    ("no", "expiry", "status", "state"),
    [
        ("L1", TODAY + timedelta(days=N + 1), "valid", "valid"),
        ("L1", TODAY + timedelta(days=N), "valid", "expiring"),
        ("L1", TODAY, "valid", "expiring"),  # the expiry day itself is still valid
        ("L1", TODAY - timedelta(days=1), "valid", "expired"),
        (None, TODAY + timedelta(days=100), "valid", "missing"),
        ("  ", TODAY + timedelta(days=100), "valid", "missing"),
        ("L1", None, "valid", "missing"),
        ("L1", TODAY - timedelta(days=1), "suspended", "suspended"),  # status first
        (None, None, "revoked", "revoked"),
    ],
)
def test_licence_state(no: str | None, expiry: date | None, status: str, state: str) -> None:
    assert licence_state(no, expiry, status, TODAY, RULES) == state
    assert state in LICENCE_STATES


@given(
    no=st.sampled_from([None, "", " ", "FL-1"]),
    days=st.one_of(st.none(), st.integers(-400, 400)),
    status=st.sampled_from(LICENCE_STATUSES),
)
def test_licensed_agrees_with_fill_authorization(
    no: str | None, days: int | None, status: str
) -> None:
    """One licence, two rules: the page's state and the gun's station_not_licensed agree."""
    expiry = None if days is None else TODAY + timedelta(days=days)
    station = StationFacts(1, 1, no, expiry, status)
    cylinder = CylinderFacts(1, "T", 1, "in_service", TODAY + timedelta(days=900), None)
    refused = Reason.STATION_NOT_LICENSED in authorize_fill(cylinder, station, TODAY).reasons
    assert licensed(licence_state(no, expiry, status, TODAY, RULES)) is not refused


@pytest.mark.parametrize(
    ("old", "new", "move"),
    [("valid", "suspended", "suspend"), ("valid", "revoked", "revoke"),
     ("suspended", "revoked", "revoke"), ("suspended", "valid", "reinstate")],
)  # fmt: skip
def test_the_regulators_moves(old: str, new: str, move: str) -> None:
    assert check_status_change(old, new) == move


@pytest.mark.parametrize(
    ("old", "new"),
    [("revoked", "valid"), ("revoked", "suspended"), ("valid", "valid"),
     ("suspended", "suspended"), ("revoked", "revoked"), ("valid", "closed")],
)  # fmt: skip
def test_refused_moves(old: str, new: str) -> None:
    with pytest.raises(LicenceRefused):
        check_status_change(old, new)


def test_entrustment_state() -> None:
    d = timedelta(days=1)
    assert entrustment_state(TODAY, None, False, TODAY) == "active"
    assert entrustment_state(TODAY - d, TODAY, False, TODAY) == "active"
    assert entrustment_state(TODAY + d, None, False, TODAY) == "pending"
    assert entrustment_state(TODAY - 5 * d, TODAY - d, False, TODAY) == "expired"
    assert entrustment_state(TODAY - 5 * d, None, True, TODAY) == "ended"


@given(
    start=st.integers(-30, 30),
    length=st.one_of(st.none(), st.integers(0, 60)),
    ended_on=st.integers(-30, 30),
)
def test_an_ended_entrustment_is_no_longer_in_force(
    start: int, length: int | None, ended_on: int
) -> None:
    valid_from = TODAY + timedelta(days=start)
    valid_to = None if length is None else valid_from + timedelta(days=length)
    day = TODAY + timedelta(days=ended_on)
    new_to = end_date(valid_to, day)
    assert not in_force(valid_from, new_to, day)
    assert valid_to is None or new_to <= valid_to  # ending never lengthens one
    if in_force(valid_from, valid_to, day - timedelta(days=1)):
        assert in_force(valid_from, new_to, day - timedelta(days=1))  # yesterday stays


@pytest.mark.parametrize(
    ("owner", "filler", "start", "end", "field"),
    [
        (1, 1, 0, None, "filler_company_id"),
        (1, 2, 10, 5, "valid_to"),
        (1, 2, -10, -1, "valid_to"),
    ],
)
def test_check_new_refuses(
    owner: int, filler: int, start: int, end: int | None, field: str
) -> None:
    with pytest.raises(EntrustmentRefused) as err:
        check_new(
            owner,
            filler,
            TODAY + timedelta(days=start),
            None if end is None else TODAY + timedelta(days=end),
            TODAY,
        )
    assert err.value.field == field


def test_check_new_accepts() -> None:
    check_new(1, 2, TODAY, None, TODAY)
    check_new(1, 2, TODAY - timedelta(days=10), TODAY, TODAY)
    check_new(1, 2, TODAY + timedelta(days=3), TODAY + timedelta(days=3), TODAY)
