"""Cylinders (气瓶档案, 一瓶一码一档): search, archive, registration, changes, trajectory,
periodic inspection results (DESIGN §1, §9; DOMAIN.md "Cylinder record").

Who may do what, and why:

- everyone logged in may search and read — within their scope (DESIGN §7), applied in SQL;
  a cylinder outside the scope answers 404, never 403, so its existence does not leak;
- registration (建档) is the inspection agency's act (DESIGN §1), and the admin's;
- changes are split by who is accountable for a field: the admin may change anything;
  the inspection agency the archive and inspection fields (it registered and inspects the
  cylinder) but not the owner or the tag; the owner company's admin only operational
  fields of its own cylinders (barcode, valve type, use registration no.) and may report a
  cylinder lost or suspended, or put it back in service;
- a scrapped cylinder never comes back (DOMAIN.md: a tag is never reused after scrapping).

Every write records a trajectory event (EPCIS mapping from `server.domain.events`) and an
audit row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import asyncpg
import msgspec
from aiohttp import web

from server.api.common import (
    API,
    COMPLIANCE_VALUES,
    UNSET,
    Code,
    ComplianceBounds,
    Count,
    District,
    Id,
    Measure,
    Name,
    Note,
    Param,
    UnsetType,
    api_doc,
    changes,
    check_query,
    compliance_of,
    compliance_where,
    db_errors,
    fetch_page,
    like_prefix,
    plain,
    q_district,
    q_id,
    read_body,
    require_some,
    today,
)
from server.domain.dates import derive_next_inspection, derive_scrap_date
from server.domain.events import EventKind, epcis_for
from server.domain.statuses import CYLINDER_STATUSES, INSPECTION_RESULTS, ROLES, SCRAPPED
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, can_read, scope_where
from server.kernel.settings import Settings

ValveType = Literal["ordinary", "smart"]

WRITE_ROLES = ("admin", "inspector", "company_admin")
REGISTER_ROLES = ("admin", "inspector")
INSPECT_ROLES = ("admin", "inspector")

# Field groups of the archive, by who answers for them (module docstring).
OPERATIONAL_FIELDS = frozenset({"barcode", "valve_type", "use_registration_no", "status", "reason"})
ARCHIVE_FIELDS = frozenset(
    {
        "stamp",
        "spec",
        "medium",
        "volume_l",
        "tare_kg",
        "wall_thickness_mm",
        "manufacturer",
        "manufacture_date",
        "serial_no",
        "inspection_ring_no",
    }
)
INSPECTION_FIELDS = frozenset(
    {
        "last_inspection_date",
        "next_inspection_date",
        "inspection_count",
        "scrap_date",
        "status",
        "reason",
    }
)
ADMIN_ONLY_FIELDS = frozenset({"tag", "owner_company_id", "district_code", "location_site_id"})
PATCH_FIELDS: Mapping[str, frozenset[str]] = {
    "admin": OPERATIONAL_FIELDS | ARCHIVE_FIELDS | INSPECTION_FIELDS | ADMIN_ONLY_FIELDS,
    "inspector": ARCHIVE_FIELDS | INSPECTION_FIELDS,
    "company_admin": OPERATIONAL_FIELDS,
}
# Statuses each role may set (admin: any).
STATUS_BY_ROLE: Mapping[str, frozenset[str]] = {
    "admin": frozenset(CYLINDER_STATUSES),
    "inspector": frozenset({"in_service", "in_inspection", "scrapped", "suspended"}),
    "company_admin": frozenset({"in_service", "lost", "suspended"}),
}

LIST_COLUMNS = """c.id, c.tag, c.stamp, c.barcode, c.owner_company_id, o.code AS owner_code,
    o.name AS owner_name, c.spec, c.medium, c.manufacture_date, c.last_inspection_date,
    c.next_inspection_date, c.scrap_date, c.inspection_count, c.status, c.district_code,
    c.fill_state, c.location_kind, c.location_site_id, c.last_fill_at, c.updated_at"""

DETAIL_COLUMNS = """c.*, o.code AS owner_code, o.name AS owner_name,
    ls.code AS location_site_code, ls.name AS location_site_name,
    rs.code AS registered_by_site_code, rs.name AS registered_by_site_name,
    fs.code AS last_fill_site_code, fs.name AS last_fill_site_name,
    dv.device_id AS location_device"""

DETAIL_FROM = """cylinders c JOIN companies o ON o.id = c.owner_company_id
    LEFT JOIN sites ls ON ls.id = c.location_site_id
    LEFT JOIN sites rs ON rs.id = c.registered_by_site_id
    LEFT JOIN sites fs ON fs.id = c.last_fill_site_id
    LEFT JOIN devices dv ON dv.id = c.location_device_id"""

# Columns a client never needs (internal ingest bookkeeping).
_HIDDEN = ("state_at",)


def new_msg_id() -> str:
    return f"api-{uuid.uuid4()}"


async def record_event(
    conn: asyncpg.Connection,
    cyl: Mapping[str, Any],
    kind: EventKind,
    p: Principal,
    details: Mapping[str, Any],
    *,
    conformant: bool = True,
    site_id: int | None = None,
) -> None:
    """A trajectory event caused by a person through the API (EPCIS step and disposition)."""
    epcis = epcis_for(kind, conformant=conformant)
    await conn.execute(
        """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                               company_id, operator, district_code, details)
           VALUES (clock_timestamp(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        new_msg_id(),
        cyl["id"],
        cyl["tag"],
        kind.value,
        epcis.biz_step,
        epcis.disposition,
        site_id if site_id is not None else cyl.get("location_site_id"),
        cyl["owner_company_id"],
        p.username,
        cyl.get("district_code"),
        dict(details),
    )


def _cylinder_json(row: Mapping[str, Any], settings: Settings, day: dt.date) -> dict[str, Any]:
    out = plain(row, drop=_HIDDEN)
    out["compliance"] = compliance_of(row, settings, day)
    return out


# ---------------------------------------------------------------- search


LIST_QUERY = (
    Param("tag", description="exact RFID tag (unique)"),
    Param("stamp", description="exact steel stamp no."),
    Param("barcode", description="exact QR/barcode (unique)"),
    Param("q", description="prefix of tag, stamp or barcode"),
    Param("company", description="owner company code or id"),
    Param("status", enum=CYLINDER_STATUSES),
    Param("compliance", enum=COMPLIANCE_VALUES, description="computed from dates (DESIGN §4)"),
    Param("district", description="6-digit district code where the cylinder is now"),
    Param("spec", description="model code, e.g. YSP35.5"),
    Param("site", "integer", description="id of the site where the cylinder is now"),
)


def company_filter(request: web.Request, column: str, q: Sql, name: str = "company") -> str | None:
    """`company=` as a company id or code (one indexed lookup either way)."""
    raw = q_str(request, name, max_len=64)
    if raw is None:
        return None
    if raw.isdigit():
        cid = q_id(request, name)
        return f"{column} = {q.add(cid)}"
    return f"{column} = (SELECT id FROM companies WHERE code = {q.add(raw)})"


@api_doc(
    "Search cylinders",
    tags=["cylinders"],
    roles=ROLES,
    query=LIST_QUERY,
    paginated=True,
)
async def list_cylinders(request: web.Request) -> web.Response:
    """Search the archive within the caller's scope. A tag or barcode filter is one probe of
    its unique index; no total is counted when the first page holds every match."""
    p = require(request)
    check_query(request, [x.name for x in LIST_QUERY])
    settings = request.app[SETTINGS]
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "cylinders", "c", q)]
    for name in ("tag", "stamp", "barcode", "spec"):
        value = q_str(request, name, max_len=64)
        if value is not None:
            where.append(f"c.{name} = {q.add(value)}")
    prefix = q_str(request, "q", max_len=64)
    if prefix is not None:
        ors = []
        lo, hi = like_prefix(prefix)
        for col in ("tag", "stamp", "barcode"):
            ors.append(f"(c.{col} ~>=~ {q.add(lo)} AND c.{col} ~<~ {q.add(hi)})")
        where.append("(" + " OR ".join(ors) + ")")
    comp = company_filter(request, "c.owner_company_id", q)
    if comp:
        where.append(comp)
    status = q_choice(request, "status", CYLINDER_STATUSES)
    if status:
        where.append(f"c.status = {q.add(status)}")
    district = q_district(request)
    if district:
        where.append(f"c.district_code = {q.add(district)}")
    site = q_id(request, "site")
    if site:
        where.append(f"c.location_site_id = {q.add(site)}")
    day = today(settings)
    compliance = q_choice(request, "compliance", COMPLIANCE_VALUES)
    if compliance:
        where.append(compliance_where(compliance, "c", q, ComplianceBounds.of(day, settings.dates)))
    rows, total = await fetch_page(
        request.app[POOL],
        LIST_COLUMNS,
        f"cylinders c JOIN companies o ON o.id = c.owner_company_id WHERE {' AND '.join(where)}",
        "c.id",
        q,
        page,
    )
    items = [_cylinder_json(r, settings, day) for r in rows]
    return json_response(
        {"items": items, "page": page.page, "page_size": page.page_size, "total": total}
    )


