"""Settings: defaults load, env overrides apply and are type- and range-checked, typos are
refused, and every setting is documented in docs/CONFIG.md (Datasette's habit) and read by
the product (a key nothing reads promises behaviour that does not exist)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import msgspec
import pytest

from server.kernel.settings import ConfigError, Settings, load_settings, settings_doc

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "CONFIG.md"
PRODUCT = ("server", "ingest", "realtime", "dashboard", "big_screen", "device_sim")
SETTINGS_PACKAGE = ROOT / "server" / "kernel" / "settings"
SETTINGS_MODULE = SETTINGS_PACKAGE / "__init__.py"


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
    assert s.storage.timescaledb == "auto"


def test_env_overrides_are_typed() -> None:
    s = load_settings(
        environ={
            "CYL_DATES__INSPECTION_DUE_DAYS": "45",
            "CYL_AUTH__SECURE_COOKIES": "true",
            "CYL_FILLING__UNDERFILL_TOLERANCE_KG": "0.25",
            "CYL_STORAGE__TIMESCALEDB": "off",
        }
    )
    assert s.dates.inspection_due_days == 45
    assert s.auth.secure_cookies is True
    assert s.filling.underfill_tolerance_kg == 0.25
    assert s.storage.timescaledb == "off"
    for text, value in [("on", True), ("yes", True), ("1", True), ("off", False), ("0", False)]:
        assert (
            load_settings(environ={"CYL_AUTH__SECURE_COOKIES": text}).auth.secure_cookies is value
        )


def test_array_variables_are_comma_separated() -> None:
    s = load_settings(environ={"CYL_HTTP__TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert s.http.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    assert load_settings(environ={"CYL_HTTP__TRUSTED_PROXIES": ""}).http.trusted_proxies == ()


def test_short_service_variables() -> None:
    s = load_settings(
        environ={"CYL_DATABASE_URL": "postgresql://x@h/db", "CYL_MQTT_URL": "mqtt://m:1"}
    )
    assert s.services.database_url == "postgresql://x@h/db"
    assert s.services.mqtt_url == "mqtt://m:1"


def test_the_wall_is_configured_like_everything_else(tmp_path: Path) -> None:
    """[big_screen] in a file and CYL_BIG_SCREEN__* both reach the settings (they used to
    abort start-up and be ignored, respectively)."""
    f = tmp_path / "city.toml"
    f.write_text("[big_screen]\nticker_max = 12\nfeed_cache_s = 0\n")
    s = load_settings(f, environ={"CYL_BIG_SCREEN__RANKING_TOP": "5"})
    assert s.big_screen.ticker_max == 12
    assert s.big_screen.feed_cache_s == 0
    assert s.big_screen.ranking_top == 5
    assert s.big_screen.ping_s == load_settings(environ={}).big_screen.ping_s


def test_settings_are_immutable() -> None:
    s = load_settings(environ={})
    with pytest.raises(AttributeError):
        s.ingest.batch_max_rows = 1  # type: ignore[misc]


def test_a_typo_in_a_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"no key dates.inspecton_due_days"):
        load_settings(environ={"CYL_DATES__INSPECTON_DUE_DAYS": "45"})
    with pytest.raises(ConfigError, match=r"CYL_BIG_SCRN__PING_S: no settings section"):
        load_settings(environ={"CYL_BIG_SCRN__PING_S": "5"})


def test_other_cyl_variables_are_not_settings() -> None:
    s = load_settings(environ={"CYL_CHROMIUM": "/usr/bin/chromium", "CYL_WORKER_INDEX": "3"})
    assert s.http.port == 8080


def test_a_wrong_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dates.scrap_due_days: expected an integer"):
        load_settings(environ={"CYL_DATES__SCRAP_DUE_DAYS": "ninety"})
    f = tmp_path / "city.toml"
    f.write_text("[ingest]\nbatch_max_rows = 2.5\n")
    with pytest.raises(ConfigError, match=r"^ingest.batch_max_rows: expected an integer, got 2.5$"):
        load_settings(f, environ={})


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("CYL_INGEST__BATCH_MAX_ROWS", "-5", "ingest.batch_max_rows"),
        ("CYL_SERVICES__DB_POOL_MAX", "0", "services.db_pool_max"),
        ("CYL_HTTP__PORT", "70000", "http.port"),
        ("CYL_HTTP__PORT", "0", "http.port"),
        ("CYL_FILLING__UNDERFILL_TOLERANCE_KG", "-0.1", "filling.underfill_tolerance_kg"),
        ("CYL_FILLING__OVERFILL_TOLERANCE_KG", "-1", "filling.overfill_tolerance_kg"),
        ("CYL_ALERTS__OPENING_HOUR_END", "25", "alerts.opening_hour_end"),
        ("CYL_REALTIME__KPI_INTERVAL_S", "0", "realtime.kpi_interval_s"),
        ("CYL_BIG_SCREEN__TICKER_MAX", "0", "big_screen.ticker_max"),
        ("CYL_INGEST__TRANSPORT", "mqttjs", "ingest.transport"),
        ("CYL_STORAGE__TIMESCALEDB", "on", "storage.timescaledb"),
    ],
)
def test_out_of_range_variables_are_refused(variable: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: {key}: ") and message.endswith(f"got {value!r}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[ingest]\nbatch_max_rows = -1\n", "ingest.batch_max_rows: expected an integer >= 1"),
        ("[services]\ndb_pool_max = 0\n", "services.db_pool_max: expected an integer >= 1"),
        ("[http]\nport = 65536\n", "http.port: expected an integer <= 65535"),
        ("[filling]\nunderfill_tolerance_kg = -0.5\n", "filling.underfill_tolerance_kg"),
        ("[models.X]\nspec = 'X'\nvolume_l = 5.0\nmax_fill_kg = 0\n", "models.X.max_fill_kg"),
        ("[map]\ntiles = 'google'\n", "map.tiles: must be one of none, osm, tianditu, amap"),
        ("[services]\ndb_pool_min = 11\n", "services.db_pool_min: 11 is above db_pool_max"),
        ("[ingest]\nreconnect_min_s = 60.0\n", "ingest.reconnect_min_s: 60.0 is above"),
        ("[alerts]\ntimezone = 'Asia/Shangai'\n", "alerts.timezone: 'Asia/Shangai' is not"),
        ("[auth]\nargon2_memory_kib = 16\n", "auth.argon2_memory_kib: 16 is below"),
        ("[realtime]\npush_subject = 'ops@example.org'\n", "realtime.push_subject"),
    ],
)
def test_out_of_range_values_in_a_file_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    f = tmp_path / "city.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}") as caught:
        load_settings(f, environ={})
    assert "\n" not in str(caught.value)


def test_override_file_with_unknown_key_or_section_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "city.toml"
    f.write_text("[dates]\nscrap_due_dayz = 60\n")
    with pytest.raises(ConfigError, match="dates: unknown key 'scrap_due_dayz'"):
        load_settings(f, environ={})
    f.write_text("[big_screen]\nticker_rows = 60\n")
    with pytest.raises(ConfigError, match="big_screen: unknown key 'ticker_rows'"):
        load_settings(f, environ={})
    f.write_text("[bigscreen]\nticker_max = 60\n")
    with pytest.raises(ConfigError, match=r"unknown section.*bigscreen"):
        load_settings(f, environ={})
    f.write_text("[dates]\nscrap_due_days = 60\n")
    assert load_settings(f, environ={}).dates.scrap_due_days == 60


def test_removed_keys_stay_removed(tmp_path: Path) -> None:
    """Keys that nothing read were removed (docs/CONFIG.md says why), so setting one is an
    error, not a silent no-op."""
    f = tmp_path / "city.toml"
    f.write_text("[dates]\nrecords_retention_years = 5\n")
    with pytest.raises(ConfigError, match="unknown key 'records_retention_years'"):
        load_settings(f, environ={})
    with pytest.raises(ConfigError, match=r"no key filling.auth_reply_timeout_ms"):
        load_settings(environ={"CYL_FILLING__AUTH_REPLY_TIMEOUT_MS": "50"})


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = []
    for section, keys in settings_doc().items():
        if f"## [{section}]" not in text:
            missing.append(f"[{section}]")
        for key in keys:
            if not re.search(rf"`{re.escape(key)}`", text):
                missing.append(f"{section}.{key}")
    assert not missing, f"undocumented settings in docs/CONFIG.md: {missing}"


def test_every_section_is_in_the_default_file() -> None:
    """Every key has its default in config/default.toml (no default lives in code)."""
    import tomllib

    with (ROOT / "config" / "default.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    for section, keys in settings_doc().items():
        if section == "models.*":
            continue  # one table per model, checked by loading
        assert sorted(raw[section]) == sorted(keys), section


# --- every key is read -----------------------------------------------------------------------


def _product_sources() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if SETTINGS_PACKAGE not in path.parents
    }


def _section_markers() -> dict[str, re.Pattern[str]]:
    """For each section, how a module shows it handles that section: it names the section's
    class (a function taking ``rules: Alerts``) or reaches the section by attribute
    (``settings.alerts``, ``app[SETTINGS].big_screen``)."""
    markers = {}
    for field in msgspec.structs.fields(Settings):
        if field.name == "models":
            (_, cls) = get_args(field.type)
            markers["models.*"] = re.compile(rf"\b{cls.__name__}\b|\.models\b|\.model\(")
        else:
            markers[field.name] = re.compile(rf"\b{field.type.__name__}\b|\.{field.name}\b")
    return markers


def unread_keys(doc: dict[str, list[str]], sources: dict[Path, str]) -> list[str]:
    """``section.key`` for each key no product module reads: a key is read where a module
    that handles its section (see ``_section_markers``) accesses ``.<key>`` on an object."""
    markers = _section_markers()
    unread = []
    for section, keys in doc.items():
        readers = [text for text in sources.values() if markers[section].search(text)]
        for key in keys:
            access = re.compile(rf"\.{re.escape(key)}\b")
            if not any(access.search(text) for text in readers):
                unread.append(f"{section}.{key}")
    return unread


def test_every_setting_is_read_by_the_product() -> None:
    unread = unread_keys(settings_doc(), _product_sources())
    assert not unread, f"settings no product code reads (make them work or remove them): {unread}"


def test_the_read_check_can_fail() -> None:
    """The check above must catch an unread key: a made-up key, a key read only through
    another section, and a removed key all count as unread."""
    sources = _product_sources()
    assert unread_keys({"ingest": ["batch_max_rowz"]}, sources) == ["ingest.batch_max_rowz"]
    assert unread_keys({"dates": ["records_retention_years"]}, sources) != []
    assert unread_keys({"filling": ["auth_reply_timeout_ms"]}, sources) != []
    only_elsewhere = {SETTINGS_MODULE: "def f(s): return s.ingest.batch_max_rows"}
    assert unread_keys({"seed": ["batch_max_rows"]}, only_elsewhere) == ["seed.batch_max_rows"]
    assert unread_keys({"ingest": ["batch_max_rows"]}, only_elsewhere) == []
