"""The live events ingest publishes: one builder per channel's payload (docs/WEBSOCKET.md "Channels").

A batch of device messages (:mod:`ingest.store`) and the periodic rules
(:mod:`ingest.housekeeping`) both announce things on the live bus: a gun going offline is
reported by the batch that carries its ``status`` message and by the inactivity rule alike.
Building each payload in one place keeps the frame a map, a wall or an officer's phone
receives identical whichever path produced it. Alerts are not built here: they go out through
:func:`server.db.alerts.alert_event`, which the API's acknowledge/resolve also uses.

Every builder also sets the event's scope (district, company, site, position) that
subscriptions are filtered by, and its coalescing ``key`` (docs/WEBSOCKET.md "Slow clients").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from server.domain.events import EventKind, epcis_for
from server.domain.statuses import (
    CHANNEL_DEVICES,
    CHANNEL_EVENTS,
    CHANNEL_FILLS,
    CHANNEL_POSITIONS,
)
from server.kernel.events import Event

__all__ = ["device_event", "fill_event", "position_event", "trajectory_event"]

_EVENT_KINDS: Final = frozenset(k.value for k in EventKind)


def device_event(
    *,
    device_id: str,
    kind: str,
    online: bool,
    last_seen_at: datetime | None,
    site_id: int | None,
    company_id: int | None,
    district: str | None,
) -> Event:
    """``devices``: a device's presence changed (online ↔ offline)."""
    return Event(
        channel=CHANNEL_DEVICES,
        data={
            "device_id": device_id,
            "kind": kind,
            "online": online,
            "last_seen_at": last_seen_at.isoformat() if last_seen_at is not None else None,
            "site_id": site_id,
            "company_id": company_id,
        },
        district=district,
        company_id=company_id,
        site_id=site_id,
        key=f"device:{device_id}",
    )


def fill_event(
    *,
    ts: datetime,
    tag: str,
    cylinder_id: int | None,
    gun_id: str,
    station_id: int | None,
    company_id: int | None,
    district: str | None,
    net_kg: float,
    assessment: str | None,
    result: str,
) -> Event:
    """``fills``: a filling station's gun recorded a fill (completed or aborted)."""
    return Event(
        channel=CHANNEL_FILLS,
        data={
            "ts": ts.isoformat(),
            "tag": tag,
            "cylinder_id": cylinder_id,
            "gun_id": gun_id,
            "station_id": station_id,
            "company_id": company_id,
            "district": district,
            "net_kg": float(net_kg),
            "assessment": assessment,
            "result": result,
        },
        district=district,
        company_id=company_id,
        site_id=station_id,
        key=f"cylinder:{tag}",
    )


def trajectory_event(
    *,
    ts: datetime,
    kind: str,
    tag: str,
    device_id: str,
    cylinder_id: int | None,
    site_id: int | None,
    company_id: int | None,
    district: str | None,
    customer_id: int | None = None,
    lat: float | None = None,
    lon: float | None = None,
    details: Mapping[str, Any] | None = None,
) -> Event:
    """``events``: one step of a cylinder's trajectory, with its EPCIS business step and
    disposition when *kind* is a stored trajectory event (``fill_authorized`` is shown live
    but is no trajectory event of its own, hence no EPCIS mapping)."""
    mapping = epcis_for(EventKind(kind)) if kind in _EVENT_KINDS else None
    return Event(
        channel=CHANNEL_EVENTS,
        data={
            "ts": ts.isoformat(),
            "kind": kind,
            "tag": tag,
            "cylinder_id": cylinder_id,
            "site_id": site_id,
            "company_id": company_id,
            "customer_id": customer_id,
            "device_id": device_id,
            "district": district,
            "lat": lat,
            "lon": lon,
            "biz_step": mapping.biz_step if mapping else None,
            "disposition": mapping.disposition if mapping else None,
            "details": dict(details or {}),
        },
        district=district,
        company_id=company_id,
        site_id=site_id,
        lat=lat,
        lon=lon,
        key=f"cylinder:{tag}",
    )


def position_event(
    *,
    kind: Literal["vehicle", "cylinder"],
    ident: str,
    ts: datetime,
    lat: float,
    lon: float,
    district: str | None,
    company_id: int | None,
    speed_kmh: float | None = None,
    heading: float | None = None,
) -> Event:
    """``positions``: where a vehicle or a cylinder now is (coalesced per object: the key)."""
    return Event(
        channel=CHANNEL_POSITIONS,
        data={
            "kind": kind,
            "id": ident,
            "lat": lat,
            "lon": lon,
            "ts": int(ts.timestamp() * 1000),
            "speed_kmh": speed_kmh,
            "heading": heading,
        },
        district=district,
        company_id=company_id,
        lat=lat,
        lon=lon,
        key=f"{kind}:{ident}",
    )
