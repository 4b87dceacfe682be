"""Abnormal business behaviour (异常经营行为) rules of DOMAIN.md, as pure predicates.

The market-supervision bureau watches for what TSG 23-2021 and the local traceability
standards forbid or find suspicious: licences running out, full cylinders hoarded beyond
a site's permitted storage (重瓶超量存放), devices that stop reporting while the station
is open, and gas leaks at a customer's valve. Ingest evaluates these on live data; late
(buffered) data must not fire live-only rules for the past (docs/ARCHITECTURE.md §5), hence
:func:`is_live`. Every number comes from :class:`server.kernel.settings.Alerts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Final

from server.kernel.settings import Alerts

from .dates import require_aware
from .localtime import city_zone

__all__ = [
    "NO_STORAGE_LIMIT",
    "in_opening_hours",
    "is_device_offline",
    "is_leak",
    "is_live",
    "is_overstock",
    "licence_expired",
    "licence_expiring",
    "permitted_storage",
]


def licence_expired(expiry: date | None, today: date) -> bool:
    """A licence is expired the day after its expiry date (the expiry day is still valid).

    ``None`` (no expiry on record) is *not* "expired": there is nothing to expire — e.g. a
    company that holds no filling licence at all. Filling without a licence is denied by
    :func:`~server.domain.authorization.authorize_fill` (``station_not_licensed``), which
    treats a missing expiry as unlicensed; this predicate only answers "has it run out?".
    """
    return expiry is not None and expiry < today


def licence_expiring(expiry: date | None, today: date, rules: Alerts) -> bool:
    """Within ``rules.licence_expiring_days`` (30) of expiry, and not yet expired.

    TSG 23-2021: a filling licence (气瓶充装许可证) must be renewed before it lapses;
    warning the company and the regulator ahead keeps a station from being stopped at the
    gun. Both ends are included: 0 days left (expires today) and exactly N days left.
    """
    if expiry is None:
        return False
    days_left = (expiry - today).days
    return 0 <= days_left <= rules.licence_expiring_days


NO_STORAGE_LIMIT: Final = 0
""":func:`permitted_storage` value meaning "no limit": :func:`is_overstock` never fires."""

_DEFAULT_STORAGE: Final[Mapping[str, Callable[[Alerts], int]]] = MappingProxyType(
    {
        "filling_station": lambda r: r.default_storage_filling_station,
        "store": lambda r: r.default_storage_store,
        "warehouse": lambda r: r.default_storage_warehouse,
        "inspection_agency": lambda _r: NO_STORAGE_LIMIT,
    }
)


def permitted_storage(site_kind: str, configured: int | None, rules: Alerts) -> int:
    """Full cylinders a site may hold (重瓶超量存放, DOMAIN.md "Abnormal behaviour").

    A site's own permitted number (set by the regulator from its storage licence) wins;
    otherwise the default for its kind from ``[alerts]``. An inspection agency has no
    default limit (:data:`NO_STORAGE_LIMIT`): cylinders reach it for emptying and
    inspection under GB/T 8334-2022, not as stock for sale, so a full-cylinder count there
    is not a storage-licence question. A configured ``0`` likewise means "no limit" (the
    same value a report shows). An unknown site kind or a negative number is a data error
    and raises ``ValueError`` rather than silently disabling the rule.
    """
    if configured is not None:
        if configured < NO_STORAGE_LIMIT:
            raise ValueError(f"permitted storage cannot be negative: {configured}")
        return configured
    default = _DEFAULT_STORAGE.get(site_kind)
    if default is None:
        raise ValueError(f"unknown site kind: {site_kind!r}")
    return default(rules)


def is_overstock(full_count: int, permitted: int) -> bool:
    """More full cylinders than permitted; exactly the permitted number is lawful."""
    return permitted != NO_STORAGE_LIMIT and full_count > permitted


def _local(dt: datetime, rules: Alerts) -> datetime:
    """*dt* as wall time in the city's zone; a naive *dt* is taken as already local."""
    zone = city_zone(rules)
    return dt.replace(tzinfo=zone) if dt.tzinfo is None else dt.astimezone(zone)


