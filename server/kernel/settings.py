"""Platform settings: `config/default.toml`, an optional override file, then `CYL_*` variables.

Every number the platform acts on comes from here so that a city can change a rule by
configuration, not by a code change. Sections map one-to-one onto frozen dataclasses; a
key in the TOML that no dataclass declares is an error at start-up (a typo in a safety
threshold must not be silently ignored).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_FILE = CONFIG_DIR / "default.toml"
ENV_PREFIX = "CYL_"
SHORT_ENV = {
    "CYL_DATABASE_URL": ("services", "database_url"),
    "CYL_REDIS_URL": ("services", "redis_url"),
    "CYL_MQTT_URL": ("services", "mqtt_url"),
}


class ConfigError(ValueError):
    """A setting is missing, unknown or of the wrong type."""


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    mqtt_url: str
    db_pool_min: int
    db_pool_max: int
    connect_timeout_s: float


@dataclass(frozen=True)
class Http:
    host: str
    port: int
    base_url: str
    default_language: str
    max_upload_mb: int
    page_size_default: int
    page_size_max: int


@dataclass(frozen=True)
class Auth:
    session_ttl_s: int
    session_cookie: str
    csrf_cookie: str
    secure_cookies: bool
    login_max_failures: int
    login_failure_window_s: int
    min_password_length: int
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int


@dataclass(frozen=True)
class Dates:
    inspection_interval_years: int
    design_life_years: int
    absolute_scrap_age_years: int
    inspection_due_days: int
    scrap_due_days: int
    records_retention_years: int


@dataclass(frozen=True)
class Filling:
    overfill_tolerance_kg: float
    underfill_tolerance_kg: float
    repeat_fill_window_h: int
    auth_reply_timeout_ms: int


@dataclass(frozen=True)
class CylinderModel:
    spec: str
    volume_l: float
    max_fill_kg: float


@dataclass(frozen=True)
class GunCodes:
    allow: str
    unknown_tag: str
    not_in_service: str
    overdue_inspection: str
    scrapped: str
    station_not_licensed: str
    unknown_station: str
    not_owner: str


@dataclass(frozen=True)
class Alerts:
    licence_expiring_days: int
    default_storage_store: int
    default_storage_filling_station: int
    default_storage_warehouse: int
    leak_ppm_threshold: float
    gun_offline_min: int
    valve_offline_h: int
    opening_hour_start: int
    opening_hour_end: int
    timezone: str


@dataclass(frozen=True)
class Ingest:
    batch_max_rows: int
    batch_max_ms: int
    max_future_skew_h: int
    receive_maximum: int
    session_expiry_s: int
    client_id_prefix: str
    shared_group: str
    reconnect_min_s: float
    reconnect_max_s: float
    live_lag_s: int
    housekeeping_interval_s: float
    dead_letter_max_bytes: int
    transport: str
    auth_connections: int


@dataclass(frozen=True)
class Realtime:
    redis_channel: str
    position_coalesce_ms: int
    client_queue_max: int
    kpi_interval_s: float
    ws_heartbeat_s: float
    ws_close_timeout_s: float
    ws_max_message_bytes: int
    subscriptions_max: int
    snapshot_alerts_max: int
    snapshot_positions_max: int
    bridge_queue_max: int
    bridge_reconnect_min_s: float
    bridge_reconnect_max_s: float
    push_subject: str
    push_ttl_s: int
    push_timeout_s: float
    push_allow_http: bool
    push_dedupe_ttl_s: int


@dataclass(frozen=True)
class Public:
    rate_limit_per_min: int
    complaint_max_chars: int


@dataclass(frozen=True)
class MapSettings:
    tiles: str
    tianditu_key: str
    center_lat: float
    center_lon: float
    zoom: int


@dataclass(frozen=True)
class Seed:
    cylinders: int
    companies: int
    filling_stations: int
    stores: int
    customers: int
    vehicles: int
    random_seed: int


@dataclass(frozen=True)
class Settings:
    services: Services
    http: Http
    auth: Auth
    dates: Dates
    filling: Filling
    gun_codes: GunCodes
    alerts: Alerts
    ingest: Ingest
    realtime: Realtime
    public: Public
    map: MapSettings
    seed: Seed
    models: Mapping[str, CylinderModel] = field(default_factory=dict)
    """Cylinder models keyed by their spec code (e.g. ``"YSP35.5"``)."""

    def model(self, spec: str) -> CylinderModel | None:
        return self.models.get(spec)


_SECTIONS: dict[str, type[Any]] = {
    "services": Services,
    "http": Http,
    "auth": Auth,
    "dates": Dates,
    "filling": Filling,
    "gun_codes": GunCodes,
    "alerts": Alerts,
    "ingest": Ingest,
    "realtime": Realtime,
    "public": Public,
    "map": MapSettings,
    "seed": Seed,
}

T = TypeVar("T")


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert a TOML value or an environment string to the declared type."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {typ!r}")  # pragma: no cover


def _build(cls: type[T], data: Mapping[str, Any], section: str) -> T:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(sorted(unknown))}")
    missing = names - set(data)
    if missing:
        raise ConfigError(f"[{section}] missing key(s): {', '.join(sorted(missing))}")
    values = {k: _coerce(data[k], hints[k], f"[{section}] {k}") for k in names}
    return cls(**values)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if name in SHORT_ENV:
            section, key = SHORT_ENV[name]
            raw.setdefault(section, {})[key] = value
        elif name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
            if section not in _SECTIONS:
                continue  # other CYL_ variables (e.g. CYL_CONFIG) are not settings
            if key not in raw.get(section, {}):
                raise ConfigError(f"{name}: [{section}] has no key {key!r}")
            raw[section][key] = value


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read defaults, the optional override file (``CYL_CONFIG`` or *path*), then env vars."""
    env = os.environ if environ is None else environ
    with DEFAULT_FILE.open("rb") as fh:
        raw: dict[str, Any] = tomllib.load(fh)
    override = path or env.get("CYL_CONFIG")
    if override:
        try:
            with Path(override).open("rb") as fh:
                _merge(raw, tomllib.load(fh))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {override}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {override} is not valid TOML: {exc}") from None
    _env_overrides(raw, env)
    sections = {name: _build(cls, raw.get(name, {}), name) for name, cls in _SECTIONS.items()}
    models: dict[str, CylinderModel] = {}
    for key, model in raw.get("models", {}).items():
        m = _build(CylinderModel, model, f"models.{key}")
        models[m.spec] = m
    extra = set(raw) - set(_SECTIONS) - {"models"}
    if extra:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(extra))}")
    return Settings(models=models, **sections)


def settings_doc() -> dict[str, list[str]]:
    """Every section and its keys, for the test that proves each setting is documented."""
    return {name: [f.name for f in dataclasses.fields(cls)] for name, cls in _SECTIONS.items()}