# ---------------------------------------------------------------- one cylinder


async def fetch_visible(
    db: asyncpg.Pool | asyncpg.Connection, p: Principal, cid: int, *, for_update: bool = False
) -> asyncpg.Record:
    """The cylinder if the caller's scope holds it, else 404 (existence is not revealed)."""
    q = Sql(cid)
    where = scope_where(p, "cylinders", "c", q)
    lock = " FOR UPDATE OF c" if for_update else ""
    row = await db.fetchrow(
        f"SELECT {DETAIL_COLUMNS} FROM {DETAIL_FROM} WHERE c.id = $1 AND {where}{lock}", *q.params
    )
    if row is None:
        raise not_found(f"cylinder {cid}")
    return row


async def _detail(
    db: asyncpg.Pool | asyncpg.Connection, p: Principal, row: Mapping[str, Any], settings: Settings
) -> dict[str, Any]:
    out = _cylinder_json(row, settings, today(settings))
    out["location"] = {
        "kind": row["location_kind"],
        "site_id": row["location_site_id"],
        "site_code": row["location_site_code"],
        "site_name": row["location_site_name"],
        "device": row["location_device"],
        "customer_id": row["location_customer_id"] if can_read(p, "customers") else None,
        "district_code": row["district_code"],
        "lat": row["lat"],
        "lon": row["lon"],
        "seen_at": row["last_seen_at"],
    }
    last_fill: dict[str, Any] | None = None
    if row["last_fill_at"] is not None:
        last_fill = {
            "ts": row["last_fill_at"],
            "site_id": row["last_fill_site_id"],
            "site_code": row["last_fill_site_code"],
            "site_name": row["last_fill_site_name"],
        }
    if can_read(p, "fills"):
        f = await db.fetchrow(
            """SELECT f.ts, f.net_kg, f.result, f.assessment, f.station_id, s.code, s.name
                 FROM fills f LEFT JOIN sites s ON s.id = f.station_id
                WHERE f.cylinder_id = $1 ORDER BY f.ts DESC LIMIT 1""",
            row["id"],
        )
        if f is not None:
            last_fill = {
                "ts": f["ts"],
                "net_kg": f["net_kg"],
                "result": f["result"],
                "assessment": f["assessment"],
                "site_id": f["station_id"],
                "site_code": f["code"],
                "site_name": f["name"],
            }
    out["last_fill"] = plain(last_fill) if last_fill else None
    for k in (
        "location_site_code",
        "location_site_name",
        "location_device",
        "last_fill_site_code",
        "last_fill_site_name",
    ):
        out.pop(k, None)
    if not can_read(p, "customers"):
        out["location_customer_id"] = None
    return out


