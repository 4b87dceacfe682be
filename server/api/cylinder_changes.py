"""Registering (建档) and changing a cylinder's archive (docs/API.md "Cylinders").

Who may do what, and why:

- registration is the inspection agency's act (docs/ARCHITECTURE.md §1), and the admin's, and a
  company admin's for its own company, stating no inspection findings
  (``server.domain.registration``);
- changes are split by who is accountable for a field: the admin may change anything;
  the inspection agency the archive and inspection fields (it registered and inspects the
  cylinder) but not the owner or the tag; the owner company's admin only operational
  fields of its own cylinders (barcode, valve type, use registration no.) and may report a
  cylinder lost or suspended, or put it back in service. That rule, which status each role
  may set, that a scrapped cylinder never comes back and when a record's dates are coherent
  are rules of the domain (``server.domain.record_changes``, ``server.domain.transitions``),
  which the archive import applies too (docs/ARCHITECTURE.md §4); the database refuses an
  un-scrapping as well (migration ``0060_status_transitions``).

Every write records a trajectory event (EPCIS mapping from ``server.domain.events``) and an
audit row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from aiohttp import web

from server.api.cylinder_rows import (
    cylinder_detail,
    fetch_visible,
    record_event,
    registrant_body,
    registration_owner,
    registration_site,
)
from server.api.db_errors import db_errors
from server.api.doc import api_doc
from server.api.fields import UNSET, Code, Count, District, Id, Measure, Name, Note, UnsetType
from server.api.params import changes, read_body, require_some
from server.api.rows import before_after, jsonable
from server.domain.dates import derive_next_inspection, derive_scrap_date
from server.domain.events import EventKind
from server.domain.record_changes import (
    DatesRefused,
    FieldRefused,
    RecordDates,
    check_fields,
    status_event,
)
from server.domain.record_changes import check_dates as check_record_dates
from server.domain.registration import REGISTRANT_ROLES
from server.domain.statuses import CYLINDER_STATUSES
from server.domain.transitions import (
    Rule,
    TransitionRefused,
    check_settable,
    check_transition,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, path_int
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = ["create_cylinder", "patch_cylinder", "transition_error"]

ValveType = Literal["ordinary", "smart"]

WRITE_ROLES = ("admin", "inspector", "company_admin")
REGISTER_ROLES = REGISTRANT_ROLES


def transition_error(exc: TransitionRefused) -> ApiError:
    """The API's answer to a move the domain refuses (docs/API.md "Errors"): a status the
    role never sets is a bad field (400), one it may not set *from here* is forbidden
    (403), and leaving a final status is an ``invalid_transition`` (409)."""
    if exc.rule is Rule.ROLE_MAY_NOT_SET:
        return bad_field("status", exc.message)
    if exc.rule is Rule.ROLE_MAY_NOT_RETURN:
        return ApiError(403, errors.FORBIDDEN, f"status: {exc.message}", {"field": "status"})
    return ApiError(409, errors.INVALID_TRANSITION, f"status: {exc.message}", {"field": "status"})


# ---------------------------------------------------------------- register


class CylinderCreate(msgspec.Struct, forbid_unknown_fields=True):
    tag: Code
    spec: Code
    manufacture_date: dt.date
    owner_company_id: Id | None = None
    owner_code: Code | None = None
    stamp: Code | None = None
    barcode: Code | None = None
    medium: Name = "LPG"
    volume_l: Measure | None = None
    tare_kg: Measure | None = None
    wall_thickness_mm: Measure | None = None
    manufacturer: Name | None = None
    serial_no: Code | None = None
    last_inspection_date: dt.date | None = None
    next_inspection_date: dt.date | None = None
    inspection_count: Count = 0
    scrap_date: dt.date | None = None
    valve_type: ValveType = "smart"
    inspection_ring_no: Code | None = None
    use_registration_no: Code | None = None
    status: str = "in_service"
    location_site_id: Id | None = None
    district_code: District | None = None


def check_dates(
    settings: Settings,
    manufacture: dt.date,
    last: dt.date | None,
    next_: dt.date,
    scrap: dt.date,
) -> None:
    """Dates of one archive must be coherent (``server.domain.record_changes.check_dates``);
    the field that breaks it is named."""
    try:
        check_record_dates(RecordDates(manufacture, last, next_, scrap), city_today(settings))
    except DatesRefused as exc:
        raise bad_field(exc.field, exc.message) from None


def check_spec(settings: Settings, spec: str) -> None:
    if settings.model(spec) is None:
        raise bad_field("spec", f"unknown model; configured: {', '.join(sorted(settings.models))}")


def check_status(value: str) -> None:
    """A registered record holds one of the domain's statuses."""
    if value not in CYLINDER_STATUSES:
        raise bad_field("status", f"must be one of {', '.join(sorted(CYLINDER_STATUSES))}")


