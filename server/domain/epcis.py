"""A stored trajectory event as GS1 EPCIS 2.0 ObjectEvents (JSON-LD), as pure functions.

Why a module of its own: the export (`GET /api/v1/epcis/events`, docs/API.md "EPCIS 2.0
export") streams rows straight from the database; turning one row into its ObjectEvents is
a rule of the domain — which CBV step and disposition, which action, what identifies the
cylinder, the place and the event — and is tested here without any running service. The
step and disposition come from `server.domain.events.epcis_for`, the one mapping table
(the table of docs/API.md "EPCIS 2.0 export").

Identifiers (stable: the same event exports with the same ids every time):

- cylinder: ``urn:cylwatch:cylinder:<tag>`` — the tag is unique and never reused after
  scrapping (一瓶一码), so it names one cylinder for life;
- site: ``urn:cylwatch:site:<code>`` (the site's unique code);
- event: ``urn:uuid:`` + a name-based UUID (RFC 9562 version 5) of the row's key, its
  message id and time — the same key the events table holds unique.

Tags and codes are percent-encoded outside RFC 3986's unreserved characters, so any stored
value gives a valid URI and two different values never give the same one.

What never leaves: the customer, the operator, coordinates and free-text details. A
delivery names at most the site that delivered, never where the customer lives.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from server.domain.events import EpcisMapping, EventKind, epcis_for

__all__ = [
    "EPCIS_CONTEXT",
    "EVENT_ID_NAMESPACE",
    "FILL_AUTHORIZED",
    "StoredEvent",
    "cylinder_epc",
    "event_id",
    "object_events",
    "site_uri",
    "zone_offset",
]

EPCIS_CONTEXT: Final[tuple[str | dict[str, str], ...]] = (
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"cylwatch": "urn:cylwatch:"},
)
"""The standard's JSON-LD context plus our prefix, so ``cylwatch:kind`` expands to a URI."""

EVENT_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cylwatch:epcis:event")
"""Namespace of the event ids: fixed, so a re-export names every event as before."""

FILL_AUTHORIZED: Final = "fill_authorized"
"""Ingest's record of a gun's pre-fill check that passed; stored, like ingest writes it,
as an inspection found conformant (the counterpart of ``fill_refused``)."""

_DESTROYING: Final = EpcisMapping("destroying", "destroyed")
"""The second step of a scrap (decommissioning, then destroying): TSG 23-2021 has a
scrapped cylinder made unusable, so no scrapped cylinder returns to use."""

_LEAVES_THE_SITE: Final = frozenset({"in_transit", "retail_sold", "stolen"})
"""Dispositions after which the cylinder is no longer at the site that read it: such
events have no ``bizLocation`` (a sold cylinder's place is the customer's home)."""

_DECLARED: Final = frozenset({EventKind.lost.value})
"""Kinds a person declares rather than a reader observes: no ``readPoint``."""

_WEIGHTS: Final = (("net", "net_kg"), ("tare", "tare_kg"), ("gross", "gross_kg"))
"""A fill's weighings, as the gun reports them (GB/T 38059-2019), in kilograms."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """What the export reads of one row of ``events`` (nothing personal is read at all)."""

    msg_id: str
    ts: dt.datetime
    received_at: dt.datetime | None
    kind: str
    tag: str | None
    site_code: str | None
    disposition: str | None
    """The disposition stored with the row: an inspection's outcome when its details lack one."""
    details: Mapping[str, Any]


def _urn(kind: str, value: str) -> str:
    return f"urn:cylwatch:{kind}:{quote(value, safe='-._~')}"


def cylinder_epc(tag: str) -> str:
    """The EPC of the cylinder carrying *tag*."""
    return _urn("cylinder", tag)


def site_uri(code: str) -> str:
    """The location identifier of the site with *code*."""
    return _urn("site", code)


