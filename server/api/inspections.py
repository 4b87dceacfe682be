"""Periodic inspection (定期检验, GB/T 8334-2022) and scrapping (报废) by an inspection agency
(docs/API.md "Periodic inspection and scrapping"; docs/ARCHITECTURE.md §4 and §7).

What a result does to the record — the next inspection date, a capped scrap date, back in
service or scrapped, the reason kept — is the domain's rule (``server.domain.transitions``:
``apply_inspection``, ``apply_scrap``, ``scrap_reason_of``; dates by ``server.domain.dates``);
the database voids the tag of a scrapped cylinder for ever and refuses un-scrapping
(migrations 0060 and 0110). These handlers check who may act, then write the inspection
record, the cylinder, the trajectory events and the audit row in one transaction, so a
refusal leaves nothing half-written:

- ``POST /cylinders/{id}/inspections`` records a result; ``?dry_run=true`` answers what it
  would do and writes nothing, so a page shows a pass's new next-inspection date before the
  agency confirms it, from the one rule rather than a copy in a script;
- ``POST /cylinders/{id}/scrap`` scraps without an inspection, with a reason from the
  vocabulary (recorded as a ``scrap`` result, so the agency's day holds every decision);
- ``GET /cylinders/{id}/inspections`` is the history of one cylinder, newest first, for
  anyone who may read the cylinder (its archive shows the dates these records set);
- ``GET /inspections`` lists records in the caller's scope (``server.kernel.scope``: an
  agency its own, a regulator its districts' cylinders, a company its own cylinders) — an
  agency's day's work, with counts per result, or the same rows as CSV/XLSX.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import asyncpg
import msgspec
from aiohttp import web

from server.api.cylinder_changes import transition_error
from server.api.cylinder_rows import cylinder_detail, fetch_visible, record_event
from server.api.doc import API, Param, api_doc
from server.api.fields import Code, Id, Note
from server.api.params import check_query, company_filter, q_format, read_body
from server.api.rows import envelope, fetch_page, iter_rows, plain
from server.domain.events import EventKind
from server.domain.statuses import INSPECTION_RESULTS, ROLES, SCRAP_REASONS, SCRAPPED
from server.domain.transitions import (
    InspectionRefused,
    TransitionRefused,
    apply_inspection,
    apply_scrap,
    scrap_reason_of,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_field, bad_query
from server.kernel.http import (
    json_response,
    path_int,
    q_bool,
    q_choice,
    q_date,
    q_id,
    q_page,
    q_str,
)
from server.kernel.limits import body_limit
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where
from server.kernel.tabular import stream_table

__all__ = ["inspect", "routes"]

INSPECT_ROLES = ("admin", "inspector")
"""Who records results and scraps: the inspection agency (docs/ARCHITECTURE.md §1), and the
admin on an agency's behalf. A regulator watches; a company never grades its own cylinders."""

AGENCY_KIND: Final = "inspection_agency"


class InspectionBody(msgspec.Struct, forbid_unknown_fields=True):
    inspected_on: dt.date
    result: str
    next_inspection_date: dt.date | None = None
    scrap_date: dt.date | None = None
    """A new scrap date assigned by the agency (capped at manufacture + absolute scrap age)."""
    report_no: Code | None = None
    notes: Note | None = None
    scrap_reason: str | None = None
    """fail/scrap only: one of SCRAP_REASONS (``failed_inspection`` when omitted)."""
    agency_site_id: Id | None = None
    """Admin only: the agency on whose behalf the result is entered."""


class ScrapBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str
    """One of SCRAP_REASONS; ``other`` needs a note."""
    note: Note | None = None
    scrapped_on: dt.date | None = None
    """The day of the decision (today when omitted); never in the future."""
    report_no: Code | None = None
    agency_site_id: Id | None = None
    """Admin only: the agency on whose behalf the cylinder is scrapped."""


async def _agency(conn: asyncpg.Connection, p: Principal, given: int | None) -> int | None:
    """The agency a record is entered for: the inspector's own, or the one an admin names."""
    if p.role != "admin":
        if given is not None:
            raise ApiError(
                403,
                errors.FORBIDDEN,
                "agency_site_id: only an admin names the agency",
                {"field": "agency_site_id"},
            )
        return p.site_id
    if given is not None and not await conn.fetchval(
        "SELECT true FROM sites WHERE id = $1 AND kind = $2", given, AGENCY_KIND
    ):
        raise bad_field("agency_site_id", "no such inspection agency")
    return given