@api_doc(
    "Get a cylinder's archive",
    tags=["cylinders"],
    roles=ROLES,
    description="Archive, owner, current location, compliance status and last fill.",
)
async def get_cylinder(request: web.Request) -> web.Response:
    """The archive with owner, current location, compliance status and last fill."""
    p = require(request)
    pool = request.app[POOL]
    row = await fetch_visible(pool, p, path_int(request))
    return json_response(await _detail(pool, p, row, request.app[SETTINGS]))


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
    """Dates of one archive must be coherent; the field that breaks it is named."""
    day = today(settings)
    if manufacture > day:
        raise bad_field("manufacture_date", "is in the future")
    if last is not None and last < manufacture:
        raise bad_field("last_inspection_date", "is before manufacture_date")
    if last is not None and last > day:
        raise bad_field("last_inspection_date", "is in the future")
    if next_ <= manufacture:
        raise bad_field("next_inspection_date", "must be after manufacture_date")
    if last is not None and next_ <= last:
        raise bad_field("next_inspection_date", "must be after last_inspection_date")
    if scrap < manufacture:
        raise bad_field("scrap_date", "is before manufacture_date")


def check_spec(settings: Settings, spec: str) -> None:
    if settings.model(spec) is None:
        raise bad_field("spec", f"unknown model; configured: {', '.join(sorted(settings.models))}")


