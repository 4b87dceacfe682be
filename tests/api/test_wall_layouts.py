"""Wall layouts over REST (docs/API.md "Wall layouts"): what an admin may save, what is refused
with the field at fault, an editor told when someone saved meanwhile, a layout on a wall kept,
and a switch that is audited and leaves a wall that never switched on today's wall."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from server.db import wall_layouts as store
from server.domain import wall
from server.kernel.principal import READ_ONLY_SESSION_PREFIX, Principal
from tests.api.conftest import call
from tests.conftest import World

CAMERA = "https://cam.example.test:8443"
SCOPE = "410103"  # 二七区: no district regulator of the test world watches it


@pytest.fixture
async def wclient(aiohttp_client: Any, settings: Any, database: str, world: World) -> Any:
    """The app with one allowed stream origin."""
    from server.app import create_app

    bs = msgspec.structs.replace(settings.big_screen, stream_origins=(CAMERA,))
    return await aiohttp_client(
        create_app(msgspec.structs.replace(settings, big_screen=bs), with_pages=False)
    )


@pytest.fixture
async def restore_scope(pool: Any) -> AsyncIterator[None]:
    yield
    await pool.execute("DELETE FROM wall_current WHERE scope = $1", SCOPE)


def body(**over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"api test {secrets.token_hex(4)}",
        "columns": 4,
        "rows": 3,
        "windows": [
            {"kind": "map", "x": 0, "y": 0, "w": 2, "h": 3},
            {"kind": "kpis", "x": 2, "y": 0, "w": 2, "h": 1, "keys": ["open_alerts"]},
            {
                "kind": "stream",
                "x": 2,
                "y": 1,
                "w": 1,
                "h": 2,
                "url": f"{CAMERA}/cam1/index.m3u8",
                "format": "hls",
                "title": "东门",
            },
            {
                "kind": "report",
                "x": 3,
                "y": 1,
                "w": 1,
                "h": 2,
                "report": "fills-daily",
                "view": "table",
                "days": 7,
                "filters": {"district": "410105"},
            },
        ],
    }
    out.update(over)
    return out


async def test_the_seeded_layout_is_todays_wall(pool: Any) -> None:
    row = await pool.fetchrow(
        "SELECT grid_columns, grid_rows, windows FROM wall_layouts WHERE name = $1",
        wall.DEFAULT.name,
    )
    assert row is not None
    assert (row["grid_columns"], row["grid_rows"]) == (wall.DEFAULT.columns, wall.DEFAULT.rows)
    assert row["windows"] == msgspec.to_builtins(wall.DEFAULT.windows)


async def test_an_admin_saves_a_layout_and_reads_it_back(wclient: Any) -> None:
    sent = body()
    status, created = await call(wclient, "POST", "/api/v1/wall-layouts", "t_admin", sent)
    assert status == 201, created
    assert created["windows"] == sent["windows"] and created["version"] == 1
    assert created["created_by"] == "t_admin" and created["showing"] == []
    status, got = await call(wclient, "GET", f"/api/v1/wall-layouts/{created['id']}", "t_regulator")
    assert status == 200 and got["name"] == sent["name"]
    status, listed = await call(wclient, "GET", "/api/v1/wall-layouts?page_size=200", "t_regulator")
    assert status == 200 and created["id"] in {x["id"] for x in listed["items"]}
    assert listed["mine"] == "city"
    status, dup = await call(
        wclient, "POST", "/api/v1/wall-layouts", "t_admin", body(name=sent["name"])
    )
    assert status == 409 and dup["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("windows", "field"),
    [
        ([{"kind": "map", "x": 3, "y": 0, "w": 2, "h": 1}], "windows[0].w"),
        ([{"kind": "map", "x": 0, "y": 2, "w": 1, "h": 2}], "windows[0].h"),
        (
            [
                {"kind": "map", "x": 0, "y": 0, "w": 2, "h": 2},
                {"kind": "ticker", "x": 1, "y": 1, "w": 2, "h": 2},
            ],
            "windows[1]",
        ),
        (
            [
                {
                    "kind": "stream",
                    "x": 0,
                    "y": 0,
                    "w": 1,
                    "h": 1,
                    "format": "mjpeg",
                    "url": "https://elsewhere.example/cam.mjpg",
                }
            ],
            "windows[0].url",
        ),
        (
            [
                {
                    "kind": "stream",
                    "x": 0,
                    "y": 0,
                    "w": 1,
                    "h": 1,
                    "format": "mjpeg",
                    "url": "javascript:alert(1)",
                }
            ],
            "windows[0].url",
        ),
        (
            [
                {
                    "kind": "stream",
                    "x": 0,
                    "y": 0,
                    "w": 1,
                    "h": 1,
                    "format": "hls",
                    "url": "https://user:pw@cam.example.test:8443/x.m3u8",
                }
            ],
            "windows[0].url",
        ),
        (
            [{"kind": "report", "x": 0, "y": 0, "w": 1, "h": 1, "report": "no-such-report"}],
            "windows[0].report",
        ),
        ([{"kind": "kpis", "x": 0, "y": 0, "w": 1, "h": 1, "keys": ["cpu"]}], "windows[0].keys"),
        (
            [{"kind": "chart", "x": 0, "y": 0, "w": 1, "h": 1, "chart": "pie_of_everything"}],
            "windows[0].chart",
        ),
        ([{"kind": "iframe", "x": 0, "y": 0, "w": 1, "h": 1}], "windows[0].kind"),
        ([{"kind": "map", "x": -1, "y": 0, "w": 1, "h": 1}], "windows[0].x"),
        ([], "windows"),
    ],
)
async def test_a_layout_the_wall_could_not_draw_is_refused(
    wclient: Any, windows: list[Any], field: str
) -> None:
    status, err = await call(
        wclient, "POST", "/api/v1/wall-layouts", "t_admin", body(windows=windows)
    )
    assert status == 400, err
    assert err["error"]["details"]["field"] == field, err


async def test_a_grid_beyond_the_limit_is_refused(wclient: Any, settings: Any) -> None:
    too_wide = settings.big_screen.grid_max + 1
    status, err = await call(
        wclient, "POST", "/api/v1/wall-layouts", "t_admin", body(columns=too_wide)
    )
    assert status == 400 and err["error"]["details"]["field"] == "columns"


async def test_an_editor_is_told_when_someone_saved_meanwhile(wclient: Any) -> None:
    _, created = await call(wclient, "POST", "/api/v1/wall-layouts", "t_admin", body())
    path = f"/api/v1/wall-layouts/{created['id']}"
    status, first = await call(wclient, "PATCH", path, "t_admin", {"version": 1, "rows": 4})
    assert status == 200 and first["version"] == 2 and first["rows"] == 4
    assert first["windows"] == created["windows"]
    status, stale = await call(wclient, "PATCH", path, "t_admin", {"version": 1, "rows": 5})
    assert status == 409 and stale["error"]["details"]["field"] == "version"
    status, bad = await call(wclient, "PATCH", path, "t_admin", {"version": 2, "columns": 1})
    assert status == 400 and bad["error"]["details"]["field"].startswith("windows[")


async def test_a_switch_is_audited_and_a_shown_layout_is_kept(
    wclient: Any, pool: Any, restore_scope: None
) -> None:
    _, created = await call(wclient, "POST", "/api/v1/wall-layouts", "t_admin", body())
    layout_id = created["id"]
    await pool.execute("DELETE FROM wall_current WHERE scope = $1", SCOPE)
    status, now = await call(
        wclient, "GET", f"/api/v1/wall-layouts/current?scope={SCOPE}", "t_regulator"
    )
    assert status == 200 and now["layout"]["id"] is None  # never switched: today's wall
    assert now["layout"]["windows"] == msgspec.to_builtins(wall.DEFAULT.windows)

    status, switched = await call(
        wclient,
        "POST",
        f"/api/v1/wall-layouts/{layout_id}/activate",
        "t_regulator",
        {"scope": SCOPE},
    )
    assert status == 200, switched
    assert switched["scope"] == SCOPE and switched["layout"]["id"] == layout_id
    audit = await pool.fetchrow(
        """SELECT username, details FROM audit_log WHERE action = 'wall.switch'
            AND entity_id = $1 ORDER BY id DESC LIMIT 1""",
        str(layout_id),
    )
    assert audit["username"] == "t_regulator" and audit["details"]["via"] == "api"
    status, listed = await call(wclient, "GET", "/api/v1/wall-layouts?page_size=200", "t_admin")
    assert {"scope": SCOPE, "layout_id": layout_id} in [
        {"scope": w["scope"], "layout_id": w["layout_id"]} for w in listed["walls"]
    ]
    status, err = await call(wclient, "DELETE", f"/api/v1/wall-layouts/{layout_id}", "t_admin")
    assert status == 409 and SCOPE in err["error"]["message"]
    # the 金水区 regulator may neither switch nor read the 二七区 wall
    status, _ = await call(
        wclient,
        "POST",
        f"/api/v1/wall-layouts/{layout_id}/activate",
        "t_regulator_jinshui",
        {"scope": SCOPE},
    )
    assert status == 403
    status, _ = await call(
        wclient, "GET", f"/api/v1/wall-layouts/current?scope={SCOPE}", "t_regulator_jinshui"
    )
    assert status == 403
    status, err = await call(
        wclient, "POST", f"/api/v1/wall-layouts/{layout_id}/activate", "t_admin", {"scope": "x"}
    )
    assert status == 400 and err["error"]["details"]["field"] == "scope"


async def test_a_kiosk_session_never_switches(pool: Any, world: World) -> None:
    kiosk = Principal(
        world.users["t_regulator"],
        "t_regulator",
        "regulator",
        session_id=f"{READ_ONLY_SESSION_PREFIX}{secrets.token_hex(8)}",
    )

    class NoBus:
        def publish(self, event: Any) -> None:
            raise AssertionError("nothing to publish")

    with pytest.raises(store.WallRefusal) as refused:
        await store.switch(pool, NoBus(), kiosk, 1, "city", remote=None, via="ws")  # type: ignore[arg-type]
    assert refused.value.kind == "forbidden"
