"""Users: list, read, create, change (docs/ARCHITECTURE.md §7).

- the admin manages every account;
- a company admin manages its own company's station staff (station_operator) only — it
  cannot create another company admin or touch anyone else, so a company cannot widen
  its own powers;
- everyone may read their own account and change their display name, language and
  password (the password only with the current one, so a stolen session alone cannot
  take the account over).

Passwords are argon2id-hashed with the cost from settings (`server.kernel.passwords`), off
the event loop; the hash is never returned. Credentials have a life cycle (docs/SECURITY.md
"Sessions and credentials"): a password change ends every other session of the account
(the one that made the change, if it is the account's own, stays) and closes their
websockets; a deactivation ends all of its sessions and websockets and revokes its API
keys and kiosk tokens — a reactivated account starts with no credential but its password.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    UNSET,
    District,
    Id,
    Name,
    Param,
    UnsetType,
    api_doc,
    changes,
    check_query,
    envelope,
    fetch_in_scope,
    fetch_page,
    insert_row,
    jsonable,
    like_prefix,
    q_id,
    read_body,
    require_some,
)
from server.api.rows import before_after, update_row_audited
from server.domain.statuses import ROLES
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, forbidden
from server.kernel.http import json_response, path_int, q_bool, q_choice, q_page, q_str
from server.kernel.kiosk_tokens import revoke_all as revoke_kiosk_tokens
from server.kernel.passwords import hash_password_async, verify_password_async
from server.kernel.principal import Principal, end_sessions, require
from server.kernel.scope import Sql, scope_where

Username = Annotated[str, msgspec.Meta(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@\-]+$")]
Password = Annotated[str, msgspec.Meta(max_length=1000)]
Language = Annotated[str, msgspec.Meta(pattern=r"^(zh-CN|en)$")]
COLUMNS = """u.id, u.username, u.display_name, u.role, u.company_id, u.site_id, u.districts,
    u.language, u.active, u.created_at, u.updated_at, u.last_login_at"""
WRITE_ROLES = ("admin", "company_admin")
SELF_FIELDS = frozenset({"display_name", "language", "password", "current_password"})
STAFF_FIELDS = SELF_FIELDS | {"active", "site_id"}


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password
    role: str
    display_name: Name | None = None
    company_id: Id | None = None
    site_id: Id | None = None
    districts: list[District] = msgspec.field(default_factory=list)
    language: Language = "zh-CN"
    active: bool = True


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    display_name: Name | UnsetType | None = UNSET
    language: Language | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    current_password: Password | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    role: str | UnsetType = UNSET
    company_id: Id | UnsetType | None = UNSET
    site_id: Id | UnsetType | None = UNSET
    districts: list[District] | UnsetType = UNSET


def _user_json(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "password_hash"}
    out["districts"] = list(out.get("districts") or [])
    return out


async def _check_password(request: web.Request, password: str) -> str:
    rules = request.app[SETTINGS].auth
    if len(password) < rules.min_password_length:
        raise bad_field("password", f"at least {rules.min_password_length} characters")
    return await hash_password_async(rules, password)


async def _check_shape(request: web.Request, v: dict[str, Any]) -> None:
    """Role, company, site and districts must fit together (the table's CHECKs, said clearly)."""
    pool = request.app[POOL]
    role = v["role"]
    if role not in ROLES:
        raise bad_field("role", f"must be one of {', '.join(ROLES)}")
    site = None
    if v.get("site_id") is not None:
        site = await pool.fetchrow("SELECT kind, company_id FROM sites WHERE id = $1", v["site_id"])
        if site is None:
            raise bad_field("site_id", "no such site")
    if v.get("company_id") is not None and not await pool.fetchval(
        "SELECT true FROM companies WHERE id = $1", v["company_id"]
    ):
        raise bad_field("company_id", "no such company")
    if role == "station_operator":
        if site is None:
            raise bad_field("site_id", "a station operator belongs to a site")
        if site["company_id"] is None:
            raise bad_field("site_id", "the site belongs to no company")
        if v.get("company_id") not in (None, site["company_id"]):
            raise bad_field("company_id", "must be the company of the site")
        v["company_id"] = site["company_id"]
    if role == "company_admin" and v.get("company_id") is None:
        raise bad_field("company_id", "a company admin belongs to a company")
    if role == "inspector" and (site is None or site["kind"] != "inspection_agency"):
        raise bad_field("site_id", "an inspector belongs to an inspection agency site")
    if role == "officer" and not v.get("districts"):
        raise bad_field("districts", "an officer is scoped to at least one district")
    if v.get("districts"):
        if role not in ("regulator", "officer"):
            raise bad_field("districts", "only regulators and officers have districts")
        known = await pool.fetchval(
            "SELECT count(*) FROM districts WHERE code = ANY($1::text[])", v["districts"]
        )
        if known != len(set(v["districts"])):
            raise bad_field("districts", "unknown district code")


QUERY = (
    Param("q", description="prefix of the username"),
    Param("role", enum=ROLES),
    Param("company", "integer", description="company id"),
    Param("active", "boolean"),
)


@api_doc(
    "List users",
    tags=["users"],
    roles=ROLES,
    query=QUERY,
    paginated=True,
    description="admin: all; company_admin: its company's accounts; others: themselves.",
)
async def list_users(request: web.Request) -> web.Response:
    """Accounts in the caller's scope, by username (never the password hash)."""
    p = require(request)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "users", "u", q)]
    prefix = q_str(request, "q", max_len=64)
    if prefix:
        lo, hi = like_prefix(prefix)
        where.append(f"(u.username ~>=~ {q.add(lo)} AND u.username ~<~ {q.add(hi)})")
    role = q_choice(request, "role", ROLES)
    if role:
        where.append(f"u.role = {q.add(role)}")
    company = q_id(request, "company")
    if company:
        where.append(f"u.company_id = {q.add(company)}")
    active = q_bool(request, "active")
    if active is not None:
        where.append(f"u.active = {q.add(active)}")
    rows, total = await fetch_page(
        request.app[POOL], COLUMNS, f"users u WHERE {' AND '.join(where)}", "u.username", q, page
    )
    return json_response(envelope([_user_json(r) for r in rows], page, total))


