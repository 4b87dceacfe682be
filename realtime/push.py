"""Web Push of new alerts to field officers' and regulators' phones, and of inbox items to
every subscriber's (docs/ARCHITECTURE.md §8 ``/m``).

- The platform's VAPID key pair is generated on first use and kept in PostgreSQL
  (``push_vapid_keys``), so every server process signs alike and browser subscriptions
  survive restarts. ``GET /api/v1/push/vapid-public-key`` gives the
  ``applicationServerKey`` the page passes to ``pushManager.subscribe``.
- ``POST /api/v1/push/subscriptions`` stores the browser's PushSubscription JSON for the
  caller; ``DELETE /api/v1/push/subscriptions`` removes it (body or ``?endpoint=``). The
  server POSTs to that URL, so it must be ``https://`` (plain ``http://`` only to this
  machine's loopback, and only with ``[realtime] push_allow_http``: a local test push
  service), and a user keeps at most ``push_subscriptions_per_user_max`` of them (409
  beyond; docs/CONFIG.md): one phone or browser is one subscription, and a script storing
  thousands would make every alert fan out to thousands of requests.
- A sender listens on the bus ``alerts`` channel. Only *new* alerts are pushed (a count
  bump of an open alert is not news on a phone): ``created`` true when the row says so,
  else ``count == 1`` and state ``open``. Every server process sees every alert (Redis
  bridge), so a Redis ``SET NX`` on the alert id makes exactly one process push it.
- Who may subscribe (:data:`SUBSCRIBE_ROLES`): the bureau's roles, and a company's admin and
  station operators (delivery staff), who inspect customers and are reminded of overdue
  rectifications in their inbox (issue 8). Alert pushes go only to :data:`PUSH_ROLES` — the
  users with a subscription whose role scope covers the alert, the same `realtime.scope`
  rule as live rows; the company roles' phones get their inbox only.
- New messages and notices (the bus ``inbox`` channel, `realtime.inbox`) are pushed the
  same way to their recipients' own subscriptions (`realtime.inbox.push_inbox`), once
  across processes (``SET NX`` on the message or notice id); reads and receipts are not
  news on a phone and are not pushed. The payload is encrypted (RFC 8291,
  aes128gcm) and VAPID-signed in a thread (CPU work off the event loop) and POSTed with
  aiohttp; a push service answering 404 or 410 means the subscription is gone: deleted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import msgspec
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher
from redis.asyncio import Redis
from redis.exceptions import RedisError

from realtime.scope import rule_for, visible
from server.domain.messages import CHANNEL_INBOX
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.events import Bus, Event
from server.kernel.http import json_response, read_json
from server.kernel.principal import Principal, require
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

PUSH_ROLES = ("admin", "regulator", "officer")
"""Whose subscriptions receive alert pushes (unchanged by who else may subscribe)."""
SUBSCRIBE_ROLES = (*PUSH_ROLES, "company_admin", "station_operator")
"""Who may hold a push subscription: the alert roles, and the company roles for their inbox
(messages, notices, rectification reminders; `realtime.inbox.push_inbox`)."""
DEDUPE_PREFIX = "cylwatch:push:alert:"
INBOX_PUSHED = ("message", "notice")
"""Inbox rows worth a phone notification: something new to read or sign."""
_ENDPOINT_MAX_CHARS = 2048
_P256DH_BYTES = 65  # an uncompressed P-256 point
_AUTH_BYTES = 16  # RFC 8291 auth secret
_JWT_EXP_S = 12 * 3600  # RFC 8292: a VAPID JWT must expire within 24 hours
_PENDING_MAX = 1000  # new alerts waiting to be pushed; past it the oldest are skipped


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ------------------------------------------------------------------ VAPID keys


@dataclass(frozen=True)
class VapidKeys:
    private_pem: str
    public_key: str

    def signer(self) -> Vapid02:
        return Vapid02.from_pem(self.private_pem.encode())


def generate_vapid_keys() -> VapidKeys:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(pem, b64url_encode(point))


async def vapid_keys(pool: asyncpg.Pool) -> VapidKeys:
    """The platform's key pair, generated and stored by the first process that asks."""
    row = await pool.fetchrow("SELECT private_pem, public_key FROM push_vapid_keys WHERE id = 1")
    if row is None:
        fresh = generate_vapid_keys()
        await pool.execute(
            "INSERT INTO push_vapid_keys (id, private_pem, public_key) VALUES (1, $1, $2)"
            " ON CONFLICT (id) DO NOTHING",
            fresh.private_pem,
            fresh.public_key,
        )
        row = await pool.fetchrow(
            "SELECT private_pem, public_key FROM push_vapid_keys WHERE id = 1"
        )
    assert row is not None
    return VapidKeys(row["private_pem"], row["public_key"])


