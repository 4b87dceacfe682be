"""`/ws` limits and credential ends (docs/WEBSOCKET.md "Connecting", "Close codes").

What must hold: a page of another site cannot open the socket (Origin checked before the
upgrade) while a token client without Origin can; a user holds at most
``ws_connections_per_user_max`` sockets; messages past the rate get ``rate_limited`` and a
flood is closed (1008); an oversized message closes (1009); and when a session ends — logout,
password change (API or CLI), deactivation, revoked kiosk token — its sockets get
``session_ended`` and close with 4410 in every server process, the others stay open.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from redis.asyncio import Redis

from realtime import protocol as proto
from realtime.bridge import bridge_channel
from server.kernel import kiosk_tokens
from tests.realtime.conftest import WS, realtime_settings, token_for
from tests.test_sessions_lifecycle import NEW_PASSWORD, new_user, passwd_args

CLOSE_WAIT_S = 5.0


async def closed_with(ws: WS, code: int, error: str | None = None) -> None:
    """The next frames: an optional error result *error*, then the close *code*."""
    msg = await ws.ws.receive(timeout=CLOSE_WAIT_S)
    if error is not None:
        assert msg.type == WSMsgType.TEXT, msg
        frame = msg.json()
        assert frame["success"] is False and frame["error"]["code"] == error, frame
        msg = await ws.ws.receive(timeout=CLOSE_WAIT_S)
    # the code the server's close frame carried (what a browser's CloseEvent reports)
    assert msg.type == WSMsgType.CLOSE, msg
    assert msg.data == code, msg


async def still_open(ws: WS) -> None:
    msg_id = await ws.send(type="ping")
    assert await ws.recv() == {"id": msg_id, "type": "pong"}


async def open_ws(client: Any, token: str, **headers: str) -> WS:
    return WS(await client.ws_connect(f"/ws?token={token}", headers=headers))


# ------------------------------------------------------------------ origin


async def test_origin_must_be_the_sites(make_client: Any, settings: Any) -> None:
    client = await make_client(
        realtime_settings(settings, ws_allowed_origins=("https://wall.example.gov",))
    )
    token = await token_for(client, "t_regulator")
    for evil in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(f"/ws?token={token}", headers={"Origin": evil})
        assert refused.value.status == 403, evil
    site = settings.http.base_url.rstrip("/")
    own = f"http://{client.server.host}:{client.server.port}"
    for origin in (site, "https://wall.example.gov", own, None):
        headers = {"Origin": origin} if origin else {}
        ws = await open_ws(client, token, **headers)
        await still_open(ws)
        await ws.close()


# ------------------------------------------------------------------ per-user cap


async def test_connections_per_user_are_capped(make_client: Any, settings: Any) -> None:
    client = await make_client(realtime_settings(settings, ws_connections_per_user_max=2))
    token = await token_for(client, "t_officer")
    first, second = await open_ws(client, token), await open_ws(client, token)
    third = await open_ws(client, token)
    await closed_with(third, proto.CLOSE_TOO_MANY_CONNECTIONS, proto.TOO_MANY_CONNECTIONS)
    other = await open_ws(client, await token_for(client, "t_regulator"))  # another user
    await still_open(other)
    await first.close()
    await asyncio.sleep(0.1)
    again = await open_ws(client, token)
    await still_open(again)
    for ws in (second, other, again):
        await ws.close()


# ------------------------------------------------------------------ rate and size


async def test_messages_past_the_rate_are_refused_then_closed(
    make_client: Any, settings: Any
) -> None:
    client = await make_client(
        realtime_settings(
            settings, ws_messages_per_s=1, ws_message_burst=3, ws_rate_limit_close_after=5
        )
    )
    ws = await open_ws(client, await token_for(client, "t_admin"))
    for _ in range(3):
        await still_open(ws)
    await ws.send(type="ping")
    refused = await ws.recv()
    assert refused["id"] is None and refused["error"]["code"] == proto.RATE_LIMITED
    for _ in range(3):
        await ws.send(type="ping")
        assert (await ws.recv())["error"]["code"] == proto.RATE_LIMITED
    await ws.send(type="ping")  # the fifth refusal in a row
    await closed_with(ws, proto.CLOSE_POLICY_VIOLATION, proto.RATE_LIMITED)


async def test_a_pause_refills_the_bucket(make_client: Any, settings: Any) -> None:
    client = await make_client(
        realtime_settings(
            settings, ws_messages_per_s=20, ws_message_burst=2, ws_rate_limit_close_after=3
        )
    )
    ws = await open_ws(client, await token_for(client, "t_admin"))
    for _ in range(3):  # a burst of 2, refused twice, then a pause: never closed
        await ws.send(type="ping")
        await ws.send(type="ping")
        await ws.send(type="ping")
        await ws.send(type="ping")
        codes = [(await ws.recv()).get("type") for _ in range(4)]
        assert codes.count("pong") >= 2, codes
        await asyncio.sleep(0.2)
    await still_open(ws)
    await ws.close()


async def test_an_oversized_message_closes_1009(make_client: Any, settings: Any) -> None:
    client = await make_client(realtime_settings(settings, ws_max_message_bytes=1024))
    ws = await open_ws(client, await token_for(client, "t_admin"))
    await ws.ws.send_str('{"id": 1, "type": "ping", "pad": "' + "x" * 2000 + '"}')
    await closed_with(ws, 1009)


# ------------------------------------------------------------------ sessions end, sockets close


async def test_logout_closes_that_sessions_sockets_only(
    make_client: Any, settings: Any, pool: Any, world: Any
) -> None:
    client = await make_client(realtime_settings(settings))
    name = await new_user(pool, settings, world)
    leaving, staying = await token_for(client, name), await token_for(client, name)
    a, b = await open_ws(client, leaving), await open_ws(client, staying)
    resp = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {leaving}"})
    assert resp.status == 200
    await closed_with(a, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)
    await still_open(b)
    await b.close()


async def _wait_subscribers(client: Any, settings: Any, n: int) -> None:
    redis = Redis.from_url(settings.services.redis_url)
    try:
        for _ in range(100):
            [(_, count)] = await redis.pubsub_numsub(bridge_channel(settings))
            if count >= n:
                return
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    raise AssertionError("the bridges never subscribed")


async def test_password_change_closes_the_other_sessions_sockets_in_every_process(
    make_client: Any, settings: Any, pool: Any, world: Any
) -> None:
    shared = realtime_settings(settings)
    one, two = await make_client(shared), await make_client(shared)
    await _wait_subscribers(one, shared, 2)
    name = await new_user(pool, settings, world)
    changing, other = await token_for(one, name), await token_for(two, name)
    mine = await open_ws(one, changing)
    theirs_here, theirs_there = await open_ws(one, other), await open_ws(two, other)
    uid = await pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    resp = await one.patch(
        f"/api/v1/users/{uid}",
        json={"password": NEW_PASSWORD, "current_password": "correct-horse-42"},
        headers={"Authorization": f"Bearer {changing}"},
    )
    assert resp.status == 200, await resp.text()
    await closed_with(theirs_here, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)
    await closed_with(theirs_there, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)
    await still_open(mine)
    await mine.close()


async def test_cli_passwd_closes_sockets_through_redis(
    make_client: Any, settings: Any, pool: Any, world: Any, capsys: Any, tmp_path: Any
) -> None:
    from server.commands import cmd_user_passwd

    shared = realtime_settings(settings)
    client = await make_client(shared)
    await _wait_subscribers(client, shared, 1)
    name = await new_user(pool, settings, world)
    ws = await open_ws(client, await token_for(client, name))
    args = passwd_args(tmp_path, name)
    assert await cmd_user_passwd(args, shared) == 0
    await closed_with(ws, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)


async def test_deactivation_closes_session_and_api_key_sockets(
    make_client: Any, settings: Any, pool: Any, world: Any
) -> None:
    client = await make_client(realtime_settings(settings))
    name = await new_user(pool, settings, world, role="company_admin")
    token = await token_for(client, name)
    resp = await client.post(
        "/api/v1/auth/api-keys",
        json={"name": "erp"},
        headers={"Authorization": f"Bearer {token}"},
    )
    key = (await resp.json())["key"]
    by_session = await open_ws(client, token)
    by_key = WS(await client.ws_connect("/ws", headers={"X-API-Key": key}))
    await still_open(by_key)
    admin = await token_for(client, "t_admin")
    uid = await pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    resp = await client.patch(
        f"/api/v1/users/{uid}", json={"active": False}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert resp.status == 200
    await closed_with(by_session, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)
    await closed_with(by_key, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)


async def test_revoking_a_kiosk_token_closes_its_walls(
    aiohttp_client: Any, database: str, settings: Any, pool: Any, world: Any
) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(realtime_settings(settings), with_pages=True))
    name = await new_user(pool, settings, world)
    uid = await pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    revoked = await kiosk_tokens.issue(pool, uid, 600)
    kept = await kiosk_tokens.issue(pool, uid, 600)
    walls = []
    for issued in (revoked, kept):
        resp = await client.post("/big-screen/session", json={"kiosk": issued.token})
        assert resp.status == 200, await resp.text()
        walls.append(await open_ws(client, (await resp.json())["token"]))
    admin = await token_for(client, "t_admin")
    resp = await client.delete(
        f"/api/v1/kiosk-tokens/{revoked.id}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert resp.status == 200 and (await resp.json())["active"] is False
    await closed_with(walls[0], proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)
    await still_open(walls[1])
    await walls[1].close()
