"""Fan-out: role scope on every row, filters, coalescing, slow readers, snapshot without gap."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from realtime.keys import HUB
from server.kernel.appkeys import BUS
from server.kernel.events import Event
from tests.realtime.conftest import WS, realtime_settings, token_for
from tests.realtime.test_protocol import fill_event

DISTRICT = {"A": "410105", "B": "410103"}


def alert_event(world: Any, company: str, alert_id: int, **data: Any) -> Event:
    row = {
        "id": alert_id,
        "kind": "overfill",
        "severity": "critical",
        "subject_type": "cylinder",
        "subject_id": f"TAG-{company}-OK",
        "company_id": world.companies[company],
        "site_id": world.sites[f"STA-{company}1"],
        "district": DISTRICT[company],
        "cylinder_id": None,
        "state": "open",
        "count": 1,
        "first_at": "2026-01-01T00:00:00+00:00",
        "last_at": "2026-01-01T00:00:00+00:00",
        "lat": 34.8,
        "lon": 113.65,
        "details": {},
        **data,
    }
    return Event(
        "alerts",
        row,
        district=DISTRICT[company],
        company_id=world.companies[company],
        site_id=world.sites[f"STA-{company}1"],
        lat=row["lat"],
        lon=row["lon"],
    )


def position(
    vehicle: str,
    lat: float,
    lon: float,
    *,
    company_id: int | None = None,
    district: str | None = None,
    ts: int = 0,
) -> Event:
    data = {
        "kind": "vehicle",
        "id": vehicle,
        "lat": lat,
        "lon": lon,
        "ts": ts,
        "speed_kmh": 30.0,
        "heading": 90.0,
    }
    return Event(
        "positions",
        data,
        district=district,
        company_id=company_id,
        lat=lat,
        lon=lon,
        key=f"vehicle:{vehicle}",
    )


@pytest.fixture
async def db_alerts(pool: Any, world: Any) -> AsyncIterator[dict[str, int]]:
    """One open alert for company A, one for B, one resolved for A (removed afterwards)."""
    now = dt.datetime.now(dt.UTC)
    ids: dict[str, int] = {}
    for name, company, state in (
        ("A", "A", "open"),
        ("B", "B", "open"),
        ("A-resolved", "A", "resolved"),
    ):
        ids[name] = await pool.fetchval(
            """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                                   district_code, state, first_at, last_at, lat, lon)
               VALUES ('leak', 'critical', 'cylinder', $1, $2, $3, $4, $5, $6, $6, 34.8, 113.65)
               RETURNING id""",
            f"RT-{name}-{now.timestamp()}",
            world.companies[company],
            world.sites[f"STA-{company}1"],
            DISTRICT[company],
            state,
            now,
        )
    yield ids
    await pool.execute("DELETE FROM alerts WHERE id = ANY($1::bigint[])", list(ids.values()))


async def test_alert_snapshot_is_scoped(connect: Any, db_alerts: dict[str, int]) -> None:
    seen: dict[str, set[int]] = {}
    for user in ("t_admin", "t_company_a", "t_company_b", "t_officer", "t_operator_a"):
        ws = await connect(user)
        sub = await ws.send(type="subscribe", channel="alerts")
        assert (await ws.recv())["success"] is True
        snap = await ws.recv()
        assert snap["id"] == sub and snap["snapshot"] is True
        seen[user] = {row["id"] for row in snap["data"]} & set(db_alerts.values())
    assert seen["t_admin"] == {db_alerts["A"], db_alerts["B"]}  # resolved ones are not live
    assert seen["t_company_a"] == {db_alerts["A"]}
    assert seen["t_company_b"] == {db_alerts["B"]}
    assert seen["t_officer"] == {db_alerts["A"]}  # officer of 410105 (company A's district)
    assert seen["t_operator_a"] == {db_alerts["A"]}


async def test_live_rows_are_scoped_per_role(connect: Any, rt_client: Any, world: Any) -> None:
    """A company admin never receives another company's row, even with no filter."""
    bus = rt_client.app[BUS]
    subs: dict[str, WS] = {}
    for user in (
        "t_admin",
        "t_company_a",
        "t_company_b",
        "t_officer",
        "t_operator_a",
        "t_regulator_jinshui",
    ):
        ws = await connect(user)
        await ws.subscribe("alerts")
        await ws.subscribe("fills", snapshot=False)
        subs[user] = ws
    bus.publish(alert_event(world, "A", 900001))
    bus.publish(alert_event(world, "B", 900002))
    bus.publish(fill_event(world, "A", tag="FILL-A"))
    bus.publish(fill_event(world, "B", tag="FILL-B"))
    expected = {
        "t_admin": {900001, 900002, "FILL-A", "FILL-B"},
        "t_company_a": {900001, "FILL-A"},
        "t_company_b": {900002, "FILL-B"},
        "t_officer": {900001, "FILL-A"},
        "t_regulator_jinshui": {900001, "FILL-A"},
        "t_operator_a": {900001, "FILL-A"},
    }
    for user, ws in subs.items():
        got: set[Any] = set()
        for _ in range(len(expected[user])):
            frame = await ws.recv()
            assert frame["type"] == "event"
            got |= {
                row.get("id") if frame["channel"] == "alerts" else row["tag"]
                for row in frame["data"]
            }
        assert got == expected[user], user
        await ws.silent(0.2)


