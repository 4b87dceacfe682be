"""Circulation checks as pure rules (DOMAIN.md "Circulation checks", server.domain.circulation),
and the great-circle distance ingest gives the cloned-tag rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.store.circulation import distance_km
from ingest.store.context import Read
from server.domain import CYLINDER_STATUSES, ComplianceStatus, compliance_status
from server.domain.authorization import Reason, StationFacts, authorize_fill
from server.domain.circulation import (
    TAG_VOIDED,
    VIOLATION_ACTIONS,
    CylinderState,
    FillHistory,
    entrusted_on,
    illegal_fill_suspected,
    impossible_trip,
    is_foreign,
    site_allowed,
    station_licensed,
    violation_reasons,
)
from server.domain.statuses import SCAN_ACTION_NAMES
from server.kernel.settings import Circulation, load_settings

SETTINGS = load_settings(environ={})
RULES = SETTINGS.circulation
DATES = SETTINGS.dates
TODAY = date(2025, 6, 15)
D = timedelta(days=1)
T = datetime(2025, 6, 15, 2, 0, tzinfo=UTC)
S = timedelta(seconds=1)
H = timedelta(hours=1)
OFF = msgspec.structs.replace(
    RULES,
    circulation_violation=False,
    suspected_illegal_fill=False,
    foreign_cylinder=False,
    cloned_tag=False,
)


def state(
    status: str = "in_service",
    next_days: int | None = 400,
    scrap_days: int | None = 2000,
    voided: bool = False,
) -> CylinderState:
    return CylinderState(
        status,
        None if next_days is None else TODAY + next_days * D,
        None if scrap_days is None else TODAY + scrap_days * D,
        voided,
    )


def test_defaults_are_domain_md() -> None:
    assert RULES.circulation_violation and RULES.suspected_illegal_fill
    assert RULES.foreign_cylinder and RULES.cloned_tag
    assert RULES.cloned_tag_km == 50 and RULES.cloned_tag_window_s == 300
    # 50 km in 5 minutes is 600 km/h: with the defaults the speed adds nothing
    assert RULES.cloned_tag_speed_kmh == 600


# ----------------------------------------------------------------- circulation_violation


@pytest.mark.parametrize("action", sorted(VIOLATION_ACTIONS))
def test_moving_an_unsafe_cylinder_on_is_a_violation(action: str) -> None:
    assert violation_reasons(action, state(next_days=-1), TODAY, DATES, RULES) == ("overdue",)
    assert violation_reasons(action, state(status="scrapped"), TODAY, DATES, RULES) == ("scrapped",)
    # scrapped wins over overdue: one compliance status, by the domain's precedence
    assert violation_reasons(action, state(next_days=-1, scrap_days=0), TODAY, DATES, RULES) == (
        "scrapped",
    )
    assert violation_reasons(action, state(voided=True), TODAY, DATES, RULES) == (TAG_VOIDED,)
    assert violation_reasons(
        action, state(status="scrapped", voided=True), TODAY, DATES, RULES
    ) == ("scrapped", TAG_VOIDED)
    # due soon is still lawful, and so is the last day before the date passes
    assert violation_reasons(action, state(next_days=0), TODAY, DATES, RULES) == ()
    assert violation_reasons(action, state(scrap_days=1), TODAY, DATES, RULES) == ()
    assert violation_reasons(action, state(next_days=-1), TODAY, DATES, OFF) == ()


def test_a_return_is_never_a_violation() -> None:
    assert set(SCAN_ACTION_NAMES) - VIOLATION_ACTIONS == {"return"}
    unsafe = state(status="scrapped", next_days=-5, voided=True)
    assert violation_reasons("return", unsafe, TODAY, DATES, RULES) == ()


@given(
    action=st.sampled_from(SCAN_ACTION_NAMES),
    status=st.sampled_from(CYLINDER_STATUSES),
    next_days=st.none() | st.integers(-800, 800),
    scrap_days=st.none() | st.integers(-800, 800),
    voided=st.booleans(),
)
def test_the_violation_is_the_compliance_rule(
    action: str, status: str, next_days: int | None, scrap_days: int | None, voided: bool
) -> None:
    """No second rule: the reason is exactly the compliance status when it forbids use."""
    cyl = state(status, next_days, scrap_days, voided)
    reasons = violation_reasons(action, cyl, TODAY, DATES, RULES)
    c = compliance_status(status, cyl.next_inspection_date, cyl.scrap_date, TODAY, DATES)
    if action == "return":
        assert reasons == ()
        return
    expected = [c.value] if c in (ComplianceStatus.SCRAPPED, ComplianceStatus.OVERDUE) else []
    assert list(reasons) == expected + ([TAG_VOIDED] if voided else [])


# ----------------------------------------------------------------- suspected_illegal_fill


def history(
    fill: datetime | None,
    ret: datetime | None = None,
    licensed: bool = True,
    registered: datetime | None = T - 400 * D,
) -> FillHistory:
    return FillHistory(registered, fill, licensed, ret)


@pytest.mark.parametrize(
    ("h", "suspected"),
    [
        (history(T - 3 * H, ret=T - 5 * H), False),  # returned, filled, delivered
        (history(T - 5 * H, ret=T - 3 * H), True),  # filled, returned, delivered: no fill since
        (history(None, ret=T - 3 * H), True),  # never filled through a gun
        (history(None), True),  # never filled since registration
        (history(T - 3 * H), False),  # never returned, filled since registration
        (history(T - 3 * H, registered=T - 2 * H), True),  # the fill predates the record
        (history(T - 3 * H, ret=T - 5 * H, licensed=False), True),  # at an unlicensed station
        (history(T - 3 * H, ret=T - 3 * H), True),  # a fill must come after the return
        # late delivery: the record has moved on and no longer tells — silence, not a guess
        (history(T - 3 * H, ret=T + H), False),
        (history(T + H, ret=T - 5 * H), False),
        (history(None, registered=T + H), False),
    ],
)
def test_illegal_fill(h: FillHistory, suspected: bool) -> None:
    assert illegal_fill_suspected(T, h, RULES) is suspected
    assert illegal_fill_suspected(T, h, OFF) is False


@given(
    fill=st.integers(-100, 100),
    ret=st.none() | st.integers(-100, 100),
    licensed=st.booleans(),
)
def test_a_licensed_fill_between_the_return_and_the_delivery_clears_it(
    fill: int, ret: int | None, licensed: bool
) -> None:
    """Suspected exactly when the record shows no licensed fill in (since, delivery]."""
    h = history(T + fill * H, None if ret is None else T + ret * H, licensed, T - 1000 * H)
    since = h.last_return_at or h.registered_at
    assert since is not None and h.last_fill_at is not None
    if since > T or h.last_fill_at > T:
        assert not illegal_fill_suspected(T, h, RULES)  # late data: the record cannot tell
    else:
        cleared = since < h.last_fill_at and licensed
        assert illegal_fill_suspected(T, h, RULES) is (not cleared)


@given(
    licence_no=st.none() | st.sampled_from(["", "  ", "TS123"]),
    expiry=st.none() | st.integers(-5, 5),
    status=st.sampled_from(["valid", "suspended", "revoked"]),
)
def test_licensed_is_the_guns_rule(licence_no: str | None, expiry: int | None, status: str) -> None:
    """ "At a licensed station" means what the gun would have allowed (one rule)."""
    exp = None if expiry is None else TODAY + expiry * D
    station = StationFacts(7, 1, licence_no, exp, status)
    gun_refuses = Reason.STATION_NOT_LICENSED in authorize_fill(None, station, TODAY).reasons
    assert station_licensed(7, 1, licence_no, exp, status, TODAY) is (not gun_refuses)


# ----------------------------------------------------------------- foreign_cylinder, sites


def test_entrustments_count_on_the_days_they_are_in_force() -> None:
    periods = [(TODAY - 10 * D, TODAY - D), (TODAY + 5 * D, None)]
    assert not entrusted_on(periods, TODAY)
    assert entrusted_on(periods, TODAY - D)  # the last day is still in force
    assert entrusted_on(periods, TODAY + 30 * D)
    assert not entrusted_on([], TODAY)


def test_foreign_cylinder() -> None:
    assert is_foreign(1, 2, False, RULES)
    assert not is_foreign(1, 1, False, RULES)
    assert not is_foreign(1, 2, True, RULES)  # entrusted by the owner
    assert not is_foreign(1, None, False, RULES)  # a handheld of no company: no one to blame
    assert not is_foreign(1, 2, False, OFF)


def test_a_handheld_names_sites_of_its_own_company_only() -> None:
    assert site_allowed(1, 1, False)
    assert site_allowed(None, 1, False)  # a site of no company is no other company's
    assert site_allowed(2, 1, True)  # an entrustment between the two
    assert not site_allowed(2, 1, False)
    assert not site_allowed(2, None, False)


# ----------------------------------------------------------------- cloned_tag


@pytest.mark.parametrize(
    ("km", "between", "impossible"),
    [
        (51.0, 299 * S, True),
        (51.0, 300 * S, True),  # DOMAIN.md: more than 50 km within 5 minutes
        (51.0, 301 * S, False),  # older reads are not compared
        (50.0, 10 * S, False),  # 50 km is not more than 50 km
        (49.0, 0 * S, False),  # below the distance: a positioning error, however fast
        (500.0, 0 * S, True),  # at the same instant in two places
        (51.0, -60 * S, True),  # the other read may be the later one
    ],
)
def test_impossible_trip_defaults(km: float, between: timedelta, impossible: bool) -> None:
    assert impossible_trip(km, between, RULES) is impossible
    assert impossible_trip(km, between, OFF) is False


def test_a_wider_window_lets_the_speed_decide() -> None:
    hour = msgspec.structs.replace(RULES, cloned_tag_window_s=3600)
    assert impossible_trip(100.0, 9 * 60 * S, hour)  # 667 km/h: no vehicle
    assert not impossible_trip(100.0, 20 * 60 * S, hour)  # 300 km/h: a fast train, say


@given(
    km=st.floats(0, 2000),
    seconds=st.integers(-4000, 4000),
    more_km=st.floats(0, 500),
    less_s=st.integers(0, 4000),
    window=st.integers(1, 4000),
    speed=st.floats(1, 2000),
)
def test_further_or_sooner_is_no_less_impossible(
    km: float, seconds: int, more_km: float, less_s: int, window: int, speed: float
) -> None:
    rules = msgspec.structs.replace(RULES, cloned_tag_window_s=window, cloned_tag_speed_kmh=speed)
    between = seconds * S
    assert impossible_trip(km, between, rules) is impossible_trip(km, -between, rules)
    if impossible_trip(km, between, rules):
        sooner = max(0, abs(seconds) - less_s) * S
        assert impossible_trip(km + more_km, sooner, rules)


def test_circulation_section_is_checked() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**msgspec.structs.asdict(RULES), "cloned_tag_km": 0}, Circulation)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**msgspec.structs.asdict(RULES), "cloned_tag_window_s": 0}, Circulation)


# ----------------------------------------------------------------- the distance ingest uses


def read(lat: float, lon: float) -> Read:
    return Read(T, lat, lon, "dispatch")


def test_distance_km() -> None:
    assert distance_km(read(34.80, 113.65), read(34.80, 113.65)) == 0
    # one degree of latitude is 111.2 km on the mean sphere
    assert distance_km(read(34.0, 113.65), read(35.0, 113.65)) == pytest.approx(111.2, abs=0.1)
    # Zhengzhou (郑州) to Kaifeng (开封), about 62 km
    assert distance_km(read(34.7466, 113.6253), read(34.7972, 114.3076)) == pytest.approx(
        62.5, abs=1.5
    )


@given(
    a=st.tuples(st.floats(-89, 89), st.floats(-179, 179)),
    b=st.tuples(st.floats(-89, 89), st.floats(-179, 179)),
)
def test_distance_is_symmetric_and_bounded(a: tuple[float, float], b: tuple[float, float]) -> None:
    d = distance_km(read(*a), read(*b))
    assert d == pytest.approx(distance_km(read(*b), read(*a)))
    assert 0 <= d <= 20016  # half the Earth's circumference
