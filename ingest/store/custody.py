"""Chain of custody: a handheld's scans move a cylinder between sites, vehicles and customers.

``dispatch`` / ``transfer`` put the cylinder on the scanning device's vehicle, ``deliver``
with the customer it names (an account of the owner's company, 实名制), ``return`` back to a
site as empty, ``receive`` at the site of a transfer's destination (DOMAIN.md "Trajectory
events and their EPCIS 2.0 mapping"). Every scan is also a sighting: where it happened moves
the cylinder on the map. A tag the registry lacks raises ``unknown_tag``; a scan outside the
city ``out_of_region`` — that fires for late data too: where a cylinder was is a fact about the
cylinder, not about "now". The circulation checks of a known cylinder's scan run first
(:func:`ingest.store.circulation.check_scan`).
"""

from __future__ import annotations

from typing import Any

from ingest.live import trajectory_event
from ingest.schemas import HandheldScan, Parsed
from ingest.store.circulation import check_scan
from ingest.store.context import BatchContext, PendingAlert
from ingest.store.lookups import scan_customer, scan_site
from server.domain.events import SCAN_ACTIONS

__all__ = ["apply_scan"]


def apply_scan(p: Parsed, body: HandheldScan, batch: BatchContext) -> None:
    territory = batch.territory
    dev = batch.devices[p.device_id]
    cyl = batch.cylinders.get(body.tag)
    site = scan_site(body, dev, batch)
    customer = scan_customer(body, cyl, batch)
    inside, pos_district = batch.district_at(body.lat, body.lon)
    site_id = site["id"] if site else None
    site_district = site["district_code"] if site else None
    company = cyl["owner_company_id"] if cyl else dev["company_id"]
    scope: dict[str, Any] = {"company_id": company, "site_id": site_id}
    if cyl is None:
        batch.alerts.append(
            PendingAlert(
                "unknown_tag",
                body.tag,
                p.ts,
                lat=body.lat,
                lon=body.lon,
                district_code=territory.fk_district(pos_district or site_district),
                details={
                    "seen_by": p.device_id,
                    "via": "scan",
                    "action": body.action,
                    "msg_id": body.msg_id,
                },
                **scope,
            )
        )
    if not inside:
        batch.alerts.append(
            PendingAlert(
                "out_of_region",
                body.tag,
                p.ts,
                lat=body.lat,
                lon=body.lon,
                cylinder_id=cyl["id"] if cyl else None,
                details={"seen_by": p.device_id, "via": "scan"},
                **scope,
            )
        )
    district: str | None = pos_district or site_district
    if cyl is not None:
        action = body.action
        scan_district = customer["district_code"] if customer and action == "deliver" else None
        check_scan(p, body, batch, cyl, site, scan_district or district)
        if action == "dispatch" or action == "transfer":
            batch.set_state(
                cyl,
                p.ts,
                location_kind="vehicle",
                location_site_id=None,
                location_device_id=dev["id"],
                location_customer_id=None,
            )
        elif action == "deliver":
            cust_district = customer["district_code"] if customer else None
            district = cust_district or district
            batch.set_state(
                cyl,
                p.ts,
                location_kind="customer",
                location_site_id=None,
                location_device_id=None,
                location_customer_id=customer["id"] if customer else None,
                district_code=territory.fk_district(cust_district or pos_district)
                or cyl["district_code"],
            )
        else:  # return (as empty) or receive: at the site
            returned = action == "return"
            changes: dict[str, Any] = {"fill_state": "empty"} if returned else {}
            batch.set_state(
                cyl,
                p.ts,
                **changes,
                location_kind="site",
                location_site_id=site_id,
                location_device_id=None,
                location_customer_id=None,
                district_code=territory.fk_district(site_district) or cyl["district_code"],
            )
            last_return = cyl["last_return_at"]
            if returned and (last_return is None or p.ts > last_return):
                cyl["last_return_at"] = p.ts
                batch.dirty_cylinders.add(cyl["id"])  # also when the state was newer
            if site_id is not None:
                batch.touched_sites.add(site_id)
        if batch.see_cylinder(cyl, p.ts) and body.lat is not None and body.lon is not None:
            batch.move_cylinder(cyl, body.lat, body.lon, territory.fk_district(pos_district))
            batch.show_position(
                "cylinder",
                body.tag,
                p.ts,
                body.lat,
                body.lon,
                pos_district,
                company,
            )
    batch.live_events.append(
        trajectory_event(
            ts=p.ts,
            kind=SCAN_ACTIONS[body.action].value,
            tag=body.tag,
            device_id=p.device_id,
            cylinder_id=cyl["id"] if cyl else None,
            site_id=site_id,
            company_id=company,
            district=district,
            customer_id=customer["id"] if customer else None,
            lat=body.lat,
            lon=body.lon,
            details={"action": body.action},
        )
    )
