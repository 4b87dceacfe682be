"""Real-name customers (实名制用户): list, read, create, change (docs/ARCHITECTURE.md §1, §7).

Personal data rules, and why:

- the resident ID number is accepted in full on create/change only to check it (GB 11643
  check digit) and to derive two things: a masked form (first 6 + last 4 digits) for
  display, and a keyed hash (HMAC-SHA256) for de-duplication and lookup. The full number is
  never stored, returned or logged; a plain hash would not do, since an 18-digit number with
  a known structure is reversible by enumeration — the HMAC key is a secret kept outside
  the database (`CYL_ID_HASH_KEY`, else the file `[privacy] id_hash_key_file`;
  `server.db.install.load_id_hash_key`), so a copy of the database does not reverse it;
- customers are a company's own: company admins manage theirs, station staff read theirs,
  regulators read those in their districts, inspection agencies none (docs/ARCHITECTURE.md §7);
- an account is opened (``opened_on``) and closed (``closed_on``, migration 0113; null while
  open): a closed account stays on file — the real-name record of who held cylinders, and
  the recovery report's "delivered to a customer whose account is closed" (DOMAIN.md
  "Circulation checks") — and is reopened by clearing the date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
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
    Phone,
    Text,
    UnsetType,
    api_doc,
    changes,
    check_query,
    contains,
    envelope,
    fetch_in_scope,
    fetch_page,
    insert_row,
    jsonable,
    plain,
    q_district,
    read_body,
    require_some,
    today,
)
from server.api.params import company_filter
from server.api.rows import before_after, update_row_audited
from server.db.install import load_id_hash_key
from server.domain.statuses import CUSTOMER_KINDS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, bad_query, forbidden
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, can_read, scope_where

READ_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator")
WRITE_ROLES = ("admin", "company_admin")
HIDDEN = ("id_number_hash",)
_ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def valid_id_number(number: str) -> bool:
    """An 18-character resident ID number with a correct GB 11643-1999 check digit."""
    if not _ID_RE.match(number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == number[17]


def mask_id_number(number: str) -> str:
    return f"{number[:6]}{'*' * 8}{number[-4:]}"


@dataclass
class IdHashKeyCache:
    """The install's ID-number HMAC key, read once per process."""

    key: bytes | None = None


ID_HASH_KEY: web.AppKey[IdHashKeyCache] = web.AppKey("id_hash_key", IdHashKeyCache)


def setup(app: web.Application) -> None:
    app[ID_HASH_KEY] = IdHashKeyCache()


async def id_hash_key(app: web.Application, pool: asyncpg.Pool) -> bytes:
    """The HMAC key, read once per process (`cylwatch serve` has checked it at start-up)."""
    cache = app[ID_HASH_KEY]
    if cache.key is None:
        cache.key = await load_id_hash_key(app[SETTINGS].privacy, pool, os.environ)
    return cache.key


async def hash_id_number(request: web.Request, number: str) -> str:
    key = await id_hash_key(request.app, request.app[POOL])
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


IdNumber = str  # validated by valid_id_number (never echoed in an error)


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True):
    account_no: Code
    name: Name
    company_id: Id | None = None
    id_number: IdNumber | None = None
    phone: Phone | None = None
    address: Text | None = None
    district_code: District | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    kind: str = "resident"
    opened_on: dt.date | None = None


class CustomerPatch(msgspec.Struct, forbid_unknown_fields=True):
    account_no: Code | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    id_number: IdNumber | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    address: Text | UnsetType | None = UNSET
    district_code: District | UnsetType | None = UNSET
    lat: Lat | UnsetType | None = UNSET
    lon: Lon | UnsetType | None = UNSET
    kind: str | UnsetType = UNSET
    opened_on: dt.date | UnsetType = UNSET
    closed_on: dt.date | UnsetType | None = UNSET


async def _personal(request: web.Request, fields: dict[str, Any]) -> None:
    """Replace `id_number` by its masked form and keyed hash (in place); check `kind`."""
    if "kind" in fields and fields["kind"] not in CUSTOMER_KINDS:
        raise bad_field("kind", f"must be one of {', '.join(CUSTOMER_KINDS)}")
    if "id_number" not in fields:
        return
    number = fields.pop("id_number")
    if number is None:
        fields["id_number_masked"] = None
        fields["id_number_hash"] = None
        return
    number = number.strip().upper()
    if not valid_id_number(number):
        raise bad_field("id_number", "not a valid 18-character resident ID number")
    fields["id_number_masked"] = mask_id_number(number)
    fields["id_number_hash"] = await hash_id_number(request, number)


def _readable(p: Principal) -> None:
    if not can_read(p, "customers"):
        raise forbidden(f"role {p.role} may not read customers")


ACCOUNT_STATES: Final = ("open", "closed")


def _check_dates(fields: dict[str, Any], today: dt.date) -> None:
    """An account is not opened or closed in the future (the database checks that it is not
    closed before it was opened: ``customers_closed_on_check``)."""
    for name in ("opened_on", "closed_on"):
        day = fields.get(name)
        if day is not None and day > today:
            raise bad_field(name, "must not be in the future")


