"""Abnormal behaviour rules (DOMAIN.md "Abnormal behaviour", docs/ARCHITECTURE.md §4/§5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from server.domain import (
    DEVICE_KINDS,
    NO_STORAGE_LIMIT,
    SITE_KINDS,
    in_opening_hours,
    is_device_offline,
    is_leak,
    is_live,
    is_overstock,
    licence_expired,
    licence_expiring,
    permitted_storage,
)
from server.kernel.settings import load_settings

SETTINGS = load_settings(environ={})
RULES = SETTINGS.alerts
SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2025, 6, 15)
D = timedelta(days=1)
MIN = timedelta(minutes=1)


def cst(hour: int, minute: int = 0, second: int = 0, day: int = 15) -> datetime:
    return datetime(2025, 6, day, hour, minute, second, tzinfo=SHANGHAI)


def test_default_rules_are_domain_md() -> None:
    assert RULES.licence_expiring_days == 30
    assert RULES.default_storage_store == 100
    assert RULES.default_storage_filling_station == 1000
    assert RULES.gun_offline_min == 10
    assert RULES.valve_offline_h == 24
    assert (RULES.opening_hour_start, RULES.opening_hour_end) == (7, 21)
    assert RULES.timezone == "Asia/Shanghai"


# ------------------------------------------------------------------ licences


@pytest.mark.parametrize(
    ("expiry", "expired"),
    [(None, False), (TODAY - D, True), (TODAY, False), (TODAY + D, False)],
)
def test_licence_expired(expiry: date | None, expired: bool) -> None:
    assert licence_expired(expiry, TODAY) is expired


@pytest.mark.parametrize(
    ("days_left", "expiring"),
    [
        (-1, False),  # already expired: that is another matter
        (0, True),  # expires today
        (1, True),
        (RULES.licence_expiring_days, True),
        (RULES.licence_expiring_days + 1, False),
        (365, False),
    ],
)
def test_licence_expiring(days_left: int, expiring: bool) -> None:
    assert licence_expiring(TODAY + timedelta(days=days_left), TODAY, RULES) is expiring


def test_licence_expiring_none() -> None:
    assert not licence_expiring(None, TODAY, RULES)


def test_changed_licence_window_changes_decision() -> None:
    expiry = TODAY + timedelta(days=45)
    assert not licence_expiring(expiry, TODAY, RULES)
    assert licence_expiring(expiry, TODAY, msgspec.structs.replace(RULES, licence_expiring_days=60))


# ------------------------------------------------------------------ storage


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("filling_station", RULES.default_storage_filling_station),
        ("store", RULES.default_storage_store),
        ("warehouse", RULES.default_storage_warehouse),
        ("inspection_agency", NO_STORAGE_LIMIT),
    ],
)
def test_permitted_storage_defaults(kind: str, expected: int) -> None:
    assert permitted_storage(kind, None, RULES) == expected


def test_default_storage_values() -> None:
    assert permitted_storage("store", None, RULES) == 100
    assert permitted_storage("filling_station", None, RULES) == 1000


@pytest.mark.parametrize("kind", SITE_KINDS)
def test_site_number_wins(kind: str) -> None:
    assert permitted_storage(kind, 250, RULES) == 250
    assert permitted_storage(kind, 0, RULES) == NO_STORAGE_LIMIT


def test_permitted_storage_errors() -> None:
    with pytest.raises(ValueError, match="site kind"):
        permitted_storage("shop", None, RULES)
    with pytest.raises(ValueError, match="negative"):
        permitted_storage("store", -1, RULES)


def test_changed_default_storage_changes_decision() -> None:
    more = msgspec.structs.replace(RULES, default_storage_store=150, default_storage_warehouse=10)
    assert is_overstock(120, permitted_storage("store", None, RULES))
    assert not is_overstock(120, permitted_storage("store", None, more))
    assert is_overstock(11, permitted_storage("warehouse", None, more))
    fewer = msgspec.structs.replace(RULES, default_storage_filling_station=500)
    assert not is_overstock(600, permitted_storage("filling_station", None, RULES))
    assert is_overstock(600, permitted_storage("filling_station", None, fewer))


@pytest.mark.parametrize(
    ("full", "permitted", "over"),
    [
        (99, 100, False),
        (100, 100, False),  # exactly the permitted number is lawful
        (101, 100, True),
        (0, 100, False),
        (10**6, NO_STORAGE_LIMIT, False),  # no limit
        (2, 1, True),
    ],
)
def test_is_overstock(full: int, permitted: int, over: bool) -> None:
    assert is_overstock(full, permitted) is over


# ------------------------------------------------------------------ opening hours


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (cst(6, 59, 59), False),
        (cst(7), True),  # the opening hour itself
        (cst(12), True),
        (cst(20, 59, 59), True),
        (cst(21), False),  # closing time: closed
        (cst(0), False),
        (cst(23, 59, 59), False),
    ],
)
def test_opening_hours_shanghai(when: datetime, open_: bool) -> None:
    assert in_opening_hours(when, RULES) is open_


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (datetime(2025, 6, 14, 22, 59, 59, tzinfo=UTC), False),  # 06:59:59 CST
        (datetime(2025, 6, 14, 23, 0, tzinfo=UTC), True),  # 07:00 CST next day
        (datetime(2025, 6, 15, 7, 0, tzinfo=UTC), True),  # 15:00 CST
        (datetime(2025, 6, 15, 12, 59, 59, tzinfo=UTC), True),  # 20:59:59 CST
        (datetime(2025, 6, 15, 13, 0, tzinfo=UTC), False),  # 21:00 CST
        (datetime(2025, 6, 15, 20, 0, tzinfo=UTC), False),  # 04:00 CST
    ],
)
def test_opening_hours_from_utc(when: datetime, open_: bool) -> None:
    assert in_opening_hours(when, RULES) is open_


def test_naive_datetime_is_local_wall_time() -> None:
    assert in_opening_hours(datetime(2025, 6, 15, 7, 0), RULES)
    assert not in_opening_hours(datetime(2025, 6, 15, 6, 59), RULES)


def test_changed_timezone_changes_opening_hours() -> None:
    seven_utc = datetime(2025, 6, 15, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai
    twenty_two_utc = datetime(2025, 6, 15, 22, 0, tzinfo=UTC)  # 06:00 in Shanghai
    in_utc = msgspec.structs.replace(RULES, timezone="UTC")
    assert in_opening_hours(seven_utc, in_utc)
    assert not in_opening_hours(twenty_two_utc, in_utc)
    assert not in_opening_hours(twenty_two_utc, RULES)
    urumqi = msgspec.structs.replace(RULES, timezone="Asia/Urumqi")  # UTC+6
    assert not in_opening_hours(datetime(2025, 6, 15, 0, 30, tzinfo=UTC), urumqi)  # 06:30
    assert in_opening_hours(datetime(2025, 6, 15, 0, 30, tzinfo=UTC), RULES)  # 08:30


def test_changed_hours_change_opening() -> None:
    later = msgspec.structs.replace(RULES, opening_hour_start=8, opening_hour_end=20)
    assert in_opening_hours(cst(7, 30), RULES)
    assert not in_opening_hours(cst(7, 30), later)
    assert in_opening_hours(cst(20, 30), RULES)
    assert not in_opening_hours(cst(20, 30), later)


def test_opening_hours_wrapping_midnight() -> None:
    night = msgspec.structs.replace(RULES, opening_hour_start=22, opening_hour_end=6)
    assert in_opening_hours(cst(22), night)
    assert in_opening_hours(cst(23, 59), night)
    assert in_opening_hours(cst(0), night)
    assert in_opening_hours(cst(5, 59, 59), night)
    assert not in_opening_hours(cst(6), night)
    assert not in_opening_hours(cst(21, 59, 59), night)
    assert not in_opening_hours(cst(12), night)


def test_round_the_clock() -> None:
    always = msgspec.structs.replace(RULES, opening_hour_start=0, opening_hour_end=0)
    full = msgspec.structs.replace(RULES, opening_hour_start=0, opening_hour_end=24)
    for hour in range(24):
        assert in_opening_hours(cst(hour), always)
        assert in_opening_hours(cst(hour), full)


# ------------------------------------------------------------------ device offline


def test_gun_offline_edges() -> None:
    now = cst(10)
    gap = timedelta(minutes=RULES.gun_offline_min)
    assert is_device_offline("gun", now - gap, now, RULES)  # exactly 10 min silent
    assert not is_device_offline("gun", now - gap + timedelta(seconds=1), now, RULES)
    assert is_device_offline("gun", now - 5 * gap, now, RULES)
    assert not is_device_offline("gun", now, now, RULES)


def test_gun_offline_only_during_opening_hours() -> None:
    last = cst(9)
    assert is_device_offline("gun", last, cst(20, 59), RULES)
    assert not is_device_offline("gun", last, cst(21), RULES)  # closed
    assert not is_device_offline("gun", last, cst(3, day=16), RULES)
    assert not is_device_offline("gun", cst(20, 55), cst(6, 59, day=16), RULES)


def test_gun_silence_counts_from_opening() -> None:
    last = cst(20, 55, day=14)  # heard just before closing yesterday
    assert not is_device_offline("gun", last, cst(7), RULES)  # opening: give it time
    assert not is_device_offline("gun", last, cst(7, 9, 59), RULES)
    assert is_device_offline("gun", last, cst(7, 10), RULES)
    # heard before opening today: silence still counted from the opening
    assert not is_device_offline("gun", cst(6, 50), cst(7, 9), RULES)
    assert is_device_offline("gun", cst(6, 50), cst(7, 10), RULES)


def test_gun_offline_in_utc() -> None:
    now = datetime(2025, 6, 15, 2, 0, tzinfo=UTC)  # 10:00 CST
    assert is_device_offline("gun", now - 10 * MIN, now, RULES)
    night = datetime(2025, 6, 15, 14, 0, tzinfo=UTC)  # 22:00 CST
    assert not is_device_offline("gun", night - 60 * MIN, night, RULES)
    # 07:05 CST = 23:05 UTC the day before: only 5 min since opening
    opening = datetime(2025, 6, 14, 23, 5, tzinfo=UTC)
    assert not is_device_offline("gun", opening - 600 * MIN, opening, RULES)


def test_gun_offline_overnight_opening() -> None:
    night = msgspec.structs.replace(RULES, opening_hour_start=22, opening_hour_end=6)
    now = cst(2, day=16)  # the period began at 22:00 on the 15th
    assert is_device_offline("gun", cst(21, day=15), now, night)
    assert not is_device_offline("gun", cst(1, 55, day=16), now, night)
    # at 22:05 the period has just begun
    assert not is_device_offline("gun", cst(12), cst(22, 5), night)
    assert is_device_offline("gun", cst(12), cst(22, 10), night)


def test_gun_offline_round_the_clock() -> None:
    always = msgspec.structs.replace(RULES, opening_hour_start=0, opening_hour_end=0)
    assert is_device_offline("gun", cst(2, 50), cst(3), always)
    assert not is_device_offline("gun", cst(2, 51), cst(3), always)


def test_valve_offline_edges() -> None:
    now = cst(3)  # any time of day
    gap = timedelta(hours=RULES.valve_offline_h)
    assert is_device_offline("valve", now - gap, now, RULES)
    assert not is_device_offline("valve", now - gap + timedelta(seconds=1), now, RULES)
    assert is_device_offline("valve", now - 2 * gap, cst(12), RULES)


@pytest.mark.parametrize("kind", ["handheld", "vehicle"])
def test_handhelds_and_vehicles_never_offline(kind: str) -> None:
    assert not is_device_offline(kind, cst(10) - timedelta(days=365), cst(10), RULES)
    assert not is_device_offline(kind, None, cst(10), RULES)


@pytest.mark.parametrize("kind", DEVICE_KINDS)
def test_never_seen_is_not_offline(kind: str) -> None:
    assert not is_device_offline(kind, None, cst(12), RULES)


def test_device_offline_errors() -> None:
    with pytest.raises(ValueError, match="device kind"):
        is_device_offline("toaster", cst(9), cst(10), RULES)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_device_offline("gun", cst(9), datetime(2025, 6, 15, 10), RULES)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_device_offline("valve", datetime(2025, 6, 15, 9), cst(10), RULES)


def test_changed_offline_settings_change_decision() -> None:
    now = cst(10)
    assert is_device_offline("gun", now - 15 * MIN, now, RULES)
    slow = msgspec.structs.replace(RULES, gun_offline_min=30)
    assert not is_device_offline("gun", now - 15 * MIN, now, slow)
    assert is_device_offline("valve", now - timedelta(hours=30), now, RULES)
    patient = msgspec.structs.replace(RULES, valve_offline_h=48)
    assert not is_device_offline("valve", now - timedelta(hours=30), now, patient)
    # opening hours moved: 06:30 becomes working time
    early = msgspec.structs.replace(RULES, opening_hour_start=6)
    assert not is_device_offline("gun", cst(5), cst(6, 30), RULES)
    assert is_device_offline("gun", cst(5), cst(6, 30), early)


# ------------------------------------------------------------------ leaks and liveness


@pytest.mark.parametrize(
    ("ppm", "leak"),
    [
        (None, False),
        (0.0, False),
        (RULES.leak_ppm_threshold - 0.1, False),
        (RULES.leak_ppm_threshold, True),  # reaching the set point alarms
        (RULES.leak_ppm_threshold + 1, True),
    ],
)
def test_is_leak(ppm: float | None, leak: bool) -> None:
    assert is_leak(ppm, RULES) is leak


def test_changed_leak_threshold_changes_decision() -> None:
    assert is_leak(1500.0, RULES)
    assert not is_leak(1500.0, msgspec.structs.replace(RULES, leak_ppm_threshold=2000.0))
    assert is_leak(600.0, msgspec.structs.replace(RULES, leak_ppm_threshold=500.0))


def test_is_live() -> None:
    now = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)
    lag = timedelta(minutes=5)
    assert is_live(now, now, lag)
    assert is_live(now - lag, now, lag)  # exactly the allowed lag
    assert not is_live(now - lag - timedelta(microseconds=1), now, lag)
    assert not is_live(now - timedelta(days=2), now, lag)  # buffered offline data
    assert is_live(now + timedelta(minutes=1), now, lag)  # device clock slightly ahead
    assert is_live(now.astimezone(SHANGHAI), now, lag)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_live(datetime(2025, 6, 15, 10), now, lag)
