"""Platform settings: `config/default.toml`, an optional override file, then `CYL_*` variables.

Every number the platform acts on comes from here so that a city can change a rule by
configuration, not by a code change (docs/CONFIG.md). Each section is a frozen msgspec
Struct that refuses keys it does not declare, checks types, and checks ranges with
``Meta`` constraints: a typo in a safety threshold, a negative batch size or a port out
of range stops start-up with one line naming the key, instead of being silently ignored
or failing later, far from its cause.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_FILE = CONFIG_DIR / "default.toml"
ENV_PREFIX = "CYL_"
SHORT_ENV = {
    "CYL_DATABASE_URL": ("services", "database_url"),
    "CYL_REDIS_URL": ("services", "redis_url"),
    "CYL_MQTT_URL": ("services", "mqtt_url"),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Value domains shared by many keys (the names say what a value may be).
Count = Annotated[int, Meta(ge=1)]
"""At least one: a size, a limit, a period in whole units."""
NonNegative = Annotated[int, Meta(ge=0)]
"""Zero allowed: a margin in days, a snapshot that may be empty."""
Seconds = Annotated[float, Meta(gt=0)]
"""A strictly positive duration (a zero timeout or period would spin or never wait)."""
NonNegativeFloat = Annotated[float, Meta(ge=0)]
"""A tolerance or a cache period that may be zero, never negative."""
Name = Annotated[str, Meta(min_length=1)]
"""A URL, a cookie, a channel, a code: never empty."""
Port = Annotated[int, Meta(ge=1, le=65535)]
MqttUint16 = Annotated[int, Meta(ge=1, le=65535)]
"""MQTT v5 Receive Maximum is a two-byte integer greater than zero."""
MqttUint32 = Annotated[int, Meta(ge=0, le=4_294_967_295)]
"""MQTT v5 Session Expiry Interval is a four-byte integer."""
ShareName = Annotated[str, Meta(pattern=r"^[^/+#]+$")]
"""An MQTT shared subscription group: non-empty, no ``/``, ``+`` or ``#``."""
RoleName = Annotated[str, Meta(pattern=r"^([a-z_][a-z0-9_]{0,62})?$")]
"""A PostgreSQL role name needing no quotes (lower case, digits, ``_``), or empty."""
VapidSubject = Annotated[str, Meta(pattern=r"^(mailto:|https://)")]
Origin = Annotated[str, Meta(pattern=r"^https?://[^/?#\s]+$")]
"""A web origin as browsers send it: ``scheme://host[:port]``, no path."""
"""RFC 8292: the VAPID ``sub`` claim is a ``mailto:`` or ``https:`` URI."""


class ConfigError(ValueError):
    """A setting is missing, unknown, of the wrong type or out of range."""


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[section]`` of the TOML: immutable, and unknown keys are refused.

    A ``__post_init__`` check that spans keys raises ``ValueError("key: what is wrong")``
    so that the message names the key like msgspec's own checks do.
    """


def _ordered(section: Section, low: str, high: str) -> None:
    """Refuse a lower bound above its upper bound (e.g. a backoff minimum above its maximum)."""
    lo, hi = getattr(section, low), getattr(section, high)
    if lo > hi:
        raise ValueError(f"{low}: {lo} is above {high} ({hi})")


class Services(Section, frozen=True):
    database_url: Name
    redis_url: Name
    mqtt_url: Name
    mqtt_admin_url: str
    """The dynamic-security admin client; empty: the broker's access is not managed live."""
    database_owner_url: str
    """Who migrates: the owner of the tables (docs/SECURITY.md "Database roles"); empty:
    ``database_url`` (one role for everything, as in the demo)."""
    app_role: RoleName
    """The role migrations grant the application's privileges to; empty: none managed."""
    db_pool_min: NonNegative
    db_pool_max: Count
    connect_timeout_s: Seconds

    def __post_init__(self) -> None:
        _ordered(self, "db_pool_min", "db_pool_max")


