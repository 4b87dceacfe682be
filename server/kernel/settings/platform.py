"""Settings of the platform's machinery: services, HTTP, sessions, the live protocol, the
map, the seed, the wall, storage, privacy, uploads, SMS and the provincial upload
(docs/CONFIG.md)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from server.kernel.settings.base import (
    Count,
    Name,
    NonNegative,
    NonNegativeFloat,
    Origin,
    Port,
    RoleName,
    Seconds,
    Section,
    VapidSubject,
    _ordered,
)


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
    redis_pool_max: Count
    """Connections to Redis per server process; past it a request waits (up to
    ``connect_timeout_s``) for one to come free."""
    shutdown_grace_s: Seconds
    """How long a stopping process waits for each background round to end after cancelling
    it, and for its database connections to come back, before it leaves them (named in the
    log; the pool terminated): a round that lost its cancellation must not hold a restart
    (server/kernel/tasks.py). 10 s leaves room under systemd's ``TimeoutStopSec=30`` of
    deploy/systemd for the rounds, the pool and the sockets in turn."""
    db_command_timeout_s: Seconds
    """Longest one statement of the pool may run before the client cancels it: a runaway query
    must not hold a connection of a pool of ``db_pool_max`` for ever. 120 s is far above the
    longest statement a request or a rollup round makes at city scale (a round's refresh took
    24–26 s at 1M cylinders, docs/BENCHMARKS.md "Reports"); a request's own budget is shorter
    and set where it is made."""
    database_jit: bool
    """PostgreSQL's JIT compilation for the pool's queries. Off by default: a report over a
    month of a 1M-cylinder city spent 4.0 of its 9.1 s compiling (inlining and optimisation,
    triggered by the planner's cost estimate) and ran no faster for it (docs/BENCHMARKS.md
    "Reports"); the platform's queries are short or answered from rollups."""
    database_replica_url: str
    """A streaming replica (hot standby) of ``database_url`` that reports, their drill-downs
    and exports, and the wall's feeds read from (docs/DEPLOY.md "Read replica"); empty: every
    read goes to ``database_url``. Writes never go to it."""
    replica_max_lag_s: Seconds
    """How far behind the primary the replica may be and still answer reads; past it reads go
    to the primary until it catches up. 30 s: a report or the wall is already a view of the
    last minutes (the wall's feeds are cached for seconds, rollups refresh every few
    minutes), so a replica this close shows what a regulator expects; a replica further
    behind would show a fill just made as missing for longer than a person waits and
    reloads."""
    replica_check_interval_s: Seconds
    """How often each server process measures the replica's lag and health (one small query
    on each side), not per request. 2 s: a replica that went away or fell behind is noticed
    within this, far under ``replica_max_lag_s``, and a check costs two round trips."""

    def __post_init__(self) -> None:
        _ordered(self, "db_pool_min", "db_pool_max")


class Logs(Section, frozen=True):
    """``[logging]``: how every process writes its log lines (server.kernel.request_ids)."""

    format: Literal["text", "json"]
    """``text``: a line a person reads; ``json``: one object per line for a log shipper."""


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
    metrics_refresh_s: Seconds
    """How often each server process re-reads the queue gauges of ``/metrics`` (outbox,
    SMS, upstream, scheduled reports: server.db.queue_gauges). 5 s: a scrape every 15 s sees
    figures at most this old, and each refresh is a handful of counts over partial indexes;
    the scrape itself never waits for the database, so ``/metrics`` answers during an
    outage."""

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
    history_months: NonNegative
    """Months of past fills, deliveries, inspections and alerts generated before today
    (server.seed.past); 0 keeps only a small sample of recent fills."""


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
    grid_max: Count
    """Most columns (and most rows) of a wall layout's grid (docs/API.md "Wall layouts")."""
    windows_max: Count
    report_refresh_s: Seconds
    stream_origins: tuple[Origin, ...]
    """Origins a layout's video or camera stream may come from; the wall's
    Content-Security-Policy allows exactly these for media and images."""

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
