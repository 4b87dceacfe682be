"""The fills page's checks in Chromium (issue 11 item 6): a company admin opens a fill's
pre/post-fill checks item by item, reads the failed checks per company and per item (table
and chart), follows a count to the fills behind it, and downloads the filtered fills as CSV
— the same rows as on screen, the failed items named; the cylinder's trajectory downloads
as CSV from its page too.

The fills are this test's own: a station of company A made here, on a day long past.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from tests.browser.conftest import OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser

PRE_OK = dict.fromkeys(PRE_CHECK_ITEMS, True)
POST_OK = dict.fromkeys(POST_CHECK_ITEMS, True)


async def _own_fills(pool: asyncpg.Pool, world: World) -> dict[str, Any]:
    suffix = secrets.token_hex(3).upper()
    company = world.companies["A"]
    station = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
           VALUES ($1, $2, 'filling_station', $3, '410105', 34.8, 113.65) RETURNING id""",
        f"FCB-{suffix}",
        f"检查测试站{suffix}",
        company,
    )
    tag = f"FCBTAG-{suffix}"
    cylinder = await pool.fetchval(
        """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l, tare_kg,
               manufacture_date, next_inspection_date, scrap_date, status, district_code)
           VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, '2012-01-01', '2099-01-01',
                   '2099-06-01', 'in_service', '410105') RETURNING id""",
        tag,
        f"ST{tag}",
        f"BC{tag}",
        company,
    )
    # noon UTC of a day years back: the same calendar day in the browser whatever its zone
    day = dt.date(2016, 1, 1) + dt.timedelta(days=secrets.randbelow(1500))
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    plan = (
        (PRE_OK, POST_OK),
        ({**PRE_OK, "markings_colour": False, "valve_accessories_intact": False}, POST_OK),
        (PRE_OK, {**POST_OK, "no_leak_at_valve": False}),
    )
    msgs = []
    for i, (pre, post) in enumerate(plan):
        msg = f"fcb-{suffix}-{i}"
        failed = pre is not PRE_OK or post is not POST_OK
        await pool.execute(
            """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code,
                   cylinder_id, tag, spec, net_kg, result, assessment, operator, pre_check,
                   post_check)
               VALUES ($1, $2, 'GUN-FCB', $3, $4, '410105', $5, $6, 'YSP35.5', 14.6, $7, 'ok',
                       '王师傅', $8, $9)""",
            noon + dt.timedelta(minutes=i),
            msg,
            station,
            company,
            cylinder,
            tag,
            "aborted" if failed else "completed",
            pre,
            post,
        )
        await pool.execute(
            """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
                   site_id, company_id, device_id, operator, district_code, details)
               VALUES ($1, $2, $3, $4, 'fill', 'filling', 'in_progress', $5, $6, 'GUN-FCB',
                       '王师傅', '410105', $7)""",
            noon + dt.timedelta(minutes=i),
            msg,
            cylinder,
            tag,
            station,
            company,
            {"net_kg": 14.6},
        )
        msgs.append(msg)
    return {"station": station, "day": day, "msgs": msgs, "cylinder": cylinder, "tag": tag}


async def _download_csv(page: Any, testid: str) -> tuple[str, list[dict[str, str]]]:
    async with page.expect_download() as info:
        await page.get_by_test_id(testid).click()
    download = await info.value
    path = await download.path()
    assert path is not None
    body = await asyncio.to_thread(Path(path).read_text, encoding="utf-8-sig")
    return download.suggested_filename, list(csv.DictReader(io.StringIO(body)))