def _day(settings: Any, field: str, value: dt.date | None) -> dt.date:
    """A decision's day: *value*, today when omitted, never in the future."""
    today = city_today(settings)
    if value is None:
        return today
    if value > today:
        raise bad_field(field, "is in the future")
    return value


async def _insert_record(conn: asyncpg.Connection, p: Principal, *values: Any) -> asyncpg.Record:
    """One inspection record: (cylinder, agency, day, result, next inspection, scrap date,
    scrap reason, report no., notes), entered by *p*."""
    row = await conn.fetchrow(
        """INSERT INTO inspections (cylinder_id, agency_site_id, inspected_on, result,
               next_inspection_date, scrap_date, scrap_reason, report_no, notes, created_by)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING *""",
        *values,
        p.user_id,
    )
    assert row is not None
    return row


@body_limit("small")
@api_doc(
    "Record a periodic inspection result",
    tags=["cylinders", "inspections"],
    roles=INSPECT_ROLES,
    body=InspectionBody,
    query=(Param("dry_run", "boolean", "answer what the result would do; write nothing"),),
    responses={200: "dry run", 201: "recorded", 409: "cylinder is scrapped"},
    description="pass: next inspection derived (or given), scrap date extension capped by "
    "the absolute scrap age, status back in service; fail and scrap: scrapped (tag voided), "
    "with a scrap_reason (failed_inspection when omitted).",
)
async def inspect(request: web.Request) -> web.Response:
    """Periodic inspection result (GB/T 8334-2022): updates dates, count and status."""
    p = require(request, *INSPECT_ROLES)
    check_query(request, ["dry_run"])
    dry_run = bool(q_bool(request, "dry_run"))
    cid = path_int(request)
    body = await read_body(request, InspectionBody)
    if body.result not in INSPECTION_RESULTS:
        raise bad_field("result", f"must be one of {', '.join(INSPECTION_RESULTS)}")
    settings = request.app[SETTINGS]
    if body.inspected_on > city_today(settings):
        raise bad_field("inspected_on", "is in the future")
    try:
        reason = scrap_reason_of(body.result, body.scrap_reason, body.notes)
    except InspectionRefused as exc:
        raise bad_field(exc.field, exc.message) from None
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        cur = await fetch_visible(conn, p, cid, for_update=not dry_run)
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
        agency = await _agency(conn, p, body.agency_site_id)
        next_insp, scrap = outcome.next_inspection_date, outcome.scrap_date
        if dry_run:
            return json_response(
                {
                    "dry_run": True,
                    "cylinder_id": cid,
                    "result": body.result,
                    "scrap_reason": reason,
                    "status": outcome.status,
                    "last_inspection_date": outcome.last_inspection_date,
                    "next_inspection_date": next_insp,
                    "scrap_date": scrap,
                    "scrap_date_capped": outcome.scrap_date_capped,
                }
            )
        row = await _insert_record(
            conn,
            p,
            cid,
            agency,
            body.inspected_on,
            body.result,
            next_insp,
            scrap,
            reason,
            body.report_no,
            body.notes,
        )
        await conn.execute(
            """UPDATE cylinders SET last_inspection_date = $2, next_inspection_date = $3,
                   scrap_date = $4, status = $5, inspection_count = inspection_count + 1,
                   tag_voided = (tag_voided OR $5 = 'scrapped'), updated_at = now()
                WHERE id = $1""",
            cid,
            outcome.last_inspection_date,
            next_insp,
            scrap,
            outcome.status,
        )
        details: dict[str, Any] = {
            "result": body.result,
            "report_no": body.report_no,
            "inspection_id": row["id"],
            "next_inspection_date": next_insp.isoformat(),
            "scrap_date": scrap.isoformat(),
            "scrap_date_capped": outcome.scrap_date_capped,
        }
        if reason is not None:
            details["scrap_reason"] = reason
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
                {
                    "from": cur["status"],
                    "to": SCRAPPED,
                    "inspection_id": row["id"],
                    "reason": reason,
                },
                site_id=agency,
            )
        await audit(conn, p, "cylinder.inspect", "cylinder", cid, details, request.remote)
        full = await fetch_visible(conn, p, cid)
        out = await cylinder_detail(conn, p, full, settings)
    return json_response(
        {"inspection": plain(row), "cylinder": out, "scrap_date_capped": outcome.scrap_date_capped},
        201,
    )


