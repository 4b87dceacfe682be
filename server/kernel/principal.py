"""Who is asking: sessions, bearer tokens, API keys, CSRF and roles (docs/ARCHITECTURE.md §7).

- A login creates a server-side session in Redis (`cylwatch:session:<id>`), sent to
  browsers as an HttpOnly cookie and to API clients as a bearer token (the same id).
  Sessions slide: each use renews the TTL (`auth.session_ttl_s`). They also have an
  absolute lifetime (`auth.session_max_age_s`, counted from the login): a stolen cookie kept
  busy still dies. Nothing about a session lives in process memory, so any server process
  can serve any request.
- Each user's session ids are indexed in a Redis set
  (`cylwatch:user_sessions:<database>:<user id>`: user ids mean something per database,
  and platforms — or test runs — may share a Redis), so "end every session of this user" is one lookup: a password change ends the user's
  other sessions, a deactivation all of them (docs/SECURITY.md "Sessions and credentials").
  Every end of a session is also announced on the app's bus (`SESSIONS_ENDED_CHANNEL`);
  the Redis bridge carries it to every server process and the websocket hub closes the
  sockets of the ended sessions (docs/WEBSOCKET.md "Close codes"). The kernel never
  imports `realtime`: it only publishes.
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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from server.kernel import errors
from server.kernel.appkeys import BUS, POOL, REDIS, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.events import Event
from server.kernel.passwords import hash_password_async, needs_rehash, verify_password_async
from server.kernel.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

SESSION_PREFIX = "cylwatch:session:"
USER_SESSIONS_PREFIX = "cylwatch:user_sessions:"
SESSIONS_ENDED_CHANNEL = "sessions_ended"
"""Bus channel announcing ended sessions (never a client channel: `/ws` cannot subscribe)."""
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


async def create_session(
    app: web.Application,
    principal: Principal,
    *,
    id_prefix: str = "",
    not_after: float | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Store a new session in Redis and index it under its user. Returns (id, csrf token).

    The session ends at the latest ``auth.session_max_age_s`` after now, or at *not_after*
    (epoch seconds) if that is sooner: a kiosk session never outlives its kiosk token.
    *id_prefix* marks a kind of session by its id (`READ_ONLY_SESSION_PREFIX`); *extra*
    goes into the stored record (a kiosk session names its token).
    """
    a = app[SETTINGS].auth
    sid = id_prefix + secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = time.time()
    expires = now + a.session_max_age_s
    if not_after is not None:
        expires = min(expires, not_after)
    payload = {**(extra or {}), "user_id": principal.user_id, "csrf": csrf, "created": now}
    payload["expires"] = expires
    index = session_index(app[SETTINGS], principal.user_id)
    pipe = app[REDIS].pipeline(transaction=True)
    pipe.set(SESSION_PREFIX + sid, orjson.dumps(payload), ex=_ttl(a.session_ttl_s, expires, now))
    pipe.sadd(index, sid)
    # the index outlives every session it names (none lives past session_max_age_s)
    pipe.expire(index, a.session_max_age_s)
    await pipe.execute()
    return sid, csrf


def _ttl(sliding_s: int, expires: float, now: float) -> int:
    """Seconds a session key may live: the sliding TTL, cut at its absolute end."""
    return max(1, min(sliding_s, int(expires - now) + 1))


async def _load_session(request: web.Request, sid: str, via: str) -> Principal | None:
    app = request.app
    redis = app[REDIS]
    a = app[SETTINGS].auth
    key = SESSION_PREFIX + sid
    # read and slide the TTL in one round trip (every authenticated request does this)
    raw = await redis.getex(key, ex=a.session_ttl_s)
    if raw is None:
        return None
    data = orjson.loads(raw)
    now = time.time()
    # the absolute end: the stored one, and never later than the current max age allows
    # (a max age lowered by configuration applies to sessions already open)
    expires = float(data["created"]) + a.session_max_age_s
    expires = min(expires, float(data.get("expires", expires)))
    if now >= expires:
        await _forget_sessions(redis, session_index(app[SETTINGS], data["user_id"]), [sid])
        return None
    if expires - now < a.session_ttl_s:
        await redis.expire(key, _ttl(a.session_ttl_s, expires, now))
    row = await app[POOL].fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", data["user_id"]
    )
    if row is None or not row["active"]:
        await _forget_sessions(redis, session_index(app[SETTINGS], data["user_id"]), [sid])
        return None
    return _principal_from_row(row, via, sid, data.get("csrf"))


