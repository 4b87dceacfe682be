"""Smart valves: a cylinder's own telemetry — leaks, position, last seen.

A valve reports under its cylinder's tag. A gas concentration at or above
``[alerts] leak_ppm_threshold`` raises ``leak`` (the cylinder, where it is, the customer it
is with); a position outside the city raises ``out_of_region`` (late data included: that the
cylinder was outside is a fact about the cylinder). Every message is a sighting that moves
the cylinder's "last seen" — the valve-silence rule of :mod:`ingest.housekeeping` watches it.
Presence (``status``) messages of valves are handled with the other devices'
(:mod:`ingest.store.device_status`).
"""

from __future__ import annotations

from ingest.schemas import Parsed, ValveTelemetry
from ingest.store.context import BatchContext, PendingAlert
from server.domain.supervision import is_leak

__all__ = ["apply_telemetry"]


def apply_telemetry(p: Parsed, body: ValveTelemetry, batch: BatchContext) -> None:
    cyl = batch.cylinders.get(p.device_id)
    if cyl is None:  # a registered valve device not (yet) fitted to an archived cylinder
        return
    rules = batch.territory.settings.alerts
    inside, district = batch.district_at(body.lat, body.lon)
    company = cyl["owner_company_id"]
    if is_leak(body.leak_ppm, rules):
        batch.alerts.append(
            PendingAlert(
                "leak",
                p.device_id,
                p.ts,
                company_id=company,
                cylinder_id=cyl["id"],
                lat=body.lat,
                lon=body.lon,
                district_code=district or cyl["district_code"],
                site_id=cyl["location_site_id"],
                details={
                    "leak_ppm": body.leak_ppm,
                    "valve": body.valve,
                    "threshold_ppm": rules.leak_ppm_threshold,
                    "customer_id": cyl["location_customer_id"],
                },
            )
        )
    if not inside:
        batch.alerts.append(
            PendingAlert(
                "out_of_region",
                p.device_id,
                p.ts,
                company_id=company,
                cylinder_id=cyl["id"],
                lat=body.lat,
                lon=body.lon,
                details={"via": "valve"},
            )
        )
    if batch.see_cylinder(cyl, p.ts) and body.lat is not None and body.lon is not None:
        batch.move_cylinder(cyl, body.lat, body.lon, district)
        batch.show_position(
            "cylinder",
            p.device_id,
            p.ts,
            body.lat,
            body.lon,
            district or cyl["district_code"],
            company,
        )
