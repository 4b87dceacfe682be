"""Raise a batch's alerts: merged per (kind, subject), written in a fixed order.

A batch can hold the same alert many times (a leaking valve reports every few seconds);
they become one ``raise_alert`` with their count, at the newest one's time and details, so
an open alert's ``count`` and ``last_at`` say how often and how lately it fired. The merged
alerts are written sorted by (kind, subject): concurrent workers touching the same open
alerts then take their row locks in the same order. Each goes on the live bus through
:func:`server.db.alerts.alert_event`, the one builder of the ``alerts`` channel.
"""

from __future__ import annotations

import asyncpg

from ingest.store.context import BatchContext, PendingAlert
from server.db.alerts import alert_event, raise_alert
from server.domain.statuses import ALERT_KINDS

__all__ = ["raise_alerts"]


async def raise_alerts(conn: asyncpg.Connection, batch: BatchContext) -> int:
    """Raise the batch's pending alerts; return how many distinct alerts were raised."""
    merged: dict[tuple[str, str, str], PendingAlert] = {}
    for a in batch.alerts:
        subject_type = a.subject_type or ALERT_KINDS[a.kind].subject_type
        a.subject_type = subject_type
        key = (a.kind, subject_type, a.subject_id)
        have = merged.get(key)
        if have is None:
            merged[key] = a
        else:
            have.count += a.count
            if a.at >= have.at:
                a.count = have.count
                merged[key] = a
    for key in sorted(merged):
        a = merged[key]
        alert, _created = await raise_alert(
            conn,
            kind=a.kind,
            subject_type=key[1],
            subject_id=a.subject_id,
            at=a.at,
            company_id=a.company_id,
            site_id=a.site_id,
            district_code=a.district_code,
            cylinder_id=a.cylinder_id,
            lat=a.lat,
            lon=a.lon,
            details=a.details,
            count=a.count,
        )
        batch.live_events.append(alert_event(alert))
    return len(merged)
