"""Realtime fixtures: an app per test on its own Redis channel, websocket helpers.

Redis pub/sub channels ignore the database number, so every test app gets a channel of
its own: tests running side by side (or other suites on the machine) never cross-talk.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from tests.conftest import PASSWORD

RECV_TIMEOUT_S = 3.0


def realtime_settings(settings: Any, **overrides: Any) -> Any:
    """*settings* with a private Redis channel, http push endpoints allowed, *overrides*."""
    rt = msgspec.structs.replace(
        settings.realtime,
        redis_channel=f"cylwatch:test:{secrets.token_hex(6)}",
        push_allow_http=True,
        **overrides,
    )
    return msgspec.structs.replace(settings, realtime=rt)


@pytest.fixture
def rt_settings(settings: Any) -> Any:
    return realtime_settings(settings)


MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client(aiohttp_client: Any, database: str, world: Any) -> MakeClient:
    from server.app import create_app

    async def make(settings: Any) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(settings, with_pages=False)
        )
        return client

    return make


@pytest.fixture
async def rt_client(
    make_client: MakeClient, rt_settings: Any
) -> TestClient[web.Request, web.Application]:
    return await make_client(rt_settings)


async def token_for(client: Any, username: str) -> str:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert resp.status == 200, await resp.text()
    # the login also set a session cookie; the next login on this client would then need CSRF
    client.session.cookie_jar.clear()
    return str((await resp.json())["token"])


class WS:
    """A websocket client speaking the /ws protocol, with timeouts on every read."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._next = 0

    def next_id(self) -> int:
        self._next += 1
        return self._next

    async def send(self, **msg: Any) -> int:
        if "id" not in msg:
            msg["id"] = self.next_id()
        elif isinstance(msg["id"], int):
            self._next = max(self._next, msg["id"])
        await self.ws.send_str(orjson.dumps(msg).decode())
        return int(msg["id"])

    async def recv(self, wait_s: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=wait_s)
        assert msg.type == WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
        out: dict[str, Any] = orjson.loads(msg.data)
        return out

    async def silent(self, within: float = 0.4) -> None:
        """Assert no frame arrives within *within* seconds."""
        try:
            msg = await self.ws.receive(timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {msg.data!r}")

    async def subscribe(
        self, channel: str, flt: dict[str, Any] | None = None, snapshot: bool = True
    ) -> int:
        msg: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if flt is not None:
            msg["filter"] = flt
        sub = await self.send(**msg)
        result = await self.recv()
        assert result == {
            "id": sub,
            "type": "result",
            "success": True,
            "result": {"subscription": sub, "channel": channel},
        }, result
        if snapshot:
            snap = await self.recv()
            assert snap["id"] == sub and snap.get("snapshot") is True, snap
        return sub

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
async def connect(rt_client: Any) -> AsyncIterator[Callable[..., Awaitable[WS]]]:
    """``await connect("t_admin")`` → a logged-in `WS` on the test app (closed afterwards)."""
    opened: list[WS] = []

    async def open_ws(username: str, client: Any = None) -> WS:
        c = client or rt_client
        token = await token_for(c, username)
        ws = WS(await c.ws_connect(f"/ws?token={token}"))
        opened.append(ws)
        return ws

    yield open_ws
    for ws in opened:
        await ws.close()
