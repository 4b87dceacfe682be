"""Kiosk tokens of the command-centre walls: issue, list, revoke (docs/API.md "Kiosk tokens").

Admins only. The token itself — its format, its expiry, why never for an admin account —
is ``server.kernel.kiosk_tokens``; the wall trades it for a read-only session
(``big_screen.kiosk``). Every issue and revocation is audited; a revocation also ends the
kiosk sessions traded from the token and closes their websockets at once.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    jsonable,
    plain,
    read_body,
)
from server.kernel import errors, kiosk_tokens
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import json_response, path_int, q_bool, q_page, q_str
from server.kernel.principal import require
from server.kernel.scope import Sql

ADMIN = ("admin",)
Note = Annotated[str, msgspec.Meta(max_length=200)]


class KioskTokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    """The wall account: an active regulator (never an admin)."""
    note: Note = ""
    """Where the wall hangs, for the list (e.g. "市指挥中心 2号屏")."""


QUERY = (
    Param("user", description="username of the wall account"),
    Param("active", "boolean", description="true: neither revoked nor expired"),
)


@api_doc(
    "List kiosk tokens",
    tags=["auth"],
    roles=ADMIN,
    query=QUERY,
    paginated=True,
    description="Every kiosk token, newest first (never the token itself).",
)
async def list_tokens(request: web.Request) -> web.Response:
    """Kiosk tokens, newest first; the secret is never shown again."""
    require(request, *ADMIN)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = ["true"]
    user = q_str(request, "user", max_len=64)
    if user:
        where.append(f"u.username = {q.add(user)}")
    active = q_bool(request, "active")
    if active is not None:
        live = "(k.revoked_at IS NULL AND k.expires_at > now())"
        where.append(live if active else f"NOT {live}")
    rows, total = await fetch_page(
        request.app[POOL],
        kiosk_tokens.LIST_COLUMNS,
        f"{kiosk_tokens.LIST_FROM} WHERE {' AND '.join(where)}",
        "k.id DESC",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


@api_doc(
    "Issue a kiosk token",
    tags=["auth"],
    roles=ADMIN,
    body=KioskTokenCreate,
    responses={201: "issued: the token and the wall's URL, shown once", 404: "no such user"},
    description="For an active regulator account only; expires after auth.kiosk_token_max_age_s.",
)
async def issue(request: web.Request) -> web.Response:
    """A kiosk token and the wall URL that carries it (shown once)."""
    p = require(request, *ADMIN)
    body = await read_body(request, KioskTokenCreate)
    pool = request.app[POOL]
    settings = request.app[SETTINGS]
    row = await pool.fetchrow(
        "SELECT id, role, active FROM users WHERE username = $1", body.username
    )
    if row is None:
        raise ApiError(404, errors.NOT_FOUND, f"no user {body.username!r}")
    if row["role"] not in kiosk_tokens.KIOSK_ROLES or not row["active"]:
        roles = " or ".join(kiosk_tokens.KIOSK_ROLES)
        raise errors.bad_field("username", f"a wall account must be an active {roles}")
    async with pool.acquire() as conn, conn.transaction():
        issued = await kiosk_tokens.issue(
            conn,
            row["id"],
            settings.auth.kiosk_token_max_age_s,
            issued_by=p.user_id,
            note=body.note.strip(),
        )
        await audit(
            conn,
            p,
            "kiosk_token.issue",
            "kiosk_token",
            issued.id,
            {"user_id": row["id"], "username": body.username, "note": body.note.strip()},
            request.remote,
        )
    base = settings.http.base_url.rstrip("/")
    return json_response(
        {
            "id": issued.id,
            "username": body.username,
            "token": issued.token,
            "url": f"{base}/big-screen?kiosk={issued.token}",
            "expires_at": issued.expires_at,
        },
        201,
    )


@api_doc(
    "Revoke a kiosk token",
    tags=["auth"],
    roles=ADMIN,
    responses={404: "no such token"},
    description="The token stops working at once; the wall's kiosk sessions end and their "
    "websockets close. Revoking a revoked token changes nothing.",
)
async def revoke(request: web.Request) -> web.Response:
    """Revoke one kiosk token and end the sessions traded from it."""
    p = require(request, *ADMIN)
    token_id = path_int(request)
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await kiosk_tokens.revoke(conn, token_id)
        if row is None:
            raise ApiError(404, errors.NOT_FOUND, f"no kiosk token {token_id}")
        await audit(
            conn,
            p,
            "kiosk_token.revoke",
            "kiosk_token",
            token_id,
            jsonable({"user_id": row["user_id"], "username": row["username"]}),
            request.remote,
        )
    await kiosk_tokens.end_token_sessions(request.app, row["user_id"], token_id)
    return json_response(plain(row))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/kiosk-tokens", list_tokens, allow_head=False),
        web.post(f"{API}/kiosk-tokens", issue),
        web.delete(API + r"/kiosk-tokens/{id:\d+}", revoke),
    ]