# ------------------------------------------------------------------ ending sessions


def session_index(settings: Settings, user_id: int) -> str:
    """The Redis set of a user's session ids (see the module docstring)."""
    database = urlsplit(settings.services.database_url).path.lstrip("/") or "postgres"
    return f"{USER_SESSIONS_PREFIX}{database}:{user_id}"


async def _forget_sessions(redis: Redis, index: str, sids: list[str]) -> None:
    if not sids:
        return
    pipe = redis.pipeline(transaction=True)
    pipe.delete(*(SESSION_PREFIX + sid for sid in sids))
    pipe.srem(index, *sids)
    await pipe.execute()


async def user_sessions(redis: Redis, index: str) -> dict[str, dict[str, Any]]:
    """The live sessions in a user's *index* (`session_index`): id → stored record
    (ids whose session is gone are pruned)."""
    sids = sorted(s.decode() if isinstance(s, bytes) else s for s in await redis.smembers(index))
    if not sids:
        return {}
    raws = await redis.mget([SESSION_PREFIX + sid for sid in sids])
    gone = [sid for sid, raw in zip(sids, raws, strict=True) if raw is None]
    if gone:
        await redis.srem(index, *gone)
    return {sid: orjson.loads(raw) for sid, raw in zip(sids, raws, strict=True) if raw is not None}


async def end_user_sessions(
    redis: Redis, index: str, *, keep: str | None = None, sids: list[str] | None = None
) -> list[str]:
    """Delete the user's sessions (all, or *sids*), except *keep*. Returns the ended ids.

    Redis only, so the CLI (which has no bus) can call it too; announce the end with
    `sessions_ended_event` so that open websockets close.
    """
    if sids is None:
        sids = list(await user_sessions(redis, index))
    ended = [sid for sid in sids if sid != keep]
    await _forget_sessions(redis, index, ended)
    return ended


def sessions_ended_event(
    user_id: int,
    *,
    sessions: list[str] | None = None,
    keep: str | None = None,
    api_keys: bool = False,
) -> Event:
    """The announcement that a user's sessions ended (`SESSIONS_ENDED_CHANNEL`).

    ``sessions`` None means every session of the user but ``keep``; ``api_keys`` also ends
    what was opened with an API key (a deactivation). Websockets of those credentials close.
    """
    data = {"user_id": user_id, "sessions": sessions, "keep": keep, "api_keys": api_keys}
    return Event(SESSIONS_ENDED_CHANNEL, data)


async def end_sessions(
    app: web.Application,
    user_id: int,
    *,
    keep: str | None = None,
    sids: list[str] | None = None,
    api_keys: bool = False,
) -> list[str]:
    """End the user's sessions (all but *keep*, or just *sids*) and close their websockets.

    A password change keeps the session that made it; a deactivation ends everything,
    API-key connections included (the keys themselves are revoked by the caller).
    """
    index = session_index(app[SETTINGS], user_id)
    ended = await end_user_sessions(app[REDIS], index, keep=keep, sids=sids)
    app[BUS].publish(sessions_ended_event(user_id, sessions=sids, keep=keep, api_keys=api_keys))
    return ended


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
        await end_sessions(request.app, p.user_id, sids=[p.session_id])
        await audit(request.app[POOL], p, "auth.logout", "user", p.user_id, remote=request.remote)
    a = request.app[SETTINGS].auth
    response.del_cookie(a.session_cookie, path="/")
    response.del_cookie(a.csrf_cookie, path="/")