def in_opening_hours(local_dt: datetime, rules: Alerts) -> bool:
    """Is the city's stations' business day running at *local_dt*?

    Hours are ``[opening_hour_start, opening_hour_end)`` in ``rules.timezone``: 07:00:00 is
    open, 21:00:00 is closed. An aware datetime is first converted to that zone (a UTC
    device time of 23:30 is 07:30 in Asia/Shanghai); a naive one is taken as local wall
    time. A start after the end wraps past midnight (e.g. 22 → 6); equal start and end
    mean open around the clock (a 24-hour station), where the offline rule always applies.
    """
    local = _local(local_dt, rules)
    start, end = rules.opening_hour_start, rules.opening_hour_end
    if start == end:
        return True
    if start < end:
        return start <= local.hour < end
    return local.hour >= start or local.hour < end


def _opening_began(local: datetime, rules: Alerts) -> datetime | None:
    """Start of the opening period *local* (inside opening hours) belongs to, or ``None``
    when the site never closes."""
    start, end = rules.opening_hour_start, rules.opening_hour_end
    if start == end:
        return None
    began = local.replace(hour=start, minute=0, second=0, microsecond=0)
    if began > local:  # a period that wraps past midnight began yesterday
        began -= timedelta(days=1)  # wall-clock arithmetic: same hour, the day before
    return began


_OFFLINE_AFTER: Final[Mapping[str, Callable[[Alerts], timedelta | None]]] = MappingProxyType(
    {
        "gun": lambda r: timedelta(minutes=r.gun_offline_min),
        "valve": lambda r: timedelta(hours=r.valve_offline_h),
        "handheld": lambda _r: None,
        "vehicle": lambda _r: None,
    }
)
"""Silence after which a device kind is offline; ``None`` = this kind is never offline."""


def is_device_offline(kind: str, last_seen: datetime | None, now: datetime, rules: Alerts) -> bool:
    """Has a device gone silent for longer than its kind allows (DOMAIN.md)?

    - ``gun``: no message for ``rules.gun_offline_min`` minutes *during opening hours*:
      a gun is expected to be quiet at night, and a gun that cannot reach the platform
      cannot be stopped from filling a refused cylinder (GB/T 38059-2019), so it matters
      only while the station works. Silence is counted from the later of the last message
      and the start of the current opening period — at 07:00 a gun last heard at 20:55
      yesterday gets its full N minutes to come back, it is not "offline" at once.
    - ``valve``: no message for ``rules.valve_offline_h`` hours, at any time of day (a
      customer's valve reports around the clock; its silence hides a leak).
    - ``handheld`` / ``vehicle``: never — DOMAIN.md sets no rule; they are off between
      shifts and their silence is not a safety matter.

    Exactly N minutes/hours of silence counts as offline. A device never heard from
    (``last_seen`` None) is not commissioned rather than offline and never raises the
    alert (otherwise every valve in a warehouse would). Both datetimes must be aware.
    An unknown device kind raises ``ValueError``.
    """
    require_aware("now", now)
    if last_seen is not None:
        require_aware("last_seen", last_seen)
    threshold = _OFFLINE_AFTER.get(kind)
    if threshold is None:
        raise ValueError(f"unknown device kind: {kind!r}")
    after = threshold(rules)
    if after is None or last_seen is None:
        return False
    silent_since = last_seen.astimezone(UTC)
    if kind == "gun":
        local_now = _local(now, rules)
        if not in_opening_hours(local_now, rules):
            return False
        began = _opening_began(local_now, rules)
        if began is not None:
            silent_since = max(silent_since, began.astimezone(UTC))
    return now.astimezone(UTC) - silent_since >= after


def is_leak(leak_ppm: float | None, rules: Alerts) -> bool:
    """A valve's gas sensor reading at or above ``rules.leak_ppm_threshold``.

    A gas detector alarms when the concentration *reaches* its set point, so the
    threshold itself alarms. No reading (``None``) is not a leak.
    """
    return leak_ppm is not None and leak_ppm >= rules.leak_ppm_threshold


def is_live(event_ts: datetime, now: datetime, max_lag: timedelta) -> bool:
    """Is an event recent enough to fire live-only rules (offline, overstock)?

    docs/ARCHITECTURE.md §5: a device that buffered data while offline uploads it later with its own
    ``ts``; that data is stored but must not raise alerts about a past that is over.
    An event at most *max_lag* old is live (both ends included); an event from the
    future (a device clock running ahead, within ingest's skew limit) is live too.
    """
    require_aware("event_ts", event_ts)
    require_aware("now", now)
    return now - event_ts <= max_lag
