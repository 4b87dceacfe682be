"""Sites: filling stations, stores, warehouses, inspection agencies (docs/ARCHITECTURE.md §1, §7).

A company admin manages its own stations and stores; the filling licence and the
permitted full-cylinder storage (重瓶存放 limit, the overstock rule's number) are issued
by the bureau, so only the admin sets them. Inspection agencies are registered by the
admin too (they are not any gas company's).

Each site row carries its live stock — full and empty cylinders held there now, counted as
the overstock rule counts them (``ingest/store/storage.py``) — and the storage limit that
rule applies (the site's own number, else the ``[alerts]`` default for its kind:
:func:`server.domain.supervision.permitted_storage`), so the stations page shows a site
against its permit without a second request per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import asyncpg
import msgspec
from aiohttp import web

from server.api.common import (
    API,
    UNSET,
    Code,
    District,
    Id,
    Lat,
    Lon,
    Name,
    Param,
    Storage,
    Text,
    UnsetType,
    api_doc,
    changes,
    check_query,
    contains,
    deny_fields,
    envelope,
    fetch_in_scope,
    fetch_page,
    insert_row,
    jsonable,
    plain,
    q_district,
    q_id,
    read_body,
    require_some,
)
from server.api.params import company_filter
from server.api.rows import before_after, update_row_audited
from server.domain.statuses import LICENCE_STATUSES, ROLES, SITE_KINDS
from server.domain.supervision import permitted_storage
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, forbidden
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where

REGULATED = frozenset({"licence_no", "licence_expiry", "licence_status", "permitted_full_storage"})
COMPANY_FIELDS = frozenset(
    {"code", "name", "kind", "company_id", "district_code", "address", "lat", "lon"}
)
WRITE_ROLES = ("admin", "company_admin")


class SiteCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Name
    kind: str
    company_id: Id | None = None
    district_code: District | None = None
    address: Text | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    permitted_full_storage: Storage | None = None
    licence_no: Code | None = None
    licence_expiry: dt.date | None = None
    licence_status: str = "valid"


class SitePatch(msgspec.Struct, forbid_unknown_fields=True):
    code: Code | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    company_id: Id | UnsetType | None = UNSET
    district_code: District | UnsetType | None = UNSET
    address: Text | UnsetType | None = UNSET
    lat: Lat | UnsetType | None = UNSET
    lon: Lon | UnsetType | None = UNSET
    permitted_full_storage: Storage | UnsetType | None = UNSET
    licence_no: Code | UnsetType | None = UNSET
    licence_expiry: dt.date | UnsetType | None = UNSET
    licence_status: str | UnsetType = UNSET


def _check(p: Principal, fields: dict[str, Any]) -> None:
    """Vocabulary and who-sets-what rules shared by create and change."""
    if "kind" in fields and fields["kind"] not in SITE_KINDS:
        raise bad_field("kind", f"must be one of {', '.join(SITE_KINDS)}")
    if "licence_status" in fields and fields["licence_status"] not in LICENCE_STATUSES:
        raise bad_field("licence_status", f"must be one of {', '.join(LICENCE_STATUSES)}")
    if p.role == "company_admin":
        deny_fields(
            p,
            {k: v for k, v in fields.items() if k != "licence_status" or v != "valid"},
            COMPANY_FIELDS,
        )
        if fields.get("kind") == "inspection_agency":
            raise ApiError(
                403,
                "forbidden",
                "kind: inspection agencies are registered by the admin",
                {"field": "kind"},
            )
        if "company_id" in fields and fields["company_id"] != p.company_id:
            raise ApiError(
                403,
                "forbidden",
                "company_id: a company admin manages its own sites only",
                {"field": "company_id"},
            )


def _check_position(lat: float | None, lon: float | None) -> None:
    """A position is both coordinates or none: a site with a latitude alone cannot be drawn
    (the stations page picks both on a map)."""
    if (lat is None) != (lon is None):
        field = "lon" if lon is None else "lat"
        raise bad_field(field, "give both lat and lon, or neither")


QUERY = (
    Param("q", description="part of the code or name"),
    Param("kind", enum=SITE_KINDS),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
    Param("licence_status", enum=LICENCE_STATUSES),
)

_STOCK_SQL: Final = """
SELECT location_site_id AS site_id,
       count(*) FILTER (WHERE fill_state = 'full') AS full,
       count(*) FILTER (WHERE fill_state = 'empty') AS empty
  FROM cylinders
 WHERE location_site_id = ANY($1::bigint[]) AND location_kind = 'site'
 GROUP BY location_site_id