def check_status(value: str, allowed: Iterable[str] = CYLINDER_STATUSES) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise bad_field("status", f"must be one of {', '.join(sorted(allowed))}")


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
    body = await read_body(request, CylinderCreate)
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
        if body.owner_code is not None:
            owner = await conn.fetchrow(
                "SELECT id, district_code FROM companies WHERE code = $1", body.owner_code
            )
            field = "owner_code"
        else:
            owner = await conn.fetchrow(
                "SELECT id, district_code FROM companies WHERE id = $1", body.owner_company_id
            )
            field = "owner_company_id"
        if owner is None:
            raise bad_field(field, "no such company")
        district = body.district_code
        if body.location_site_id is not None:
            site = await conn.fetchrow(
                "SELECT id, district_code FROM sites WHERE id = $1", body.location_site_id
            )
            if site is None:
                raise bad_field("location_site_id", "no such site")
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
        out = await _detail(conn, p, full, settings)
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


def _status_event(new: str) -> EventKind:
    if new == SCRAPPED:
        return EventKind("scrap")
    if new == "lost":
        return EventKind("lost")
    return EventKind("status_change")


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
    allowed = PATCH_FIELDS[p.role]
    for name in fields:
        if name not in allowed:
            raise ApiError(
                403,
                errors.FORBIDDEN,
                f"{name}: role {p.role} may not change this field",
                {"field": name},
            )
    settings = request.app[SETTINGS]
    reason = fields.pop("reason", None)
    if "spec" in fields:
        check_spec(settings, fields["spec"])
    if "status" in fields:
        check_status(fields["status"], STATUS_BY_ROLE[p.role])
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
        if (
            p.role == "company_admin"
            and new_status == "in_service"
            and old_status not in ("in_service", "lost")
        ):
            # a company may report its cylinder found again, not lift a suspension that an
            # inspection agency or the regulator imposed
            raise ApiError(
                403,
                errors.FORBIDDEN,
                f"status: role company_admin may not return a {old_status} cylinder to service",
                {"field": "status"},
            )
        if new_status is not None and new_status != old_status and old_status == SCRAPPED:
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                "status: a scrapped cylinder is never returned to use",
                {"field": "status"},
            )
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
                await record_event(conn, new_row, _status_event(real["status"]), p, details)
            others = sorted(k for k in real if k != "status")
            if others:
                await record_event(conn, new_row, EventKind("update"), p, {"fields": others})
            await audit(
                conn,
                p,
                "cylinder.update",
                "cylinder",
                cid,
                {"changed": {k: _jsonable(v) for k, v in real.items()}, "reason": reason},
                request.remote,
            )
        row = await fetch_visible(conn, p, cid)
        out = await _detail(conn, p, row, settings)
    return json_response(out)


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


# ---------------------------------------------------------------- trajectory


EVENT_COLUMNS = """e.ts, e.received_at, e.msg_id, e.cylinder_id, e.tag, e.kind, e.biz_step,
    e.disposition, e.site_id, s.code AS site_code, s.name AS site_name, e.company_id,
    co.name AS company_name, e.device_id, e.operator, e.lat, e.lon, e.district_code, e.details"""
