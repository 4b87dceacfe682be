"""The live map's cylinder card (issue 12 item 6), in a real Chromium as a regulator.

Why: a regulator who sees a cylinder on the map must be able to ask "which one, whose, in
what state, filled where" without leaving the map, and reach its archive in one click.
Cylinders at customers are points on a canvas (the compact array carries no ids, so the
click asks /dashboard/data/cylinders/at for the cylinders at that point); cylinders at a site
are its counts, so a click on the site lists them and each opens its card.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import Live, OpenSession, wait_ready
from tests.browser.data import Seeded, seed, unseed
from tests.conftest import World

pytestmark = pytest.mark.browser

CUSTOMER_POINT = (34.812, 113.672)  # where tests/browser/data.py puts its cylinder
STATION_A1 = (34.80, 113.65)  # tests/conftest.py


@pytest.fixture
async def seeded(pool: asyncpg.Pool, world: World) -> AsyncIterator[Seeded]:
    s = await seed(pool, world)
    yield s
    await unseed(pool, s)


async def click_at(page: Any, lat: float, lon: float, zoom: int) -> None:
    """Centre the map on a point, redraw, and click where the point is drawn."""
    x, y = await page.evaluate(
        """([lat, lon, zoom]) => {
             const map = window.CW_MAP;
             map.setView([lat, lon], zoom, { animate: false });
             window.cwDashboard.renderClusters();
             const p = map.latLngToContainerPoint([lat, lon]);
             const r = map.getContainer().getBoundingClientRect();
             return [r.left + p.x, r.top + p.y];
           }""",
        [lat, lon, zoom],
    )
    await page.mouse.click(x, y)


async def only_cylinders_and_sites(page: Any) -> None:
    """Alerts and vehicles raised by other tests may stand on the same spot: hide them, as a
    regulator can with the layer toggles."""
    for layer in ("alerts", "vehicles"):
        await page.locator(f'[data-layer="{layer}"]').uncheck()


async def test_regulator_clicks_a_cylinder_and_opens_its_archive(
    open_session: OpenSession, live_server: Live, seeded: Seeded
) -> None:
    s = await open_session("t_regulator")
    await s.page.goto("/")
    await wait_ready(s.page)
    await only_cylinders_and_sites(s.page)
    await click_at(s.page, *CUSTOMER_POINT, zoom=18)
    card = s.page.locator(".leaflet-popup [data-testid=cylinder-card]")
    await card.wait_for()
    assert await card.get_attribute("data-cylinder-id") == str(seeded.cylinder_id)
    text = await card.inner_text()
    assert seeded.cylinder_tag in text and "测试燃气A公司" in text
    assert await card.locator(".badge").inner_text() == "待检"
    assert await card.get_by_test_id("card-status").inner_text() == "在用"
    assert "站点STA-A1" in await card.get_by_test_id("card-last-fill").inner_text()
    assert (await card.get_by_test_id("card-location").inner_text()).startswith("用户")
    await s.screenshot("map-card")

    await card.get_by_test_id("card-archive").click()
    await s.page.wait_for_url(f"**/cylinders/{seeded.cylinder_id}")
    await s.page.locator("#cyl-title").wait_for()
    assert await s.page.locator("#cyl-title").inner_text() == seeded.cylinder_tag
    assert s.requests.foreign() == []
    assert not s.errors, s.errors


async def test_a_sites_cylinders_open_their_cards(
    open_session: OpenSession, live_server: Live, world: World
) -> None:
    s = await open_session("t_regulator")
    await s.page.goto("/")
    await wait_ready(s.page)
    await only_cylinders_and_sites(s.page)
    await click_at(s.page, *STATION_A1, zoom=16)
    listing = s.page.locator(".leaflet-popup [data-testid=cylinder-list]")
    await listing.wait_for()
    assert "站点STA-A1" in await listing.locator(".cw-card-title").inner_text()
    entry = listing.locator(f'button[data-cylinder-id="{world.cylinders["TAG-A-OVERDUE"]}"]')
    await entry.click()
    card = s.page.locator(".leaflet-popup [data-testid=cylinder-card]")
    await card.wait_for()
    assert "TAG-A-OVERDUE" in await card.inner_text()
    assert await card.locator(".badge").inner_text() == "超期未检"
    assert "站点STA-A1" in await card.get_by_test_id("card-location").inner_text()
    # back to the list, which still holds the site's other cylinder
    await s.page.locator(".cw-card-back").click()
    await listing.locator(f'button[data-cylinder-id="{world.cylinders["TAG-A-OK"]}"]').wait_for()
    assert not s.errors, s.errors


async def test_the_point_lookup_keeps_scope_and_privacy(
    open_session: OpenSession, live_server: Live, seeded: Seeded
) -> None:
    """The cylinders at a customer's door: only within the caller's scope, and none for a
    role that may not read positions (an inspection agency)."""
    path = "/dashboard/data/cylinders/at?lat=34.812&lon=113.672"
    answers = {}
    for user in ("t_regulator", "t_company_a", "t_company_b", "t_inspector"):
        s = await open_session(user)
        resp = await s.context.request.get(path)
        assert resp.status == 200, await resp.text()
        answers[user] = {c["id"] for c in (await resp.json())["items"]}
    assert seeded.cylinder_id in answers["t_regulator"]
    assert seeded.cylinder_id in answers["t_company_a"]
    assert seeded.cylinder_id not in answers["t_company_b"]
    assert answers["t_inspector"] == set()
    s = await open_session("t_regulator")
    for bad in ("lat=north&lon=113.6", "lat=95&lon=113.6", "lat=34.8", "lat=NaN&lon=1"):
        resp = await s.context.request.get(f"/dashboard/data/cylinders/at?{bad}")
        assert resp.status == 400, bad
        assert (await resp.json())["error"]["code"] == "invalid_query"