async def _visible(request: web.Request, p: Principal, uid: int) -> dict[str, Any]:
    row = await fetch_in_scope(
        request,
        p,
        entity="users",
        alias="u",
        select=f"SELECT {COLUMNS} FROM users u",
        row_id=uid,
        what="user",
    )
    return _user_json(row)


@api_doc("Get a user", tags=["users"], roles=ROLES)
async def get_user(request: web.Request) -> web.Response:
    """One account in the caller's scope."""
    p = require(request)
    return json_response(await _visible(request, p, path_int(request)))


@api_doc(
    "Create a user",
    tags=["users"],
    roles=WRITE_ROLES,
    body=UserCreate,
    responses={201: "created", 409: "username already exists"},
    description="company_admin: station_operator accounts at its own company's sites only.",
)
async def create_user(request: web.Request) -> web.Response:
    """Create an account; a company admin creates its own station staff only."""
    p = require(request, *WRITE_ROLES)
    body = await read_body(request, UserCreate)
    values = msgspec.structs.asdict(body)
    if p.role == "company_admin":
        if body.role != "station_operator":
            raise ApiError(
                403,
                "forbidden",
                "role: a company admin creates station operators only",
                {"field": "role"},
            )
        if body.company_id not in (None, p.company_id):
            raise ApiError(
                403, "forbidden", "company_id: not your company", {"field": "company_id"}
            )
    await _check_shape(request, values)
    if p.role == "company_admin" and values["company_id"] != p.company_id:
        raise ApiError(
            403, "forbidden", "site_id: not a site of your company", {"field": "site_id"}
        )
    values["password_hash"] = await _check_password(request, values.pop("password"))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await insert_row(conn, "users", values, "username")
        await audit(
            conn,
            p,
            "user.create",
            "user",
            row["id"],
            jsonable({k: v for k, v in values.items() if k != "password_hash"}),
            request.remote,
        )
    return json_response(_user_json(row), 201)


@api_doc(
    "Change a user",
    tags=["users"],
    roles=ROLES,
    body=UserPatch,
    description="admin: anyone; company_admin: its station operators (name, language, "
    "password, active, site); everyone: own display_name, language, password "
    "(with current_password).",
)
async def patch_user(request: web.Request) -> web.Response:
    """Change an account within the caller's powers (module docstring)."""
    p = require(request)
    uid = path_int(request)
    body = await read_body(request, UserPatch)
    fields = changes(body)
    require_some(fields)
    cur = await _visible(request, p, uid)
    pool = request.app[POOL]
    if p.role == "admin":
        allowed = frozenset(UserPatch.__struct_fields__)
    elif uid == p.user_id:
        allowed = SELF_FIELDS
    elif p.role == "company_admin" and cur["role"] == "station_operator":
        allowed = STAFF_FIELDS
    else:
        raise forbidden("you may change your own account and, as company admin, your station staff")
    for name in fields:
        if name not in allowed:
            raise ApiError(
                403, "forbidden", f"{name}: you may not change this field", {"field": name}
            )
    current = fields.pop("current_password", None)
    if "password" in fields:
        if uid == p.user_id and p.role != "admin":
            stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", uid)
            if current is None or not await verify_password_async(
                request.app[SETTINGS].auth, stored, current
            ):
                raise bad_field("current_password", "wrong or missing current password")
        fields["password_hash"] = await _check_password(request, fields.pop("password"))
    if fields.keys() & {"role", "company_id", "site_id", "districts"}:
        merged = {**cur, **fields}
        await _check_shape(request, merged)
        if p.role == "company_admin" and merged["company_id"] != p.company_id:
            raise ApiError(
                403, "forbidden", "site_id: not a site of your company", {"field": "site_id"}
            )
        if merged["company_id"] != cur["company_id"]:
            fields["company_id"] = merged["company_id"]
    if not fields:
        return json_response(cur)
    deactivated = fields.get("active") is False and cur["active"]
    async with pool.acquire() as conn, conn.transaction():
        _, before = await update_row_audited(conn, "users", uid, fields, "username")
        details = before_after(before, fields, ("password_hash",))
        if deactivated:
            details["api_keys_revoked"] = await _revoke_api_keys(conn, uid)
            details["kiosk_tokens_revoked"] = await revoke_kiosk_tokens(conn, uid)
        await audit(conn, p, "user.update", "user", uid, jsonable(details), request.remote)
    if deactivated:
        await end_sessions(request.app, uid, api_keys=True)
    elif "password_hash" in fields:
        # the account's own session that changed it stays; an admin's reset ends them all
        keep = p.session_id if uid == p.user_id else None
        await end_sessions(request.app, uid, keep=keep)
    return json_response(await _visible(request, p, uid))


async def _revoke_api_keys(conn: Any, uid: int) -> int:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", uid
    )
    return int(status.split()[-1])


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/users", list_users, allow_head=False),
        web.post(f"{API}/users", create_user),
        web.get(API + r"/users/{id:\d+}", get_user, allow_head=False),
        web.patch(API + r"/users/{id:\d+}", patch_user),
    ]
