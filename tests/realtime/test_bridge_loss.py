"""Live rows lost between processes are never lost silently (docs/WEBSOCKET.md "Resync").

- a flood of positions through a publisher with a tiny queue costs positions, never alerts;
- alerts another process could not send (a gap in its sequence) make the server tell every
  alerts subscription (``resync``) and send it a fresh snapshot;
- a server whose Redis subscription was cut does the same for every subscription once it
  is subscribed again;
- every such loss is counted on ``/metrics``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from redis.asyncio import Redis

from realtime.bridge import RedisBridge, attach_publisher, bridge_channel
from realtime.bus import EventBus
from realtime.keys import BRIDGE
from server.kernel.events import Event
from tests.realtime.conftest import WS, realtime_settings, token_for
from tests.realtime.test_bridge import START_TIMEOUT_S, _wait_subscribers
from tests.realtime.test_protocol import fill_event

ALERTS = 30
POSITIONS_PER_ALERT = 40
FIRST_WAIT_S = 15.0
TINY_QUEUE = 20
"""Far fewer than the events published at once: the publisher must drop most of them."""


def alert(n: int, world: Any) -> Event:
    row = {"id": 900_000 + n, "kind": "leak", "state": "open", "count": 1, "district": "410105"}
    return Event(
        "alerts",
        row,
        district="410105",
        company_id=world.companies["A"],
        key=f"alert:{900_000 + n}",
    )


def position(n: int) -> Event:
    row = {"kind": "vehicle", "id": f"V-{n % 7}", "lat": 34.75, "lon": 113.62, "ts": n}
    return Event("positions", row, district="410105", lat=34.75, lon=113.62, key=f"vehicle:{n % 7}")


def with_queue(settings: Any, queue_max: int) -> Any:
    """*settings* (same Redis channel) with a publisher queue of *queue_max* events."""
    rt = msgspec.structs.replace(settings.realtime, bridge_queue_max=queue_max)
    return msgspec.structs.replace(settings, realtime=rt)


async def _until(check: Any, wait_s: float = START_TIMEOUT_S) -> None:
    for _ in range(int(wait_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_flood_of_positions_never_costs_an_alert(settings: Any, world: Any) -> None:
    shared = realtime_settings(settings, bridge_queue_max=TINY_QUEUE)
    bus = EventBus()
    alerts: list[Event] = []
    bus.listen("alerts", alerts.append)
    bridge = RedisBridge(bus, shared)
    await bridge.start()
    redis = Redis.from_url(shared.services.redis_url)
    ingest_bus = EventBus()
    publisher = await attach_publisher(ingest_bus, shared)
    try:
        await _wait_subscribers(redis, bridge_channel(shared), 1)
        # all of it queued at once, before the publisher's task can send anything
        for n in range(ALERTS):
            for k in range(POSITIONS_PER_ALERT):
                ingest_bus.publish(position(n * POSITIONS_PER_ALERT + k))
            if n < TINY_QUEUE:
                ingest_bus.publish(alert(n, world))
        await _until(lambda: len(alerts) >= TINY_QUEUE)
        assert [e.data["id"] for e in alerts] == [900_000 + n for n in range(TINY_QUEUE)]
        assert publisher.dropped > 0 and publisher.dropped_must == 0
    finally:
        await publisher.aclose()
        await bridge.aclose()
        await redis.aclose()


def _live(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "event" and not f.get("snapshot")]


def _snapshots(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("snapshot")]


async def _frames_until(ws: WS, done: Any, wait_s: float = 5.0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while not done(frames):
        frames.append(await ws.recv(wait_s))
    return frames


async def test_alerts_lost_by_another_process_resync_the_subscribers(
    make_client: Any, settings: Any, world: Any
) -> None:
    shared = realtime_settings(settings)
    client = await make_client(shared)
    redis = Redis.from_url(shared.services.redis_url)
    try:
        await _wait_subscribers(redis, bridge_channel(shared), 1)
    finally:
        await redis.aclose()
    ws = WS(await client.ws_connect(f"/ws?token={await token_for(client, 't_admin')}"))
    ingest_bus = EventBus()
    publisher = await attach_publisher(ingest_bus, with_queue(shared, 3))
    try:
        sub = await ws.subscribe("alerts")
        ingest_bus.publish(alert(0, world))
        first = await ws.recv(FIRST_WAIT_S)
        assert first["id"] == sub and first["data"][0]["id"] == 900_000
        for n in range(1, 11):  # 10 alerts at once into a queue of 3: 7 never leave
            ingest_bus.publish(alert(n, world))
        frames = await _frames_until(ws, lambda f: len(_live(f)) == 3 and _snapshots(f))
        notices = [f for f in frames if f["type"] == "resync"]
        assert notices == [{"id": sub, "type": "resync", "channel": "alerts", "reason": "gap"}]
        assert [f["data"][0]["id"] for f in _live(frames)] == [900_008, 900_009, 900_010]
        assert frames.index(notices[0]) < frames.index(_snapshots(frames)[0])
        assert publisher.dropped_must == 7
        bridge = client.app[BRIDGE]
        assert bridge.gaps == 7
        metrics = await (await client.get("/metrics")).text()
        assert "cylwatch_realtime_bridge_gap_events_total 7" in metrics
        assert "cylwatch_realtime_resync_notices_total 1" in metrics
    finally:
        await publisher.aclose()
        await ws.close()


async def test_an_alert_lost_behind_a_burst_of_other_rows_is_noticed_at_once(
    make_client: Any, settings: Any, world: Any
) -> None:
    """The alert dropped is the channel's last for a while: the publisher's tick after the
    burst tells the server, which does not wait for the next alert to notice the gap."""
    shared = realtime_settings(settings)
    client = await make_client(shared)
    redis = Redis.from_url(shared.services.redis_url)
    try:
        await _wait_subscribers(redis, bridge_channel(shared), 1)
    finally:
        await redis.aclose()
    ws = WS(await client.ws_connect(f"/ws?token={await token_for(client, 't_admin')}"))
    ingest_bus = EventBus()
    publisher = await attach_publisher(ingest_bus, with_queue(shared, 3))
    try:
        sub = await ws.subscribe("alerts")
        ingest_bus.publish(alert(0, world))
        # a fresh publisher's first event: its connection is made on a loaded machine too
        assert (await ws.recv(FIRST_WAIT_S))["data"][0]["id"] == 900_000
        ingest_bus.publish(alert(1, world))  # the oldest when the fills overflow the queue
        for n in range(5):
            ingest_bus.publish(fill_event(world, "A", tag=f"BURST-{n}"))
        frames = await _frames_until(ws, _snapshots)
        assert [f for f in frames if f["type"] == "resync"] == [
            {"id": sub, "type": "resync", "channel": "alerts", "reason": "gap"}
        ]
        assert publisher.dropped_must == 3 and client.app[BRIDGE].gaps >= 1
    finally:
        await publisher.aclose()
        await ws.close()


async def test_a_cut_redis_subscription_resyncs_every_subscription(
    make_client: Any, settings: Any, world: Any
) -> None:
    shared = realtime_settings(settings, bridge_reconnect_min_s=0.05)
    client = await make_client(shared)
    redis = Redis.from_url(shared.services.redis_url)
    ws = WS(await client.ws_connect(f"/ws?token={await token_for(client, 't_admin')}"))
    try:
        await _wait_subscribers(redis, bridge_channel(shared), 1)
        alerts_sub = await ws.subscribe("alerts")
        fills_sub = await ws.subscribe("fills", snapshot=False)
        bridge = client.app[BRIDGE]
        # this server's subscriber connection only (named after its origin), as Redis does
        # to a subscriber past its client-output-buffer-limit
        name = f"cylwatch:sub:{bridge.origin}"
        victims = [c for c in await redis.client_list() if c.get("name") == name]
        assert len(victims) == 1
        await redis.client_kill_filter(_id=victims[0]["id"])
        frames = await _frames_until(ws, lambda f: _snapshots(f) and len(f) >= 3)
        notices = sorted(
            ((f["id"], f["channel"], f["reason"]) for f in frames if f["type"] == "resync"),
        )
        assert notices == [
            (alerts_sub, "alerts", "reconnected"),
            (fills_sub, "fills", "reconnected"),
        ]
        assert [f["id"] for f in _snapshots(frames)] == [alerts_sub]  # fills have no snapshot
        assert bridge.disconnects == 1
        # delivery goes on after the resync
        publisher = await attach_publisher(EventBus(), shared)
        try:
            publisher.publish(fill_event(world, "A", tag="AFTER-THE-CUT"))
            frame = await ws.recv(5)
            assert frame["id"] == fills_sub and frame["data"][0]["tag"] == "AFTER-THE-CUT"
        finally:
            await publisher.aclose()
        metrics = await (await client.get("/metrics")).text()
        assert "cylwatch_realtime_bridge_disconnects_total 1" in metrics
    finally:
        await ws.close()
        await redis.aclose()