EVENT_FROM = """events e LEFT JOIN sites s ON s.id = e.site_id
    LEFT JOIN companies co ON co.id = e.company_id"""


@api_doc(
    "Trajectory of a cylinder",
    tags=["cylinders", "events"],
    roles=ROLES,
    paginated=True,
    description="Events oldest first, with site and company names (EPCIS step/disposition).",
)
async def trajectory(request: web.Request) -> web.Response:
    """Everything that happened to one cylinder, oldest first (paginated)."""
    p = require(request)
    check_query(request, [])
    cid = path_int(request)
    page = q_page(request)
    pool = request.app[POOL]
    await fetch_visible(pool, p, cid)
    q = Sql(cid)
    rows, total = await fetch_page(
        pool,
        EVENT_COLUMNS,
        f"{EVENT_FROM} WHERE e.cylinder_id = $1",
        "e.ts, e.received_at, e.msg_id",
        q,
        page,
    )
    return json_response(
        {
            "items": [plain(r) for r in rows],
            "page": page.page,
            "page_size": page.page_size,
            "total": total,
        }
    )


# ---------------------------------------------------------------- periodic inspection


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
    rules = settings.dates
    day = today(settings)
    if body.inspected_on > day:
        raise bad_field("inspected_on", "is in the future")
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        cur = await fetch_visible(conn, p, cid, for_update=True)
        if cur["status"] == SCRAPPED:
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                "status: the cylinder is scrapped",
                {"field": "status"},
            )
        manufacture = cur["manufacture_date"]
        if body.inspected_on < manufacture:
            raise bad_field("inspected_on", "is before the cylinder's manufacture_date")
        agency = p.site_id if p.role == "inspector" else body.agency_site_id
        if (
            agency is not None
            and p.role == "admin"
            and not await conn.fetchval("SELECT true FROM sites WHERE id = $1", agency)
        ):
            raise bad_field("agency_site_id", "no such site")
        next_insp: dt.date = cur["next_inspection_date"]
        scrap: dt.date = cur["scrap_date"]
        capped = False
        status = cur["status"]
        if body.result == "pass":
            try:
                next_insp = body.next_inspection_date or derive_next_inspection(
                    manufacture, body.inspected_on, rules
                )
                if body.scrap_date is not None:
                    scrap = derive_scrap_date(manufacture, rules, extended_to=body.scrap_date)
                    capped = scrap != body.scrap_date
            except ValueError as exc:
                raise bad_field(
                    "scrap_date" if body.scrap_date else "inspected_on", str(exc)
                ) from None
            if next_insp <= body.inspected_on:
                raise bad_field("next_inspection_date", "must be after inspected_on")
            status = "in_service" if status in ("in_inspection", "suspended") else status
        elif body.result == "fail":
            status = "suspended"
        else:
            status = SCRAPPED
            scrap = min(scrap, body.inspected_on)
        last = max(body.inspected_on, cur["last_inspection_date"] or body.inspected_on)
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
            last,
            next_insp,
            scrap,
            status,
        )
        details = {
            "result": body.result,
            "report_no": body.report_no,
            "inspection_id": row["id"],
            "next_inspection_date": next_insp.isoformat(),
            "scrap_date": scrap.isoformat(),
            "scrap_date_capped": capped,
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
        if status == SCRAPPED:
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
        out = await _detail(conn, p, full, settings)
    return json_response(
        {"inspection": plain(row), "cylinder": out, "scrap_date_capped": capped}, 201
    )


def routes() -> list[web.RouteDef]:
    # `{id:\d+}` keeps /cylinders/import and /cylinders/export (server.api.archive) free.
    return [
        web.get(f"{API}/cylinders", list_cylinders, allow_head=False),
        web.post(f"{API}/cylinders", create_cylinder),
        web.get(API + r"/cylinders/{id:\d+}", get_cylinder, allow_head=False),
        web.patch(API + r"/cylinders/{id:\d+}", patch_cylinder),
        web.get(API + r"/cylinders/{id:\d+}/trajectory", trajectory, allow_head=False),
        web.post(API + r"/cylinders/{id:\d+}/inspections", inspect),
    ]
