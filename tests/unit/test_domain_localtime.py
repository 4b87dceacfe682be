"""The city's clock (server.domain.localtime): one zone, and the city's calendar day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from server.domain import city_date, city_zone
from server.kernel.settings import load_settings

RULES = load_settings(environ={}).alerts


def test_the_zone_is_the_setting_and_built_once() -> None:
    assert city_zone(RULES) == ZoneInfo(RULES.timezone)
    assert city_zone(RULES) is city_zone(RULES)


def test_the_day_turns_at_local_midnight() -> None:
    rules = load_settings(environ={"CYL_ALERTS__TIMEZONE": "Asia/Shanghai"}).alerts
    # 16:30 UTC is 00:30 the next day in Shanghai (UTC+8)
    assert city_date(dt.datetime(2025, 3, 1, 16, 30, tzinfo=dt.UTC), rules) == dt.date(2025, 3, 2)
    assert city_date(dt.datetime(2025, 3, 1, 15, 59, tzinfo=dt.UTC), rules) == dt.date(2025, 3, 1)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        city_date(dt.datetime(2025, 3, 1, 12, 0), RULES)
