"""The wall over /ws (docs/WEBSOCKET.md `wall`, `wall_switch`): a wall starts with the layout
its scope shows, a switch made from a phone's socket reaches the walls of that scope — in
another server process too — and no other wall; the rules of who may switch which wall are
the REST API's, every refusal is an error result, and every switch is audited."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import World
from tests.realtime.conftest import WS, token_for

SCOPE = "410105"  # 金水区: the district regulator's (and the officer's) wall


@pytest.fixture
async def layout(pool: Any) -> AsyncIterator[int]:
    """A layout of this test; afterwards the 金水区 wall is back on the default."""
    layout_id = int(
        await pool.fetchval(
            """INSERT INTO wall_layouts (name, grid_columns, grid_rows, windows)
               VALUES ($1, 4, 2, $2) RETURNING id""",
            f"ws test {secrets.token_hex(4)}",
            [{"kind": "map", "x": 0, "y": 0, "w": 4, "h": 2}],
        )
    )
    yield layout_id
    await pool.execute("DELETE FROM wall_current WHERE scope = $1", SCOPE)


async def wall_snapshot(ws: WS) -> dict[str, Any]:
    sub = await ws.send(type="subscribe", channel="wall")
    result = await ws.recv()
    assert result["success"] is True, result
    snap = await ws.recv()
    assert snap["id"] == sub and snap["snapshot"] is True and snap["channel"] == "wall"
    row: dict[str, Any] = snap["data"][0]
    return row


async def result_of(ws: WS, **cmd: Any) -> dict[str, Any]:
    msg_id = await ws.send(type="wall_switch", **cmd)
    out = await ws.recv()
    assert out["id"] == msg_id and out["type"] == "result", out
    return out


async def test_a_switch_from_a_socket_reaches_the_walls_of_its_scope(
    connect: Any, pool: Any, world: World, layout: int
) -> None:
    await pool.execute("DELETE FROM wall_current WHERE scope = $1", SCOPE)
    district_wall = await connect("t_regulator_jinshui")
    before = await wall_snapshot(district_wall)
    assert before["scope"] == SCOPE
    assert before["layout"]["id"] is None and before["layout"]["windows"]  # today's wall
    city_wall = await connect("t_regulator")
    assert (await wall_snapshot(city_wall))["scope"] == "city"

    phone = await connect("t_regulator_jinshui")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await result_of(phone, layout=layout)  # no scope: the caller's own wall
    assert out["success"] is True, out
    assert out["result"]["scope"] == SCOPE and out["result"]["layout"]["id"] == layout
    frame = await district_wall.recv(wait_s=1.0)
    assert loop.time() - t0 < 1.0
    assert frame["channel"] == "wall" and "snapshot" not in frame
    row = frame["data"][0]
    assert row["scope"] == SCOPE and row["layout"]["id"] == layout
    assert row["layout"]["windows"] == [{"kind": "map", "x": 0, "y": 0, "w": 4, "h": 2}]
    assert row["switched_by"] == "t_regulator_jinshui"
    await city_wall.silent()  # another wall's switch is not the city wall's

    audit = await pool.fetchrow(
        """SELECT username, entity_id, details FROM audit_log
            WHERE action = 'wall.switch' AND entity_id = $1 ORDER BY id DESC LIMIT 1""",
        str(layout),
    )
    assert audit is not None and audit["username"] == "t_regulator_jinshui"
    assert audit["details"]["scope"] == SCOPE and audit["details"]["via"] == "ws"

    # a reconnecting wall starts from the new layout
    again = await connect("t_regulator_jinshui")
    assert (await wall_snapshot(again))["layout"]["id"] == layout


async def test_who_may_switch_which_wall(connect: Any, layout: int) -> None:
    district = await connect("t_regulator_jinshui")
    for scope in ("410103", "city", "410103,410105"):
        out = await result_of(district, layout=layout, scope=scope)
        assert out["success"] is False and out["error"]["code"] == "forbidden", (scope, out)
    for scope in ("nowhere", "410105,410103"):
        out = await result_of(district, layout=layout, scope=scope)
        assert out["error"]["code"] == "invalid_scope", (scope, out)
        assert out["error"]["field"] == "scope"
    out = await result_of(district, layout=2**62, scope=SCOPE)
    assert out["error"]["code"] == "not_found" and out["error"]["field"] == "layout"
    out = await result_of(district, layout="x")
    assert out["error"]["code"] == "invalid_format" and out["error"]["field"] == "layout"

    officer = await connect("t_officer")
    out = await result_of(officer, layout=layout, scope=SCOPE)
    assert out["error"]["code"] == "forbidden"
    sub = await officer.send(type="subscribe", channel="wall")
    refused = await officer.recv()
    assert refused["id"] == sub and refused["error"]["code"] == "forbidden"

    city = await connect("t_regulator")
    out = await result_of(city, layout=layout, scope="999999")  # no such district
    assert out["error"]["code"] == "invalid_scope" and out["error"]["field"] == "scope"
    out = await result_of(city, layout=layout, scope=SCOPE)
    assert out["success"] is True and out["result"]["switched_by"] == "t_regulator"
    sub = await city.send(type="subscribe", channel="wall", filter={"district": SCOPE})
    refused = await city.recv()
    assert refused["id"] == sub and refused["error"]["code"] == "invalid_filter"


async def test_a_switch_in_one_process_reaches_a_wall_of_another(
    make_client: Any, rt_settings: Any, connect: Any, layout: int
) -> None:
    other = await make_client(rt_settings)  # a second server process on the same Redis channel
    wall_there = await connect("t_regulator_jinshui", client=other)
    await wall_snapshot(wall_there)
    await asyncio.sleep(0.3)  # the other process's bridge subscriber is listening
    phone_here = await connect("t_regulator_jinshui")
    assert (await result_of(phone_here, layout=layout, scope=SCOPE))["success"] is True
    frame = await wall_there.recv(wait_s=2.0)
    assert frame["data"][0]["layout"]["id"] == layout


async def test_a_change_of_the_shown_layout_is_redrawn_on_its_wall(
    rt_client: Any, connect: Any, pool: Any, layout: int
) -> None:
    await pool.execute(
        "INSERT INTO wall_current (scope, layout_id) VALUES ($1, $2)"
        " ON CONFLICT (scope) DO UPDATE SET layout_id = EXCLUDED.layout_id",
        SCOPE,
        layout,
    )
    district_wall = await connect("t_regulator_jinshui")
    assert (await wall_snapshot(district_wall))["layout"]["version"] == 1
    bearer = await token_for(rt_client, "t_admin")
    windows = [{"kind": "ticker", "x": 0, "y": 0, "w": 2, "h": 2}]
    resp = await rt_client.patch(
        f"/api/v1/wall-layouts/{layout}",
        json={"version": 1, "windows": windows},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert resp.status == 200, await resp.text()
    row = (await district_wall.recv(wait_s=1.0))["data"][0]
    assert row["layout"]["version"] == 2 and row["layout"]["windows"] == windows
