"""Periodic inspection results (定期检验, GB/T 8334-2022) entered by an inspection agency
(docs/API.md "Cylinders").

What a result does to the record — the next inspection date, a capped scrap date, back in
service, suspended or scrapped — is the domain's rule (``server.domain.transitions.
apply_inspection``, dates by ``server.domain.dates``); this handler checks who may enter
it, writes the inspection, the record, the trajectory events and the audit row in one
transaction.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from aiohttp import web

from server.api.cylinder_changes import transition_error
from server.api.cylinder_rows import cylinder_detail, fetch_visible, record_event
from server.api.doc import api_doc
from server.api.fields import Code, Id, Note
from server.api.params import read_body
from server.api.rows import plain
from server.domain.events import EventKind
from server.domain.statuses import INSPECTION_RESULTS, SCRAPPED
from server.domain.transitions import InspectionRefused, TransitionRefused, apply_inspection
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_field
from server.kernel.http import json_response, path_int
from server.kernel.principal import require

__all__ = ["inspect"]

INSPECT_ROLES = ("admin", "inspector")


class InspectionBody(msgspec.Struct, forbid_unknown_fields=True):
    inspected_on: dt.date
    result: str
    next_inspection_date: dt.date | None = None
    scrap_date: dt.date | None = None
    """A new scrap date assigned by the agency (capped at manufacture + absolute scrap age)."""
    report_no: Code | None = None
    notes: Note | None = None
    agency_site_id: Id | None = None
    """Admin only: the agency on whose behalf the result is entered."""


@api_doc(
    "Record a periodic inspection result",
    tags=["cylinders"],
    roles=INSPECT_ROLES,
    body=InspectionBody,
    responses={201: "recorded", 409: "cylinder is scrapped"},
    description="pass: next inspection derived (or given), scrap date extension capped by "
    "the absolute scrap age, status back in service; fail: suspended; scrap: scrapped.",
)
async def inspect(request: web.Request) -> web.Response:
    """Periodic inspection result (GB/T 8334-2022): updates dates, count and status."""
    p = require(request, *INSPECT_ROLES)
    cid = path_int(request)
    body = await read_body(request, InspectionBody)
    if body.result not in INSPECTION_RESULTS:
        raise bad_field("result", f"must be one of {', '.join(INSPECTION_RESULTS)}")
    if p.role != "admin" and body.agency_site_id is not None:
        raise ApiError(
            403,
            errors.FORBIDDEN,
            "agency_site_id: only an admin names the agency",
            {"field": "agency_site_id"},
        )
    settings = request.app[SETTINGS]
    if body.inspected_on > city_today(settings):
        raise bad_field("inspected_on", "is in the future")
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        cur = await fetch_visible(conn, p, cid, for_update=True)
        try:
            outcome = apply_inspection(
                status=cur["status"],
                manufacture_date=cur["manufacture_date"],
                last_inspection_date=cur["last_inspection_date"],
                next_inspection_date=cur["next_inspection_date"],
                scrap_date=cur["scrap_date"],
                inspected_on=body.inspected_on,
                result=body.result,
                rules=settings.dates,
                given_next_inspection=body.next_inspection_date,
                given_scrap_date=body.scrap_date,
            )
        except TransitionRefused as exc:
            raise transition_error(exc) from None
        except InspectionRefused as exc:
            raise bad_field(exc.field, exc.message) from None
        agency = p.site_id if p.role == "inspector" else body.agency_site_id
        if (
            agency is not None
            and p.role == "admin"
            and not await conn.fetchval("SELECT true FROM sites WHERE id = $1", agency)
        ):
            raise bad_field("agency_site_id", "no such site")
        next_insp, scrap = outcome.next_inspection_date, outcome.scrap_date
        row = await conn.fetchrow(
            """INSERT INTO inspections (cylinder_id, agency_site_id, inspected_on, result,
                   next_inspection_date, scrap_date, report_no, notes, created_by)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING *""",
            cid,
            agency,
            body.inspected_on,
            body.result,
            next_insp,
            scrap,
            body.report_no,
            body.notes,
            p.user_id,
        )
        assert row is not None
        await conn.execute(
            """UPDATE cylinders SET last_inspection_date = $2, next_inspection_date = $3,
                   scrap_date = $4, status = $5, inspection_count = inspection_count + 1,
                   updated_at = now() WHERE id = $1""",
            cid,
            outcome.last_inspection_date,
            next_insp,
            scrap,
            outcome.status,
        )
        details = {
            "result": body.result,
            "report_no": body.report_no,
            "inspection_id": row["id"],
            "next_inspection_date": next_insp.isoformat(),
            "scrap_date": scrap.isoformat(),
            "scrap_date_capped": outcome.scrap_date_capped,
        }
        await record_event(
            conn,
            cur,
            EventKind("inspection"),
            p,
            details,
            conformant=body.result == "pass",
            site_id=agency,
        )
        if outcome.status == SCRAPPED:
            await record_event(
                conn,
                cur,
                EventKind("scrap"),
                p,
                {"from": cur["status"], "to": SCRAPPED, "inspection_id": row["id"]},
                site_id=agency,
            )
        await audit(conn, p, "cylinder.inspect", "cylinder", cid, details, request.remote)
        full = await fetch_visible(conn, p, cid)
        out = await cylinder_detail(conn, p, full, settings)
    return json_response(
        {"inspection": plain(row), "cylinder": out, "scrap_date_capped": outcome.scrap_date_capped},
        201,
    )
