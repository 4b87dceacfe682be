"""The officer's inspection list in a real Chromium: the page (/inspection-list) and "today's
list" of the phone app (/m), on the hand-built town of tests/api/test_site_risk.py.

What an officer of 金水区 must see: their district's sites in the order the risk says, each
with its reasons in words, a link that finds the site on the live map, a sheet that prints
without the navigation and with a column to tick visits — and on the phone the same list,
still there when the signal is gone, and gone at logout. The 二七区 site of the town never
appears. Other tests' sites may rank among the town's: only the town's rows are asserted.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_site_risk import Town, build_town
from tests.browser.conftest import OpenSession, wait_ready
from tests.browser.test_mobile import PHONE, login_in_page
from tests.conftest import World

pytestmark = pytest.mark.browser

OFFICER_ORDER = ["D1", "S1", "D2", "O1", "C1", "F1", "V1"]
"""The town's 金水区 sites by risk (B1 is 二七区's; R1, X1, Q1 score nothing)."""
NETWORK_NOISE = ("ERR_INTERNET_DISCONNECTED", "WebSocket", "Failed to load resource")


@pytest.fixture(scope="module")
async def town(pool: Any, world: World) -> Town:
    return await build_town(pool, world)


async def _order(page: Any, t: Town, selector: str) -> list[str]:
    codes = await page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.site)")
    return [c.removeprefix(t.prefix + "-") for c in codes if c.startswith(t.prefix + "-")]


async def test_the_page_ranks_explains_links_and_prints(
    open_session: OpenSession, town: Town
) -> None:
    s = await open_session("t_officer")
    page = s.page
    await page.goto("/inspection-list?limit=500")
    await wait_ready(page)
    assert await _order(page, town, "#results tr[data-site]") == OFFICER_ORDER
    assert await page.locator(f"tr[data-site='{town.code('B1')}']").count() == 0
    d1 = page.locator(f"tr[data-site='{town.code('D1')}']")
    assert await d1.locator("[data-testid=score]").inner_text() == "30"
    reason = await d1.locator("[data-testid=reasons] li").first.inner_text()
    assert "充装枪拒绝充装40次" in reason and "30" in reason
    o1 = page.locator(f"tr[data-site='{town.code('O1')}'] [data-testid=reasons] li")
    assert [await o1.nth(i).get_attribute("data-factor") for i in range(2)] == [
        "overfill",
        "open_alert",
    ]
    # the score's rule is on the page, as the server applies it
    await page.click("[data-testid=il-rule] summary")
    assert await page.locator("#il-weights tr").count() == 6
    # exports follow the filters
    csv_href = await page.get_attribute("[data-testid=export-csv]", "href")
    assert csv_href is not None and "format=csv" in csv_href and "limit=500" in csv_href
    await s.screenshot("inspection-list", full_page=True)

    # printed: no navigation, no filters, a column to tick each visit
    await page.emulate_media(media="print")
    assert not await page.is_visible(".topbar")
    assert not await page.is_visible("#search-form")
    assert await page.is_visible("#il-print-head")
    assert await page.is_visible(f"tr[data-site='{town.code('D1')}'] td.il-visited")
    await s.screenshot("inspection-list-print", full_page=True)
    await page.emulate_media(media="screen")
    assert not await page.is_visible(f"tr[data-site='{town.code('D1')}'] td.il-visited")

    # "on the map": the live map centred on the site with its tooltip open
    await d1.locator("[data-testid=map-link]").click()
    await page.wait_for_url(f"**/?site={town.code('D1')}")
    await wait_ready(page)
    await page.wait_for_selector(".leaflet-tooltip:has-text('风险站点D1')", timeout=5000)
    assert s.requests.foreign() == []
    assert s.errors == [], s.errors


async def test_the_page_in_english(open_session: OpenSession, town: Town) -> None:
    s = await open_session("t_officer", lang="en")
    page = s.page
    await page.goto("/inspection-list?limit=500&lang=en")
    await wait_ready(page)
    v1 = page.locator(f"tr[data-site='{town.code('V1')}'] [data-testid=reasons] li")
    assert (await v1.first.inner_text()).startswith(
        "1 overdue cylinder handled there in the last 30 days"
    )
    assert s.errors == [], s.errors


async def test_a_company_cannot_open_it(open_session: OpenSession) -> None:
    s = await open_session("t_company_a")
    resp = await s.page.goto("/inspection-list")
    assert resp is not None and resp.status == 403


async def test_todays_list_on_the_phone_works_offline(
    open_session: OpenSession, town: Town
) -> None:
    s = await open_session(None, viewport=PHONE)
    page = s.page
    await login_in_page(page)
    await page.wait_for_function("window.__m.sw === 'ready'")
    assert await page.is_visible("#tab-btn-today")
    await page.click(".m-tabs button[data-tab=today]")
    await page.wait_for_function("window.__m.today.fetches >= 1")
    shown = await _order(page, town, "#today-list li[data-site]")
    assert shown == [k for k in OFFICER_ORDER if k in shown] and shown[:1] == ["D1"]
    card = page.locator(f"#today-list li[data-site='{town.code('D1')}']")
    assert "充装枪拒绝充装40次" in await card.inner_text()
    assert await page.locator(f"#today-list li[data-site='{town.code('B1')}']").count() == 0
    await s.screenshot("m-today")

    # no signal: the app opens as the last user and shows the list it fetched, saying so
    await page.reload()
    await page.wait_for_function("navigator.serviceWorker.controller !== null")
    await s.context.set_offline(True)
    try:
        await page.reload()
        await page.wait_for_selector("#view-app", state="visible")
        assert await page.evaluate("window.__m.offlineStart") is True
        await page.click(".m-tabs button[data-tab=today]")
        await page.wait_for_function("window.__m.today.offline === true")
        assert await _order(page, town, "#today-list li[data-site]") == shown
        assert "无网络" in await page.inner_text("#today-note")
        await s.screenshot("m-today-offline")
    finally:
        await s.context.set_offline(False)

    # logout takes the copy with it
    await page.reload()
    await page.wait_for_selector("#view-app", state="visible")
    await page.click(".m-tabs button[data-tab=settings]")
    await page.click("#logout-btn")
    await page.wait_for_selector("#login-form", state="visible")
    assert await page.evaluate("localStorage.getItem('cylwatch-m-today')") is None
    assert s.requests.foreign() == []
    errors = [e for e in s.errors if not any(n in e for n in NETWORK_NOISE)]
    assert errors == [], errors


async def test_the_phone_hides_the_list_from_a_company(open_session: OpenSession) -> None:
    s = await open_session(None, viewport=PHONE)
    await login_in_page(s.page, "t_company_a")
    assert not await s.page.is_visible("#tab-btn-today")
