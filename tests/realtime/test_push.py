"""Web Push end to end: the platform's VAPID key, storing a browser subscription, and a
new alert pushed to a local push service that decrypts it (RFC 8291 aes128gcm) with the
"browser's" private key — the way a real push service's client would."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import http_ece
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from realtime.keys import PUSH
from server.kernel.appkeys import BUS
from tests.realtime.conftest import token_for
from tests.realtime.test_fanout import alert_event


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """The keys a browser makes for a PushSubscription."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)
        self.p256dh = b64(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def subscription(self, endpoint: str) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        out: dict[str, Any] = json.loads(plain)
        return out


@pytest.fixture
async def push_service() -> AsyncIterator[
    tuple[TestServer, list[tuple[str, dict[str, str], bytes]]]
]:
    """A push service: /push/ok/* stores the message (201), /push/gone/* answers 410."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((request.path, dict(request.headers), await request.read()))
        return web.Response(status=410 if request.path.startswith("/push/gone/") else 201)

    app = web.Application()
    app.router.add_post("/push/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    yield server, received
    await server.close()


async def test_vapid_key_is_generated_once_and_stable(rt_client: Any) -> None:
    headers = {"Authorization": f"Bearer {await token_for(rt_client, 't_officer')}"}
    first = await (await rt_client.get("/api/v1/push/vapid-public-key", headers=headers)).json()
    second = await (await rt_client.get("/api/v1/push/vapid-public-key", headers=headers)).json()
    assert first == second and len(unb64(first["public_key"])) == 65
    assert (await rt_client.get("/api/v1/push/vapid-public-key")).status == 401


async def test_subscription_validation(rt_client: Any) -> None:
    officer = {"Authorization": f"Bearer {await token_for(rt_client, 't_officer')}"}
    inspector = {"Authorization": f"Bearer {await token_for(rt_client, 't_inspector')}"}
    good = Browser().subscription("https://push.example.invalid/x")
    assert (
        await rt_client.post("/api/v1/push/subscriptions", json=good, headers=inspector)
    ).status == 403
    bad_keys = {**good, "keys": {"p256dh": "AAAA", "auth": "AAAA"}}
    resp = await rt_client.post("/api/v1/push/subscriptions", json=bad_keys, headers=officer)
    assert resp.status == 400 and (await resp.json())["error"]["details"]["field"] == "keys.p256dh"
    resp = await rt_client.post(
        "/api/v1/push/subscriptions", json={**good, "endpoint": "ftp://x/y"}, headers=officer
    )
    assert resp.status == 400
    resp = await rt_client.post("/api/v1/push/subscriptions", json=good, headers=officer)
    assert resp.status == 201
    resp = await rt_client.delete(
        "/api/v1/push/subscriptions", json={"endpoint": good["endpoint"]}, headers=officer
    )
    assert (await resp.json()) == {"deleted": 1}


async def test_new_alert_is_pushed_encrypted_to_users_in_scope(
    rt_client: Any, push_service: Any, pool: Any, world: Any
) -> None:
    server, received = push_service
    officer_browser, regulator_browser = Browser(), Browser()
    officer_endpoint = str(server.make_url(f"/push/ok/{secrets.token_hex(4)}"))
    gone_endpoint = str(server.make_url(f"/push/gone/{secrets.token_hex(4)}"))
    officer = {"Authorization": f"Bearer {await token_for(rt_client, 't_officer')}"}
    regulator = {"Authorization": f"Bearer {await token_for(rt_client, 't_regulator')}"}
    try:
        for headers, sub in (
            (officer, officer_browser.subscription(officer_endpoint)),
            (regulator, regulator_browser.subscription(gone_endpoint)),
        ):
            resp = await rt_client.post("/api/v1/push/subscriptions", json=sub, headers=headers)
            assert resp.status == 201, await resp.text()
        public_key = (
            await (await rt_client.get("/api/v1/push/vapid-public-key", headers=officer)).json()
        )["public_key"]
        bus = rt_client.app[BUS]
        sender = rt_client.app[PUSH]
        alert_id = 10**9 + secrets.randbelow(10**9)  # dedupe keys live in Redis: a fresh id
        bus.publish(alert_event(world, "A", alert_id, kind="leak", subject_id="TAG-A-OK"))
        await sender.wait_idle()

        by_path = {path: (headers, body) for path, headers, body in received}
        headers, body = by_path[officer_endpoint.split(str(server.make_url("")).rstrip("/"))[-1]]
        assert headers["Content-Encoding"] == "aes128gcm"
        assert headers["Urgency"] == "high" and int(headers["TTL"]) > 0
        scheme, _, params = headers["Authorization"].partition(" ")
        fields = dict(p.split("=", 1) for p in params.split(","))
        assert scheme == "vapid" and fields["k"] == public_key
        claims = json.loads(unb64(fields["t"].split(".")[1]))
        assert claims["aud"] == str(server.make_url("")).rstrip("/")
        message = officer_browser.decrypt(body)
        assert message["alert"]["id"] == alert_id and message["alert"]["kind"] == "leak"
        assert message["tag"] == f"alert-{alert_id}" and "leak" in message["title"]

        # the city-wide regulator's push service said 410: that subscription is gone
        assert len(received) == 2
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM push_subscriptions WHERE endpoint = $1", gone_endpoint
            )
            == 0
        )

        # a count bump, a repeat of the same alert and an alert out of the officer's
        # district push nothing to the officer
        received.clear()
        bus.publish(alert_event(world, "A", alert_id, count=2))
        bus.publish(alert_event(world, "A", alert_id))
        bus.publish(alert_event(world, "B", alert_id + 1))
        await sender.wait_idle()
        assert received == []
    finally:
        await pool.execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ANY($1::text[])",
            [officer_endpoint, gone_endpoint],
        )


async def test_a_subscription_with_unusable_keys_does_not_silence_the_others(
    rt_client: Any, push_service: Any, pool: Any, world: Any
) -> None:
    """A browser (or a faked PushManager) that stored junk keys must not keep an alert from
    every other officer; its subscription is removed since it can never be delivered."""
    server, received = push_service
    good = Browser()
    good_endpoint = str(server.make_url(f"/push/ok/{secrets.token_hex(4)}"))
    bad_endpoint = str(server.make_url(f"/push/ok/{secrets.token_hex(4)}"))
    officer = {"Authorization": f"Bearer {await token_for(rt_client, 't_officer')}"}
    junk = {
        "endpoint": bad_endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64(b"\x04" + b"\x01" * 64), "auth": b64(secrets.token_bytes(16))},
    }
    try:
        for sub in (junk, good.subscription(good_endpoint)):
            resp = await rt_client.post("/api/v1/push/subscriptions", json=sub, headers=officer)
            assert resp.status in (201, 400), await resp.text()
        alert_id = 10**9 + secrets.randbelow(10**9)
        rt_client.app[BUS].publish(
            alert_event(world, "A", alert_id, kind="leak", subject_id="TAG-A-OK")
        )
        await rt_client.app[PUSH].wait_idle()
        paths = [path for path, _headers, _body in received]
        good_path = good_endpoint.split(str(server.make_url("")).rstrip("/"))[-1]
        assert good_path in paths
        body = next(b for path, _h, b in received if path == good_path)
        assert good.decrypt(body)["alert"]["id"] == alert_id
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM push_subscriptions WHERE endpoint = $1", bad_endpoint
            )
            == 0
        )
    finally:
        await pool.execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ANY($1::text[])",
            [good_endpoint, bad_endpoint],
        )