async def test_inspector_may_not_read_alerts_fills_or_positions(connect: Any) -> None:
    """Nor live vehicle and cylinder positions, nor the live trajectory stream that carries
    where each event happened: an inspection agency has no use for them and reads
    trajectories through the REST API without coordinates (docs/SECURITY.md "Privacy")."""
    ws = await connect("t_inspector")
    for i, channel in enumerate(("alerts", "fills", "positions", "events"), start=1):
        await ws.send(id=i, type="subscribe", channel=channel)
        err = await ws.recv()
        assert err["id"] == i and err["error"]["code"] == "forbidden"
    await ws.subscribe("kpis", snapshot=False)


async def test_rows_without_scope_keys_are_not_shown_to_scoped_roles(
    connect: Any, rt_client: Any, world: Any
) -> None:
    company = await connect("t_company_a")
    admin = await connect("t_admin")
    await company.subscribe("fills", snapshot=False)
    await admin.subscribe("fills", snapshot=False)
    rt_client.app[BUS].publish(Event("fills", {"tag": "ORPHAN"}))
    assert (await admin.recv())["data"] == [{"tag": "ORPHAN"}]
    await company.silent(0.2)


async def test_bbox_and_district_filters(connect: Any, rt_client: Any, world: Any) -> None:
    bus = rt_client.app[BUS]
    ws = await connect("t_admin")
    inside = await ws.subscribe("positions", {"bbox": [113.60, 34.75, 113.70, 34.85]})
    by_district = await ws.subscribe("alerts", {"district": "410103"})
    bus.publish(position("V-IN", 34.80, 113.65))
    bus.publish(position("V-OUT", 34.70, 113.65))
    bus.publish(position("V-NOWHERE", 0, 0))
    bus.publish(alert_event(world, "A", 900011))
    bus.publish(alert_event(world, "B", 900012))
    frames = [await ws.recv(), await ws.recv()]
    by_id = {f["id"]: f for f in frames}
    assert [r["id"] for r in by_id[inside]["data"]] == ["V-IN"]
    assert [r["id"] for r in by_id[by_district]["data"]] == [900012]
    await ws.silent(0.4)


async def test_positions_are_coalesced_latest_wins(connect: Any, rt_client: Any) -> None:
    """100 positions of one vehicle within 250 ms → one frame holding the latest."""
    bus = rt_client.app[BUS]
    window = rt_client.app[HUB].settings.position_coalesce_ms / 1000
    ws = await connect("t_admin")
    sub = await ws.subscribe("positions")
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(100):
        bus.publish(position("V-1", 34.70 + i / 10000, 113.65, ts=i))
        if i % 10 == 9:
            await asyncio.sleep(window / 20)
    assert loop.time() - start < window
    bus.publish(position("V-2", 34.71, 113.66, ts=7))
    frame = await ws.recv()
    assert frame["id"] == sub and frame["channel"] == "positions"
    rows = {r["id"]: r for r in frame["data"]}
    assert set(rows) == {"V-1", "V-2"}
    assert rows["V-1"]["ts"] == 99 and rows["V-1"]["lat"] == pytest.approx(34.7099)
    await ws.silent(window * 1.5)
    # the next window carries the next update, no sooner than one window after the first
    bus.publish(position("V-1", 34.72, 113.65, ts=100))
    t0 = loop.time()
    frame = await ws.recv()
    assert [r["ts"] for r in frame["data"]] == [100]
    assert loop.time() - t0 >= window * 0.8