# ------------------------------------------------------------------ HTTP API


class SubscriptionKeys(msgspec.Struct):
    p256dh: str
    auth: str


class PushSubscriptionBody(msgspec.Struct, rename={"expiration_time": "expirationTime"}):
    """The browser's ``PushSubscription.toJSON()``."""

    endpoint: str
    keys: SubscriptionKeys
    expiration_time: float | None = None


class EndpointBody(msgspec.Struct, forbid_unknown_fields=True):
    endpoint: str


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, allow_http: bool) -> None:
    """Only https push services (we POST to this URL: no plain-http hop on the way);
    http only to the loopback, and only when the settings allow it (a test push service)."""
    if not endpoint or len(endpoint) > _ENDPOINT_MAX_CHARS:
        raise errors.bad_field("endpoint", f"1 to {_ENDPOINT_MAX_CHARS} characters")
    parts = urlsplit(endpoint)
    host = parts.hostname
    local_http = allow_http and parts.scheme == "http" and host is not None and _is_loopback(host)
    if not host or not (parts.scheme == "https" or local_http):
        raise errors.bad_field("endpoint", "must be an https:// URL of a push service")


def check_keys(keys: SubscriptionKeys) -> None:
    for name, value, size in (
        ("keys.p256dh", keys.p256dh, _P256DH_BYTES),
        ("keys.auth", keys.auth, _AUTH_BYTES),
    ):
        try:
            raw = b64url_decode(value)
        except (binascii.Error, ValueError):
            raise errors.bad_field(name, "must be base64url") from None
        if len(raw) != size:
            raise errors.bad_field(name, f"must decode to {size} bytes")


async def get_public_key(request: web.Request) -> web.Response:
    require(request)
    keys = await vapid_keys(request.app[POOL])
    return json_response({"public_key": keys.public_key})


async def add_subscription(request: web.Request) -> web.Response:
    p = require(request, *SUBSCRIBE_ROLES)
    body = await read_json(request, PushSubscriptionBody)
    rt = request.app[SETTINGS].realtime
    check_endpoint(body.endpoint, rt.push_allow_http)
    check_keys(body.keys)
    pool = request.app[POOL]
    # renewing a subscription the user already has is always allowed; a new one only
    # under the cap (one statement: the count and the insert see the same rows)
    row = await pool.fetchrow(
        """INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, user_agent)
           SELECT $1, $2, $3, $4, $5
            WHERE (SELECT count(*) FROM push_subscriptions
                    WHERE user_id = $1 AND endpoint <> $2) < $6
           ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id,
               p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
               user_agent = EXCLUDED.user_agent, failures = 0
           RETURNING id, created_at""",
        p.user_id,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        request.headers.get("User-Agent", "")[:300],
        rt.push_subscriptions_per_user_max,
    )
    if row is None:
        raise errors.ApiError(
            409,
            errors.CONFLICT,
            f"you already have {rt.push_subscriptions_per_user_max} push subscriptions:"
            " remove one (DELETE /api/v1/push/subscriptions) before adding another",
        )
    await audit(
        pool,
        p,
        "push.subscribe",
        "push_subscription",
        row["id"],
        {"host": urlsplit(body.endpoint).hostname},
        request.remote,
    )
    return json_response({"id": row["id"], "created_at": row["created_at"]}, 201)


async def delete_subscription(request: web.Request) -> web.Response:
    p = require(request)
    endpoint = request.query.get("endpoint")
    if endpoint is None:
        endpoint = (await read_json(request, EndpointBody)).endpoint
    pool = request.app[POOL]
    ids = await pool.fetch(
        "DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2 RETURNING id",
        p.user_id,
        endpoint,
    )
    for r in ids:
        await audit(pool, p, "push.unsubscribe", "push_subscription", r["id"], None, request.remote)
    return json_response({"deleted": len(ids)})


