"""Cylinders (气瓶档案, 一瓶一码一档): search, one archive, trajectory — and the routes of
every cylinder endpoint (docs/API.md "Cylinders"; DOMAIN.md "Cylinder record").

Everyone logged in may search and read, within their scope (docs/API.md "Roles and
scope"), applied in SQL; a cylinder outside the scope answers 404, never 403, so its
existence does not leak. Registration and changes are in ``server.api.cylinder_changes``,
periodic inspection results in ``server.api.inspections``; their routes are mounted here
so that the whole resource is declared in one place.
"""

from __future__ import annotations

from aiohttp import web

from server.api.cylinder_changes import create_cylinder, patch_cylinder
from server.api.cylinder_rows import (
    LIST_COLUMNS,
    LIST_FROM,
    cylinder_detail,
    cylinder_json,
    event_json,
    fetch_visible,
)
from server.api.doc import API, Param, api_doc
from server.api.inspections import inspect
from server.api.params import check_query, company_filter, like_prefix
from server.api.rows import envelope, fetch_page
from server.db.compliance import COMPLIANCE_VALUES, ComplianceBounds, compliance_where
from server.domain.statuses import CYLINDER_STATUSES, ROLES
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.http import (
    json_response,
    path_int,
    q_choice,
    q_district,
    q_id,
    q_page,
    q_str,
)
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where

__all__ = ["EVENT_COLUMNS", "EVENT_FROM", "routes"]

# ---------------------------------------------------------------- search


LIST_QUERY = (
    Param("tag", description="exact RFID tag (unique)"),
    Param("stamp", description="exact steel stamp no."),
    Param("barcode", description="exact QR/barcode (unique)"),
    Param("q", description="prefix of tag, stamp or barcode"),
    Param("company", description="owner company code or id"),
    Param("status", enum=CYLINDER_STATUSES),
    Param(
        "compliance",
        enum=COMPLIANCE_VALUES,
        description="computed from dates (docs/ARCHITECTURE.md §4)",
    ),
    Param("district", description="6-digit district code where the cylinder is now"),
    Param("spec", description="model code, e.g. YSP35.5"),
    Param("site", "integer", description="id of the site where the cylinder is now"),
)


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
    day = city_today(settings)
    compliance = q_choice(request, "compliance", COMPLIANCE_VALUES)
    if compliance:
        where.append(compliance_where(compliance, "c", q, ComplianceBounds.of(day, settings.dates)))
    rows, total = await fetch_page(
        request.app[POOL],
        LIST_COLUMNS,
        f"{LIST_FROM} WHERE {' AND '.join(where)}",
        "c.id",
        q,
        page,
    )
    return json_response(envelope([cylinder_json(r, settings, day) for r in rows], page, total))


# ---------------------------------------------------------------- one cylinder


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
    return json_response(await cylinder_detail(pool, p, row, request.app[SETTINGS]))


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
    return json_response(envelope([event_json(r, p) for r in rows], page, total))


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
