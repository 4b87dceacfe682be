"""The /ws protocol (docs/ARCHITECTURE.md §6): envelope, ids, errors that keep the connection open,
subscribe/unsubscribe, and subscriptions released on disconnect."""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType

from server.kernel.appkeys import BUS
from server.kernel.events import Event


def fill_event(world: Any, company: str = "A", **data: Any) -> Event:
    district = "410105" if company == "A" else "410103"
    row = {
        "tag": f"TAG-{company}-OK",
        "company_id": world.companies[company],
        "district": district,
        "station_id": world.sites[f"STA-{company}1"],
        "net_kg": 14.5,
        "result": "completed",
        **data,
    }
    return Event(
        "fills",
        row,
        district=district,
        company_id=world.companies[company],
        site_id=world.sites[f"STA-{company}1"],
    )


async def test_anonymous_gets_unauthorized_then_4401(rt_client: Any) -> None:
    ws = await rt_client.ws_connect("/ws")
    msg = await ws.receive(timeout=3)
    assert msg.type == WSMsgType.TEXT
    body = msg.json()
    assert body["success"] is False and body["error"]["code"] == "unauthorized"
    closing = await ws.receive(timeout=3)
    assert closing.type == WSMsgType.CLOSE and closing.data == 4401
    await ws.close()


async def test_unknown_token_is_anonymous(rt_client: Any) -> None:
    ws = await rt_client.ws_connect("/ws?token=nope")
    assert (await ws.receive(timeout=3)).json()["error"]["code"] == "unauthorized"
    await ws.close()


async def test_ping_pong_and_increasing_ids(connect: Any) -> None:
    ws = await connect("t_admin")
    await ws.send(id=5, type="ping")
    assert await ws.recv() == {"id": 5, "type": "pong"}
    await ws.send(id=5, type="ping")
    err = await ws.recv()
    assert err["id"] == 5 and err["success"] is False and err["error"]["code"] == "id_reuse"
    await ws.send(id=3, type="ping")
    assert (await ws.recv())["error"]["code"] == "id_reuse"
    await ws.send(id=6, type="ping")
    assert await ws.recv() == {"id": 6, "type": "pong"}


async def test_bad_input_keeps_the_connection_open(connect: Any) -> None:
    ws = await connect("t_admin")
    await ws.ws.send_str("{not json")
    err = await ws.recv()
    assert err == {
        "id": None,
        "type": "result",
        "success": False,
        "error": {"code": "invalid_json", "message": err["error"]["message"]},
    }
    await ws.ws.send_str('{"type": "ping"}')  # no id
    err = await ws.recv()
    assert err["error"]["code"] == "invalid_format" and err["error"]["field"] == "id"
    await ws.ws.send_str("[1, 2]")
    assert (await ws.recv())["error"]["code"] == "invalid_format"
    await ws.send(id=1, type="frobnicate")
    err = await ws.recv()
    assert err["id"] == 1 and err["error"]["code"] == "unknown_command"
    await ws.send(id=2, type="subscribe", channel="alerts", filter={"bbox": [1, "x", 3, 4]})
    err = await ws.recv()
    assert err["id"] == 2 and err["error"]["code"] == "invalid_format"
    assert err["error"]["field"] == "filter.bbox[1]"
    await ws.send(id=3, type="subscribe", chanel="alerts")
    err = await ws.recv()
    assert err["error"]["code"] == "invalid_format" and "chanel" in err["error"]["message"]
    await ws.send(id=4, type="unsubscribe")
    err = await ws.recv()
    assert err["error"]["code"] == "invalid_format" and err["error"]["field"] == "subscription"
    await ws.ws.send_bytes(b'{"id": 7, "type": "ping"}')  # binary frames are read alike
    assert await ws.recv() == {"id": 7, "type": "pong"}


async def test_unknown_channel_and_bad_filters(connect: Any) -> None:
    ws = await connect("t_admin")
    await ws.send(id=1, type="subscribe", channel="weather")
    assert (await ws.recv())["error"]["code"] == "unknown_channel"
    for i, flt in enumerate(
        [
            {"bbox": [113, 34]},
            {"bbox": [114, 34, 113, 35]},  # west > east
            {"bbox": [113, 95, 114, 96]},  # latitude out of range
            {"bbox": [-200, 34, 114, 35]},
            {"company": "NO-SUCH-COMPANY"},
            {"company": 0},
            {"district": ""},
        ],
        start=2,
    ):
        await ws.send(id=i, type="subscribe", channel="positions", filter=flt)
        err = await ws.recv()
        assert err["id"] == i and err["error"]["code"] == "invalid_filter", (flt, err)
    await ws.send(id=20, type="subscribe", channel="kpis", filter={"bbox": [113, 34, 114, 35]})
    assert (await ws.recv())["error"]["code"] == "invalid_filter"


async def test_subscribe_event_unsubscribe(connect: Any, rt_client: Any, world: Any) -> None:
    bus = rt_client.app[BUS]
    ws = await connect("t_admin")
    sub = await ws.subscribe("fills", snapshot=False)
    bus.publish(fill_event(world, net_kg=14.1))
    frame = await ws.recv()
    assert frame["id"] == sub and frame["type"] == "event" and frame["channel"] == "fills"
    assert [row["net_kg"] for row in frame["data"]] == [14.1]
    await ws.send(id=sub + 1, type="unsubscribe", subscription=sub)
    assert await ws.recv() == {"id": sub + 1, "type": "result", "success": True, "result": None}
    bus.publish(fill_event(world))
    await ws.silent()
    await ws.send(id=sub + 2, type="unsubscribe", subscription=sub)
    assert (await ws.recv())["error"]["code"] == "not_found"


async def test_company_filter_by_code_or_id(connect: Any, rt_client: Any, world: Any) -> None:
    bus = rt_client.app[BUS]
    ws = await connect("t_admin")
    by_code = await ws.subscribe("fills", {"company": "TEST-B"}, snapshot=False)
    by_id = await ws.subscribe("fills", {"company": world.companies["B"]}, snapshot=False)
    bus.publish(fill_event(world, "A"))
    bus.publish(fill_event(world, "B"))
    got = {(await ws.recv())["id"], (await ws.recv())["id"]}
    assert got == {by_code, by_id}
    await ws.silent()


async def test_subscriptions_are_released_on_disconnect(connect: Any, rt_client: Any) -> None:
    from realtime.keys import HUB

    bus = rt_client.app[BUS]
    hub = rt_client.app[HUB]
    baseline = bus.listener_count()
    ws = await connect("t_admin")
    await ws.subscribe("alerts")
    await ws.subscribe("fills", snapshot=False)
    await ws.subscribe("positions", {"bbox": [113.6, 34.7, 113.7, 34.8]})
    other = await connect("t_company_a")
    await other.subscribe("alerts")
    assert bus.listener_count() == baseline + 4
    await ws.close()
    await other.close()
    for _ in range(100):
        if not hub.connections:
            break
        await __import__("asyncio").sleep(0.02)
    assert bus.listener_count() == baseline
    assert hub.groups == {} and hub.connections == set()


async def test_same_scope_and_filter_share_one_listener(connect: Any, rt_client: Any) -> None:
    bus = rt_client.app[BUS]
    baseline = bus.listener_count()
    a = await connect("t_regulator")
    b = await connect("t_admin")
    await a.subscribe("fills", snapshot=False)
    await b.subscribe("fills", snapshot=False)
    assert bus.listener_count() == baseline + 1  # both see everything: one group