async def test_company_admin_reads_checks_summary_and_exports(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    own = await _own_fills(pool, world)
    s = await open_session("t_company_a")
    page = s.page
    day = own["day"].isoformat()
    await page.goto(f"/fills?from={day}&to={day}&station={own['station']}")
    rows = page.get_by_test_id("results").locator("tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 3
    failing = page.locator(f"tr[data-msg-id='{own['msgs'][1]}']")
    assert "2 项不合格" in await failing.inner_text()
    assert "全部合格" in await page.locator(f"tr[data-msg-id='{own['msgs'][0]}']").inner_text()

    # one fill's checks, item by item
    await failing.get_by_test_id("checks-open").click()
    dialog = page.get_by_test_id("checks-dialog")
    await dialog.wait_for()
    pre = dialog.get_by_test_id("checks-pre")
    failed = pre.locator("li[data-passed='false']")
    assert await failed.count() == 2
    assert await pre.locator("li[data-passed='true']").count() == len(PRE_CHECK_ITEMS) - 2
    marked = await pre.locator("li[data-check='pre:markings_colour']").inner_text()
    assert "标志和颜色" in marked and "✗" in marked and "不合格" in marked
    assert (
        await dialog.get_by_test_id("checks-post").locator("li[data-passed='false']").count() == 0
    )
    await s.screenshot("fills-checks-dialog")
    await dialog.get_by_test_id("checks-close").click()
    await dialog.wait_for(state="hidden")

    # the summary over the same period and station: company A, 3 fills, 2 with failures
    summary = page.get_by_test_id("summary-companies")
    row = summary.locator(f"tr[data-company-id='{world.companies['A']}']")
    await row.wait_for()
    assert await summary.locator("tbody tr").count() == 1
    cells = await row.locator("td").all_inner_texts()
    assert cells[1:5] == ["3", "2", "66.7%", "3"], cells
    items = page.get_by_test_id("summary-items")
    for check in ("pre:markings_colour", "pre:valve_accessories_intact", "post:no_leak_at_valve"):
        assert await items.locator(f"tr[data-check='{check}']").inner_text()
    chart = page.get_by_test_id("summary-chart")
    await page.wait_for_function(
        "document.querySelector('[data-testid=summary-chart]').dataset.drawn === '3'"
    )
    assert await chart.locator("canvas").count() >= 1
    assert day in await page.get_by_test_id("summary-period").inner_text()
    await s.screenshot("fills-check-summary", full_page=True)

    # a count leads to its fills: the one that failed "no leak at the valve"
    await items.locator(
        "tr[data-check='post:no_leak_at_valve'] [data-testid=summary-drill]"
    ).click()
    await page.wait_for_url("**failed_check=post%3Ano_leak_at_valve**")
    await page.locator(f"tr[data-msg-id='{own['msgs'][0]}']").wait_for(state="detached")
    await page.locator(f"tr[data-msg-id='{own['msgs'][2]}']").wait_for()
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-msg-id") == own["msgs"][2]

    # back to every fill of the day, then the CSV export of what the filters select
    await page.get_by_test_id("filter-failed-check").select_option("")
    await page.get_by_test_id("search-submit").click()
    await page.locator(f"tr[data-msg-id='{own['msgs'][0]}']").wait_for()
    name, exported = await _download_csv(page, "export-csv")
    assert name == "fills.csv"
    assert [r["msg_id"] for r in exported] == list(reversed(own["msgs"]))  # newest first
    by_msg = {r["msg_id"]: r for r in exported}
    assert by_msg[own["msgs"][1]]["failed_checks"] == (
        "pre:markings_colour; pre:valve_accessories_intact"
    )
    assert by_msg[own["msgs"][0]]["failed_checks"] == ""
    assert {r["tag"] for r in exported} == {own["tag"]}
    assert all(r["time"].startswith(day) for r in exported)

    # the cylinder's trajectory, as a file from its page
    await page.goto(f"/cylinders/{own['cylinder']}")
    await page.get_by_test_id("trajectory").locator("tbody tr").first.wait_for()
    name, trajectory = await _download_csv(page, "trajectory-csv")
    assert name == f"trajectory-{own['tag']}.csv"
    assert [r["msg_id"] for r in trajectory] == own["msgs"]  # oldest first
    assert {r["kind"] for r in trajectory} == {"fill"}
    assert not s.errors, s.errors


async def test_checks_in_english(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    own = await _own_fills(pool, world)
    s = await open_session("t_admin", lang="en")
    page = s.page
    day = own["day"].isoformat()
    await page.goto(f"/fills?from={day}&to={day}&station={own['station']}&failed_check=any&lang=en")
    rows = page.get_by_test_id("results").locator("tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 2
    await page.get_by_role("heading", name="Failed checks by company").wait_for()
    await page.locator(f"tr[data-msg-id='{own['msgs'][2]}']").get_by_test_id("checks-open").click()
    dialog = page.get_by_test_id("checks-dialog")
    await dialog.wait_for()
    post = await dialog.get_by_test_id("checks-post").inner_text()
    assert "Post-fill check" in post and "No leak at the valve" in post.replace(
        "no leak", "No leak"
    )
    assert "Fail" in post
    href = await page.get_by_test_id("export-xlsx").get_attribute("href")
    assert href and "format=xlsx" in href and "failed_check=any" in href
    assert f"station={own['station']}" in href
    assert not s.errors, s.errors