@body_limit("small")
@api_doc(
    "Scrap a cylinder (报废)",
    tags=["cylinders", "inspections"],
    roles=INSPECT_ROLES,
    body=ScrapBody,
    responses={201: "scrapped", 409: "already scrapped"},
    description="Scrapped for good and its tag voided for ever, without an inspection; "
    f"reason one of {', '.join(SCRAP_REASONS)} (other: a note is required).",
)
async def scrap(request: web.Request) -> web.Response:
    """Scrap a cylinder with a reason: a ``scrap`` record, a ``scrap`` event, an audit row."""
    p = require(request, *INSPECT_ROLES)
    check_query(request, [])
    cid = path_int(request)
    body = await read_body(request, ScrapBody)
    settings = request.app[SETTINGS]
    day = _day(settings, "scrapped_on", body.scrapped_on)
    try:
        reason = scrap_reason_of("scrap", body.reason, body.note)
    except InspectionRefused as exc:
        raise bad_field("note" if exc.field == "notes" else "reason", exc.message) from None
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        cur = await fetch_visible(conn, p, cid, for_update=True)
        try:
            scrap_date = apply_scrap(
                status=cur["status"],
                manufacture_date=cur["manufacture_date"],
                scrap_date=cur["scrap_date"],
                scrapped_on=day,
            )
        except TransitionRefused as exc:
            raise transition_error(exc) from None
        except InspectionRefused as exc:
            raise bad_field(exc.field, exc.message) from None
        agency = await _agency(conn, p, body.agency_site_id)
        row = await _insert_record(
            conn,
            p,
            cid,
            agency,
            day,
            "scrap",
            cur["next_inspection_date"],
            scrap_date,
            reason,
            body.report_no,
            body.note,
        )
        await conn.execute(
            """UPDATE cylinders SET status = 'scrapped', scrap_date = $2, tag_voided = true,
                   updated_at = now() WHERE id = $1""",
            cid,
            scrap_date,
        )
        details = {
            "from": cur["status"],
            "to": SCRAPPED,
            "reason": reason,
            "note": body.note,
            "inspection_id": row["id"],
            "scrapped_on": day.isoformat(),
            "report_no": body.report_no,
        }
        await record_event(conn, cur, EventKind("scrap"), p, details, site_id=agency)
        await audit(conn, p, "cylinder.scrap", "cylinder", cid, details, request.remote)
        full = await fetch_visible(conn, p, cid)
        out = await cylinder_detail(conn, p, full, settings)
    return json_response({"inspection": plain(row), "cylinder": out}, 201)


# ---------------------------------------------------------------- reading the records

RECORD_COLUMNS: Final = """i.id, i.cylinder_id, i.inspected_on, i.result,
    i.next_inspection_date, i.scrap_date, i.scrap_reason, i.report_no, i.notes,
    i.agency_site_id, a.code AS agency_code, a.name AS agency_name,
    u.username AS recorded_by, i.created_at"""
RECORD_FROM: Final = """inspections i LEFT JOIN sites a ON a.id = i.agency_site_id
    LEFT JOIN users u ON u.id = i.created_by"""
NEWEST_FIRST: Final = "i.inspected_on DESC, i.id DESC"