async def test_snapshot_without_gap(
    connect: Any, rt_client: Any, world: Any, db_alerts: dict[str, int]
) -> None:
    """An alert published while the snapshot is read arrives after it, once; a live
    update of a snapshot row the snapshot already has is not repeated."""
    hub = rt_client.app[HUB]
    bus = rt_client.app[BUS]
    real_snapshot = hub.snapshot

    async def slow_snapshot(*args: Any) -> Any:
        bus.publish(alert_event(world, "A", 900021))  # during the snapshot query
        rows = await real_snapshot(*args)
        same = next(r for r in rows if r["id"] == db_alerts["A"])
        bus.publish(
            Event(
                "alerts",
                dict(same),
                district=same["district"],
                company_id=same["company_id"],
                site_id=same["site_id"],
            )
        )
        bus.publish(alert_event(world, "A", 900022))
        return rows

    hub.snapshot = slow_snapshot
    ws = await connect("t_company_a")
    sub = await ws.send(type="subscribe", channel="alerts")
    assert (await ws.recv())["success"] is True
    snap = await ws.recv()
    assert snap["snapshot"] is True and db_alerts["A"] in {r["id"] for r in snap["data"]}
    live = [(await ws.recv()), (await ws.recv())]
    assert [f["data"][0]["id"] for f in live] == [900021, 900022]
    assert all(f["id"] == sub and "snapshot" not in f for f in live)
    await ws.silent(0.3)


async def test_positions_snapshot_merges_newer_live_rows(
    connect: Any, rt_client: Any, pool: Any, world: Any
) -> None:
    device = await pool.fetchval(
        """INSERT INTO devices (device_id, kind, company_id, lat, lon, last_seen_at)
           VALUES ('RT-TRUCK-1', 'vehicle', $1, 34.80, 113.65, now()) RETURNING id""",
        world.companies["A"],
    )
    try:
        hub = rt_client.app[HUB]
        bus = rt_client.app[BUS]
        real_snapshot = hub.snapshot

        async def snapshot(*args: Any) -> Any:
            rows = await real_snapshot(*args)
            bus.publish(
                position(
                    "RT-TRUCK-1",
                    34.81,
                    113.66,
                    company_id=world.companies["A"],
                    district="410105",
                    ts=42,
                )
            )
            return rows

        hub.snapshot = snapshot
        mine = await connect("t_company_a")
        await mine.send(type="subscribe", channel="positions")
        assert (await mine.recv())["success"] is True
        snap = await mine.recv()
        rows = [r for r in snap["data"] if r["id"] == "RT-TRUCK-1"]
        assert rows == [
            {
                "kind": "vehicle",
                "id": "RT-TRUCK-1",
                "lat": 34.81,
                "lon": 113.66,
                "ts": 42,
                "speed_kmh": 30.0,
                "heading": 90.0,
            }
        ]
        hub.snapshot = real_snapshot
        other = await connect("t_company_b")
        await other.send(type="subscribe", channel="positions")
        assert (await other.recv())["success"] is True
        assert "RT-TRUCK-1" not in {r["id"] for r in (await other.recv())["data"]}
    finally:
        await pool.execute("DELETE FROM devices WHERE id = $1", device)


async def test_slow_client_is_closed_1013_others_keep_receiving(
    make_client: Any, settings: Any, world: Any
) -> None:
    """A client that stops reading is closed with 1013 once alerts back up beyond its
    queue; a client reading alongside it receives every alert."""
    queue_max = 8
    client = await make_client(realtime_settings(settings, client_queue_max=queue_max))
    bus = client.app[BUS]
    hub = client.app[HUB]
    fast = WS(await client.ws_connect(f"/ws?token={await token_for(client, 't_admin')}"))
    await fast.subscribe("fills", snapshot=False)

    def tiny_buffers(addr_info: Any) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family, type_, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return sock

    token = await token_for(client, "t_admin")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(socket_factory=tiny_buffers)
    ) as session:
        slow_ws = await session.ws_connect(
            client.make_url(f"/ws?token={token}"), max_msg_size=0, autoping=False
        )
        slow = WS(slow_ws)
        await slow.subscribe("fills", snapshot=False)
        conns = set(hub.connections)
        padding = "x" * 32_768
        received = 0
        total = 400
        for i in range(total):
            bus.publish(fill_event(world, tag=f"SLOW-{i}", padding=padding))
            await asyncio.sleep(0.002)  # let writers run: the fast client keeps up
            while True:
                try:
                    msg = await fast.ws.receive(timeout=0.001)
                except TimeoutError:
                    break
                received += 1
            slow_conn = [c for c in conns if c.close_code == 1013]
            if slow_conn:
                break
        assert slow_conn, "the slow client was never closed"
        # the slow client now reads: what was already on the wire, then the 1013 close
        codes = []
        while True:
            msg = await slow_ws.receive(timeout=10)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                codes.append(msg.data)
                break
        assert codes == [1013]
        await slow_ws.close()
    # the fast client got every alert published, in order, while the slow one was stuck
    sent = i + 1
    while received < sent:
        frame = await fast.recv()
        received += 1
        assert frame["channel"] == "fills"
    assert received == sent and sent > queue_max
    await fast.close()
