"""How an unattended wall authenticates: kiosk tokens and read-only kiosk sessions.

Why not a normal login: a command-centre wall has no keyboard and nobody to type a
password, and it runs for days — longer than a session lives (``auth.session_ttl_s`` of
inactivity, or a Redis flush, ends one). So:

- An admin issues a **kiosk token** for a dedicated wall account (role ``regulator``, city-wide
  or district-scoped — the wall then shows exactly that scope). The token is
  ``k1.<user id>.<HMAC>``, keyed by a per-install secret kept in ``install_secrets``; nothing
  per token is stored. The wall's URL carries it: ``/big-screen?kiosk=<token>``.
- The page trades the token for a **kiosk session** (``POST /big-screen/session``): an
  ordinary server-side session (same Redis record, same sliding TTL, so ``/ws?token=`` and
  bearer requests work unchanged) whose id starts with ``kiosk_``. A guard middleware refuses
  every unsafe method on such a session: a token copied off a wall's address bar can watch,
  never act.
- When the session expires or disappears (the wall was off for a night, Redis restarted),
  the page notices the 401 and trades the token again — no login prompt, no reload.
- Revoking: deactivate the wall account (checked at every trade and every request), or
  delete the ``kiosk_token_key`` install secret to invalidate every kiosk token at once.

A regulator may also open the wall in a normal browser session (cookie); that wall stops
when the session ends, which is why unattended walls use a kiosk token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg
import msgspec
from aiohttp import web

from server.kernel import errors
from server.kernel.appkeys import POOL, REDIS, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import json_response, read_json
from server.kernel.principal import (
    READ_ONLY_SESSION_PREFIX,
    SESSION_PREFIX,
    USER_COLUMNS,
    Principal,
    create_session,
    require,
)

SECRET_NAME = "kiosk_token_key"  # noqa: S105 - the row name, not a secret
TOKEN_VERSION = "k1"  # noqa: S105 - a format version
SESSION_ID_PREFIX = READ_ONLY_SESSION_PREFIX
WALL_ROLES = ("admin", "regulator")
"""Roles that may look at the wall (a kiosk token is only issued for these accounts)."""
_MAC_BYTES = 24


async def _secret(pool: asyncpg.Pool) -> bytes:
    """The per-install HMAC key, created on first use (two racing creators agree)."""
    await pool.execute(
        "INSERT INTO install_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        SECRET_NAME,
        secrets.token_bytes(32),
    )
    value = await pool.fetchval("SELECT value FROM install_secrets WHERE name = $1", SECRET_NAME)
    assert isinstance(value, bytes)
    return value


def _mac(secret: bytes, user_id: int) -> str:
    digest = hmac.new(secret, f"cylwatch-kiosk:{TOKEN_VERSION}:{user_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:_MAC_BYTES]).decode().rstrip("=")


async def issue_token(pool: asyncpg.Pool, user_id: int) -> str:
    """The kiosk token of *user_id* (deterministic: issuing twice gives the same token)."""
    return f"{TOKEN_VERSION}.{user_id}.{_mac(await _secret(pool), user_id)}"


@dataclass(frozen=True)
class KioskUser:
    user_id: int
    username: str
    role: str


async def verify_token(pool: asyncpg.Pool, token: str) -> KioskUser | None:
    """The active wall account a token names, or None (bad MAC, unknown or inactive user)."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1].isdigit() or len(token) > 200:
        return None
    user_id = int(parts[1])
    if user_id > 2**63 - 1:
        return None
    if not hmac.compare_digest(parts[2], _mac(await _secret(pool), user_id)):
        return None
    row = await pool.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None or not row["active"] or row["role"] not in WALL_ROLES:
        return None
    return KioskUser(row["id"], row["username"], row["role"])


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
            401, errors.UNAUTHORIZED, "the kiosk token is invalid or its account is inactive"
        )
    principal = Principal(
        user_id=user.user_id, username=user.username, role=user.role, via="session"
    )
    sid, _csrf = await create_session(request.app, principal)
    kiosk_sid = SESSION_ID_PREFIX + sid
    # RENAME keeps the payload and TTL that auth wrote: only the id changes, so the session
    # stays an ordinary one for every reader while the guard can recognise it by its id.
    await request.app[REDIS].rename(SESSION_PREFIX + sid, SESSION_PREFIX + kiosk_sid)
    return json_response({"token": kiosk_sid, "ttl_s": request.app[SETTINGS].auth.session_ttl_s})


class IssueBody(msgspec.Struct, forbid_unknown_fields=True):
    username: str


async def issue(request: web.Request) -> web.Response:
    """POST /big-screen/kiosk-tokens {username} (admin): the wall URL for a wall account."""
    p = require(request, "admin")
    body = await read_json(request, IssueBody)
    pool = request.app[POOL]
    row = await pool.fetchrow(
        "SELECT id, role, active FROM users WHERE username = $1", body.username
    )
    if row is None:
        raise ApiError(404, errors.NOT_FOUND, f"no user {body.username!r}")
    if row["role"] not in WALL_ROLES or not row["active"]:
        roles = " or ".join(WALL_ROLES)
        raise errors.bad_field("username", f"a wall account must be an active {roles}")
    token = await issue_token(pool, row["id"])
    await audit(pool, p, "big_screen.kiosk_token", "user", row["id"], remote=request.remote)
    base = request.app[SETTINGS].http.base_url.rstrip("/")
    return json_response({"token": token, "url": f"{base}/big-screen?kiosk={token}"}, 201)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/big-screen/session", trade_token),
        web.post("/big-screen/kiosk-tokens", issue),
    ]