@api_doc(
    "Inspection history of a cylinder",
    tags=["cylinders", "inspections"],
    roles=ROLES,
    paginated=True,
    description="Every inspection and scrap record of the cylinder, newest first, with the "
    "agency and who recorded it; for anyone who may read the cylinder.",
)
async def history(request: web.Request) -> web.Response:
    """The records of one cylinder, to whoever may read it (404 outside the scope)."""
    p = require(request)
    check_query(request, [])
    cid = path_int(request)
    page = q_page(request)
    pool = request.app[POOL]
    await fetch_visible(pool, p, cid)
    rows, total = await fetch_page(
        pool,
        RECORD_COLUMNS,
        f"{RECORD_FROM} WHERE i.cylinder_id = $1",
        NEWEST_FIRST,
        Sql(cid),
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


LIST_QUERY = (
    Param("date", "date", "inspection day (YYYY-MM-DD)"),
    Param("from", "date", "first inspection day"),
    Param("to", "date", "last inspection day"),
    Param("result", enum=INSPECTION_RESULTS),
    Param("agency", "integer", "id of the inspection agency"),
    Param("company", description="owner company code or id"),
    Param("cylinder", "integer", "cylinder id"),
    Param("tag", description="exact RFID tag"),
    Param("format", enum=("json", "csv", "xlsx")),
)

EXPORT_COLUMNS: Final = (
    "id",
    "inspected_on",
    "result",
    "scrap_reason",
    "tag",
    "stamp",
    "barcode",
    "spec",
    "owner_code",
    "owner_name",
    "next_inspection_date",
    "scrap_date",
    "report_no",
    "notes",
    "agency_code",
    "agency_name",
    "recorded_by",
    "created_at",
)
LIST_COLUMNS: Final = f"""{RECORD_COLUMNS}, c.tag, c.stamp, c.barcode, c.spec,
    c.owner_company_id, o.code AS owner_code, o.name AS owner_name"""
LIST_FROM: Final = f"""{RECORD_FROM} JOIN cylinders c ON c.id = i.cylinder_id
    JOIN companies o ON o.id = c.owner_company_id"""


def _filters(request: web.Request, p: Principal, q: Sql) -> tuple[list[str], str | None]:
    """The WHERE terms of the list (scope first), and the result filter kept apart so the
    counts per result can be taken over the others."""
    where = [scope_where(p, "inspections", "i", q)]
    day = q_date(request, "date")
    lo, hi = q_date(request, "from"), q_date(request, "to")
    if day is not None and (lo is not None or hi is not None):
        raise bad_query("date", "give either date or from/to")
    if lo is not None and hi is not None and hi < lo:
        raise bad_query("to", "is before from")
    if day is not None:
        where.append(f"i.inspected_on = {q.add(day)}")
    if lo is not None:
        where.append(f"i.inspected_on >= {q.add(lo)}")
    if hi is not None:
        where.append(f"i.inspected_on <= {q.add(hi)}")
    for name, column in (("agency", "i.agency_site_id"), ("cylinder", "i.cylinder_id")):
        value = q_id(request, name)
        if value is not None:
            where.append(f"{column} = {q.add(value)}")
    tag = q_str(request, "tag", max_len=64)
    if tag is not None:
        where.append(f"c.tag = {q.add(tag)}")
    comp = company_filter(request, "c.owner_company_id", q)
    if comp:
        where.append(comp)
    result = q_choice(request, "result", INSPECTION_RESULTS)
    return where, (f"i.result = {q.add(result)}" if result else None)


@api_doc(
    "Inspection and scrap records (an agency's day's work)",
    tags=["inspections"],
    roles=ROLES,
    query=LIST_QUERY,
    paginated=True,
    formats=("json", "csv", "xlsx"),
    description="Records in the caller's scope, newest first: an inspection agency its own, "
    "a regulator those of its districts' cylinders, a company those of its cylinders. JSON "
    "adds `counts` per result over the same filters (result aside).",
)
async def list_records(request: web.Request) -> web.StreamResponse:
    """What an agency did on a day (or any period), within the caller's scope."""
    p = require(request)
    check_query(request, [x.name for x in LIST_QUERY])
    fmt = q_format(request)
    q = Sql()
    where, result = _filters(request, p, q)
    pool = request.app[POOL]
    terms = [*where, result] if result else where
    from_where = f"{LIST_FROM} WHERE {' AND '.join(terms)}"
    if fmt != "json":
        sql = f"SELECT {LIST_COLUMNS} FROM {from_where} ORDER BY {NEWEST_FIRST}"
        rows = iter_rows(pool, sql, q.params, EXPORT_COLUMNS)
        return await stream_table(request, fmt, "inspections", EXPORT_COLUMNS, rows)
    page = q_page(request)
    items, total = await fetch_page(pool, LIST_COLUMNS, from_where, NEWEST_FIRST, q, page)
    # the counts ignore the result filter (its parameter, added last, is simply not used)
    counted = await pool.fetch(
        f"SELECT i.result, count(*) AS n FROM {LIST_FROM} WHERE {' AND '.join(where)}"
        " GROUP BY i.result",
        *(q.params[:-1] if result else q.params),
    )
    counts = dict.fromkeys(INSPECTION_RESULTS, 0)
    counts.update({r["result"]: int(r["n"]) for r in counted})
    out = envelope([plain(r) for r in items], page, total)
    out["counts"] = counts
    return json_response(out)


def routes() -> list[web.RouteDef]:
    # POST /cylinders/{id}/inspections is mounted with the cylinder resource (server.api.cylinders)
    return [
        web.get(API + r"/cylinders/{id:\d+}/inspections", history, allow_head=False),
        web.post(API + r"/cylinders/{id:\d+}/scrap", scrap),
        web.get(f"{API}/inspections", list_records, allow_head=False),
    ]