class Http(Section, frozen=True):
    host: Name
    port: Port
    base_url: Name
    default_language: Name
    max_upload_mb: Count
    max_xlsx_uncompressed_mb: Count
    """Largest total a workbook's ZIP members may inflate to: a zip bomb is refused unread."""
    max_xlsx_compression_ratio: Count
    """Largest inflated/compressed size of any one workbook member."""
    max_import_rows: Count
    """Most rows an archive file (a sheet's dimension, a CSV's lines) may declare."""
    max_rejected_rows_kept: NonNegative
    """Rejected rows an import lists; the rest are only counted."""
    max_json_body_kb: Count
    max_small_body_kb: Count
    trusted_proxies: tuple[Name, ...]
    page_size_default: Count
    page_size_max: Count
    page_offset_max: Count

    def __post_init__(self) -> None:
        _ordered(self, "page_size_default", "page_size_max")
        _ordered(self, "page_size_max", "page_offset_max")
        _ordered(self, "max_small_body_kb", "max_json_body_kb")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {cidr!r} is not an address or network"
                ) from None


class Auth(Section, frozen=True):
    session_ttl_s: Count
    session_max_age_s: Count
    """A session's absolute lifetime from its login, however busy it is."""
    kiosk_token_max_age_s: Count
    """How long a wall's kiosk token works after it was issued."""
    session_cookie: Name
    csrf_cookie: Name
    secure_cookies: bool
    hsts_max_age_s: NonNegative
    login_max_failures: Count
    login_failure_window_s: Count
    login_backoff_max_s: Count
    min_password_length: Count
    argon2_time_cost: Count
    argon2_memory_kib: Count
    argon2_parallelism: Count
    argon2_max_concurrent: Count

    def __post_init__(self) -> None:
        _ordered(self, "session_ttl_s", "session_max_age_s")
        _ordered(self, "login_failure_window_s", "login_backoff_max_s")
        # RFC 9106 §3.1: memory is at least 8 KiB per lane, else every hash call fails
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError(
                f"argon2_memory_kib: {self.argon2_memory_kib} is below 8 ×"
                f" argon2_parallelism ({self.argon2_parallelism})"
            )


class Dates(Section, frozen=True):
    inspection_interval_years: Count
    design_life_years: Count
    absolute_scrap_age_years: Count
    inspection_due_days: NonNegative
    scrap_due_days: NonNegative


class Filling(Section, frozen=True):
    overfill_tolerance_kg: NonNegativeFloat
    underfill_tolerance_kg: NonNegativeFloat
    repeat_fill_window_h: Count


class CylinderModel(Section, frozen=True):
    spec: Name
    volume_l: Annotated[float, Meta(gt=0)]
    max_fill_kg: Annotated[float, Meta(gt=0)]


class GunCodes(Section, frozen=True):
    allow: Name
    unknown_tag: Name
    not_in_service: Name
    overdue_inspection: Name
    scrapped: Name
    station_not_licensed: Name
    unknown_station: Name
    not_owner: Name


class Alerts(Section, frozen=True):
    licence_expiring_days: NonNegative
    default_storage_store: NonNegative
    default_storage_filling_station: NonNegative
    default_storage_warehouse: NonNegative
    leak_ppm_threshold: Annotated[float, Meta(gt=0)]
    gun_offline_min: Count
    valve_offline_h: Count
    opening_hour_start: Annotated[int, Meta(ge=0, le=23)]
    opening_hour_end: Annotated[int, Meta(ge=0, le=24)]
    timezone: Name

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: {self.timezone!r} is not an IANA time zone") from None


class Circulation(Section, frozen=True):
    """DOMAIN.md "Circulation checks": which checks run, and what no vehicle can travel."""

    circulation_violation: bool
    suspected_illegal_fill: bool
    foreign_cylinder: bool
    cloned_tag: bool
    cloned_tag_km: Annotated[float, Meta(gt=0)]
    cloned_tag_window_s: Count
    cloned_tag_speed_kmh: Annotated[float, Meta(gt=0)]


class Ingest(Section, frozen=True):
    batch_max_rows: Count
    batch_max_ms: Count
    max_future_skew_h: NonNegative
    receive_maximum: MqttUint16
    session_expiry_s: MqttUint32
    client_id_prefix: Name
    shared_group: ShareName
    reconnect_min_s: Seconds
    reconnect_max_s: Seconds
    live_lag_s: Count
    housekeeping_interval_s: Seconds
    dead_letter_max_bytes: Count
    transport: Literal["aiomqtt", "gmqtt"]
    auth_connections: Count

    def __post_init__(self) -> None:
        _ordered(self, "reconnect_min_s", "reconnect_max_s")