def event_id(msg_id: str, ts: dt.datetime, step: str = "") -> str:
    """The eventID of a row (*step* tells apart the ObjectEvents one row yields)."""
    key = f"{msg_id}\n{ts.astimezone(dt.UTC).isoformat()}\n{step}"
    return f"urn:uuid:{uuid.uuid5(EVENT_ID_NAMESPACE, key)}"


def zone_offset(moment: dt.datetime) -> str:
    """``±hh:mm`` of an aware time, the form of ``eventTimeZoneOffset``."""
    offset = moment.utcoffset() or dt.timedelta(0)
    sign = "-" if offset < dt.timedelta(0) else "+"
    hours, rest = divmod(abs(offset), dt.timedelta(hours=1))
    return f"{sign}{hours:02d}:{rest // dt.timedelta(minutes=1):02d}"


def _steps(ev: StoredEvent) -> tuple[EpcisMapping, ...]:
    """The CBV step(s) of a row; empty when EPCIS has none (archive edits, unknown kinds)."""
    if ev.kind == FILL_AUTHORIZED:
        return (epcis_for(EventKind.inspection, conformant=True),)
    if ev.kind not in EventKind._value2member_map_:
        return ()
    kind = EventKind(ev.kind)
    conformant = True
    if kind is EventKind.inspection:  # GB/T 8334-2022 result: pass, fail or scrap
        result = ev.details.get("result")
        conformant = result == "pass" if result is not None else ev.disposition != "non_conformant"
    mapping = epcis_for(kind, conformant=conformant)
    if mapping.biz_step is None and mapping.disposition is None:
        return ()
    if kind is EventKind.scrap:
        return (mapping, _DESTROYING)
    return (mapping,)


def _action(biz_step: str | None) -> str:
    if biz_step == "commissioning":
        return "ADD"
    if biz_step in ("decommissioning", "destroying"):
        return "DELETE"
    return "OBSERVE"


def _weighings(details: Mapping[str, Any], when: str) -> list[dict[str, Any]]:
    reports = [
        {"type": "Mass", "value": float(value), "uom": "KGM", "cylwatch:weighing": name}
        for name, key in _WEIGHTS
        if isinstance(value := details.get(key), int | float) and not isinstance(value, bool)
    ]
    return [{"sensorMetadata": {"time": when}, "sensorReport": reports}] if reports else []


def object_events(ev: StoredEvent, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The ObjectEvents of one stored event, times in the city's *zone*.

    Empty when the row has no EPCIS meaning (an ``update`` or ``status_change`` of the
    archive, a kind the mapping does not know) or no tag to name the cylinder by: the
    caller skips and counts it, nothing is invented.
    """
    steps = _steps(ev)
    if not steps or not ev.tag:
        return []
    local = ev.ts.astimezone(zone)
    when = local.isoformat()
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        event: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": when,
            "eventTimeZoneOffset": zone_offset(local),
        }
        if ev.received_at is not None:
            event["recordTime"] = ev.received_at.astimezone(zone).isoformat()
        # the first event of a row keeps the plain key; a scrap's second adds its step
        event["eventID"] = event_id(ev.msg_id, ev.ts, (step.biz_step or "") if i else "")
        event["epcList"] = [cylinder_epc(ev.tag)]
        event["action"] = _action(step.biz_step)
        if step.biz_step is not None:
            event["bizStep"] = step.biz_step
        if step.disposition is not None:
            event["disposition"] = step.disposition
        if ev.site_code and ev.kind not in _DECLARED:
            event["readPoint"] = {"id": site_uri(ev.site_code)}
            if step.disposition not in _LEAVES_THE_SITE:
                event["bizLocation"] = {"id": site_uri(ev.site_code)}
        if ev.kind == EventKind.fill.value:
            sensors = _weighings(ev.details, when)
            if sensors:
                event["sensorElementList"] = sensors
        event["cylwatch:kind"] = ev.kind
        out.append(event)
    return out
