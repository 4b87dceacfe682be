"""The regulator dashboard in a real Chromium: map, sites, districts, live vehicles and
alerts over /ws, acknowledging from the side list, and no request leaving 127.0.0.1."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import Live, OpenSession, wait_ready
from tests.browser.data import Seeded, row_of, seed, unseed
from tests.conftest import World

pytestmark = pytest.mark.browser


@pytest.fixture
async def seeded(pool: asyncpg.Pool, world: World) -> AsyncIterator[Seeded]:
    s = await seed(pool, world)
    yield s
    await unseed(pool, s)


async def poll(check: Any, timeout_s: float) -> float:
    """Seconds until the async *check* is truthy (fails after *timeout_s*)."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.02)


async def test_dashboard_shows_sites_districts_and_alerts(
    open_session: OpenSession, seeded: Seeded
) -> None:
    s = await open_session("t_admin")
    await s.page.goto("/")
    await wait_ready(s.page)
    counts = await s.page.evaluate("window.cwDashboard.counts()")
    assert counts["sites"] >= 2
    assert counts["districts"] >= 2
    assert counts["alertMarkers"] >= 2
    await s.page.get_by_role("tab", name="站点").click()
    sites = s.page.get_by_test_id("site-list")
    for code in ("STA-A1", "STA-B1"):
        await sites.locator(f'[data-site-code="{code}"]').wait_for()
    labels = s.page.locator(".cw-district-label")
    assert {"金水区", "二七区"} <= set(await labels.all_inner_texts())
    await s.page.get_by_role("tab", name="实时告警").click()
    item = s.page.locator(f'[data-alert-id="{seeded.alerts["A"]}"]')
    await item.wait_for()
    assert "超量充装" in await item.inner_text()
    assert int(await s.page.locator("#kpi-alerts").inner_text()) >= 2
    await s.screenshot("dashboard")
    assert not s.errors, s.errors


async def test_live_vehicle_moves_and_alert_flashes_within_a_second(
    open_session: OpenSession, live_server: Live, world: World
) -> None:
    s = await open_session("t_admin")
    await s.page.goto("/")
    await wait_ready(s.page)
    await s.page.wait_for_function(
        "document.getElementById('live-indicator').dataset.state === 'live'"
    )
    await asyncio.sleep(0.3)  # subscriptions confirmed
    vid = f"VEH-LIVE-{secrets.token_hex(3)}"
    company = world.companies["A"]

    def move(lat: float, lon: float) -> None:
        row = {
            "kind": "vehicle",
            "id": vid,
            "lat": lat,
            "lon": lon,
            "ts": int(time.time() * 1000),
            "speed_kmh": 32.5,
            "heading": 90,
        }
        live_server.publish(
            "positions",
            row,
            district="410105",
            company_id=company,
            lat=lat,
            lon=lon,
            key=f"vehicle:{vid}",
        )

    async def at(lat: float) -> bool:
        pos = await s.page.evaluate("id => window.cwDashboard.vehicle(id)", vid)
        return pos is not None and abs(pos[0] - lat) < 1e-6

    move(34.790, 113.640)
    assert await poll(lambda: at(34.790), 1.0) <= 1.0
    move(34.795, 113.648)
    assert await poll(lambda: at(34.795), 1.0) <= 1.0

    alert_id = 2_000_000_000 + secrets.randbelow(1_000_000)
    live_server.publish(
        "alerts", row_of(alert_id, company_id=company), district="410105", company_id=company
    )
    item = s.page.locator(f'[data-alert-id="{alert_id}"]')

    async def shown() -> bool:
        return bool(await item.count())

    assert await poll(shown, 1.0) <= 1.0
    assert "燃气泄漏" in await item.inner_text()
    marker = s.page.locator(".cw-alert-marker.sev-critical")
    assert await marker.count() >= 1
    await s.screenshot("dashboard-live")
    # a resolved row removes it
    live_server.publish(
        "alerts",
        row_of(alert_id, company_id=company, state="resolved"),
        district="410105",
        company_id=company,
    )
    await item.wait_for(state="detached", timeout=1000)
    assert not s.errors, s.errors


async def test_acknowledge_and_resolve_from_the_side_list(
    open_session: OpenSession, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    s = await open_session("t_regulator")
    await s.page.goto("/")
    await wait_ready(s.page)
    aid = seeded.alerts["A"]
    item = s.page.locator(f'[data-alert-id="{aid}"]')
    await item.wait_for()
    await item.get_by_role("textbox").fill("已电话通知企业")
    await item.locator('[data-action="ack"]').click()
    await s.page.locator(f'[data-alert-id="{aid}"][data-state="acknowledged"]').wait_for()
    row = await pool.fetchrow("SELECT state, note, acknowledged_by FROM alerts WHERE id = $1", aid)
    assert row["state"] == "acknowledged" and row["note"] == "已电话通知企业"
    assert row["acknowledged_by"] is not None
    item = s.page.locator(f'[data-alert-id="{aid}"]')
    await item.locator('[data-action="resolve"]').click()
    await item.wait_for(state="detached")
    assert await pool.fetchval("SELECT state FROM alerts WHERE id = $1", aid) == "resolved"
    assert not s.errors, s.errors


async def test_company_admin_acknowledges_but_does_not_resolve(
    open_session: OpenSession, seeded: Seeded
) -> None:
    s = await open_session("t_company_a")
    await s.page.goto("/")
    await wait_ready(s.page)
    own = s.page.locator(f'[data-alert-id="{seeded.alerts["A"]}"]')
    await own.wait_for()
    assert await own.locator('[data-action="ack"]').count() == 1
    assert await own.locator('[data-action="resolve"]').count() == 0
    assert await s.page.locator(f'[data-alert-id="{seeded.alerts["B"]}"]').count() == 0
    await s.page.get_by_role("tab", name="站点").click()
    codes = await s.page.locator("[data-site-code]").evaluate_all(
        "els => els.map(e => e.dataset.siteCode)"
    )
    assert "STA-A1" in codes and "STA-B1" not in codes
    await s.screenshot("dashboard-company-a")
    assert not s.errors, s.errors


async def test_filters_narrow_the_map(open_session: OpenSession, seeded: Seeded) -> None:
    s = await open_session("t_admin")
    await s.page.goto("/")
    await wait_ready(s.page)
    await s.page.get_by_test_id("filter-district").select_option("410103")
    await s.page.wait_for_function(
        "window.cwDashboard.state.sites.length > 0 &&"
        " window.cwDashboard.state.sites.every(x => x.district === '410103')"
    )
    ids = await s.page.evaluate("Array.from(window.cwDashboard.state.alerts.keys())")
    assert seeded.alerts["B"] in ids and seeded.alerts["A"] not in ids
    await s.page.get_by_test_id("filter-compliance").select_option("overdue")
    await s.page.wait_for_timeout(300)
    assert not s.errors, s.errors


async def test_no_request_leaves_the_machine(open_session: OpenSession, seeded: Seeded) -> None:
    s = await open_session("t_admin")
    for path in (
        "/",
        "/cylinders",
        f"/cylinders/{seeded.cylinder_id}",
        "/fills",
        "/alerts",
        "/exports",
        "/admin/users",
        "/admin/dead-letters",
        f"/q/BC-{seeded.tag}",
    ):
        await s.page.goto(path)
        await s.page.wait_for_load_state("networkidle")
    assert len(s.requests.urls) > 20
    assert s.requests.foreign() == []
    assert not s.errors, s.errors
