"""Delivery vehicles: GPS positions — the vehicle's last position and ``out_of_region``.

The vehicle's position (``devices.lat/lon/position_at``) moves only forward in device time,
within the batch and against what is stored, so a buffered fix from an hour ago never puts a
vehicle back on the map where it was. A fix outside the city raises ``out_of_region`` with
the cargo the vehicle reported (late data included, like every sighting).
"""

from __future__ import annotations

from ingest.schemas import Parsed, VehiclePosition
from ingest.store.context import BatchContext, PendingAlert

__all__ = ["apply_position"]


def apply_position(p: Parsed, body: VehiclePosition, batch: BatchContext) -> None:
    dev = batch.devices[p.device_id]
    inside, district = batch.district_at(body.lat, body.lon)
    prev = batch.dev_position.get(dev["id"])
    stored_at = dev["position_at"]
    if (prev is None or p.ts >= prev[0]) and (stored_at is None or p.ts >= stored_at):
        batch.dev_position[dev["id"]] = (p.ts, body.lat, body.lon)
        batch.show_position(
            "vehicle",
            p.device_id,
            p.ts,
            body.lat,
            body.lon,
            district,
            dev["company_id"],
            speed_kmh=body.speed_kmh,
            heading=body.heading,
        )
    if not inside:
        batch.alerts.append(
            PendingAlert(
                "out_of_region",
                p.device_id,
                p.ts,
                subject_type="vehicle",
                company_id=dev["company_id"],
                lat=body.lat,
                lon=body.lon,
                details={"via": "vehicle", "cargo": list(body.cargo or ())},
            )
        )
