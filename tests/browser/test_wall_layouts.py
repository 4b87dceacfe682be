"""The configurable wall in a real Chromium (issue 11 item 7; docs/API.md "Wall layouts").

What a command centre would notice: the wall draws the saved layout — every window at its
place on the grid, at 1920×1080 and at 3840×2160, under the wall's own Content-Security-
Policy, with no console error; an admin rearranges a layout in /wall-layouts with the mouse
and the keyboard and saves it; a regulator switches the wall from the phone (/m) and the open
wall follows within a second, without a reload.

The walls here are the 金水区 wall (scope 410105, the district regulator's): the city wall
other tests look at keeps today's layout. Each test puts that wall back on the default.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.conftest import Live, OpenSession, wait_ready
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

SCOPE = "410105"
USER = "t_regulator_jinshui"
FULL_HD = {"width": 1920, "height": 1080}
UHD = {"width": 3840, "height": 2160}
PHONE = {"width": 390, "height": 844}
COLUMNS, ROWS = 12, 6
WINDOWS: list[dict[str, Any]] = [
    {"kind": "map", "x": 0, "y": 0, "w": 6, "h": 4},
    {"kind": "kpis", "x": 6, "y": 0, "w": 6, "h": 1, "keys": ["open_alerts", "fills_today"]},
    {"kind": "chart", "x": 6, "y": 1, "w": 3, "h": 3, "chart": "fills_per_hour"},
    {"kind": "ticker", "x": 9, "y": 1, "w": 3, "h": 5, "title": "告警滚动"},
    {
        "kind": "report",
        "x": 0,
        "y": 4,
        "w": 5,
        "h": 2,
        "report": "fills-daily",
        "view": "table",
        "days": 7,
    },
    {
        "kind": "report",
        "x": 5,
        "y": 4,
        "w": 4,
        "h": 2,
        "report": "fills-daily",
        "view": "chart",
        "days": 30,
    },
]


async def make_layout(
    pool: Any, name: str, windows: list[dict[str, Any]], cols: int = COLUMNS, rows: int = ROWS
) -> int:
    return int(
        await pool.fetchval(
            """INSERT INTO wall_layouts (name, grid_columns, grid_rows, windows)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            name,
            cols,
            rows,
            windows,
        )
    )


async def show_on_wall(pool: Any, layout_id: int) -> None:
    await pool.execute(
        """INSERT INTO wall_current (scope, layout_id) VALUES ($1, $2)
           ON CONFLICT (scope) DO UPDATE SET layout_id = EXCLUDED.layout_id""",
        SCOPE,
        layout_id,
    )


@pytest.fixture
async def wall_back_to_default(pool: Any) -> AsyncIterator[None]:
    yield
    await pool.execute("DELETE FROM wall_current WHERE scope = $1", SCOPE)


async def csp_context(browser: Any, live_server: Live, username: str, viewport: Any) -> Any:
    """A logged-in context that enforces the pages' Content-Security-Policy (no bypass)."""
    context = await browser.new_context(base_url=live_server.url, viewport=viewport)
    resp = await context.request.post(
        "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
    )
    assert resp.ok
    return context


async def expect_windows_at_their_cells(page: Any, rem: float) -> None:
    """Every window's box is its grid cells (the grid's padding and the windows' margins
    of big-screen.css: 0.1rem top, 0.7rem sides and bottom; 0.5rem around each window)."""
    grid = await page.locator("#grid").bounding_box()
    left, top = grid["x"] + 0.7 * rem, grid["y"] + 0.1 * rem
    cw = (grid["width"] - 1.4 * rem) / COLUMNS
    ch = (grid["height"] - 0.8 * rem) / ROWS
    margin = 0.5 * rem
    for i, win in enumerate(WINDOWS):
        box = await page.locator(f"#grid > [data-win='{i}']").bounding_box()
        want = (
            left + win["x"] * cw + margin,
            top + win["y"] * ch + margin,
            win["w"] * cw - 2 * margin,
            win["h"] * ch - 2 * margin,
        )
        got = (box["x"], box["y"], box["width"], box["height"])
        assert got == pytest.approx(want, abs=2), (i, win["kind"], got, want)


