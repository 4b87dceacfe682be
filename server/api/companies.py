"""Companies (产权单位 / gas companies): list, read, create, change (docs/ARCHITECTURE.md §1, §7).

Companies are public-register facts, so every role may list them within its scope (a
company's own staff see only their company). Creating a company and its licence fields
(licence no., expiry, status) are the bureau's act: admin only; regulators suspend, revoke
and reinstate licences through ``server.api.licences`` (with a reason). A company admin
keeps its own contact details current, the order phone (订气电话) the public QR page offers
among them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    UNSET,
    Code,
    District,
    Name,
    Param,
    Phone,
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
    read_body,
    require_some,
)
from server.api.rows import before_after, update_row_audited
from server.domain.statuses import LICENCE_STATUSES, ROLES
from server.kernel.appkeys import POOL
from server.kernel.audit import audit
from server.kernel.errors import bad_field
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where

CONTACT_FIELDS = frozenset(
    {"contact_name", "contact_phone", "order_phone", "address", "notice_text", "notice_url"}
)
# the notice or promotion of the public QR page (migration 0150): a phone screen's couple of
# lines, and a link that can only be a web address (never `javascript:`)
NoticeText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
NoticeUrl = Annotated[str, msgspec.Meta(max_length=300, pattern=r'^https?://[^\s<>"]+$')]
ALL_FIELDS = CONTACT_FIELDS | {
    "code",
    "name",
    "district_code",
    "licence_no",
    "licence_expiry",
    "licence_status",
}


class CompanyCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Name
    district_code: District | None = None
    licence_no: Code | None = None
    licence_expiry: dt.date | None = None
    licence_status: str = "valid"
    contact_name: Name | None = None
    contact_phone: Phone | None = None
    order_phone: Phone | None = None
    address: Text | None = None


class CompanyPatch(msgspec.Struct, forbid_unknown_fields=True):
    code: Code | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    district_code: District | UnsetType | None = UNSET
    licence_no: Code | UnsetType | None = UNSET
    licence_expiry: dt.date | UnsetType | None = UNSET
    licence_status: str | UnsetType = UNSET
    contact_name: Name | UnsetType | None = UNSET
    contact_phone: Phone | UnsetType | None = UNSET
    order_phone: Phone | UnsetType | None = UNSET
    address: Text | UnsetType | None = UNSET
    notice_text: NoticeText | UnsetType | None = UNSET
    notice_url: NoticeUrl | UnsetType | None = UNSET


def _check_licence_status(value: object) -> None:
    if value is not UNSET and value not in LICENCE_STATUSES:
        raise bad_field("licence_status", f"must be one of {', '.join(LICENCE_STATUSES)}")


QUERY = (
    Param("q", description="part of the code or name"),
    Param("district", description="6-digit district code"),
    Param("licence_status", enum=LICENCE_STATUSES),
)


@api_doc("List companies", tags=["companies"], roles=ROLES, query=QUERY, paginated=True)
async def list_companies(request: web.Request) -> web.Response:
    """Companies in the caller's scope, by code."""
    p = require(request)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "companies", "co", q)]
    text = q_str(request, "q", max_len=100)
    if text:
        pat = q.add(contains(text))
        where.append(f"(co.code ILIKE {pat} OR co.name ILIKE {pat})")
    district = q_district(request)
    if district:
        where.append(f"co.district_code = {q.add(district)}")
    lic = q_choice(request, "licence_status", LICENCE_STATUSES)
    if lic:
        where.append(f"co.licence_status = {q.add(lic)}")
    rows, total = await fetch_page(
        request.app[POOL], "co.*", f"companies co WHERE {' AND '.join(where)}", "co.code", q, page
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


async def _visible(request: web.Request, cid: int) -> dict[str, object]:
    p = require(request)
    row = await fetch_in_scope(
        request,
        p,
        entity="companies",
        alias="co",
        select="SELECT co.* FROM companies co",
        row_id=cid,
        what="company",
    )
    return plain(row)


@api_doc("Get a company", tags=["companies"], roles=ROLES)
async def get_company(request: web.Request) -> web.Response:
    """One company, if the caller's scope holds it."""
    return json_response(await _visible(request, path_int(request)))


@api_doc(
    "Create a company",
    tags=["companies"],
    roles=["admin"],
    body=CompanyCreate,
    responses={201: "created", 409: "code already exists"},
)
async def create_company(request: web.Request) -> web.Response:
    """Register a company (admin: the bureau keeps the register)."""
    p = require(request, "admin")
    body = await read_body(request, CompanyCreate)
    _check_licence_status(body.licence_status)
    values = msgspec.structs.asdict(body)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await insert_row(conn, "companies", values, "code")
        await audit(
            conn, p, "company.create", "company", row["id"], jsonable(values), request.remote
        )
    return json_response(plain(row), 201)


@api_doc(
    "Change a company",
    tags=["companies"],
    roles=["admin", "company_admin"],
    body=CompanyPatch,
    description="admin: any field; company_admin: contact_name, contact_phone, order_phone, "
    "address, notice_text and notice_url (the public QR page's notice) of its own.",
)
async def patch_company(request: web.Request) -> web.Response:
    """Change a company; licence fields are the bureau's (admin only)."""
    p = require(request, "admin", "company_admin")
    cid = path_int(request)
    body = await read_body(request, CompanyPatch)
    fields = changes(body)
    require_some(fields)
    deny_fields(p, fields, frozenset(ALL_FIELDS) if p.role == "admin" else CONTACT_FIELDS)
    _check_licence_status(fields.get("licence_status", UNSET))
    await _visible(request, cid)
    stored = dict(fields)
    if "licence_status" in fields:  # set by hand: no regulator's reason applies any more
        stored.update(licence_status_at=dt.datetime.now(dt.UTC), licence_status_reason=None)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row, before = await update_row_audited(conn, "companies", cid, stored, "code")
        details = jsonable(before_after(before, fields))
        await audit(conn, p, "company.update", "company", cid, details, request.remote)
    return json_response(plain(row))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/companies", list_companies, allow_head=False),
        web.post(f"{API}/companies", create_company),
        web.get(API + r"/companies/{id:\d+}", get_company, allow_head=False),
        web.patch(API + r"/companies/{id:\d+}", patch_company),
    ]
