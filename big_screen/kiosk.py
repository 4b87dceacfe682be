"""How an unattended wall authenticates: a kiosk token traded for a read-only kiosk session.

Why not a normal login: a command-centre wall has no keyboard and nobody to type a
password, and it runs for days — longer than a session lives (``auth.session_ttl_s`` of
inactivity, ``auth.session_max_age_s`` at most, or a Redis flush, ends one). So:

- An admin issues a **kiosk token** for a dedicated wall account (role ``regulator``,
  city-wide or district-scoped — the wall then shows exactly that scope; never an admin
  account) with ``POST /api/v1/kiosk-tokens`` (docs/API.md "Kiosk tokens"). The token
  expires after ``auth.kiosk_token_max_age_s``, is listed, and is revoked one by one; the
  token itself is the kernel's (``server.kernel.kiosk_tokens``). The wall's URL carries it:
  ``/big-screen?kiosk=<token>``.
- The page trades the token for a **kiosk session** (``POST /big-screen/session``): an
  ordinary server-side session (same Redis record, same sliding TTL, so ``/ws?token=`` and
  bearer requests work unchanged) whose id starts with ``kiosk_``, and which never outlives
  its token. The kernel's auth middleware refuses every unsafe method on such a session: a
  token copied off a wall's address bar can watch, never act.
- When the session expires or disappears (the wall was off for a night, Redis restarted),
  the page notices the 401 and trades the token again — no login prompt, no reload.
- Revoking a token ends the kiosk sessions traded from it and closes their websockets;
  deactivating the wall account revokes all of its tokens.

A regulator may also open the wall in a normal browser session (cookie); that wall stops
when the session ends, which is why unattended walls use a kiosk token.
"""

from __future__ import annotations

import asyncpg
import msgspec
from aiohttp import web

from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import json_response, read_json
from server.kernel.kiosk_tokens import KioskUser, verify
from server.kernel.principal import READ_ONLY_SESSION_PREFIX, Principal, create_session

SESSION_ID_PREFIX = READ_ONLY_SESSION_PREFIX
WALL_ROLES = ("admin", "regulator")
"""Roles that may look at the wall in their own session (kiosk tokens: regulators only)."""


async def verify_token(pool: asyncpg.Pool, token: str) -> KioskUser | None:
    """The wall account a live kiosk token names, or None (the page and the trade ask)."""
    return await verify(pool, token)


class SessionBody(msgspec.Struct, forbid_unknown_fields=True):
    kiosk: str


async def trade_token(request: web.Request) -> web.Response:
    """POST /big-screen/session {kiosk}: a fresh read-only session for the wall.

    Returns ``{"token": <session id>, "ttl_s": n}``; the page sends it as a bearer token and
    as ``/ws?token=``. No cookie is set: the kiosk browser may also be someone's browser.
    """
    body = await read_json(request, SessionBody)
    user = await verify_token(request.app[POOL], body.kiosk)
    if user is None:
        raise ApiError(
            401,
            errors.UNAUTHORIZED,
            "the kiosk token is invalid, expired or revoked, or its account is inactive",
        )
    principal = Principal(
        user_id=user.user_id, username=user.username, role=user.role, via="session"
    )
    sid, _csrf = await create_session(
        request.app,
        principal,
        id_prefix=SESSION_ID_PREFIX,
        not_after=user.expires_at.timestamp(),
        extra={"kiosk_token": user.token_id},
    )
    await audit(
        request.app[POOL],
        principal,
        "big_screen.kiosk_session",
        "kiosk_token",
        user.token_id,
        remote=request.remote,
    )
    return json_response({"token": sid, "ttl_s": request.app[SETTINGS].auth.session_ttl_s})


def routes() -> list[web.RouteDef]:
    return [web.post("/big-screen/session", trade_token)]
