"""REST endpoints of who is asking (docs/API.md "Authentication"): login, logout, me, API keys.

The session machinery itself (sessions, tokens, CSRF, the password check) is the kernel's
`server.kernel.principal`, shared with the pages' own login form.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import msgspec
from aiohttp import web

from server.kernel import errors
from server.kernel.appkeys import POOL
from server.kernel.audit import audit
from server.kernel.http import json_response, read_json
from server.kernel.limits import body_limit
from server.kernel.principal import (
    API_KEY_PREFIX,
    hash_api_key,
    login_user,
    logout_session,
    require,
    set_session_cookies,
    start_session,
)


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


@body_limit("small")
async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginBody)
    principal = await login_user(request, body.username, body.password)
    sid, csrf = await start_session(request, principal)
    resp = json_response({"token": sid, "csrf_token": csrf, "user": principal.public_dict()})
    set_session_cookies(resp, request, sid, csrf)
    return resp


async def logout(request: web.Request) -> web.Response:
    resp = json_response({"ok": True})
    await logout_session(request, resp)
    return resp


async def me(request: web.Request) -> web.Response:
    p = require(request)
    return json_response({"user": p.public_dict(), "csrf_token": p.csrf})


class ApiKeyBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str


async def create_api_key(request: web.Request) -> web.Response:
    """An enterprise data-interface key for the caller (shown once, stored hashed)."""
    p = require(request, "admin", "company_admin", "inspector")
    body = await read_json(request, ApiKeyBody)
    name = body.name.strip()
    if not name or len(name) > 100:
        raise errors.bad_field("name", "1 to 100 characters")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    row = await request.app[POOL].fetchrow(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)"
        " RETURNING id, created_at",
        p.user_id,
        name,
        key[:10],
        hash_api_key(key),
    )
    assert row is not None
    await audit(
        request.app[POOL], p, "api_key.create", "api_key", row["id"], {"name": name}, request.remote
    )
    return json_response(
        {"id": row["id"], "name": name, "key": key, "created_at": row["created_at"]}, 201
    )


def routes() -> Iterable[web.RouteDef]:
    return [
        web.post("/api/v1/auth/login", login),
        web.post("/api/v1/auth/logout", logout),
        web.get("/api/v1/auth/me", me),
        web.post("/api/v1/auth/api-keys", create_api_key),
    ]
