"""REST endpoints of who is asking (docs/API.md "Authentication"): login, logout, me.

The session machinery itself (sessions, tokens, CSRF, the password check) is the kernel's
`server.kernel.principal`, shared with the pages' own login form. API keys (create, list,
revoke) are `server.api.api_keys`.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from aiohttp import web

from server.kernel.http import json_response, read_json
from server.kernel.limits import body_limit
from server.kernel.principal import (
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


def routes() -> Iterable[web.RouteDef]:
    return [
        web.post("/api/v1/auth/login", login),
        web.post("/api/v1/auth/logout", logout),
        web.get("/api/v1/auth/me", me),
    ]