@pytest.mark.parametrize(("viewport", "rem"), [(FULL_HD, 16.0), (UHD, 32.0)])
async def test_the_wall_draws_the_saved_layout(
    browser: Any,
    live_server: Live,
    pool: Any,
    wall_back_to_default: None,
    viewport: dict[str, int],
    rem: float,
) -> None:
    layout_id = await make_layout(pool, f"布局测试 {secrets.token_hex(3)}", WINDOWS)
    await show_on_wall(pool, layout_id)
    context = await csp_context(browser, live_server, USER, viewport)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = await page.goto("/big-screen")
        assert response is not None and response.status == 200
        assert "script-src 'self';" in response.headers["content-security-policy"]
        await page.wait_for_selector(f"#stage[data-layout-id='{layout_id}']", state="attached")
        await page.wait_for_selector("#conn[data-state='live']", state="attached", timeout=15_000)
        # the content of each window is drawn
        await page.wait_for_selector("[data-win='0'] .leaflet-container", state="attached")
        await page.wait_for_selector("[data-win='0'] h2 #n-vehicles", state="attached")
        assert await page.locator("[data-win='1'] [data-kpi]").count() == 2
        assert (
            await page.locator("[data-win='1'] [data-kpi='open_alerts'] span").inner_text()
            == "未处理告警"
        )
        await page.wait_for_selector("#chart-fills canvas", state="attached")
        assert await page.locator("[data-win='3'] h2").inner_text() == "告警滚动"
        await page.wait_for_selector("[data-win='3'] #ticker li", state="attached")
        await page.wait_for_selector(
            "[data-win='4'] .bs-win-body[data-state='ready'] table.bs-table thead th",
            state="attached",
            timeout=15_000,
        )
        await page.wait_for_selector(
            "[data-win='5'] .bs-win-body[data-state='ready'] canvas",
            state="attached",
            timeout=15_000,
        )
        assert await page.locator("#grid > [data-win]").count() == len(WINDOWS)
        await expect_windows_at_their_cells(page, rem)
        await page.wait_for_load_state("networkidle")
        await asyncio.sleep(0.5)
        suffix = "4k" if viewport is UHD else "1080p"
        await page.screenshot(path=f"test-artifacts/wall-layout-{suffix}.png")
        assert errors == [], errors
    finally:
        await context.close()