QUERY = (
    Param("q", description="part of the account no., name, phone or masked ID number"),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
    Param("kind", enum=CUSTOMER_KINDS),
    Param("phone", description="exact phone number"),
    Param("id_number", description="full ID number: matched by its keyed hash, never stored"),
    Param("state", enum=ACCOUNT_STATES, description="open or closed accounts"),
)


@api_doc("List customers", tags=["customers"], roles=READ_ROLES, query=QUERY, paginated=True)
async def list_customers(request: web.Request) -> web.Response:
    """Customers in the caller's scope, by id."""
    p = require(request, *READ_ROLES)
    _readable(p)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "customers", "cu", q)]
    text = q_str(request, "q", max_len=100)
    if text:
        pat = q.add(contains(text))
        where.append(
            f"(cu.account_no ILIKE {pat} OR cu.name ILIKE {pat} OR cu.phone ILIKE {pat}"
            f" OR cu.id_number_masked ILIKE {pat})"
        )
    comp = company_filter(request, "cu.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"cu.district_code = {q.add(district)}")
    kind = q_choice(request, "kind", CUSTOMER_KINDS)
    if kind:
        where.append(f"cu.kind = {q.add(kind)}")
    phone = q_str(request, "phone", max_len=32)
    if phone:
        where.append(f"cu.phone = {q.add(phone)}")
    number = q_str(request, "id_number", max_len=18)
    if number:
        if not valid_id_number(number.upper()):
            raise bad_query("id_number", "not a valid 18-character resident ID number")
        where.append(f"cu.id_number_hash = {q.add(await hash_id_number(request, number.upper()))}")
    state = q_choice(request, "state", ACCOUNT_STATES)
    if state:
        where.append(f"cu.closed_on IS {'NULL' if state == 'open' else 'NOT NULL'}")
    rows, total = await fetch_page(
        request.app[POOL], "cu.*", f"customers cu WHERE {' AND '.join(where)}", "cu.id", q, page
    )
    return json_response(envelope([plain(r, HIDDEN) for r in rows], page, total))


async def _visible(request: web.Request, p: Principal, cid: int) -> dict[str, Any]:
    row = await fetch_in_scope(
        request,
        p,
        entity="customers",
        alias="cu",
        select="SELECT cu.* FROM customers cu",
        row_id=cid,
        what="customer",
    )
    return plain(row, HIDDEN)


@api_doc("Get a customer", tags=["customers"], roles=READ_ROLES)
async def get_customer(request: web.Request) -> web.Response:
    """One customer, if the caller's scope holds it (ID number masked)."""
    p = require(request, *READ_ROLES)
    _readable(p)
    return json_response(await _visible(request, p, path_int(request)))


@api_doc(
    "Create a customer",
    tags=["customers"],
    roles=WRITE_ROLES,
    body=CustomerCreate,
    responses={201: "created", 409: "account_no already exists for the company"},
)
async def create_customer(request: web.Request) -> web.Response:
    """Open a real-name account; a company admin opens them for its own company."""
    p = require(request, *WRITE_ROLES)
    body = await read_body(request, CustomerCreate)
    values = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
    if p.role == "company_admin":
        if body.company_id is not None and body.company_id != p.company_id:
            raise ApiError(
                403,
                "forbidden",
                "company_id: a company admin opens its own customers only",
                {"field": "company_id"},
            )
        values["company_id"] = p.company_id
    elif body.company_id is None:
        raise bad_field("company_id", "is required")
    _check_dates(values, today(request.app[SETTINGS]))
    await _personal(request, values)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if not await conn.fetchval(
            "SELECT true FROM companies WHERE id = $1", values["company_id"]
        ):
            raise bad_field("company_id", "no such company")
        row = await insert_row(conn, "customers", values, "account_no")
        await audit(
            conn,
            p,
            "customer.create",
            "customer",
            row["id"],
            jsonable({k: v for k, v in values.items() if k not in HIDDEN}),
            request.remote,
        )
    return json_response(plain(row, HIDDEN), 201)


@api_doc("Change a customer", tags=["customers"], roles=WRITE_ROLES, body=CustomerPatch)
async def patch_customer(request: web.Request) -> web.Response:
    """Change a customer of the caller's company (admin: any)."""
    p = require(request, *WRITE_ROLES)
    cid = path_int(request)
    body = await read_body(request, CustomerPatch)
    fields = changes(body)
    require_some(fields)
    await _visible(request, p, cid)  # 404 outside the scope
    _check_dates(fields, today(request.app[SETTINGS]))
    await _personal(request, fields)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row, before = await update_row_audited(conn, "customers", cid, fields, "account_no")
        await audit(
            conn,
            p,
            "customer.update",
            "customer",
            cid,
            jsonable(before_after(before, fields, HIDDEN)),
            request.remote,
        )
    return json_response(plain(row, HIDDEN))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/customers", list_customers, allow_head=False),
        web.post(f"{API}/customers", create_customer),
        web.get(API + r"/customers/{id:\d+}", get_customer, allow_head=False),
        web.patch(API + r"/customers/{id:\d+}", patch_customer),
    ]
