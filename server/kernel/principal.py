"""Who is asking: sessions, bearer tokens, API keys, CSRF and roles (DESIGN §7).

- A login creates a server-side session in Redis (`cylwatch:session:<id>`), sent to
  browsers as an HttpOnly cookie and to API clients as a bearer token (the same id).
  Sessions slide: each use renews the TTL. Nothing about a session lives in process memory,
  so any server process can serve any request.
- Browsers also get a CSRF token (cookie readable by the page, echoed in `X-CSRF-Token` or a
  `_csrf` form field) that must match the session's on every unsafe request authenticated by
  cookie. Bearer and API-key requests carry no ambient credential and need no CSRF token.
- Enterprises' data interface uses API keys (`X-API-Key`), stored hashed in `api_keys`.
- Failed logins are counted per username in Redis; past the limit a login answers 429.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

from server.kernel import errors
from server.kernel.appkeys import POOL, REDIS, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.passwords import hash_password_async, needs_rehash, verify_password_async

log = logging.getLogger(__name__)

SESSION_PREFIX = "cylwatch:session:"
FAIL_PREFIX = "cylwatch:loginfail:"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
API_KEY_HEADER = "X-API-Key"
API_KEY_PREFIX = "cwk_"
# Sessions whose id starts with this are read-only (command-centre walls, big_screen.kiosk):
# an unattended screen must never be a way to change anything.
READ_ONLY_SESSION_PREFIX = "kiosk_"


@dataclass(frozen=True)
class Principal:
    """An authenticated person (or an enterprise system acting as one)."""

    user_id: int
    username: str
    role: str
    company_id: int | None = None
    site_id: int | None = None
    districts: tuple[str, ...] = ()
    display_name: str | None = None
    language: str = "zh-CN"
    via: str = "session"  # session | token | api_key
    csrf: str | None = None
    session_id: str | None = field(default=None, repr=False)

    @property
    def read_only(self) -> bool:
        """A wall (kiosk) session: may read what its user may read, never write."""
        return bool(self.session_id and self.session_id.startswith(READ_ONLY_SESSION_PREFIX))

    @property
    def city_wide(self) -> bool:
        """Sees the whole city: admins, and regulators with no district restriction."""
        return self.role == "admin" or (self.role == "regulator" and not self.districts)

    def public_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("session_id", None)
        d.pop("csrf", None)
        d["districts"] = list(self.districts)
        return d


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def require(request: web.Request, *roles: str) -> Principal:
    """The caller, who must be logged in and (if roles are given) hold one of them."""
    p = principal_of(request)
    if p is None:
        raise ApiError(
            401, errors.UNAUTHORIZED, "log in first (session cookie, bearer token or API key)"
        )
    if roles and p.role not in roles:
        raise ApiError(403, errors.FORBIDDEN, f"role {p.role} may not do this")
    return p


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _principal_from_row(
    row: Any, via: str, session_id: str | None = None, csrf: str | None = None
) -> Principal:
    return Principal(
        user_id=row["id"],
        username=row["username"],
        role=row["role"],
        company_id=row["company_id"],
        site_id=row["site_id"],
        districts=tuple(row["districts"] or ()),
        display_name=row["display_name"],
        language=row["language"],
        via=via,
        csrf=csrf,
        session_id=session_id,
    )


USER_COLUMNS = "id, username, role, company_id, site_id, districts, display_name, language, active"


async def create_session(app: web.Application, principal: Principal) -> tuple[str, str]:
    """Store a new session in Redis. Returns (session id, csrf token)."""
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    payload = {"user_id": principal.user_id, "csrf": csrf, "created": time.time()}
    ttl = app[SETTINGS].auth.session_ttl_s
    await app[REDIS].set(SESSION_PREFIX + sid, orjson.dumps(payload), ex=ttl)
    return sid, csrf


async def _load_session(request: web.Request, sid: str, via: str) -> Principal | None:
    app = request.app
    redis = app[REDIS]
    key = SESSION_PREFIX + sid
    # read and slide the TTL in one round trip (every authenticated request does this)
    raw = await redis.getex(key, ex=app[SETTINGS].auth.session_ttl_s)
    if raw is None:
        return None
    data = orjson.loads(raw)
    row = await app[POOL].fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", data["user_id"]
    )
    if row is None or not row["active"]:
        await redis.delete(key)
        return None
    return _principal_from_row(row, via, sid, data.get("csrf"))


async def _load_api_key(request: web.Request, key: str) -> Principal | None:
    row = await request.app[POOL].fetchrow(
        f"""UPDATE api_keys k SET last_used_at = now() FROM users u
            WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = k.user_id
            RETURNING {", ".join("u." + c.strip() for c in USER_COLUMNS.split(","))}""",
        hash_api_key(key),
    )
    if row is None or not row["active"]:
        return None
    return _principal_from_row(row, "api_key")


async def authenticate(request: web.Request) -> Principal | None:
    """Resolve the caller from a bearer token, an API key, a `?token=` (websocket) or the cookie."""
    settings = request.app[SETTINGS]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        p = await _load_session(request, token, "token") if token else None
        if p is None:
            raise ApiError(401, errors.UNAUTHORIZED, "the bearer token is unknown or expired")
        return p
    api_key = request.headers.get(API_KEY_HEADER)
    if api_key:
        p = await _load_api_key(request, api_key)
        if p is None:
            raise ApiError(401, errors.UNAUTHORIZED, "the API key is unknown or revoked")
        return p
    ws_token = request.query.get("token")
    if ws_token and request.path == "/ws":
        return await _load_session(request, ws_token, "token")
    sid = request.cookies.get(settings.auth.session_cookie)
    if sid:
        return await _load_session(request, sid, "session")
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/static/") or request.path in ("/healthz",):
        return await handler(request)
    principal = await authenticate(request)
    if principal is not None:
        request[PRINCIPAL] = principal
        if request.method not in SAFE_METHODS:
            if principal.read_only and request.path != "/api/v1/auth/logout":
                raise ApiError(403, errors.FORBIDDEN, "a kiosk (wall) session is read-only")
            if principal.via == "session":
                await _check_csrf(request, principal)
    return await handler(request)


async def _check_csrf(request: web.Request, principal: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get("_csrf")
        sent = value if isinstance(value, str) else None
    if not sent or not principal.csrf or not hmac.compare_digest(sent, principal.csrf):
        raise ApiError(
            403,
            errors.CSRF_FAILED,
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header (or _csrf form field)",
        )


def set_session_cookies(
    response: web.StreamResponse, request: web.Request, sid: str, csrf: str
) -> None:
    a = request.app[SETTINGS].auth
    response.set_cookie(
        a.session_cookie,
        sid,
        httponly=True,
        samesite="Lax",
        secure=a.secure_cookies,
        max_age=a.session_ttl_s,
        path="/",
    )
    response.set_cookie(
        a.csrf_cookie,
        csrf,
        httponly=False,
        samesite="Strict",
        secure=a.secure_cookies,
        max_age=a.session_ttl_s,
        path="/",
    )


# ------------------------------------------------------------------ login / logout


async def login_user(request: web.Request, username: str, password: str) -> Principal:
    """Check a password, within a failure limit per username and client. Raises ApiError.

    The attempt is counted (atomically, in Redis) *before* the password is checked, so that
    50 parallel guesses cannot all slip under the limit: at most ``login_max_failures``
    attempts per username and client address are verified in a window. Past it the answer
    is 429 with a back-off that doubles with every further attempt, up to
    ``login_backoff_max_s``. The lock is per client, so a stranger cannot lock a real user
    (say ``admin``) out from elsewhere. An unknown or inactive user is checked against a
    decoy hash: the answer takes as long as for a real one. Failed logins are audited.
    """
    app = request.app
    a = app[SETTINGS].auth
    username = username.strip()
    if not username or len(username) > 100 or not password or len(password) > 1000:
        raise ApiError(401, errors.BAD_CREDENTIALS, "wrong username or password")
    fail_key = f"{FAIL_PREFIX}{username.lower()}:{request.remote or 'unknown'}"
    pipe = app[REDIS].pipeline(transaction=True)
    pipe.incr(fail_key)
    pipe.expire(fail_key, a.login_failure_window_s, nx=True)
    attempts = int((await pipe.execute())[0])
    excess = attempts - a.login_max_failures
    if excess > 0:
        retry_after = min(
            a.login_failure_window_s * 2 ** min(excess - 1, 20), a.login_backoff_max_s
        )
        await app[REDIS].expire(fail_key, retry_after)
        raise ApiError(
            429,
            errors.RATE_LIMITED,
            "too many failed logins; try again later",
            headers={"Retry-After": str(retry_after)},
        )
    row = await app[POOL].fetchrow(
        f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1", username
    )
    known = row is not None and row["active"]
    ok = await verify_password_async(a, row["password_hash"] if known and row else None, password)
    if not ok or row is None:
        await audit(
            app[POOL],
            None,
            "auth.login_failed",
            "user",
            row["id"] if row is not None else None,
            {"username": username, "attempt": attempts},
            request.remote,
        )
        raise ApiError(401, errors.BAD_CREDENTIALS, "wrong username or password")
    await app[REDIS].delete(fail_key)
    if needs_rehash(a, row["password_hash"]):
        await app[POOL].execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            row["id"],
            await hash_password_async(a, password),
        )
    await app[POOL].execute("UPDATE users SET last_login_at = now() WHERE id = $1", row["id"])
    return _principal_from_row(row, "session")


async def start_session(request: web.Request, principal: Principal) -> tuple[str, str]:
    """After a successful login: a new session, the login audited.

    The API's login and the pages' login form both end here, so both audit alike; the
    caller puts the cookies on its response (`set_session_cookies`) and the API also hands
    the id out as a bearer token. Returns (session id, csrf token).
    """
    sid, csrf = await create_session(request.app, principal)
    await audit(
        request.app[POOL], principal, "auth.login", "user", principal.user_id, remote=request.remote
    )
    return sid, csrf


async def logout_session(request: web.Request, response: web.StreamResponse) -> None:
    """End the caller's session (if any), audit it, and clear its cookies on `response`."""
    p = principal_of(request)
    if p is not None and p.session_id:
        await request.app[REDIS].delete(SESSION_PREFIX + p.session_id)
        await audit(request.app[POOL], p, "auth.logout", "user", p.user_id, remote=request.remote)
    a = request.app[SETTINGS].auth
    response.del_cookie(a.session_cookie, path="/")
    response.del_cookie(a.csrf_cookie, path="/")
