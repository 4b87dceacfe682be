"""Redis bridge: an event published in one process reaches websockets on every other,
exactly once, never echoed back; a separate ingest process publishes with
`realtime.bridge.attach_publisher`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from realtime.bridge import RedisBridge, attach_publisher, bridge_channel, decode, encode
from realtime.bus import EventBus
from realtime.keys import BRIDGE
from server.kernel.appkeys import BUS
from server.kernel.events import Event
from tests.conftest import PASSWORD
from tests.realtime.conftest import WS, realtime_settings, token_for
from tests.realtime.test_protocol import fill_event

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def test_wire_format_round_trip() -> None:
    event = Event(
        "alerts",
        {"id": 7, "note": "line\nbreak", "kind": "leak"},
        district="410105",
        company_id=3,
        site_id=4,
        lat=34.8,
        lon=113.6,
        key="alert:7",
        ts=12.5,
    )
    back = decode(encode(event, "proc-1"))
    assert back == Event(
        "alerts", event.data, "410105", 3, 4, 34.8, 113.6, "alert:7", 12.5, "proc-1"
    )
    assert back.raw == b'{"id":7,"note":"line\\nbreak","kind":"leak"}'
    with pytest.raises(ValueError):
        decode(b"no separator")


async def _wait_subscribers(redis: Redis, channel: str, n: int) -> None:
    for _ in range(int(START_TIMEOUT_S / 0.05)):
        counts = dict(await redis.pubsub_numsub(channel))
        if counts.get(channel.encode(), 0) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{n} subscriber(s) never appeared on {channel}")


async def test_two_apps_deliver_each_others_events_once(
    make_client: Any, settings: Any, world: Any
) -> None:
    shared = realtime_settings(settings)
    one = await make_client(shared)
    two = await make_client(shared)
    redis = Redis.from_url(shared.services.redis_url)
    try:
        await _wait_subscribers(redis, bridge_channel(shared), 2)
    finally:
        await redis.aclose()
    ws_one = WS(await one.ws_connect(f"/ws?token={await token_for(one, 't_company_a')}"))
    ws_two = WS(await two.ws_connect(f"/ws?token={await token_for(two, 't_company_a')}"))
    try:
        await ws_one.subscribe("fills", snapshot=False)
        await ws_two.subscribe("fills", snapshot=False)
        one.app[BUS].publish(fill_event(world, "A", tag="FROM-ONE"))
        one.app[BUS].publish(fill_event(world, "B", tag="B-IS-NOT-YOURS"))
        two.app[BUS].publish(fill_event(world, "A", tag="FROM-TWO"))
        got_one = {(await ws_one.recv())["data"][0]["tag"] for _ in range(2)}
        got_two = {(await ws_two.recv())["data"][0]["tag"] for _ in range(2)}
        assert got_one == got_two == {"FROM-ONE", "FROM-TWO"}
        await ws_one.silent(0.5)  # no echo of its own event, no second copy
        await ws_two.silent(0.1)
        bridge = one.app[BRIDGE]
        assert bridge.delivered >= 1 and bridge.publisher.dropped == 0
    finally:
        await ws_one.close()
        await ws_two.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_servers(
    settings: Any, database: str, world: Any, tmp_path: Path
) -> Iterator[tuple[list[int], Any]]:
    """Two real `cylwatch serve --no-ingest` processes on one private Redis channel."""
    shared = realtime_settings(settings)
    env = dict(os.environ)
    env.update(
        {
            "CYL_DATABASE_URL": shared.services.database_url,
            "CYL_REDIS_URL": shared.services.redis_url,
            "CYL_REALTIME__REDIS_CHANNEL": shared.realtime.redis_channel,
            # `cylwatch serve` refuses to start without the ID-number hash key file
            "CYL_PRIVACY__ID_HASH_KEY_FILE": shared.privacy.id_hash_key_file,
            "PYTHONPATH": str(ROOT),
        }
    )
    ports = [_free_port(), _free_port()]
    procs = []
    logs = []
    for port in ports:
        log = (tmp_path / f"serve-{port}.log").open("wb")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--no-ingest",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        yield ports, shared
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        if any(proc.returncode not in (0, -15) for proc in procs):
            for path in sorted(tmp_path.glob("serve-*.log")):
                print(path.read_text(errors="replace")[-3000:])


async def _ready(session: aiohttp.ClientSession, port: int) -> None:
    for _ in range(int(START_TIMEOUT_S / 0.1)):
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"server on port {port} did not start")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.mark.slow
async def test_cross_process_delivery_from_a_separate_ingest_publisher(
    two_servers: tuple[list[int], Any], http: aiohttp.ClientSession, world: Any
) -> None:
    """Two server processes; an "ingest process" (its own bus + attach_publisher) publishes
    alerts; a websocket on each server receives each alert exactly once, in scope."""
    ports, shared = two_servers
    for port in ports:
        await _ready(http, port)
    redis = Redis.from_url(shared.services.redis_url)
    try:
        await _wait_subscribers(redis, bridge_channel(shared), 2)
    finally:
        await redis.aclose()
    sockets = []
    for port, user in zip(ports, ("t_company_a", "t_admin"), strict=True):
        async with http.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            json={"username": user, "password": PASSWORD},
        ) as resp:
            token = (await resp.json())["token"]
        ws = WS(await http.ws_connect(f"http://127.0.0.1:{port}/ws?token={token}"))
        await ws.subscribe("fills", snapshot=False)
        sockets.append(ws)
    ingest_bus = EventBus()
    publisher = await attach_publisher(ingest_bus, shared)
    try:
        ingest_bus.publish(fill_event(world, "A", tag="X-A", net_kg=14.2))
        ingest_bus.publish(fill_event(world, "B", tag="X-B"))
        company_a, admin = sockets
        frame = await company_a.recv(wait_s=5)
        assert [r["tag"] for r in frame["data"]] == ["X-A"]
        assert frame["data"][0]["net_kg"] == 14.2
        tags = [(await admin.recv(wait_s=5))["data"][0]["tag"] for _ in range(2)]
        assert tags == ["X-A", "X-B"]
        await company_a.silent(0.5)
        await admin.silent(0.1)
    finally:
        await publisher.aclose()
        for ws in sockets:
            await ws.close()
    assert publisher.published == 2 and publisher.dropped == 0


async def test_subscriber_reconnects_after_redis_drops_it(settings: Any, caplog: Any) -> None:
    """Killing the subscriber's Redis connection (as a Redis restart does) is logged, retried,
    and delivery resumes."""
    shared = realtime_settings(settings, bridge_reconnect_min_s=0.05)
    bus = EventBus()
    got: list[Event] = []
    bus.listen("fills", got.append)
    bridge = RedisBridge(bus, shared)
    await bridge.start()
    redis = Redis.from_url(shared.services.redis_url)
    publisher = await attach_publisher(EventBus(), shared)
    try:
        await asyncio.wait_for(bridge.connected.wait(), START_TIMEOUT_S)
        # CLIENT KILL the bridge's pubsub connection, as a Redis restart would; only this
        # bridge's (named after its origin): other suites' subscribers share this Redis
        clients = await redis.client_list()
        victims = [c for c in clients if c.get("name") == f"cylwatch:sub:{bridge.origin}"]
        assert len(victims) == 1
        for c in victims:
            await redis.client_kill_filter(_id=c["id"])
        for _ in range(200):
            if not bridge.connected.is_set():
                break
            await asyncio.sleep(0.01)
        await asyncio.wait_for(bridge.connected.wait(), START_TIMEOUT_S)
        publisher.publish(Event("fills", {"tag": "AFTER"}))
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        assert [e.data["tag"] for e in got] == ["AFTER"]
        assert any("lost" in r.getMessage() for r in caplog.records)
    finally:
        await publisher.aclose()
        await bridge.aclose()
        await redis.aclose()