async def test_an_admin_rearranges_a_layout_in_the_page(
    open_session: OpenSession, live_server: Live, pool: Any
) -> None:
    name = f"编辑测试 {secrets.token_hex(3)}"
    layout_id = await make_layout(
        pool,
        name,
        [
            {"kind": "map", "x": 0, "y": 0, "w": 4, "h": 4},
            {"kind": "chart", "x": 6, "y": 0, "w": 4, "h": 3, "chart": "denials_by_reason"},
        ],
    )
    s = await open_session("t_admin")
    await s.page.goto("/wall-layouts")
    await wait_ready(s.page)
    await s.page.click(f"[data-testid=layout-item][data-id='{layout_id}']")
    await s.page.wait_for_function(f"window.__wl.current && window.__wl.current.id === {layout_id}")
    first = s.page.locator("[data-testid=preview-window][data-index='0']")
    # keyboard: move the map one column right, make it one row taller
    await first.focus()
    await s.page.keyboard.press("ArrowRight")
    await s.page.keyboard.press("Shift+ArrowDown")
    assert await first.get_attribute("aria-label") == "实时地图 — x 1, y 0, 4×5"
    # mouse: drag the chart one column left (a preview cell is 1/COLUMNS of its width)
    preview = await s.page.locator("[data-testid=preview]").bounding_box()
    cell = preview["width"] / COLUMNS
    second = s.page.locator("[data-testid=preview-window][data-index='1']")
    box = await second.bounding_box()
    await s.page.mouse.move(box["x"] + 10, box["y"] + 10)
    await s.page.mouse.down()
    await s.page.mouse.move(box["x"] + 10 - cell, box["y"] + 10, steps=5)
    await s.page.mouse.up()
    # and resize it by its corner, one row taller
    box = await second.bounding_box()
    handle = second.locator("[data-testid=resize-handle]")
    hb = await handle.bounding_box()
    row = preview["height"] / ROWS
    await s.page.mouse.move(hb["x"] + 4, hb["y"] + 4)
    await s.page.mouse.down()
    await s.page.mouse.move(hb["x"] + 4, hb["y"] + 4 + row, steps=5)
    await s.page.mouse.up()
    # numbers: the chart's width typed in
    rows = s.page.locator("[data-testid=window-row]")
    await rows.nth(1).locator("[data-testid=win-w]").fill("3")
    # content from the catalogue: a ticker added at the first free place
    await s.page.select_option("[data-testid=add-kind]", "ticker")
    await s.page.click("[data-testid=window-add]")
    assert await rows.count() == 3
    await s.page.click("[data-testid=layout-save]")
    await s.page.wait_for_function("window.__wl.saved >= 1")
    row_db = await pool.fetchrow(
        "SELECT version, windows FROM wall_layouts WHERE id = $1", layout_id
    )
    assert row_db["version"] == 2
    wins = row_db["windows"]
    assert (wins[0]["x"], wins[0]["y"], wins[0]["w"], wins[0]["h"]) == (1, 0, 4, 5)
    assert (wins[1]["x"], wins[1]["y"], wins[1]["w"], wins[1]["h"]) == (5, 0, 3, 4)
    assert wins[2]["kind"] == "ticker"
    placed = [(w["x"], w["y"], w["w"], w["h"]) for w in wins]
    for i, a in enumerate(placed):  # the new window was put where nothing else is
        for b in placed[:i]:
            assert not (
                a[0] < b[0] + b[2]
                and b[0] < a[0] + a[2]
                and a[1] < b[1] + b[3]
                and b[1] < a[1] + a[3]
            )
    # an overlap is refused by the server and shown on the window at fault
    await rows.nth(2).locator("[data-testid=win-x]").fill("1")
    await rows.nth(2).locator("[data-testid=win-y]").fill("0")
    await s.page.click("[data-testid=layout-save]")
    await s.page.wait_for_selector("[data-testid=editor-error]:not([hidden])")
    assert "overlaps" in await s.page.inner_text("[data-testid=editor-error]")
    assert "overlaps" in await rows.nth(2).locator(".field-error").inner_text()
    # the browser logs the refused save's 400 itself; nothing else may fail
    assert [e for e in s.errors if "status of 400" not in e] == [], s.errors


async def test_a_regulator_switches_the_wall_from_the_phone(
    open_session: OpenSession, live_server: Live, pool: Any, wall_back_to_default: None
) -> None:
    start = await make_layout(pool, f"切换前 {secrets.token_hex(3)}", WINDOWS)
    target_windows = [
        {"kind": "ticker", "x": 0, "y": 0, "w": 4, "h": 3},
        {"kind": "kpis", "x": 4, "y": 0, "w": 2, "h": 3, "keys": ["open_alerts"]},
    ]
    target_name = f"切换后 {secrets.token_hex(3)}"
    target = await make_layout(pool, target_name, target_windows, cols=6, rows=3)
    await show_on_wall(pool, start)

    wall = await open_session(USER, viewport=FULL_HD)
    await wall.page.goto("/big-screen")
    await wall.page.wait_for_function(
        f"window.__bs && window.__bs.ws.state === 'live' && window.__bs.layout.id === {start}"
        " && window.__bs.ws.subscribed >= 4"
    )
    await wall.page.evaluate("window.__sameDocument = 'yes'")

    phone = await open_session(USER, viewport=PHONE)
    await phone.page.goto("/m")
    await phone.page.wait_for_function("window.__m && window.__m.wsOpens >= 1")
    await phone.page.click(".m-tabs button[data-tab=settings]")
    card = phone.page.locator("[data-testid=wall-card]")
    await card.wait_for(state="visible")
    await phone.page.wait_for_function(
        f"document.querySelector('[data-testid=wall-layout] option[value=\"{target}\"]') !== null"
    )
    assert await phone.page.input_value("[data-testid=wall-scope]") == SCOPE
    await phone.page.select_option("[data-testid=wall-layout]", str(target))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await phone.page.click("[data-testid=wall-switch]")
    await wall.page.wait_for_function(f"window.__bs.layout.id === {target}", timeout=1000)
    assert loop.time() - t0 < 1.0
    assert await wall.page.locator("#grid > [data-win]").count() == 2
    assert await wall.page.locator("#stage").get_attribute("data-layout-id") == str(target)
    await wall.page.wait_for_selector("#grid [data-win='1'] [data-kpi='open_alerts']")
    assert await wall.page.evaluate("window.__sameDocument") == "yes"  # no reload
    await phone.page.wait_for_function(
        "window.__m && document.querySelector('[data-testid=wall-status]').textContent !== ''"
    )
    assert target_name in await phone.page.inner_text("#wall-now")
    audit = await pool.fetchrow(
        "SELECT username, details FROM audit_log WHERE action = 'wall.switch' AND entity_id = $1"
        " ORDER BY id DESC LIMIT 1",
        str(target),
    )
    assert audit["username"] == USER and audit["details"]["via"] == "ws"
    assert audit["details"]["scope"] == SCOPE
    assert wall.errors == [] and phone.errors == [], (wall.errors, phone.errors)