@api_doc(
    "Register a cylinder (建档)",
    tags=["cylinders"],
    roles=REGISTER_ROLES,
    body=CylinderCreate,
    responses={201: "created", 409: "tag or barcode already registered"},
)
async def create_cylinder(request: web.Request) -> web.Response:
    """Register a cylinder. Omitted next inspection / scrap dates are derived by the domain
    rules (DOMAIN.md "Dates"); a 'register' event opens its trajectory."""
    p = require(request, *REGISTER_ROLES)
    body = registrant_body(p, await read_body(request, CylinderCreate))
    settings = request.app[SETTINGS]
    check_spec(settings, body.spec)
    check_status(body.status)
    if (body.owner_company_id is None) == (body.owner_code is None):
        raise bad_field("owner_company_id", "give exactly one of owner_company_id or owner_code")
    rules = settings.dates
    if body.last_inspection_date is not None and body.last_inspection_date < body.manufacture_date:
        raise bad_field("last_inspection_date", "is before manufacture_date")
    try:
        next_insp = body.next_inspection_date or derive_next_inspection(
            body.manufacture_date, body.last_inspection_date, rules
        )
        scrap = body.scrap_date or derive_scrap_date(body.manufacture_date, rules)
    except ValueError as exc:  # a date beyond the calendar, or last inspection before manufacture
        raise bad_field("manufacture_date", str(exc)) from None
    check_dates(settings, body.manufacture_date, body.last_inspection_date, next_insp, scrap)
    model = settings.model(body.spec)
    assert model is not None
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        owner = await registration_owner(conn, p, body.owner_company_id, body.owner_code)
        district = body.district_code
        if body.location_site_id is not None:
            site = await registration_site(conn, p, body.location_site_id)
            district = district or site["district_code"]
        district = district or owner["district_code"]
        async with db_errors("tag"):
            row = await conn.fetchrow(
                """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, medium, spec,
                       volume_l, tare_kg, wall_thickness_mm, manufacturer, manufacture_date,
                       serial_no,
                       last_inspection_date, next_inspection_date, inspection_count, scrap_date,
                       valve_type, inspection_ring_no, use_registration_no, status,
                       registered_by_site_id, district_code, location_site_id,
                       location_kind)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,
                           $21,$22,$23,
                           CASE WHEN $23::bigint IS NULL THEN 'unknown' ELSE 'site' END)
                   RETURNING *""",
                body.tag,
                body.stamp,
                body.barcode,
                owner["id"],
                body.medium,
                body.spec,
                body.volume_l if body.volume_l is not None else model.volume_l,
                body.tare_kg,
                body.wall_thickness_mm,
                body.manufacturer,
                body.manufacture_date,
                body.serial_no,
                body.last_inspection_date,
                next_insp,
                body.inspection_count,
                scrap,
                body.valve_type,
                body.inspection_ring_no,
                body.use_registration_no,
                body.status,
                p.site_id if p.role == "inspector" else None,
                district,
                body.location_site_id,
            )
        assert row is not None
        await record_event(
            conn,
            row,
            EventKind("register"),
            p,
            {"spec": body.spec, "status": body.status},
            site_id=p.site_id if p.role == "inspector" else body.location_site_id,
        )
        await audit(
            conn,
            p,
            "cylinder.create",
            "cylinder",
            row["id"],
            {"tag": body.tag, "owner_company_id": owner["id"]},
            request.remote,
        )
        full = await fetch_visible(conn, p, row["id"])
        out = await cylinder_detail(conn, p, full, settings)
    return json_response(out, 201)


# ---------------------------------------------------------------- change