def routes() -> Iterable[web.RouteDef]:
    return [
        web.get("/api/v1/push/vapid-public-key", get_public_key),
        web.post("/api/v1/push/subscriptions", add_subscription),
        web.delete("/api/v1/push/subscriptions", delete_subscription),
    ]


# ------------------------------------------------------------------ the sender


def is_new_alert(data: Mapping[str, Any]) -> bool:
    created = data.get("created")
    if isinstance(created, bool):
        return created
    return data.get("count") == 1 and data.get("state") == "open"


def notification(alert: Mapping[str, Any]) -> bytes:
    """The JSON the service worker receives: what to show and which alert to open."""
    from realtime.protocol import dumps

    keys = (
        "id",
        "kind",
        "severity",
        "subject_type",
        "subject_id",
        "district",
        "company_id",
        "site_id",
        "cylinder_id",
        "first_at",
        "lat",
        "lon",
    )
    summary = {k: alert.get(k) for k in keys}
    subject = f"{alert.get('subject_type', '')} {alert.get('subject_id', '')}".strip()
    return dumps(
        {
            "title": f"[{alert.get('severity', '')}] {alert.get('kind', '')}",
            "body": f"{subject} · {alert.get('district') or ''}".strip(" ·"),
            "tag": f"alert-{alert.get('id')}",
            "url": f"/m#alert-{alert.get('id')}",
            "alert": summary,
        }
    )


@dataclass(frozen=True)
class Target:
    id: int
    endpoint: str
    p256dh: str
    auth: str