"""
"""Cylinders held at each site now (index ``cylinders_site_idx``): what the overstock rule
counts, plus the empties."""


async def _with_stock(request: web.Request, rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """*rows* as JSON with ``stock_full``, ``stock_empty`` and ``storage_limit`` (the
    permitted full cylinders the overstock rule applies; 0: no limit)."""
    counts = {
        r["site_id"]: r for r in await request.app[POOL].fetch(_STOCK_SQL, [r["id"] for r in rows])
    }
    rules = request.app[SETTINGS].alerts
    out = []
    for r in rows:
        item = plain(r)
        held = counts.get(r["id"])
        item["stock_full"] = int(held["full"]) if held else 0
        item["stock_empty"] = int(held["empty"]) if held else 0
        item["storage_limit"] = permitted_storage(r["kind"], r["permitted_full_storage"], rules)
        out.append(item)
    return out


@api_doc("List sites", tags=["sites"], roles=ROLES, query=QUERY, paginated=True)
async def list_sites(request: web.Request) -> web.Response:
    """Sites in the caller's scope, by code."""
    p = require(request)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "sites", "s", q)]
    text = q_str(request, "q", max_len=100)
    if text:
        pat = q.add(contains(text))
        where.append(f"(s.code ILIKE {pat} OR s.name ILIKE {pat})")
    kind = q_choice(request, "kind", SITE_KINDS)
    if kind:
        where.append(f"s.kind = {q.add(kind)}")
    comp = company_filter(request, "s.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"s.district_code = {q.add(district)}")
    licence = q_choice(request, "licence_status", LICENCE_STATUSES)
    if licence:
        where.append(f"s.licence_status = {q.add(licence)}")
    rows, total = await fetch_page(
        request.app[POOL],
        "s.*, co.name AS company_name",
        f"sites s LEFT JOIN companies co ON co.id = s.company_id WHERE {' AND '.join(where)}",
        "s.code",
        q,
        page,
    )
    return json_response(envelope(await _with_stock(request, rows), page, total))


async def _visible(request: web.Request, p: Principal, sid: int) -> asyncpg.Record:
    return await fetch_in_scope(
        request,
        p,
        entity="sites",
        alias="s",
        row_id=sid,
        what="site",
        select="SELECT s.*, co.name AS company_name"
        " FROM sites s LEFT JOIN companies co ON co.id = s.company_id",
    )


@api_doc("Get a site", tags=["sites"], roles=ROLES)
async def get_site(request: web.Request) -> web.Response:
    """One site with its live stock, if the caller's scope holds it."""
    p = require(request)
    (site,) = await _with_stock(request, [await _visible(request, p, path_int(request))])
    return json_response(site)


@api_doc(
    "Create a site",
    tags=["sites"],
    roles=WRITE_ROLES,
    body=SiteCreate,
    responses={201: "created", 409: "code already exists"},
    description="company_admin: its own company's stations/stores/warehouses, without licence "
    "or storage fields (admin only).",
)
async def create_site(request: web.Request) -> web.Response:
    """Register a site; a company admin's site belongs to its company."""
    p = require(request, *WRITE_ROLES)
    body = await read_body(request, SiteCreate)
    values = msgspec.structs.asdict(body)
    given = {k: v for k, v in values.items() if v is not None}
    if p.role == "company_admin":
        given.setdefault("company_id", p.company_id)
    _check(p, given)
    _check_position(body.lat, body.lon)
    if p.role == "company_admin":
        values["company_id"] = p.company_id
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await insert_row(conn, "sites", values, "code")
        await audit(conn, p, "site.create", "site", row["id"], jsonable(values), request.remote)
    return json_response(plain(row), 201)


@api_doc("Change a site", tags=["sites"], roles=WRITE_ROLES, body=SitePatch)
async def patch_site(request: web.Request) -> web.Response:
    """Change a site; licence and storage limit are the admin's."""
    p = require(request, *WRITE_ROLES)
    sid = path_int(request)
    body = await read_body(request, SitePatch)
    fields = changes(body)
    require_some(fields)
    _check(p, fields)
    cur = await _visible(request, p, sid)
    if p.role == "company_admin" and cur["company_id"] != p.company_id:
        raise forbidden("a company admin manages its own sites only")
    _check_position(fields.get("lat", cur["lat"]), fields.get("lon", cur["lon"]))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row, before = await update_row_audited(conn, "sites", sid, fields, "code")
        await audit(
            conn,
            p,
            "site.update",
            "site",
            sid,
            jsonable(before_after(before, fields)),
            request.remote,
        )
    return json_response(plain(row))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/sites", list_sites, allow_head=False),
        web.post(f"{API}/sites", create_site),
        web.get(API + r"/sites/{id:\d+}", get_site, allow_head=False),
        web.patch(API + r"/sites/{id:\d+}", patch_site),
    ]


__all__ = ["q_id", "routes"]
