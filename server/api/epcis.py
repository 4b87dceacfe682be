"""`GET /api/v1/epcis/events`: the trajectory as a GS1 EPCIS 2.0 EPCISDocument (JSON-LD).

Why: the traceability standards want a cylinder's whole life exchangeable with other
systems (a neighbouring city's platform, a company's ERP); EPCIS 2.0 is the international
model for that, so the export speaks it instead of our own JSON. docs/API.md "EPCIS 2.0
export" documents the identifiers and the mapping; `server.domain.epcis` builds each
ObjectEvent from a row (pure, tested on its own).

Scope and filters are those of `GET /api/v1/events` (server/api/events.py), in SQL through
`server.kernel.scope`: what a caller cannot list there, it cannot export here.

Streamed, memory flat whatever the size: rows come through a server-side cursor in a
read-only transaction, `http.page_size_max` rows per round trip (the most rows the API ever
holds for one answer), each event serialized on its own and written as its batch is done.
The first batch is read before the first byte is sent, so a query that fails still answers
with the one error shape; nothing needs a limit. Rows with no EPCIS meaning are skipped and
counted in the document's closing `cylwatch:skippedEvents`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from aiohttp import web

from server.api.doc import API, Param, api_doc
from server.api.fills import time_range
from server.api.params import check_query, company_filter
from server.domain.epcis import EPCIS_CONTEXT, StoredEvent, object_events
from server.domain.localtime import city_zone
from server.domain.statuses import ROLES
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.http import q_district, q_id, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where

MEDIA_TYPE = "application/ld+json"
QUERY = (
    Param("cylinder", "integer", "cylinder id"),
    Param("tag", description="cylinder tag"),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
    Param("from", "date-time", "at or after (a date is midnight UTC)"),
    Param("to", "date-time", "before"),
)
# Only what the mapping needs: no customer, operator, device or coordinates is ever read.
COLUMNS = "e.msg_id, e.ts, e.received_at, e.kind, e.tag, e.disposition, e.details, s.code"
FROM = "events e LEFT JOIN sites s ON s.id = e.site_id"
ORDER = "e.ts, e.received_at, e.msg_id"

EXAMPLE = """{"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
  {"cylwatch": "urn:cylwatch:"}],
 "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2025-03-01T09:00:00+08:00",
 "epcisBody": {"eventList": [
  {"type": "ObjectEvent", "eventTime": "2025-03-01T08:12:30+08:00",
   "eventTimeZoneOffset": "+08:00", "recordTime": "2025-03-01T08:12:31+08:00",
   "eventID": "urn:uuid:5f0c…", "epcList": ["urn:cylwatch:cylinder:E2801160600002"],
   "action": "OBSERVE", "bizStep": "urn:cylwatch:bizstep:filling", "disposition": "active",
   "readPoint": {"id": "urn:cylwatch:site:ZZ-GAS-01"},
   "bizLocation": {"id": "urn:cylwatch:site:ZZ-GAS-01"},
   "sensorElementList": [{"sensorMetadata": {"time": "2025-03-01T08:12:30+08:00"},
     "sensorReport": [{"type": "Mass", "value": 14.6, "uom": "KGM", "cylwatch:weighing": "net"}]}],
   "cylwatch:kind": "fill"}]},
 "cylwatch:skippedEvents": {"update": 1}}"""


def _stored(row: asyncpg.Record) -> StoredEvent:
    details = row["details"]
    return StoredEvent(
        msg_id=row["msg_id"],
        ts=row["ts"],
        received_at=row["received_at"],
        kind=row["kind"],
        tag=row["tag"],
        site_code=row["code"],
        disposition=row["disposition"],
        details=details if isinstance(details, dict) else {},
    )


def _head(zone: ZoneInfo) -> bytes:
    header = {
        "@context": list(EPCIS_CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": dt.datetime.now(zone).isoformat(timespec="seconds"),
    }
    # the object stays open: the event list follows, then the closing counts
    return orjson.dumps(header)[:-1] + b',"epcisBody":{"eventList":['


def _tail(skipped: Counter[str]) -> bytes:
    return b']},"cylwatch:skippedEvents":' + orjson.dumps(dict(sorted(skipped.items()))) + b"}"


def _where(request: web.Request, p: Principal, q: Sql) -> str:
    """The caller's scope and the filters, as in `GET /api/v1/events`."""
    where = [scope_where(p, "events", "e", q)]
    cyl = q_id(request, "cylinder")
    if cyl:
        where.append(f"e.cylinder_id = {q.add(cyl)}")
    tag = q_str(request, "tag", max_len=64)
    if tag:
        where.append(f"e.tag = {q.add(tag)}")
    comp = company_filter(request, "e.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"e.district_code = {q.add(district)}")
    where += time_range(request, "e.ts", q)
    return " AND ".join(where)


def _batch(rows: list[asyncpg.Record], zone: ZoneInfo, skipped: Counter[str], first: bool) -> bytes:
    """One batch of rows as comma-separated events (a leading comma unless *first*)."""
    out = bytearray()
    for row in rows:
        events = object_events(_stored(row), zone)
        if not events:
            skipped[row["kind"] if row["tag"] else "untagged"] += 1
        for event in events:
            if not first:
                out += b","
            first = False
            out += orjson.dumps(event)
    return bytes(out)


@api_doc(
    "Trajectory events as an EPCIS 2.0 document",
    tags=["events"],
    roles=ROLES,
    query=QUERY,
    description="An EPCISDocument in JSON-LD (`application/ld+json`), streamed, events oldest "
    "first; scope and filters as `GET /api/v1/events`. One ObjectEvent per event (two for a "
    "scrap: decommissioning, then destroying); archive edits (`update`, `status_change`) "
    "have no EPCIS meaning and are only counted in `cylwatch:skippedEvents`. No personal "
    "data: a delivery names at most the delivering site. See docs/API.md "
    f'"EPCIS 2.0 export". Example:\n\n```json\n{EXAMPLE}\n```',
    responses={200: "EPCISDocument (application/ld+json), streamed"},
    media_types=[MEDIA_TYPE],
)
async def epcis_events(request: web.Request) -> web.StreamResponse:
    """Stream the events in the caller's scope as one EPCISDocument."""
    p = require(request)
    check_query(request, [x.name for x in QUERY])
    q = Sql()
    where = _where(request, p, q)
    settings = request.app[SETTINGS]
    zone = city_zone(settings.alerts)
    batch = settings.http.page_size_max
    sql = f"SELECT {COLUMNS} FROM {FROM} WHERE {where} ORDER BY {ORDER}"
    async with request.app[POOL].acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(sql, *q.params)
        rows = await cursor.fetch(batch)
        resp = web.StreamResponse(headers={"Cache-Control": "no-store"})
        resp.content_type = MEDIA_TYPE
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(_head(zone))
        skipped: Counter[str] = Counter()
        first = True
        while rows:
            chunk = _batch(rows, zone, skipped, first)
            if chunk:
                await resp.write(chunk)
                first = False
            rows = await cursor.fetch(batch) if len(rows) == batch else []
        await resp.write(_tail(skipped))
    await resp.write_eof()
    return resp


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/epcis/events", epcis_events, allow_head=False)]