def encrypt(
    target: Target, payload: bytes, keys: VapidKeys, subject: str, ttl: int, urgency: str
) -> tuple[bytes, dict[str, str]]:
    """RFC 8291 aes128gcm body and RFC 8292 VAPID headers (CPU work: run in a thread)."""
    pusher = WebPusher(
        {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
    )
    body = pusher.encode(payload, "aes128gcm")["body"]
    parts = urlsplit(target.endpoint)
    claims = {
        "aud": f"{parts.scheme}://{parts.netloc}",
        "sub": subject,
        "exp": int(time.time()) + _JWT_EXP_S,
    }
    headers = dict(keys.signer().sign(claims))
    headers.update(
        {
            "Content-Encoding": "aes128gcm",
            "TTL": str(ttl),
            "Urgency": urgency,
            "Content-Type": "application/octet-stream",
        }
    )
    return body, headers


class PushSender:
    """Bus listener (enqueue only) + one task that pushes new alerts to subscribed users."""

    def __init__(self, pool: asyncpg.Pool, redis: Redis, bus: Bus, settings: Settings) -> None:
        self.pool = pool
        self.redis = redis
        self.bus = bus
        self.settings = settings
        self.sent = 0
        self.failed = 0
        self.removed = 0
        self.skipped = 0
        self._pending: deque[Event] = deque(maxlen=_PENDING_MAX)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._remove: Callable[[], None] | None = None
        self._remove_inbox: Callable[[], None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._keys: VapidKeys | None = None

    def start(self) -> None:
        self._remove = self.bus.listen("alerts", self._on_alert, lambda e: is_new_alert(e.data))
        self._remove_inbox = self.bus.listen(
            CHANNEL_INBOX,
            self._on_alert,
            lambda e: e.data.get("row", {}).get("kind") in INBOX_PUSHED,
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="push-sender")

    async def aclose(self) -> None:
        if self._remove is not None:
            self._remove()
        if self._remove_inbox is not None:
            self._remove_inbox()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _on_alert(self, event: Event) -> None:
        self._pending.append(event)
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until everything queued so far was handled (tests)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            event = self._pending.popleft()
            try:
                if event.channel == CHANNEL_INBOX:
                    from realtime.inbox import push_inbox

                    await push_inbox(self, event)
                else:
                    await self.push_alert(event)
            except (OSError, RedisError, asyncpg.PostgresError) as exc:
                log.warning("push: alert %s not pushed (%s)", event.data.get("id"), exc)
            except Exception:
                log.exception("push: alert %s not pushed", event.data.get("id"))

    async def _claim(self, alert_id: Any) -> bool:
        """True for exactly one server process per alert."""
        key = f"{DEDUPE_PREFIX}{alert_id}"
        return bool(
            await self.redis.set(key, b"1", nx=True, ex=self.settings.realtime.push_dedupe_ttl_s)
        )

    async def targets(self, event: Event) -> list[Target]:
        rows = await self.pool.fetch(
            """SELECT s.id, s.endpoint, s.p256dh, s.auth, u.id AS user_id, u.username, u.role,
                      u.company_id, u.site_id, u.districts
                 FROM push_subscriptions s JOIN users u ON u.id = s.user_id
                WHERE u.active AND u.role = ANY($1::text[])""",
            list(PUSH_ROLES),
        )
        out = []
        for r in rows:
            p = Principal(
                r["user_id"],
                r["username"],
                r["role"],
                r["company_id"],
                r["site_id"],
                tuple(r["districts"] or ()),
            )
            if visible(rule_for(p, "alerts"), event):
                out.append(Target(r["id"], r["endpoint"], r["p256dh"], r["auth"]))
        return out

    async def push_alert(self, event: Event) -> None:
        alert_id = event.data.get("id")
        if alert_id is None or not await self._claim(alert_id):
            self.skipped += 1
            return
        targets = await self.targets(event)
        if not targets:
            return
        if self._keys is None:
            self._keys = await vapid_keys(self.pool)
        payload = notification(event.data)
        urgency = "high" if event.data.get("severity") == "critical" else "normal"
        results = await asyncio.gather(
            *(self._send(t, payload, urgency) for t in targets), return_exceptions=True
        )
        for target, outcome in zip(targets, results, strict=True):
            # one subscriber's failure must never keep the alert from the others
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, Exception):
                self.failed += 1
                log.error(
                    "push: alert %s to subscription %d failed: %s",
                    event.data.get("id"),
                    target.id,
                    outcome,
                    exc_info=outcome,
                )

    async def send_all(self, targets: list[Target], payload: bytes, what: str) -> None:
        """Push *payload* to each target; one failure never keeps it from the others."""
        if self._keys is None:
            self._keys = await vapid_keys(self.pool)
        results = await asyncio.gather(
            *(self._send(t, payload, "normal") for t in targets), return_exceptions=True
        )
        for target, outcome in zip(targets, results, strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, Exception):
                self.failed += 1
                log.error("push: %s to subscription %d failed: %s", what, target.id, outcome)

    async def _send(self, target: Target, payload: bytes, urgency: str) -> None:
        rt = self.settings.realtime
        assert self._keys is not None
        loop = asyncio.get_running_loop()
        try:
            body, headers = await loop.run_in_executor(
                None, encrypt, target, payload, self._keys, rt.push_subject, rt.push_ttl_s, urgency
            )
        except ValueError as exc:
            # the browser's key material cannot be used (not a P-256 point, bad auth secret):
            # no retry can ever succeed, so the subscription is removed like a 410
            self.removed += 1
            await self.pool.execute("DELETE FROM push_subscriptions WHERE id = $1", target.id)
            log.warning("push: subscription %d has unusable keys (%s): removed", target.id, exc)
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=rt.push_timeout_s)
            )
        try:
            async with self._session.post(target.endpoint, data=body, headers=headers) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failed += 1
            log.warning("push: %s unreachable (%s)", urlsplit(target.endpoint).hostname, exc)
            await self.pool.execute(
                "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = $1", target.id
            )
            return
        if status in (404, 410):
            self.removed += 1
            await self.pool.execute("DELETE FROM push_subscriptions WHERE id = $1", target.id)
            log.info("push: subscription %d is gone (%d): removed", target.id, status)
        elif status >= 400:
            self.failed += 1
            log.warning("push: %s answered %d", urlsplit(target.endpoint).hostname, status)
            await self.pool.execute(
                "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = $1", target.id
            )
        else:
            self.sent += 1
            await self.pool.execute(
                "UPDATE push_subscriptions SET last_sent_at = now(), failures = 0 WHERE id = $1",
                target.id,
            )
