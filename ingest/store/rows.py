"""The time-series rows each message becomes (``events``, ``fills``, ``telemetry``, ``positions``).

Every stored message has one *primary* row, whose ``(msg_id, ts)`` tells
:func:`ingest.records.insert_dedupe` whether the message is new; a fill also writes its
trajectory event (``fill`` in ``events``) beside its ``fills`` row. Trajectory events carry
their EPCIS 2.0 business step and disposition (DOMAIN.md "Trajectory events and their EPCIS
2.0 mapping"); an authorization is recorded as ``fill_authorized`` (an inspection that
passed) or ``fill_refused``. A status message has no row: it is idempotent by its own time.

Rows are tuples in the column order of :data:`ingest.records.TABLES`, their timestamps as
microseconds since the Unix epoch (:func:`ingest.records.micros`; a device's ``ts`` in ms × 1000).
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.records import Key, micros
from ingest.schemas import (
    DeviceStatus,
    GunAuth,
    GunFill,
    HandheldScan,
    Parsed,
    ValveTelemetry,
    VehiclePosition,
)
from ingest.store.context import BatchContext, Item
from ingest.store.filling import fill_outcome
from ingest.store.lookups import scan_customer, scan_site
from server.domain.events import SCAN_ACTIONS, EventKind, epcis_for

__all__ = ["Row", "Rows", "rows_for", "unique_rows"]

Row = tuple[Any, ...]
Rows = tuple[tuple[str, Key], list[tuple[str, Row]]]
"""(the primary row's table and key, every (table, row) the message writes)."""


def rows_for(item: Item, batch: BatchContext) -> Rows | None:
    """The rows of one parsed message from a known device; None for a status message."""
    p = item.parsed
    assert p is not None
    body = p.body
    if isinstance(body, DeviceStatus):
        return None
    key: Key = (body.msg_id, body.ts * 1000)
    if isinstance(body, GunAuth):
        return ("events", key), [("events", _auth_row(item, body, batch))]
    if isinstance(body, GunFill):
        fill_row, event_row = _fill_rows(item, p, body, batch)
        return ("fills", key), [("fills", fill_row), ("events", event_row)]
    if isinstance(body, HandheldScan):
        return ("events", key), [("events", _scan_row(item, p, body, batch))]
    if isinstance(body, ValveTelemetry):
        cyl = batch.cylinders.get(p.device_id)
        row: Row = (
            body.ts * 1000,
            micros(item.received_at),
            body.msg_id,
            p.device_id,
            cyl["id"] if cyl else None,
            body.lat,
            body.lon,
            body.valve,
            body.leak_ppm,
            body.temp_c,
            body.battery_pct,
            body.rssi,
        )
        return ("telemetry", key), [("telemetry", row)]
    assert isinstance(body, VehiclePosition)
    row = (
        body.ts * 1000,
        micros(item.received_at),
        body.msg_id,
        p.device_id,
        body.lat,
        body.lon,
        body.speed_kmh,
        body.heading,
        body.cargo,
    )
    return ("positions", key), [("positions", row)]


def unique_rows(rows: list[Row]) -> list[Row]:
    """Drop rows whose (msg_id, ts) repeats within the batch (a redelivery mid-batch)."""
    seen: set[tuple[Any, Any]] = set()
    out = []
    for r in rows:
        k = (r[2], r[0])
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _auth_row(item: Item, body: GunAuth, batch: BatchContext) -> Row:
    p = item.parsed
    auth = item.auth
    assert p is not None and auth is not None
    cyl = batch.cylinders.get(body.tag) if auth.cylinder is not None else None
    denied = not auth.decision.allowed
    epcis = (
        epcis_for(EventKind.fill_refused)
        if denied
        else epcis_for(EventKind.inspection, conformant=True)
    )
    st = auth.station
    details: dict[str, Any] = {
        "decision": auth.decision.decision,
        "reasons": list(auth.decision.reason_codes),
        "code": auth.code,
        "gun_id": p.device_id,
        "latency_ms": round(auth.latency_s * 1000, 3),
    }
    return (
        body.ts * 1000,
        micros(item.received_at),
        body.msg_id,
        cyl["id"] if cyl else None,
        body.tag,
        "fill_refused" if denied else "fill_authorized",
        epcis.biz_step,
        epcis.disposition,
        st.station_id if st else None,
        st.company_id if st else None,
        None,
        p.device_id,
        body.operator,
        None,
        None,
        auth.station_district,
        _json(details),
    )


def _fill_rows(item: Item, p: Parsed, body: GunFill, batch: BatchContext) -> tuple[Row, Row]:
    dev = batch.devices[p.device_id]
    site = batch.sites_by_id.get(dev["site_id"])
    cyl = batch.cylinders.get(body.tag)
    outcome = fill_outcome(body, cyl["spec"] if cyl else None, batch.territory.settings)
    district = site["district_code"] if site else None
    company = site["company_id"] if site else dev["company_id"]
    ts, received = body.ts * 1000, micros(item.received_at)
    fill_row = (
        ts,
        received,
        body.msg_id,
        None if body.ts_start is None else body.ts_start * 1000,
        p.device_id,
        dev["site_id"],
        company,
        district,
        cyl["id"] if cyl else None,
        body.tag,
        cyl["spec"] if cyl else None,
        body.net_kg,
        body.tare_kg,
        body.gross_kg,
        outcome.result,
        outcome.assessment,
        body.operator,
        _json(body.pre_check),
        _json(body.post_check),
    )
    epcis = epcis_for(EventKind.fill)
    details: dict[str, Any] = {
        "net_kg": body.net_kg,
        "tare_kg": body.tare_kg,
        "gross_kg": body.gross_kg,
        "result": outcome.result,
        "assessment": outcome.assessment,
        "gun_id": p.device_id,
    }
    if outcome.failed_checks:
        details["failed_checks"] = list(outcome.failed_checks)
    event_row = (
        ts,
        received,
        body.msg_id,
        cyl["id"] if cyl else None,
        body.tag,
        EventKind.fill.value,
        epcis.biz_step,
        epcis.disposition,
        dev["site_id"],
        company,
        None,
        p.device_id,
        body.operator,
        None,
        None,
        district,
        _json(details),
    )
    return fill_row, event_row


def _scan_row(item: Item, p: Parsed, body: HandheldScan, batch: BatchContext) -> Row:
    dev = batch.devices[p.device_id]
    cyl = batch.cylinders.get(body.tag)
    kind = SCAN_ACTIONS[body.action]
    epcis = epcis_for(kind)
    site = scan_site(body, dev, batch)
    customer = scan_customer(body, cyl, batch)
    inside, district = batch.district_at(body.lat, body.lon)
    if customer is not None and body.action == "deliver":
        district = customer["district_code"] or district
    elif site is not None and body.action in ("return", "receive", "dispatch"):
        district = site["district_code"] or district
    details: dict[str, Any] = {"action": body.action}
    if body.site:
        details["site"] = body.site
        if site is None or site["code"] != body.site:
            details["unknown_site"] = True
    if body.customer:
        details["customer"] = body.customer
        if customer is None:
            details["unknown_customer"] = True
    if not inside:
        details["out_of_region"] = True
    return (
        body.ts * 1000,
        micros(item.received_at),
        body.msg_id,
        cyl["id"] if cyl else None,
        body.tag,
        kind.value,
        epcis.biz_step,
        epcis.disposition,
        site["id"] if site else None,
        cyl["owner_company_id"] if cyl else dev["company_id"],
        customer["id"] if customer else None,
        p.device_id,
        body.operator,
        body.lat,
        body.lon,
        district,
        _json(details),
    )


def _json(value: Any) -> str | None:
    """A jsonb column's value, staged as text (:mod:`ingest.records`)."""
    return None if value is None else orjson.dumps(value).decode()
