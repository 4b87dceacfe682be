"""API keys of the enterprise data interface: create, list, revoke (docs/API.md "API keys").

Why one module: a key is a credential, and everything a person does with one — make it, see
which keys exist and when they were last used, take one back — should be read in one place.
The check of a key on each request is the kernel's (``server.kernel.principal``,
docs/ARCHITECTURE.md §7): it looks the key's hash up in ``api_keys`` on every request, with
no cache in Redis or in a process, so a revocation (``revoked_at`` set) refuses the key's next
request at once, in every server process.

Who: admins, company admins and inspection agencies hold keys (their systems feed the data
interface). Everyone lists and revokes their own keys; ``all=true`` widens the list to every
key the caller's users scope holds — an admin every key, a company admin its company's users'
keys (scope in SQL, ``server.kernel.scope``); ``user=`` narrows it to one user's. A key
outside that scope answers 404, like any row outside a scope.

Only a hash of the key is stored; the key itself is in the create answer only. Creation and
revocation are audited (``api_key.create``, ``api_key.revoke``).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Final

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    plain,
    read_body,
)
from server.kernel import errors
from server.kernel.appkeys import BUS, POOL
from server.kernel.audit import audit
from server.kernel.http import json_response, path_int, q_bool, q_page, q_str
from server.kernel.limits import body_limit
from server.kernel.principal import (
    API_KEY_PREFIX,
    Principal,
    hash_api_key,
    require,
    sessions_ended_event,
)
from server.kernel.scope import Sql, scope_where

ROLES: Final = ("admin", "company_admin", "inspector")
"""Roles whose systems use the enterprise data interface (docs/API.md "Roles and scope")."""
KEY_BYTES: Final = 32
"""Random bytes in a key (256 bits: guessing one is hopeless, and only a hash is stored)."""
PREFIX_CHARS: Final = 10
"""Characters of the key kept in clear (``cwk_`` and 6 more) so its owner can tell keys apart."""
NAME_MAX: Final = 100

_COLUMNS: Final = (
    "k.id, k.user_id, u.username, k.name, k.prefix, k.created_at, k.last_used_at,"
    " k.revoked_at, (k.revoked_at IS NULL) AS active"
)
_FROM: Final = "api_keys k JOIN users u ON u.id = k.user_id"


class ApiKeyBody(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=NAME_MAX)]
    """What the key is for (e.g. "ERP 对接"), 1 to 100 characters once trimmed."""


QUERY = (
    Param(
        "all", "boolean", "true: every key in your scope (admin: all; company admin: its company's)"
    ),
    Param("user", description="username: that user's keys (within your scope)"),
    Param("active", "boolean", "true: not revoked; false: revoked"),
)


def _scope(p: Principal, request: web.Request, q: Sql) -> list[str]:
    """The WHERE terms of the caller's keys list (see the module docstring)."""
    where = [scope_where(p, "users", "u", q)]
    user = q_str(request, "user", max_len=64)
    every = q_bool(request, "all")
    if user:
        where.append(f"u.username = {q.add(user)}")
    elif not every:
        where.append(f"k.user_id = {q.add(p.user_id)}")
    active = q_bool(request, "active")
    if active is not None:
        where.append("k.revoked_at IS NULL" if active else "k.revoked_at IS NOT NULL")
    return where


@api_doc(
    "List API keys",
    tags=["auth"],
    roles=ROLES,
    query=QUERY,
    paginated=True,
    description="Your own keys, newest first; all=true or user= widen it within your scope. "
    "Never the key itself: id, owner, name, prefix, created, last used, revoked.",
)
async def list_keys(request: web.Request) -> web.Response:
    """The caller's API keys (or its scope's), newest first."""
    p = require(request, *ROLES)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = _scope(p, request, q)
    rows, total = await fetch_page(
        request.app[POOL], _COLUMNS, f"{_FROM} WHERE {' AND '.join(where)}", "k.id DESC", q, page
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


@api_doc(
    "Create an API key",
    tags=["auth"],
    roles=ROLES,
    body=ApiKeyBody,
    responses={201: "the key, shown this once (only its hash is stored)"},
    description="A key for the caller's own account; send it as X-API-Key.",
)
@body_limit("small")
async def create_key(request: web.Request) -> web.Response:
    """An enterprise data-interface key for the caller (shown once, stored hashed)."""
    p = require(request, *ROLES)
    body = await read_body(request, ApiKeyBody)
    name = body.name.strip()
    if not name or len(name) > NAME_MAX:
        raise errors.bad_field("name", f"1 to {NAME_MAX} characters")
    key = API_KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    prefix = key[:PREFIX_CHARS]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)"
            " RETURNING id, created_at",
            p.user_id,
            name,
            prefix,
            hash_api_key(key),
        )
        assert row is not None
        await audit(
            conn,
            p,
            "api_key.create",
            "api_key",
            row["id"],
            {"name": name, "prefix": prefix, "user_id": p.user_id, "username": p.username},
            request.remote,
        )
    return json_response(
        {
            "id": row["id"],
            "name": name,
            "prefix": prefix,
            "key": key,
            "created_at": row["created_at"],
            "username": p.username,
        },
        201,
    )


@api_doc(
    "Revoke an API key",
    tags=["auth"],
    roles=ROLES,
    responses={404: "no such key in your scope"},
    description="The key is refused (401) from its next request on; websockets opened with "
    "an API key of its owner close. Revoking a revoked key changes nothing.",
)
async def revoke_key(request: web.Request) -> web.Response:
    """Revoke one key in the caller's scope (own keys; admin any; company admin its users')."""
    p = require(request, *ROLES)
    key_id = path_int(request)
    q = Sql(key_id)
    # the owner in the caller's users scope: admin anyone, company admin its company's
    # users (itself included), an inspection agency itself
    scope = scope_where(p, "users", "u", q)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        # lock the row: two revocations at once audit one change, not two
        cur = await conn.fetchrow(
            f"SELECT k.revoked_at FROM {_FROM} WHERE k.id = $1 AND {scope} FOR UPDATE OF k",
            *q.params,
        )
        if cur is None:
            raise errors.not_found(f"API key {key_id}")
        changed = cur["revoked_at"] is None
        if changed:
            await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_id)
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE k.id = $1", key_id)
        assert row is not None
        if changed:
            await audit(
                conn,
                p,
                "api_key.revoke",
                "api_key",
                key_id,
                {
                    "name": row["name"],
                    "prefix": row["prefix"],
                    "user_id": row["user_id"],
                    "username": row["username"],
                    "before": {"revoked_at": None},
                    "after": {"revoked_at": row["revoked_at"].isoformat()},
                },
                request.remote,
            )
    if changed:
        # A socket opened with an API key carries no key id, so the hub closes every API-key
        # socket of the owner (sessions=[] ends no session); the owner's other keys reconnect.
        request.app[BUS].publish(sessions_ended_event(row["user_id"], sessions=[], api_keys=True))
    return json_response(plain(row))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/auth/api-keys", list_keys, allow_head=False),
        web.post(f"{API}/auth/api-keys", create_key),
        web.delete(API + r"/auth/api-keys/{id:\d+}", revoke_key),
    ]