class Realtime(Section, frozen=True):
    redis_channel: Name
    position_coalesce_ms: NonNegative
    client_queue_max: Count
    kpi_interval_s: Seconds
    ws_heartbeat_s: Seconds
    page_reconnect_min_s: Seconds
    """First reconnect delay of a page's websocket (doubling, with jitter); the wall has its
    own ``[big_screen]`` values."""
    page_reconnect_max_s: Seconds
    ws_close_timeout_s: Seconds
    ws_max_message_bytes: Count
    ws_allowed_origins: tuple[Origin, ...]
    """Origins besides ``[http] base_url``'s whose pages may open ``/ws``."""
    ws_connections_per_user_max: Count
    ws_messages_per_s: Count
    ws_message_burst: Count
    ws_rate_limit_close_after: Count
    """Messages refused for rate in a row (the bucket never refilling) before closing."""
    subscriptions_max: Count
    snapshot_alerts_max: NonNegative
    snapshot_positions_max: NonNegative
    bridge_queue_max: Count
    bridge_reconnect_min_s: Seconds
    bridge_reconnect_max_s: Seconds
    push_subject: VapidSubject
    push_ttl_s: NonNegative
    push_timeout_s: Seconds
    push_allow_http: bool
    push_dedupe_ttl_s: Count
    push_subscriptions_per_user_max: Count
    """Push subscriptions one user may hold (a phone or browser each); more is 409."""

    def __post_init__(self) -> None:
        _ordered(self, "bridge_reconnect_min_s", "bridge_reconnect_max_s")
        _ordered(self, "page_reconnect_min_s", "page_reconnect_max_s")


class Public(Section, frozen=True):
    rate_limit_per_min: Count
    complaint_max_chars: Count


class MapSettings(Section, frozen=True):
    tiles: Literal["none", "osm", "tianditu", "amap"]
    tianditu_key: str
    center_lat: Annotated[float, Meta(ge=-90, le=90)]
    center_lon: Annotated[float, Meta(ge=-180, le=180)]
    zoom: Annotated[int, Meta(ge=0, le=19)]


class Seed(Section, frozen=True):
    cylinders: Count
    companies: Count
    filling_stations: Count
    stores: Count
    customers: Count
    vehicles: Count
    random_seed: int


class BigScreen(Section, frozen=True):
    """The command-centre wall (docs/CONFIG.md "[big_screen]")."""

    feed_cache_s: NonNegativeFloat
    chart_refresh_s: Seconds
    ticker_max: Count
    alert_markers_max: Count
    alert_marker_ttl_s: Seconds
    vehicles_max: Count
    vehicle_stale_s: Seconds
    ranking_days: Count
    ranking_top: Count
    alerts_snapshot: NonNegative
    vehicles_snapshot_min: Count
    reconnect_min_s: Seconds
    reconnect_max_s: Seconds
    ping_s: Seconds

    def __post_init__(self) -> None:
        _ordered(self, "reconnect_min_s", "reconnect_max_s")


class Storage(Section, frozen=True):
    timescaledb: Literal["auto", "off"]


class Privacy(Section, frozen=True):
    """Personal data (docs/SECURITY.md "Privacy")."""

    id_hash_key_file: Name
    """The secret keying the HMAC of customers' ID numbers, kept outside the database;
    a relative path is taken from the project directory."""


class Uploads(Section, frozen=True):
    """Files people upload (server.kernel.uploads, docs/ARCHITECTURE.md §3)."""

    dir: Name
    """Where the bytes live, at their SHA-256; a relative path is from the project directory."""
    image_max_mb: Count
    file_max_mb: Count
    image_max_side_px: Annotated[int, Meta(ge=320, le=16384)]
    image_max_pixels: Annotated[int, Meta(ge=100_000, le=200_000_000)]


def _redacted(section: Section, *secrets: str) -> str:
    """A section's repr with its credentials blanked: settings may be logged, secrets never."""
    parts = []
    for f in msgspec.structs.fields(section):
        value = getattr(section, f.name)
        parts.append(f"{f.name}={'***' if f.name in secrets and value else repr(value)}")
    return f"{type(section).__name__}({', '.join(parts)})"