async def test_a_camera_stream_plays_from_an_allowed_origin_only(
    browser: Any,
    settings: Any,
    live_server: Live,
    pool: Any,
    wall_back_to_default: None,
) -> None:
    """A wall whose settings allow one camera origin (here: the session server, another
    origin than the wall's): an MJPEG window from it plays under the wall's CSP, an HLS one
    loads the vendored player and reaches the camera (the CSP lets it; a missing playlist is
    a failure the window says, and retries), a stream from anywhere else is never requested."""
    import msgspec

    from tests.big_screen.live import LiveServer, free_port, live_settings

    camera = live_server.url
    bs = msgspec.structs.replace(settings.big_screen, stream_origins=(camera,))
    server = LiveServer(
        live_settings(msgspec.structs.replace(settings, big_screen=bs)), free_port()
    )
    await server.start()
    layout_id = await make_layout(
        pool,
        f"视频测试 {secrets.token_hex(3)}",
        [
            {
                "kind": "stream",
                "x": 0,
                "y": 0,
                "w": 2,
                "h": 2,
                "format": "mjpeg",
                "url": f"{camera}/static/m/icons/icon-512.png",
            },
            {
                "kind": "stream",
                "x": 2,
                "y": 0,
                "w": 2,
                "h": 2,
                "format": "mjpeg",
                "url": "http://127.0.0.2:9/elsewhere.mjpg",
            },
            {
                "kind": "stream",
                "x": 0,
                "y": 2,
                "w": 2,
                "h": 2,
                "format": "hls",
                "url": f"{camera}/no-such-camera/index.m3u8",
            },
        ],
        cols=4,
        rows=4,
    )
    await show_on_wall(pool, layout_id)
    context = await browser.new_context(base_url=server.url, viewport=FULL_HD)
    try:
        resp = await context.request.post(
            "/api/v1/auth/login", data={"username": USER, "password": PASSWORD}
        )
        assert resp.ok
        page = await context.new_page()
        errors: list[str] = []
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        pageerrors: list[str] = []
        page.on("pageerror", lambda exc: pageerrors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = await page.goto("/big-screen")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert f"media-src 'self' blob: {camera};" in csp
        assert f" {camera};" in csp.split("img-src", 1)[1].split(";", 1)[0] + ";"
        await page.wait_for_selector(
            "[data-win='0'] .bs-win-body[data-state='playing'] img.bs-stream", state="attached"
        )
        await page.wait_for_selector(
            "[data-win='1'] .bs-win-body[data-state='error']", state="attached"
        )
        assert (
            "不在大屏允许的来源" in await page.locator("[data-win='1'] .bs-win-error").inner_text()
        )
        await page.wait_for_selector(
            "[data-win='2'] .bs-win-body[data-state='error']", state="attached", timeout=15_000
        )
        assert any(u.endswith("/static/vendor/hls/hls.min.js") for u in requested)
        assert any(u.startswith(f"{camera}/no-such-camera/") for u in requested)
        assert not any("127.0.0.2" in u for u in requested)
        # no script error and no CSP refusal: what fails is the camera's (no such playlist,
        # and this stand-in camera sends no CORS header, which an HLS server must)
        assert pageerrors == [], pageerrors
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    finally:
        await context.close()
        await server.stop()
