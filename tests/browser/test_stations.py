"""The stations page in Chromium, as the people who use it: a company admin registers a store
and places it on the map, the admin sets a permit and sees the stock against it, a regulator
reads without any way to change, company B sees none of A's sites (docs/ARCHITECTURE.md §8)."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser


def _code() -> str:
    return f"BST-{secrets.token_hex(3).upper()}"


async def _rows(page: Any) -> list[str]:
    await (
        page.get_by_test_id("results")
        .locator("tbody tr, [data-testid=empty-state]")
        .first.wait_for()
    )
    return list(
        await page.locator("tr[data-code]").evaluate_all("els => els.map(e => e.dataset.code)")
    )


async def test_company_admin_registers_a_store_placed_on_the_map(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, settings: Any
) -> None:
    code = _code()
    s = await open_session("t_company_a")
    await s.page.goto("/admin/stations")
    assert "STA-A1" in await _rows(s.page)
    await s.page.get_by_test_id("new-site").click()
    dialog = s.page.get_by_test_id("site-dialog")
    await dialog.get_by_test_id("site-code").fill(code)
    await dialog.get_by_test_id("site-name").fill("金水路供应站")
    await dialog.get_by_test_id("site-kind").select_option("store")
    await dialog.get_by_test_id("site-district").select_option("410105")
    assert await dialog.get_by_test_id("site-storage").count() == 0  # the permit is the bureau's
    # the company admin's kinds: no inspection agency
    kinds = (
        await dialog.get_by_test_id("site-kind")
        .locator("option")
        .evaluate_all("os => os.map(o => o.value)")
    )
    assert "inspection_agency" not in kinds
    map_box = dialog.get_by_test_id("site-map")
    await map_box.locator(".leaflet-control-zoom-in").wait_for()
    await map_box.click(position={"x": 120, "y": 90})
    lat = await dialog.get_by_test_id("site-lat").input_value()
    lon = await dialog.get_by_test_id("site-lon").input_value()
    assert lat and lon, "a click on the map fills the position"
    await map_box.locator(".leaflet-marker-icon").wait_for()
    await s.screenshot("stations-create")
    await dialog.get_by_test_id("site-save").click()
    row = s.page.locator(f'tr[data-code="{code}"]')
    await row.wait_for()
    stored = await pool.fetchrow("SELECT * FROM sites WHERE code = $1", code)
    assert stored["company_id"] == world.companies["A"] and stored["kind"] == "store"
    assert (stored["lat"], stored["lon"]) == (float(lat), float(lon))
    near = settings.map
    assert abs(stored["lat"] - near.center_lat) < 1 and abs(stored["lon"] - near.center_lon) < 1
    stock = await row.get_by_test_id("stock").inner_text()
    assert f"0 / {settings.alerts.default_storage_store}" in stock  # the default for a store
    assert await row.locator('[data-action="edit"]').count() == 1
    await s.screenshot("stations")
    assert not s.errors, s.errors


async def test_admin_sets_the_permit_and_sees_the_stock_over_it(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    code = _code()
    site = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, company_id, district_code, permitted_full_storage)
           VALUES ($1, '超量仓库', 'warehouse', $2, '410105', 2) RETURNING id""",
        code,
        world.companies["A"],
    )
    for i in range(3):
        await pool.execute(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, location_site_id, fill_state)
               VALUES ($1, $2, 'YSP35.5', current_date - 400, current_date + 600,
                       current_date + 2000, $3, 'full')""",
            f"{code}-{i}",
            world.companies["A"],
            site,
        )
    s = await open_session("t_admin")
    await s.page.goto(f"/admin/stations?q={code}")
    row = s.page.locator(f'tr[data-code="{code}"]')
    await row.wait_for()
    assert await row.locator(".stock-over").count() == 1
    assert "3 / 2" in await row.get_by_test_id("stock").inner_text()
    await row.locator('[data-action="edit"]').click()
    dialog = s.page.get_by_test_id("site-dialog")
    assert await dialog.get_by_test_id("site-code").input_value() == code
    await dialog.get_by_test_id("site-storage").fill("5")
    await dialog.get_by_test_id("site-save").click()
    await s.page.locator(
        f'tr[data-code="{code}"] [data-testid="stock"]:has-text("3 / 5")'
    ).wait_for()
    assert await s.page.locator(f'tr[data-code="{code}"] .stock-over').count() == 0
    assert await pool.fetchval("SELECT permitted_full_storage FROM sites WHERE id = $1", site) == 5
    await s.screenshot("stations-admin")
    assert not s.errors, s.errors


async def test_regulator_reads_without_edit_buttons(open_session: OpenSession) -> None:
    s = await open_session("t_regulator_jinshui")
    # searched by code: other tests' sites in 金水区 may fill the first page
    await s.page.goto("/admin/stations?q=STA-")
    codes = await _rows(s.page)
    assert "STA-A1" in codes and "STA-B1" not in codes  # 金水区 only
    assert await s.page.get_by_test_id("new-site").count() == 0
    assert await s.page.locator('[data-action="edit"]').count() == 0
    assert await s.page.locator("#site-dialog").count() == 0
    row = s.page.locator('tr[data-code="STA-A1"]')
    assert await row.locator("[data-licence]").count() == 1
    assert await row.locator('[data-action="licence"]').get_attribute("href") == "/admin/licences"
    await s.screenshot("stations-regulator")
    assert not s.errors, s.errors


async def test_company_b_sees_none_of_a_sites(open_session: OpenSession) -> None:
    s = await open_session("t_company_b")
    await s.page.goto("/admin/stations?q=STA-A1")
    await s.page.get_by_test_id("empty-state").wait_for()
    await s.page.goto("/admin/stations")
    codes = await _rows(s.page)
    assert "STA-B1" in codes and "STA-A1" not in codes
    # the filter offers only B's company and no other
    assert await s.page.locator('#search-form select[name="company"]').count() == 0
    assert not s.errors, s.errors


async def test_english(open_session: OpenSession) -> None:
    s = await open_session("t_admin")
    await s.page.goto("/admin/stations?lang=en")
    await s.page.get_by_role("heading", name="Stations").wait_for()
    await s.page.get_by_test_id("results").locator("tbody tr").first.wait_for()
    assert "Filling licence" in await s.page.locator("thead").inner_text()
    assert not s.errors, s.errors
