"""Device presence: retained ``status`` messages (and last wills) of guns, handhelds,
vehicles and valves.

A status message has no time-series row; it is idempotent by its own device time. A
device's ``online`` flag follows its newest status, and any later message from the device
sets it back online (:mod:`ingest.store.live_state` resolves the two in SQL). An offline
status raises ``device_offline`` only for live data (``[ingest] live_lag_s``): that a device
went offline yesterday is no news now. A valve that is no registered device speaks for its
cylinder: its status is a sighting of the cylinder and its alert names the tag.
"""

from __future__ import annotations

import asyncpg

from ingest.schemas import DeviceStatus, Parsed
from ingest.store.context import BatchContext, PendingAlert

__all__ = ["apply_status"]


def apply_status(
    p: Parsed, body: DeviceStatus, dev: asyncpg.Record | None, batch: BatchContext, live: bool
) -> None:
    if p.device_kind == "valve" and (dev is None or dev["kind"] != "valve"):
        _valve_status(p, body, batch, live)
        return
    assert dev is not None
    prev = batch.dev_status.get(dev["id"])
    if prev is None or p.ts >= prev[0]:
        batch.dev_status[dev["id"]] = (p.ts, body.online)
    if not body.online and live and (dev["status_at"] is None or p.ts >= dev["status_at"]):
        site = batch.sites_by_id.get(dev["site_id"]) if dev["site_id"] else None
        batch.alerts.append(
            PendingAlert(
                "device_offline",
                p.device_id,
                p.ts,
                subject_type="device",
                company_id=dev["company_id"],
                site_id=dev["site_id"],
                district_code=batch.territory.fk_district(site["district_code"] if site else None),
                details={"via": "status", "device_kind": dev["kind"]},
            )
        )


def _valve_status(p: Parsed, body: DeviceStatus, batch: BatchContext, live: bool) -> None:
    cyl = batch.cylinders.get(p.device_id)
    if cyl is None:
        return
    batch.see_cylinder(cyl, p.ts)
    if not body.online and live:
        batch.alerts.append(
            PendingAlert(
                "device_offline",
                p.device_id,
                p.ts,
                subject_type="valve",
                company_id=cyl["owner_company_id"],
                cylinder_id=cyl["id"],
                district_code=cyl["district_code"],
                details={"via": "status"},
            )
        )
