"""Settings: defaults load, env overrides apply and are type-checked, typos are refused,
and every setting is documented in docs/CONFIG.md (Datasette's habit)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.kernel.settings import ConfigError, load_settings, settings_doc

DOCS = Path(__file__).resolve().parent.parent / "docs" / "CONFIG.md"


def test_defaults_hold_every_number_of_domain_md() -> None:
    s = load_settings(environ={})
    assert s.dates.inspection_interval_years == 4
    assert s.dates.design_life_years == 8
    assert s.dates.absolute_scrap_age_years == 12
    assert s.dates.inspection_due_days == 30
    assert s.dates.scrap_due_days == 90
    assert s.model("YSP35.5") is not None and s.model("YSP35.5").max_fill_kg == 14.9  # type: ignore[union-attr]
    assert s.model("YSP118-II").max_fill_kg == 49.5  # type: ignore[union-attr]
    assert s.filling.underfill_tolerance_kg == 0.5
    assert s.alerts.gun_offline_min == 10 and s.alerts.valve_offline_h == 24
    assert (
        s.alerts.default_storage_store == 100 and s.alerts.default_storage_filling_station == 1000
    )


def test_env_overrides_are_typed() -> None:
    s = load_settings(
        environ={"CYL_DATES__INSPECTION_DUE_DAYS": "45", "CYL_AUTH__SECURE_COOKIES": "true"}
    )
    assert s.dates.inspection_due_days == 45
    assert s.auth.secure_cookies is True


def test_short_service_variables() -> None:
    s = load_settings(
        environ={"CYL_DATABASE_URL": "postgresql://x@h/db", "CYL_MQTT_URL": "mqtt://m:1"}
    )
    assert s.services.database_url == "postgresql://x@h/db"
    assert s.services.mqtt_url == "mqtt://m:1"


def test_a_typo_in_a_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="no key"):
        load_settings(environ={"CYL_DATES__INSPECTON_DUE_DAYS": "45"})


def test_a_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="integer"):
        load_settings(environ={"CYL_DATES__SCRAP_DUE_DAYS": "ninety"})


def test_override_file_with_unknown_key_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "city.toml"
    f.write_text("[dates]\nscrap_due_dayz = 60\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(f, environ={})
    f.write_text("[dates]\nscrap_due_days = 60\n")
    assert load_settings(f, environ={}).dates.scrap_due_days == 60


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = []
    for section, keys in settings_doc().items():
        if f"[{section}]" not in text:
            missing.append(f"[{section}]")
        for key in keys:
            if not re.search(rf"`{re.escape(key)}`", text):
                missing.append(f"{section}.{key}")
    assert not missing, f"undocumented settings in docs/CONFIG.md: {missing}"
