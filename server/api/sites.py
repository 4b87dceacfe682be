"""Sites: filling stations, stores, warehouses, inspection agencies (docs/ARCHITECTURE.md §1, §7).

A company admin manages its own stations and stores; the filling licence and the
permitted full-cylinder storage (重瓶存放 limit, the overstock rule's number) are issued
by the bureau, so only the admin sets them. Inspection agencies are registered by the
admin too (they are not any gas company's).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
    update_row,
)
from server.api.params import company_filter
from server.domain.statuses import LICENCE_STATUSES, ROLES, SITE_KINDS
from server.kernel.appkeys import POOL
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


QUERY = (
    Param("q", description="part of the code or name"),
    Param("kind", enum=SITE_KINDS),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
)


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
    rows, total = await fetch_page(
        request.app[POOL],
        "s.*, co.name AS company_name",
        f"sites s LEFT JOIN companies co ON co.id = s.company_id WHERE {' AND '.join(where)}",
        "s.code",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


async def _visible(request: web.Request, p: Principal, sid: int) -> dict[str, Any]:
    row = await fetch_in_scope(
        request,
        p,
        entity="sites",
        alias="s",
        row_id=sid,
        what="site",
        select="SELECT s.*, co.name AS company_name"
        " FROM sites s LEFT JOIN companies co ON co.id = s.company_id",
    )
    return plain(row)


@api_doc("Get a site", tags=["sites"], roles=ROLES)
async def get_site(request: web.Request) -> web.Response:
    """One site, if the caller's scope holds it."""
    p = require(request)
    return json_response(await _visible(request, p, path_int(request)))


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
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await update_row(conn, "sites", sid, fields, "code")
        await audit(conn, p, "site.update", "site", sid, jsonable(fields), request.remote)
    return json_response(plain(row))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/sites", list_sites, allow_head=False),
        web.post(f"{API}/sites", create_site),
        web.get(API + r"/sites/{id:\d+}", get_site, allow_head=False),
        web.patch(API + r"/sites/{id:\d+}", patch_site),
    ]


__all__ = ["q_id", "routes"]
