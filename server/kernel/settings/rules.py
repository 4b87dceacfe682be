"""Settings that are supervision rules: dates, filling, cylinder models, gun codes, alerts,
circulation checks, ingest and the public pages (docs/CONFIG.md; the numbers of
DOMAIN.md are their defaults)."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta

from server.kernel.settings.base import (
    Count,
    MqttUint16,
    MqttUint32,
    Name,
    NonNegative,
    NonNegativeFloat,
    Seconds,
    Section,
    ShareName,
    _ordered,
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
    gc_young_threshold: NonNegative
    retire_idle_s: Seconds

    def __post_init__(self) -> None:
        _ordered(self, "reconnect_min_s", "reconnect_max_s")


class Public(Section, frozen=True):
    rate_limit_per_min: Count
    complaint_max_chars: Count
