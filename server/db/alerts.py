"""Alerts: raising (de-duplicated), the open → acknowledged → resolved life cycle, JSON shape.

docs/ARCHITECTURE.md §4: an alert has a kind, severity, subject, company, site, district, time and state,
and is de-duplicated — a repeat of the same kind and subject while the alert is not yet
resolved bumps its counter instead of opening a second one. The guarantee holds across
ingest workers because it is the database's: the partial unique index
``alerts_open_dedupe (kind, subject_type, subject_id) WHERE state <> 'resolved'`` and an
``INSERT … ON CONFLICT … DO UPDATE`` against it. Ingest raises alerts; the REST API
acknowledges and resolves them through :func:`transition_alert`; both render rows with
:func:`alert_json` so the websocket, the REST API and push notifications agree. The kinds,
their severities and subjects are the domain's table (``server.domain.statuses.ALERT_KINDS``,
re-exported here for the callers that raise alerts).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

import asyncpg

from server.domain.statuses import ALERT_KINDS, CHANNEL_ALERTS
from server.kernel.events import Event

__all__ = [
    "ALERT_KINDS",
    "InvalidTransition",
    "alert_json",
    "raise_alert",
    "severity_of",
    "transition_alert",
]


def severity_of(kind: str) -> str:
    """Severity of *kind*; an unknown kind is a programming error (``KeyError``)."""
    return ALERT_KINDS[kind].severity


class InvalidTransition(ValueError):
    """The alert is not in a state the requested action can leave (e.g. ack a resolved one)."""

    def __init__(self, alert_id: int, state: str, action: str) -> None:
        self.alert_id = alert_id
        self.state = state
        self.action = action
        super().__init__(f"alert {alert_id} is {state}: cannot {action}")


_COLUMNS = (
    "id, kind, severity, subject_type, subject_id, company_id, site_id, district_code, "
    "cylinder_id, state, count, first_at, last_at, lat, lon, details, acknowledged_at, "
    "acknowledged_by, resolved_at, resolved_by, note"
)
_COLUMN_NAMES: Final = tuple(_COLUMNS.split(", "))


def alert_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """An alert row as clients see it: times in ISO 8601, the district under ``district``.

    Accepts an asyncpg ``Record`` or any mapping with the ``alerts`` columns; extra keys
    (e.g. ``created``) are ignored so a ``RETURNING *, …`` row can be passed as it is.
    """
    out: dict[str, Any] = {}
    for name in _COLUMN_NAMES:
        if name not in record:
            continue
        value = record[name]
        if name == "district_code":
            out["district"] = value
            continue
        if isinstance(value, datetime | date):
            value = value.isoformat()
        out[name] = value
    if "details" in out and out["details"] is None:
        out["details"] = {}
    return out


def alert_event(alert: Mapping[str, Any]) -> Event:
    """The live bus event for an alert as `alert_json` renders it, scoped like its row.

    Raising, bumping, acknowledging and resolving all go out this way, so every open map,
    wall and officer's phone shows the same state without a reload.
    """
    return Event(
        channel=CHANNEL_ALERTS,
        data=alert,
        district=alert.get("district"),
        company_id=alert.get("company_id"),
        site_id=alert.get("site_id"),
        lat=alert.get("lat"),
        lon=alert.get("lon"),
        key=f"alert:{alert['id']}",
    )


_RAISE_SQL = f"""
INSERT INTO alerts AS a (kind, severity, subject_type, subject_id, company_id, site_id,
                         district_code, cylinder_id, first_at, last_at, lat, lon, details, count)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13)
ON CONFLICT (kind, subject_type, subject_id) WHERE state <> 'resolved'
DO UPDATE SET
    count = a.count + EXCLUDED.count,
    first_at = least(a.first_at, EXCLUDED.first_at),
    last_at = greatest(a.last_at, EXCLUDED.last_at),
    details = a.details || EXCLUDED.details,
    company_id = coalesce(EXCLUDED.company_id, a.company_id),
    site_id = coalesce(EXCLUDED.site_id, a.site_id),
    district_code = coalesce(EXCLUDED.district_code, a.district_code),
    cylinder_id = coalesce(EXCLUDED.cylinder_id, a.cylinder_id),
    lat = coalesce(EXCLUDED.lat, a.lat),
    lon = coalesce(EXCLUDED.lon, a.lon)
RETURNING {_COLUMNS}, (xmax = 0) AS created
"""


async def raise_alert(
    conn: asyncpg.Connection,
    *,
    kind: str,
    severity: str | None = None,
    subject_type: str | None = None,
    subject_id: str,
    at: datetime,
    company_id: int | None = None,
    site_id: int | None = None,
    district_code: str | None = None,
    cylinder_id: int | None = None,
    lat: float | None = None,
    lon: float | None = None,
    details: Mapping[str, Any] | None = None,
    count: int = 1,
) -> tuple[dict[str, Any], bool]:
    """Open an alert, or bump the open one of the same kind and subject.

    Returns ``(alert_json(row), created)``. On a repeat, ``count`` grows by *count*,
    ``last_at`` keeps the latest time (late data cannot move it back), ``details`` are
    merged (newer keys win) and scope columns are filled in when they were unknown.
    *severity* and *subject_type* default to the kind's entry in :data:`ALERT_KINDS`.
    """
    spec = ALERT_KINDS.get(kind)
    if spec is None:
        raise ValueError(f"unknown alert kind: {kind!r}")
    row = await conn.fetchrow(
        _RAISE_SQL,
        kind,
        severity or spec.severity,
        subject_type or spec.subject_type,
        subject_id,
        company_id,
        site_id,
        district_code,
        cylinder_id,
        at,
        lat,
        lon,
        dict(details or {}),
        count,
    )
    assert row is not None
    return alert_json(row), bool(row["created"])


_TRANSITIONS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = MappingProxyType(
    {"ack": ("acknowledged", ("open",)), "resolve": ("resolved", ("open", "acknowledged"))}
)


async def transition_alert(
    conn: asyncpg.Connection,
    alert_id: int,
    action: Literal["ack", "resolve"],
    user_id: int | None,
    note: str | None,
) -> dict[str, Any] | None:
    """Acknowledge (open → acknowledged) or resolve (open | acknowledged → resolved).

    Returns the updated alert, ``None`` when there is no such alert, and raises
    :class:`InvalidTransition` for an illegal move (acknowledging a resolved alert, …).
    The state test is in the ``UPDATE``'s ``WHERE`` so two officers acting at once cannot
    both succeed. A *note* replaces the previous one only when given.
    """
    if action not in _TRANSITIONS:
        raise ValueError(f"unknown alert action: {action!r}")
    target, sources = _TRANSITIONS[action]
    if action == "ack":
        sql = f"""UPDATE alerts SET state = $2, acknowledged_at = now(), acknowledged_by = $3,
                         note = coalesce($4, note)
                   WHERE id = $1 AND state = ANY($5::text[]) RETURNING {_COLUMNS}"""
    else:
        sql = f"""UPDATE alerts SET state = $2, resolved_at = now(), resolved_by = $3,
                         note = coalesce($4, note)
                   WHERE id = $1 AND state = ANY($5::text[]) RETURNING {_COLUMNS}"""
    row = await conn.fetchrow(sql, alert_id, target, user_id, note, list(sources))
    if row is not None:
        return alert_json(row)
    state = await conn.fetchval("SELECT state FROM alerts WHERE id = $1", alert_id)
    if state is None:
        return None
    raise InvalidTransition(alert_id, state, action)