def _needs_url(section: Section, enabled: bool, key: str) -> None:
    """An enabled outbound feed needs an http(s) URL to deliver to."""
    if enabled and not re.match(r"^https?://[^/?#\s]+", getattr(section, key)):
        raise ValueError(f"{key}: an http:// or https:// URL is required when enabled")


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def template_fields(text: str) -> list[str]:
    """The ``{placeholder}`` names of an SMS template (``{{`` and ``}}`` are literal braces).
    Only plain names are allowed: a template is filled with text, never with attribute or
    index lookups on the caller's values."""
    names = []
    for match in _PLACEHOLDER.finditer(text.replace("{{", "").replace("}}", "")):
        name = match[1]
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} is not a plain name")
        names.append(name)
    return names


class Sms(Section, frozen=True):
    """The SMS gateway and its queue (docs/CONFIG.md "[sms]", docs/OUTBOUND.md)."""

    enabled: bool
    gateway_url: str
    api_key: str
    api_secret: str
    sender_id: str
    timeout_s: Seconds
    max_attempts: Count
    backoff_min_s: Seconds
    backoff_max_s: Seconds
    rate_limit_per_hour: Count
    batch_size: Count
    poll_interval_s: Seconds
    claim_timeout_s: Seconds
    templates: Mapping[str, Name]
    """Message kind → text with ``{placeholders}`` (e.g. ``complaint_answer``)."""

    def __post_init__(self) -> None:
        _needs_url(self, self.enabled, "gateway_url")
        _ordered(self, "backoff_min_s", "backoff_max_s")
        _ordered(self, "timeout_s", "claim_timeout_s")
        for kind, text in self.templates.items():
            try:
                template_fields(text)
            except ValueError as exc:
                raise ValueError(f"templates: {kind}: {exc}") from None

    def __repr__(self) -> str:
        return _redacted(self, "api_key", "api_secret")


class Upstream(Section, frozen=True):
    """Upload to the provincial / national platform (docs/CONFIG.md "[upstream]")."""

    enabled: bool
    endpoint_url: str
    api_key: str
    source_id: Name
    timeout_s: Seconds
    batch_size: Count
    max_attempts: Count
    backoff_min_s: Seconds
    backoff_max_s: Seconds
    poll_interval_s: Seconds
    claim_timeout_s: Seconds
    retention_days: Count

    def __post_init__(self) -> None:
        _needs_url(self, self.enabled, "endpoint_url")
        _ordered(self, "backoff_min_s", "backoff_max_s")
        _ordered(self, "timeout_s", "claim_timeout_s")

    def __repr__(self) -> str:
        return _redacted(self, "api_key")


class Settings(msgspec.Struct, frozen=True):
    services: Services
    http: Http
    auth: Auth
    dates: Dates
    filling: Filling
    gun_codes: GunCodes
    alerts: Alerts
    circulation: Circulation
    ingest: Ingest
    realtime: Realtime
    public: Public
    map: MapSettings
    seed: Seed
    big_screen: BigScreen
    storage: Storage
    privacy: Privacy
    uploads: Uploads
    sms: Sms
    upstream: Upstream
    models: Mapping[str, CylinderModel]
    """Cylinder models keyed by their spec code (e.g. ``"YSP35.5"``)."""

    def model(self, spec: str) -> CylinderModel | None:
        return self.models.get(spec)


_SECTIONS: dict[str, type[Section]] = {
    "services": Services,
    "http": Http,
    "auth": Auth,
    "dates": Dates,
    "filling": Filling,
    "gun_codes": GunCodes,
    "alerts": Alerts,
    "circulation": Circulation,
    "ingest": Ingest,
    "realtime": Realtime,
    "public": Public,
    "map": MapSettings,
    "seed": Seed,
    "big_screen": BigScreen,
    "storage": Storage,
    "privacy": Privacy,
    "uploads": Uploads,
    "sms": Sms,
    "upstream": Upstream,
}
_MODELS = "models"

_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string"}
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _lookup(raw: Any, path: str) -> Any:
    """The raw value at a msgspec error path such as ``.YSP12.max_fill_kg`` (or ``...``)."""
    for part in filter(None, path.split(".")):
        if not isinstance(raw, Mapping) or part not in raw:
            return ...
        raw = raw[part]
    return raw


def _allowed(typ: Any, path: str) -> str:
    """``must be one of a, b`` for a Literal *typ*, or the Literal key at *path* of a section."""
    if isinstance(typ, type) and issubclass(typ, Section):
        key = path.removeprefix(".")
        typ = next((f.type for f in msgspec.structs.fields(typ) if f.name == key), None)
    if get_origin(typ) is Literal:
        return "must be one of " + ", ".join(map(str, get_args(typ)))
    return "is not an allowed value"


