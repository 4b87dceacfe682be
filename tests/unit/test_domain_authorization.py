"""Fill authorization (docs/ARCHITECTURE.md §4 reason codes, GB/T 38059-2019) and gun codes (DOMAIN.md)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.domain import (
    CYLINDER_STATUSES,
    GUN_CODE_SEVERITY,
    ComplianceStatus,
    CylinderFacts,
    FillDecision,
    Reason,
    StationFacts,
    authorize_fill,
    compliance_status,
    gun_code,
    most_severe,
)
from server.kernel.settings import GunCodes, load_settings

SETTINGS = load_settings(environ={})
CODES = SETTINGS.gun_codes
TODAY = date(2025, 6, 15)
D = timedelta(days=1)
OWN = 1
OTHER = 2

GOOD_CYLINDER = CylinderFacts(
    cylinder_id=10,
    tag="E2801160600002093AB1",
    owner_company_id=OWN,
    status="in_service",
    next_inspection_date=TODAY + timedelta(days=400),
    scrap_date=TODAY + timedelta(days=2000),
    spec="YSP35.5",
    stamp="ZZ-000123",
)
GOOD_STATION = StationFacts(
    station_id=5,
    company_id=OWN,
    licence_no="TS4241001-2029",
    licence_expiry=TODAY + timedelta(days=365),
    licence_status="valid",
)


def cyl(**changes: object) -> CylinderFacts:
    return dataclasses.replace(GOOD_CYLINDER, **changes)  # type: ignore[arg-type]


def sta(**changes: object) -> StationFacts:
    return dataclasses.replace(GOOD_STATION, **changes)  # type: ignore[arg-type]


def reasons(
    cylinder: CylinderFacts | None,
    station: StationFacts | None,
    entrusted: frozenset[int] = frozenset(),
) -> tuple[Reason, ...]:
    return authorize_fill(cylinder, station, TODAY, entrusted).reasons


# ------------------------------------------------------------------ each reason alone


def test_allow() -> None:
    decision = authorize_fill(GOOD_CYLINDER, GOOD_STATION, TODAY)
    assert decision.reasons == ()
    assert decision.allowed
    assert decision.decision == "allow"
    assert decision.reason_codes == ()


def test_unknown_tag() -> None:
    decision = authorize_fill(None, GOOD_STATION, TODAY)
    assert decision.reasons == (Reason.UNKNOWN_TAG,)
    assert not decision.allowed
    assert decision.decision == "deny"
    assert decision.reason_codes == ("unknown_tag",)


def test_voided_tag_is_unknown() -> None:
    assert reasons(cyl(tag_voided=True), GOOD_STATION) == (Reason.UNKNOWN_TAG,)


def test_voided_tag_does_not_report_the_old_cylinders_facts() -> None:
    old = cyl(tag_voided=True, status="scrapped", owner_company_id=OTHER, next_inspection_date=None)
    assert reasons(old, GOOD_STATION) == (Reason.UNKNOWN_TAG,)


def test_not_owner() -> None:
    assert reasons(cyl(owner_company_id=OTHER), GOOD_STATION) == (Reason.NOT_OWNER,)


def test_entrustment_allows_another_companys_cylinder() -> None:
    assert reasons(cyl(owner_company_id=OTHER), GOOD_STATION, frozenset({OTHER})) == ()
    assert reasons(cyl(owner_company_id=OTHER), GOOD_STATION, frozenset({3, 4})) == (
        Reason.NOT_OWNER,
    )
    # entrusting the station's own company is harmless
    assert reasons(GOOD_CYLINDER, GOOD_STATION, frozenset({OWN})) == ()


@pytest.mark.parametrize(
    ("next_inspection", "expected"),
    [
        (TODAY - D, (Reason.OVERDUE_INSPECTION,)),
        (TODAY - timedelta(days=3650), (Reason.OVERDUE_INSPECTION,)),
        (TODAY, ()),  # the inspection date itself is in date
        (TODAY + D, ()),
        (None, (Reason.OVERDUE_INSPECTION,)),  # un-dated: must not be filled
    ],
)
def test_overdue_inspection(next_inspection: date | None, expected: tuple[Reason, ...]) -> None:
    assert reasons(cyl(next_inspection_date=next_inspection), GOOD_STATION) == expected


@pytest.mark.parametrize(
    ("status", "scrap", "expected"),
    [
        ("scrapped", TODAY + timedelta(days=2000), (Reason.SCRAPPED,)),
        ("in_service", TODAY - D, (Reason.SCRAPPED,)),
        ("in_service", TODAY, (Reason.SCRAPPED,)),  # scrap date ≤ today
        ("in_service", TODAY + D, ()),
        ("in_service", None, ()),  # unknown scrap date alone does not deny
        ("scrapped", None, (Reason.SCRAPPED,)),
    ],
)
def test_scrapped(status: str, scrap: date | None, expected: tuple[Reason, ...]) -> None:
    assert reasons(cyl(status=status, scrap_date=scrap), GOOD_STATION) == expected


@pytest.mark.parametrize("status", ["in_inspection", "lost", "suspended", "not_activated"])
def test_not_in_service(status: str) -> None:
    assert reasons(cyl(status=status), GOOD_STATION) == (Reason.NOT_IN_SERVICE,)


@pytest.mark.parametrize("status", ["", "IN_SERVICE", "retired", "active"])
def test_unknown_status_fails_closed(status: str) -> None:
    assert reasons(cyl(status=status), GOOD_STATION) == (Reason.NOT_IN_SERVICE,)


def test_scrapped_status_is_not_also_not_in_service() -> None:
    assert Reason.NOT_IN_SERVICE not in reasons(cyl(status="scrapped"), GOOD_STATION)


@pytest.mark.parametrize(
    "station",
    [
        sta(licence_no=None),
        sta(licence_no=""),
        sta(licence_no="   "),
        sta(licence_expiry=None),
        sta(licence_expiry=TODAY - D),
        sta(licence_expiry=TODAY - timedelta(days=400)),
        sta(licence_status="suspended"),
        sta(licence_status="revoked"),
        sta(licence_status="expired"),  # anything but "valid"
        sta(licence_status="VALID"),
    ],
)
def test_station_not_licensed(station: StationFacts) -> None:
    assert reasons(GOOD_CYLINDER, station) == (Reason.STATION_NOT_LICENSED,)


def test_licence_expiry_day_is_still_valid() -> None:
    assert reasons(GOOD_CYLINDER, sta(licence_expiry=TODAY)) == ()
    assert reasons(GOOD_CYLINDER, sta(licence_expiry=TODAY + D)) == ()


def test_unknown_station() -> None:
    assert reasons(GOOD_CYLINDER, None) == (Reason.UNKNOWN_STATION,)


# ------------------------------------------------------------------ combinations


def test_unknown_station_still_checks_the_cylinder_but_not_ownership() -> None:
    bad = cyl(owner_company_id=OTHER, next_inspection_date=TODAY - D, scrap_date=TODAY)
    assert reasons(bad, None) == (
        Reason.OVERDUE_INSPECTION,
        Reason.SCRAPPED,
        Reason.UNKNOWN_STATION,
    )
    assert reasons(cyl(status="lost"), None) == (Reason.NOT_IN_SERVICE, Reason.UNKNOWN_STATION)


def test_unknown_tag_still_checks_the_station() -> None:
    assert reasons(None, sta(licence_status="revoked")) == (
        Reason.UNKNOWN_TAG,
        Reason.STATION_NOT_LICENSED,
    )


def test_both_unknown() -> None:
    decision = authorize_fill(None, None, TODAY)
    assert decision.reasons == (Reason.UNKNOWN_TAG, Reason.UNKNOWN_STATION)
    assert decision.reason_codes == ("unknown_tag", "unknown_station")


def test_every_reason_a_known_pair_can_have_at_once() -> None:
    worst = cyl(
        owner_company_id=OTHER,
        status="suspended",
        next_inspection_date=TODAY - D,
        scrap_date=TODAY - D,
    )
    decision = authorize_fill(worst, sta(licence_expiry=TODAY - D), TODAY)
    assert decision.reasons == (
        Reason.NOT_OWNER,
        Reason.OVERDUE_INSPECTION,
        Reason.SCRAPPED,
        Reason.NOT_IN_SERVICE,
        Reason.STATION_NOT_LICENSED,
    )
    assert decision.reason_codes == (
        "not_owner",
        "overdue_inspection",
        "scrapped",
        "not_in_service",
        "station_not_licensed",
    )


def test_scrapped_status_with_every_other_cylinder_fault() -> None:
    worst = cyl(owner_company_id=OTHER, status="scrapped", next_inspection_date=None)
    assert reasons(worst, sta(licence_no=None, licence_status="suspended")) == (
        Reason.NOT_OWNER,
        Reason.OVERDUE_INSPECTION,
        Reason.SCRAPPED,
        Reason.STATION_NOT_LICENSED,
    )


def test_several_station_faults_give_one_reason() -> None:
    station = sta(licence_no=None, licence_expiry=None, licence_status="revoked")
    assert reasons(GOOD_CYLINDER, station) == (Reason.STATION_NOT_LICENSED,)


# An exhaustive product of the facts that matter, checked against the table of docs/ARCHITECTURE.md §4.
OWNERS = {"own": OWN, "other": OTHER, "entrusted": 7}
NEXTS: dict[str, date | None] = {
    "ok": TODAY + D,
    "today": TODAY,
    "past": TODAY - D,
    "none": None,
}
SCRAPS: dict[str, date | None] = {
    "ok": TODAY + D,
    "today": TODAY,
    "past": TODAY - D,
    "none": None,
}
CYLINDER_VARIANTS = ["missing", "voided", *CYLINDER_STATUSES, "bogus"]
STATION_VARIANTS: dict[str, StationFacts | None] = {
    "missing": None,
    "good": GOOD_STATION,
    "no_licence": sta(licence_no=None),
    "expired": sta(licence_expiry=TODAY - D),
    "suspended": sta(licence_status="suspended"),
}


@pytest.mark.parametrize(
    ("cylinder_variant", "station_variant"),
    list(itertools.product(CYLINDER_VARIANTS, STATION_VARIANTS)),
)
def test_exhaustive_product(cylinder_variant: str, station_variant: str) -> None:
    station = STATION_VARIANTS[station_variant]
    for owner_key, next_key, scrap_key in itertools.product(OWNERS, NEXTS, SCRAPS):
        if cylinder_variant == "missing":
            cylinder = None
        else:
            cylinder = cyl(
                owner_company_id=OWNERS[owner_key],
                next_inspection_date=NEXTS[next_key],
                scrap_date=SCRAPS[scrap_key],
                status="in_service" if cylinder_variant == "voided" else cylinder_variant,
                tag_voided=cylinder_variant == "voided",
            )
        expected: set[Reason] = set()
        if station_variant == "missing":
            expected.add(Reason.UNKNOWN_STATION)
        elif station_variant != "good":
            expected.add(Reason.STATION_NOT_LICENSED)
        if cylinder_variant in ("missing", "voided"):
            expected.add(Reason.UNKNOWN_TAG)
        else:
            if station_variant != "missing" and owner_key == "other":
                expected.add(Reason.NOT_OWNER)
            if next_key in ("past", "none"):
                expected.add(Reason.OVERDUE_INSPECTION)
            if cylinder_variant == "scrapped" or scrap_key in ("today", "past"):
                expected.add(Reason.SCRAPPED)
            if cylinder_variant not in ("in_service", "scrapped"):
                expected.add(Reason.NOT_IN_SERVICE)
        got = authorize_fill(cylinder, station, TODAY, frozenset({OWNERS["entrusted"]}))
        assert set(got.reasons) == expected, (owner_key, next_key, scrap_key)
        assert list(got.reasons) == sorted(got.reasons, key=list(Reason).index)
        assert got.allowed == (not expected)


# ------------------------------------------------------------------ FillDecision


def test_reason_enum_is_canonical_order() -> None:
    assert [r.value for r in Reason] == [
        "unknown_tag",
        "not_owner",
        "overdue_inspection",
        "scrapped",
        "not_in_service",
        "station_not_licensed",
        "unknown_station",
    ]


def test_fill_decision_of_dedupes_and_orders() -> None:
    decision = FillDecision.of(
        [Reason.UNKNOWN_STATION, Reason.SCRAPPED, Reason.UNKNOWN_TAG, Reason.SCRAPPED]
    )
    assert decision.reasons == (Reason.UNKNOWN_TAG, Reason.SCRAPPED, Reason.UNKNOWN_STATION)
    assert FillDecision.of([]) == FillDecision(())
    assert FillDecision.of([]).allowed


def test_fill_decision_is_frozen() -> None:
    decision = FillDecision.of([Reason.SCRAPPED])
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.reasons = ()  # type: ignore[misc]


# ------------------------------------------------------------------ gun codes


def test_default_gun_codes_are_domain_md() -> None:
    assert CODES.allow == "00"
    assert gun_code(FillDecision.of([]), CODES) == "00"
    expected = {
        Reason.UNKNOWN_TAG: "01",
        Reason.NOT_IN_SERVICE: "03",
        Reason.OVERDUE_INSPECTION: "04",
        Reason.SCRAPPED: "05",
        Reason.STATION_NOT_LICENSED: "06",
        Reason.UNKNOWN_STATION: "07",
        Reason.NOT_OWNER: "08",
    }
    for reason, code in expected.items():
        assert gun_code(FillDecision.of([reason]), CODES) == code


@pytest.mark.parametrize("reason", list(Reason))
def test_gun_code_follows_config_field_of_same_name(reason: Reason) -> None:
    assert gun_code(FillDecision.of([reason]), CODES) == getattr(CODES, reason.value)


def test_every_reason_has_a_gun_code_field() -> None:
    fields = {f.name for f in msgspec.structs.fields(GunCodes)}
    assert {r.value for r in Reason} | {"allow"} == fields


def test_severity_is_a_permutation_of_reasons() -> None:
    assert sorted(GUN_CODE_SEVERITY) == sorted(Reason)
    assert len(set(GUN_CODE_SEVERITY)) == len(Reason)
    assert GUN_CODE_SEVERITY == (
        Reason.UNKNOWN_STATION,
        Reason.UNKNOWN_TAG,
        Reason.SCRAPPED,
        Reason.OVERDUE_INSPECTION,
        Reason.NOT_IN_SERVICE,
        Reason.NOT_OWNER,
        Reason.STATION_NOT_LICENSED,
    )


@pytest.mark.parametrize(
    ("present", "shown"),
    [
        ([Reason.UNKNOWN_TAG, Reason.UNKNOWN_STATION], Reason.UNKNOWN_STATION),
        ([Reason.UNKNOWN_TAG, Reason.STATION_NOT_LICENSED], Reason.UNKNOWN_TAG),
        ([Reason.OVERDUE_INSPECTION, Reason.SCRAPPED], Reason.SCRAPPED),
        ([Reason.NOT_IN_SERVICE, Reason.OVERDUE_INSPECTION], Reason.OVERDUE_INSPECTION),
        ([Reason.NOT_OWNER, Reason.NOT_IN_SERVICE], Reason.NOT_IN_SERVICE),
        ([Reason.STATION_NOT_LICENSED, Reason.NOT_OWNER], Reason.NOT_OWNER),
        (list(Reason), Reason.UNKNOWN_STATION),
    ],
)
def test_gun_code_shows_most_severe(present: list[Reason], shown: Reason) -> None:
    decision = FillDecision.of(present)
    assert most_severe(decision) is shown
    assert gun_code(decision, CODES) == getattr(CODES, shown.value)


def test_most_severe_of_allow_is_none() -> None:
    assert most_severe(FillDecision.of([])) is None


@hsettings(database=None, deadline=None)
@given(st.sets(st.sampled_from(list(Reason)), min_size=1))
def test_gun_code_is_first_present_in_severity(present: set[Reason]) -> None:
    first = next(r for r in GUN_CODE_SEVERITY if r in present)
    assert gun_code(FillDecision.of(present), CODES) == getattr(CODES, first.value)


def test_changed_gun_codes_change_the_code() -> None:
    vendor = msgspec.structs.replace(CODES, allow="OK", not_owner="99", scrapped="X5")
    assert gun_code(FillDecision.of([]), vendor) == "OK"
    assert gun_code(FillDecision.of([Reason.NOT_OWNER]), vendor) == "99"
    assert gun_code(FillDecision.of([Reason.SCRAPPED, Reason.NOT_OWNER]), vendor) == "X5"


# ------------------------------------------------------------------ properties

dates_near = st.one_of(
    st.none(),
    st.integers(-400, 400).map(lambda n: TODAY + timedelta(days=n)),
)


@hsettings(database=None, deadline=None, max_examples=500)
@given(
    status=st.sampled_from([*CYLINDER_STATUSES, "bogus"]),
    next_inspection=dates_near,
    scrap=dates_near,
    today_shift=st.integers(-30, 30),
)
def test_compliance_never_ok_when_fill_denied_for_dates(
    status: str, next_inspection: date | None, scrap: date | None, today_shift: int
) -> None:
    today = TODAY + timedelta(days=today_shift)
    cylinder = cyl(status=status, next_inspection_date=next_inspection, scrap_date=scrap)
    decision = authorize_fill(cylinder, GOOD_STATION, today)
    compliance = compliance_status(status, next_inspection, scrap, today, SETTINGS.dates)
    date_denied = bool({Reason.OVERDUE_INSPECTION, Reason.SCRAPPED} & set(decision.reasons))
    if date_denied:
        assert compliance is not ComplianceStatus.OK
    # and both views agree exactly on which cylinders are past their dates
    assert date_denied == (compliance in (ComplianceStatus.SCRAPPED, ComplianceStatus.OVERDUE))
    assert (Reason.SCRAPPED in decision.reasons) == (compliance is ComplianceStatus.SCRAPPED)


@hsettings(database=None, deadline=None, max_examples=300)
@given(
    owner=st.integers(1, 4),
    company=st.integers(1, 4),
    entrusted=st.frozensets(st.integers(1, 4)),
    status=st.sampled_from(CYLINDER_STATUSES),
    next_inspection=dates_near,
    scrap=dates_near,
    known_cylinder=st.booleans(),
    known_station=st.booleans(),
)
def test_reasons_are_canonical_and_unique(
    owner: int,
    company: int,
    entrusted: frozenset[int],
    status: str,
    next_inspection: date | None,
    scrap: date | None,
    known_cylinder: bool,
    known_station: bool,
) -> None:
    cylinder = (
        cyl(
            owner_company_id=owner,
            status=status,
            next_inspection_date=next_inspection,
            scrap_date=scrap,
        )
        if known_cylinder
        else None
    )
    station = sta(company_id=company) if known_station else None
    got = authorize_fill(cylinder, station, TODAY, entrusted).reasons
    assert len(got) == len(set(got))
    assert list(got) == sorted(got, key=list(Reason).index)
    fine = (
        known_cylinder
        and known_station
        and (owner == company or owner in entrusted)
        and status == "in_service"
        and next_inspection is not None
        and next_inspection >= TODAY
        and (scrap is None or scrap > TODAY)
    )
    assert (got == ()) == fine
