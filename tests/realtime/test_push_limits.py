"""What `POST /api/v1/push/subscriptions` refuses (docs/CONFIG.md `[realtime]`): an
endpoint the server would reach over plain http beyond this machine, and a subscription
past the per-user cap."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from tests.realtime.conftest import MakeClient, realtime_settings, token_for
from tests.realtime.test_push import Browser

URL = "/api/v1/push/subscriptions"


async def test_http_endpoints_only_on_the_loopback(rt_client: Any) -> None:
    officer = {"Authorization": f"Bearer {await token_for(rt_client, 't_officer')}"}
    tail = secrets.token_hex(6)
    for endpoint in (
        f"http://push.example.invalid/{tail}",
        f"http://10.0.0.7/{tail}",
        f"http://169.254.169.254/{tail}",
    ):
        resp = await rt_client.post(URL, json=Browser().subscription(endpoint), headers=officer)
        body = await resp.json()
        assert resp.status == 400 and body["error"]["details"]["field"] == "endpoint", endpoint
    for endpoint in (f"http://127.0.0.1:9/{tail}", f"http://localhost:9/{tail}"):
        resp = await rt_client.post(URL, json=Browser().subscription(endpoint), headers=officer)
        assert resp.status == 201, endpoint
        await rt_client.delete(URL, json={"endpoint": endpoint}, headers=officer)


async def test_subscriptions_per_user_are_capped(
    make_client: MakeClient, settings: Any, pool: asyncpg.Pool, world: Any
) -> None:
    held = await pool.fetchval(
        "SELECT count(*) FROM push_subscriptions WHERE user_id = $1", world.users["t_regulator"]
    )
    cap = held + 2  # other tests of the session may have left this user's subscriptions
    client = await make_client(realtime_settings(settings, push_subscriptions_per_user_max=cap))
    officer = {"Authorization": f"Bearer {await token_for(client, 't_regulator')}"}
    mine = [f"https://push.example.invalid/{secrets.token_hex(6)}" for _ in range(3)]
    try:
        for endpoint in mine[:2]:
            resp = await client.post(URL, json=Browser().subscription(endpoint), headers=officer)
            assert resp.status == 201
        resp = await client.post(URL, json=Browser().subscription(mine[2]), headers=officer)
        body = await resp.json()
        assert (resp.status, body["error"]["code"]) == (409, "conflict")
        # renewing one already held is not a new subscription
        resp = await client.post(URL, json=Browser().subscription(mine[0]), headers=officer)
        assert resp.status == 201
    finally:
        for endpoint in mine:
            await client.delete(URL, json={"endpoint": endpoint}, headers=officer)