def _problem(exc: msgspec.ValidationError, where: str, raw: Any, typ: Any) -> ConfigError:
    """One line naming ``section.key`` and what is wrong, from a msgspec validation error."""
    text = str(exc)
    match = _AT.search(text)
    path = match["path"] if match else ""
    text = text[: match.start()] if match else text
    if not match and (m := re.fullmatch(r"(\w+): (.+)", text)):
        return ConfigError(f"{where}.{m[1]}: {m[2]}")  # a __post_init__ check (see Section)
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", text):
        return ConfigError(f"{where}{path}: unknown key {m[1]!r}")
    if m := re.fullmatch(r"Object missing required field `(.+)`", text):
        return ConfigError(f"{where}{path}: missing key {m[1]!r}")
    if text.startswith("Invalid enum value"):
        text = _allowed(typ, path)
    text = re.sub(r", got `\w+`$", "", text)
    text = re.sub(r"Expected `(\w+)`", lambda m: "expected " + _TYPE_WORDS.get(m[1], m[1]), text)
    value = _lookup(raw, path)
    got = f", got {value!r}" if path and value is not ... else ""
    return ConfigError(f"{where}{path}: {text[:1].lower()}{text[1:].replace('`', '')}{got}")


def _convert(raw: Any, typ: Any, where: str) -> Any:
    """*raw* (TOML values, environment values already typed) as *typ*, strictly."""
    try:
        return msgspec.convert(raw, typ)
    except msgspec.ValidationError as exc:
        raise _problem(exc, where, raw, typ) from None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _field_type(section: str, key: str) -> Any:
    for f in msgspec.structs.fields(_SECTIONS[section]):
        if f.name == key:
            return f.type
    return None


def _from_env(name: str, text: str, section: str, key: str) -> Any:
    """An environment string as the key's declared type (its range is checked here too).
    Booleans accept true/false, 1/0, yes/no, on/off; arrays are comma-separated."""
    typ = _field_type(section, key)
    if typ is None:
        raise ConfigError(f"{name}: no key {section}.{key}")
    base = get_args(typ)[0] if get_origin(typ) is Annotated else typ
    value: Any = text
    if base is bool and text.lower() in _TRUE | _FALSE:
        value = text.lower() in _TRUE
    elif get_origin(base) in (list, tuple, frozenset):  # a TOML array: comma-separated text
        value = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return msgspec.convert(value, typ, strict=False)
    except msgspec.ValidationError as exc:
        problem = _problem(exc, f"{section}.{key}", {}, typ)
        raise ConfigError(f"{name}: {problem}, got {text!r}") from None


def _env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``CYL_<SECTION>__<KEY>`` and the short service names. Any variable with the
    ``__`` separator is a setting, so a misspelt section is refused like a misspelt key."""
    for name, text in environ.items():
        if name in SHORT_ENV:
            section, key = SHORT_ENV[name]
        elif name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
            if section not in _SECTIONS:
                raise ConfigError(f"{name}: no settings section [{section}]")
        else:
            continue  # other CYL_ variables (e.g. CYL_CONFIG) are not settings
        raw.setdefault(section, {})[key] = _from_env(name, text, section, key)


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
    extra = set(raw) - set(_SECTIONS) - {_MODELS}
    if extra:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(extra))}")
    _env_overrides(raw, env)
    sections = {name: _convert(raw.get(name, {}), cls, name) for name, cls in _SECTIONS.items()}
    tables = _convert(raw.get(_MODELS, {}), dict[str, dict[str, Any]], _MODELS)
    models = [_convert(t, CylinderModel, f"{_MODELS}.{name}") for name, t in tables.items()]
    return Settings(models={m.spec: m for m in models}, **sections)


def settings_doc() -> dict[str, list[str]]:
    """Every section and its keys (``models.*`` for the per-model tables), for the tests
    that prove each setting is documented in docs/CONFIG.md and read by the product."""
    doc = {name: [f.name for f in msgspec.structs.fields(cls)] for name, cls in _SECTIONS.items()}
    doc[f"{_MODELS}.*"] = [f.name for f in msgspec.structs.fields(CylinderModel)]
    return doc