class CylinderPatch(msgspec.Struct, forbid_unknown_fields=True):
    tag: Code | UnsetType = UNSET
    owner_company_id: Id | UnsetType = UNSET
    stamp: Code | UnsetType | None = UNSET
    barcode: Code | UnsetType | None = UNSET
    medium: Name | UnsetType = UNSET
    spec: Code | UnsetType = UNSET
    volume_l: Measure | UnsetType | None = UNSET
    tare_kg: Measure | UnsetType | None = UNSET
    wall_thickness_mm: Measure | UnsetType | None = UNSET
    manufacturer: Name | UnsetType | None = UNSET
    manufacture_date: dt.date | UnsetType = UNSET
    serial_no: Code | UnsetType | None = UNSET
    last_inspection_date: dt.date | UnsetType | None = UNSET
    next_inspection_date: dt.date | UnsetType = UNSET
    inspection_count: Count | UnsetType = UNSET
    scrap_date: dt.date | UnsetType = UNSET
    valve_type: ValveType | UnsetType = UNSET
    inspection_ring_no: Code | UnsetType | None = UNSET
    use_registration_no: Code | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    district_code: District | UnsetType | None = UNSET
    location_site_id: Id | UnsetType | None = UNSET
    reason: Note | UnsetType = UNSET
    """Why the status changed (kept in the trajectory event and the audit log)."""


@api_doc(
    "Change a cylinder's archive",
    tags=["cylinders"],
    roles=WRITE_ROLES,
    body=CylinderPatch,
    description="admin: any field; inspector: archive and inspection fields; company_admin: "
    "barcode, valve_type, use_registration_no and status in_service/lost/suspended "
    "of its own cylinders. A status change writes a trajectory event.",
)
async def patch_cylinder(request: web.Request) -> web.Response:
    """Change fields of the archive, each role only the fields it answers for."""
    p = require(request, *WRITE_ROLES)
    cid = path_int(request)
    body = await read_body(request, CylinderPatch)
    fields = changes(body)
    require_some(fields)
    try:
        check_fields(p.role, fields)
    except FieldRefused as exc:
        raise ApiError(
            403, errors.FORBIDDEN, f"{exc.field}: {exc.message}", {"field": exc.field}
        ) from None
    settings = request.app[SETTINGS]
    reason = fields.pop("reason", None)
    if "spec" in fields:
        check_spec(settings, fields["spec"])
    if "status" in fields:
        try:
            check_settable(fields["status"], p.role)
        except TransitionRefused as exc:
            raise transition_error(exc) from None
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        cur = await fetch_visible(conn, p, cid, for_update=True)
        if p.role == "company_admin" and cur["owner_company_id"] != p.company_id:
            raise not_found(f"cylinder {cid}")  # pragma: no cover - scope already limits this
        merged = {**dict(cur), **fields}
        check_dates(
            settings,
            merged["manufacture_date"],
            merged["last_inspection_date"],
            merged["next_inspection_date"],
            merged["scrap_date"],
        )
        new_status = fields.get("status")
        old_status = cur["status"]
        if new_status is not None:
            try:
                check_transition(old_status, new_status, p.role)
            except TransitionRefused as exc:
                raise transition_error(exc) from None
        if "owner_company_id" in fields and not await conn.fetchval(
            "SELECT true FROM companies WHERE id = $1", fields["owner_company_id"]
        ):
            raise bad_field("owner_company_id", "no such company")
        if fields.get("location_site_id") is not None and not await conn.fetchval(
            "SELECT true FROM sites WHERE id = $1", fields["location_site_id"]
        ):
            raise bad_field("location_site_id", "no such site")
        real = {k: v for k, v in fields.items() if cur[k] != v}
        if real:
            q = Sql(cid)
            sets = ", ".join(f"{k} = {q.add(v)}" for k, v in real.items())
            async with db_errors("tag"):
                await conn.execute(
                    f"UPDATE cylinders SET {sets}, updated_at = now() WHERE id = $1", *q.params
                )
            new_row = {**dict(cur), **real}
            if "status" in real:
                details: dict[str, Any] = {"from": old_status, "to": real["status"]}
                if reason:
                    details["reason"] = reason
                await record_event(conn, new_row, status_event(real["status"]), p, details)
            others = sorted(k for k in real if k != "status")
            if others:
                await record_event(conn, new_row, EventKind("update"), p, {"fields": others})
            await audit(
                conn,
                p,
                "cylinder.update",
                "cylinder",
                cid,
                {**jsonable(before_after(dict(cur), real)), "reason": reason},
                request.remote,
            )
        row = await fetch_visible(conn, p, cid)
        out = await cylinder_detail(conn, p, row, settings)
    return json_response(out)
