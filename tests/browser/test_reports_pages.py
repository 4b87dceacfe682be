"""The report pages in Chromium (dashboard/pages/reports.py; docs/API.md "Reports"), as the
people who use them:

- every framed report of the catalogue, as a city-wide regulator: its title, the chart
  drawn (an ECharts canvas of non-zero size), the table filled with the report's rows and
  totals, a count's drill-down listing as many rows as the count says (and its export
  holding them), the page's XLSX export opened with calamine holding the same totals;
- a company admin sees its own company's rows only, without a company to choose;
- the filters live in the URL (the back button undoes one), a header click sorts, a quick
  pick sets the period;
- printed, the filter bar and the navigation are hidden, the chart and the table stay;
- in English the catalogue and the report carry the English titles and labels.

One page load per report in one logged-in browser context (the suite's time). The city is
the session's ``world`` plus rows of this module's own (fills, deliveries to a real-name
customer, alerts, an out-of-region sighting, an inspection), removed afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from python_calamine import CalamineWorkbook

from server.api.reports import SPECS
from server.kernel.appkeys import SETTINGS
from server.kernel.clock import city_today
from tests.api.report_activity_city import refreshed
from tests.browser.conftest import VIEWPORT, Live, OpenSession, OutsideRequests, Session
from tests.browser.data import Seeded, seed, unseed
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.browser

SPEC_BY_NAME = {s.name: s for s in SPECS}
FRAMED = [s.name for s in SPECS]
WITH_ROWS = {
    "holdings",
    "compliance-summary",
    "in-use-distribution",
    "inspection-due",
    "scrap-due",
    "account-opening",
    "real-name-progress",
    "sales",
    "circulation",
    "periodic-inspections",
    "credit",
    "fill-volume",
    "overstock",
    "abnormal-behaviour",
    "fills-daily",
    "denials",
    "anomalies-by-company",
}
"""Reports this module's city fills (a report added later may show its empty state until
the city here grows the rows it counts; safety inspections are sealed records this module
does not write)."""
NOT_ROW_COUNTS = {"overstock"}
"""Reports whose drillable counts are not counts of the rows they open: an overstock cell
counts a site's days, its drill-down lists the alerts covering them (one alert, many days)."""
NUMERIC = ("count", "number", "kg")


@dataclass
class City:
    seeded: Seeded
    alerts: list[int] = field(default_factory=list)
    inspections: list[int] = field(default_factory=list)
    cylinders: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
async def city(
    pool: asyncpg.Pool, world: World, live_server: Live, settings: Any
) -> AsyncIterator[City]:
    """The session's world, the browser tests' seed, and what the business reports count:
    a delivery to a real-name customer, an out-of-region sighting, a periodic inspection."""
    s = await seed(pool, world)
    c = City(s)
    now = dt.datetime.now(dt.UTC)
    today = city_today(live_server.app[SETTINGS])
    await pool.execute(
        """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
               site_id, company_id, operator, lat, lon, district_code, customer_id, details)
           VALUES ($1, $2, $3, $4, 'deliver', 'retail_selling', 'retail_sold', NULL, $5,
                   '张师傅', 34.812, 113.672, '410105', $6, '{"action": "deliver"}')""",
        now - dt.timedelta(hours=3),
        f"rp-{s.tag}-deliver",
        s.cylinder_id,
        s.cylinder_tag,
        world.companies["A"],
        world.customers["A"],
    )
    c.alerts.append(
        await pool.fetchval(
            """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id,
                   district_code, first_at, last_at, lat, lon, count, details)
               VALUES ('out_of_region', 'warning', 'cylinder', $1, $2, '410105', $3, $3,
                       35.2, 114.9, 1, '{}') RETURNING id""",
            s.cylinder_tag,
            world.companies["A"],
            now - dt.timedelta(hours=2),
        )
    )
    c.inspections.append(
        await pool.fetchval(
            """INSERT INTO inspections (cylinder_id, agency_site_id, inspected_on, result,
                   next_inspection_date, report_no)
               VALUES ($1, $2, $3, 'pass', $4, $5) RETURNING id""",
            s.cylinder_id,
            world.sites["INS-1"],
            today - dt.timedelta(days=1),
            today + dt.timedelta(days=4 * 365),
            f"RP-{s.tag}",
        )
    )
    # a refused fill (overdue inspection) and a site holding more full cylinders than allowed
    await pool.execute(
        """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
               site_id, company_id, operator, lat, lon, district_code, details)
           VALUES ($1, $2, $3, $4, 'fill_refused', 'inspecting', 'non_conformant', $5, $6,
                   '李四', 34.80, 113.65, '410105', '{"reasons": ["overdue_inspection"]}')""",
        now - dt.timedelta(hours=4),
        f"rp-{s.tag}-refused",
        s.cylinder_id,
        s.cylinder_tag,
        world.sites["STA-A1"],
        world.companies["A"],
    )
    c.alerts.append(
        await pool.fetchval(
            """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id,
                   site_id, district_code, first_at, last_at, count, details)
               VALUES ('overstock', 'warning', 'site', 'STA-A1', $1, $2, '410105', $3, $4, 3,
                       '{"full": 130, "permitted": 100}') RETURNING id""",
            world.companies["A"],
            world.sites["STA-A1"],
            now - dt.timedelta(hours=3),
            now - dt.timedelta(minutes=20),
        )
    )
    # a cylinder reaching its scrap date within two months
    c.cylinders.append(
        await pool.fetchval(
            """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l,
                   tare_kg, manufacturer, manufacture_date, next_inspection_date, scrap_date,
                   status, district_code, location_site_id, registered_by_site_id)
               VALUES ($1, $1, $1, $2, 'YSP35.5', 35.5, 15.5, '测试压力容器厂', $3, $4, $4,
                       'in_service', '410105', $5, $6) RETURNING id""",
            f"RP-{s.tag}-OLD",
            world.companies["A"],
            today - dt.timedelta(days=8 * 365),
            today + dt.timedelta(days=60),
            world.sites["STA-A1"],
            world.sites["INS-1"],
        )
    )
    await refreshed(pool, settings)  # the cylinder reports count on the census (migration 0226)
    yield c
    await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", c.cylinders)
    await pool.execute("DELETE FROM inspections WHERE id = ANY($1)", c.inspections)
    await pool.execute("DELETE FROM alerts WHERE id = ANY($1)", c.alerts)
    await unseed(pool, s)


@pytest.fixture(scope="module")
async def regulator(browser: Any, live_server: Live, city: City) -> AsyncIterator[Session]:
    """One logged-in context and page for every report (a page load per report)."""
    context = await browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        locale="zh-CN",
        bypass_csp=True,
        accept_downloads=True,
    )
    resp = await context.request.post(
        "/api/v1/auth/login", data={"username": "t_regulator", "password": PASSWORD}
    )
    assert resp.ok
    log = OutsideRequests()
    context.on("request", log)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield Session(context, page, log, errors)
    finally:
        await context.close()


async def open_report(s: Session, path: str) -> None:
    s.errors.clear()
    await s.page.goto(path)
    await s.page.wait_for_function("document.body.dataset.ready === '1'")


def as_number(text: str) -> float:
    """A number as the page prints it (thousands separators, a % sign)."""
    cleaned = re.sub(r"[,\s%]", "", text)
    return float(cleaned)


def sheet_of(data: bytes) -> list[list[Any]]:
    return list(CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python())


def cell_number(v: Any) -> float:
    return float(str(v)) if v not in (None, "") else 0.0


async def download(s: Session, test_id: str) -> bytes:
    async with s.page.expect_download() as got:
        await s.page.get_by_test_id(test_id).click()
    d = await got.value
    return await asyncio.to_thread(Path(await d.path()).read_bytes)


@pytest.mark.parametrize("name", FRAMED)
async def test_every_framed_report_on_screen(
    regulator: Session, live_server: Live, name: str
) -> None:
    spec = SPEC_BY_NAME[name]
    s = regulator
    page = s.page
    await open_report(s, f"/reports/{name}")
    assert await page.get_by_test_id("report-title").inner_text() == spec.title
    # the API's answer to the same filters: the page asked for the defaults
    body = await (await s.context.request.get(f"/api/v1/reports/{name}")).json()
    rows = body["rows"]
    if not rows:
        assert name not in WITH_ROWS, f"{name}: the test city should give rows"
        await page.get_by_test_id("results").get_by_test_id("empty-state").wait_for()
        assert s.errors == []
        return

    # the table: the first page of the rows, and the totals row
    page_size = live_server.app[SETTINGS].http.page_size_default
    table = page.get_by_test_id("report-table")
    assert await table.locator("tbody tr").count() == min(len(rows), page_size)
    keys = [c["key"] for c in body["columns"]]
    heads = [h.strip() for h in await table.locator("thead th").all_inner_texts()]
    assert heads == [c["label"] for c in body["columns"]]
    totals = body["totals"] or {}
    shown_totals: dict[str, float] = {}
    for key, value in totals.items():
        col = next((c for c in body["columns"] if c["key"] == key), None)
        if col is None or col["type"] not in NUMERIC or value is None:
            continue
        text = await table.locator(f"tfoot td[data-key='{key}']").inner_text()
        shown_totals[key] = as_number(text)
        assert shown_totals[key] == pytest.approx(float(value), abs=0.01), key

    # the previous period beside the current: each numeric total and its previous value
    previous = body.get("previous")
    card = page.locator("#compare-card")
    if previous and body.get("from"):
        await card.wait_for()
        for key, value in previous.items():
            col = next((c for c in body["columns"] if c["key"] == key), None)
            if col is None or col["type"] not in NUMERIC or value is None:
                continue
            line = card.locator(f"tr[data-key='{key}']")
            shown = await line.get_by_test_id("compare-previous").inner_text()
            assert as_number(shown) == pytest.approx(float(value), abs=0.01), (name, key)
            if key in shown_totals:
                now = as_number(await line.get_by_test_id("compare-current").inner_text())
                assert now == shown_totals[key], (name, key)
            assert await line.get_by_test_id("compare-change").inner_text() != ""
    else:
        assert await card.is_hidden(), name

    # the chart: drawn on a canvas of some size
    if spec.chart is not None:
        chart = page.get_by_test_id("report-chart")
        await page.wait_for_function(
            "document.querySelector('[data-testid=report-chart]').dataset.drawn !== undefined"
        )
        canvas = chart.locator("canvas").first
        await canvas.wait_for()
        box = await canvas.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, name

    await s.screenshot(f"report-{name}", full_page=True)

    # the export of what is on screen: the table's rows, so the same sums; where the totals
    # sum the rows (not a report of two dimensions side by side), the same totals
    sheet = sheet_of(await download(s, "export-xlsx"))
    assert len(sheet) - 1 == len(rows)
    assert [str(h) for h in sheet[0]] == [c["label"] for c in body["columns"]]
    for col in body["columns"]:
        if col["type"] not in NUMERIC:
            continue
        i = keys.index(col["key"])
        in_file = sum(cell_number(r[i]) for r in sheet[1:])
        on_screen = sum(cell_number(r[col["key"]]) for r in rows)
        assert in_file == pytest.approx(on_screen, abs=0.01), col["key"]
        # a total that sums the rows (not a peak, not one dimension of two side by side)
        summed = abs(on_screen - float(totals.get(col["key"]) or 0)) < 0.01
        if col["key"] in shown_totals and summed:
            assert in_file == pytest.approx(shown_totals[col["key"]], abs=0.01), col["key"]

    # a count opens the rows behind it: as many as it says, exportable
    drill = page.locator("[data-testid=report-table] tbody [data-testid=drill]").first
    if spec.drill is not None and name in WITH_ROWS:
        assert await drill.count() == 1, f"{name}: no count to drill into"
    if await drill.count():
        measure = await drill.get_attribute("data-measure")
        col = next(c for c in body["columns"] if c["key"] == measure)
        count = as_number(await drill.inner_text())
        await drill.click()
        dialog = page.get_by_test_id("drill-dialog")
        await dialog.wait_for()
        await dialog.locator("[data-testid=drill-results] tbody tr").first.wait_for()
        total_text = await dialog.get_by_test_id("total").inner_text()
        found = re.search(r"\d[\d,]*", total_text)
        assert found, total_text
        total = as_number(found.group(0))
        assert total >= 1
        if col["type"] == "count" and name not in NOT_ROW_COUNTS:
            assert total == count, (name, measure)
        await s.screenshot(f"report-{name}-drill")
        href = await dialog.get_by_test_id("drill-xlsx").get_attribute("href")
        assert href and f"measure={measure}" in href
        got = await s.context.request.get(href)
        assert got.ok
        assert len(sheet_of(await got.body())) - 1 == total
        await dialog.get_by_test_id("drill-close").click()
        await dialog.wait_for(state="hidden")
    assert s.errors == [], (name, s.errors)
    assert s.requests.foreign() == []


async def test_a_company_admin_sees_its_own_rows(
    open_session: OpenSession, city: City, world: World
) -> None:
    s = await open_session("t_company_a")
    await open_report(s, "/reports/holdings")
    codes = await s.page.locator(
        "[data-testid=report-table] tbody tr td:first-child"
    ).all_inner_texts()
    assert codes == ["TEST-A"]
    # one company: nothing to choose
    assert not await s.page.get_by_test_id("filter-company").is_visible()
    assert await s.page.get_by_test_id("filter-district").is_visible()
    assert s.errors == []


async def test_filters_in_the_url_sorting_and_quick_periods(
    regulator: Session, live_server: Live
) -> None:
    s = regulator
    page = s.page
    await open_report(s, "/reports/holdings")
    table = page.get_by_test_id("report-table")
    everyone = await table.locator("tbody tr").count()
    assert everyone >= 2

    # a district narrows the rows and goes into the URL; back undoes it
    await page.get_by_test_id("filter-district").select_option("410103")
    await page.wait_for_url(re.compile(r"district=410103"))
    await page.wait_for_function(
        f"document.querySelectorAll('[data-testid=report-table] tbody tr').length < {everyone}"
    )
    api = await s.context.request.get("/api/v1/reports/holdings?district=410103")
    expected = [r["company_code"] for r in (await api.json())["rows"]]
    assert await table.locator("tbody tr td:first-child").all_inner_texts() == expected
    assert "TEST-B" in expected
    assert "district=410103" in (
        await page.get_by_test_id("export-csv").get_attribute("href") or ""
    )
    schedule = await page.get_by_test_id("schedule-link").get_attribute("href") or ""
    assert parse_qs(urlsplit(schedule).query) == {"report": ["holdings"], "district": ["410103"]}
    await page.go_back()
    await page.wait_for_function(
        f"document.querySelectorAll('[data-testid=report-table] tbody tr').length === {everyone}"
    )
    assert await page.get_by_test_id("filter-district").input_value() == ""

    # a header click sorts the rows by that column, a second one the other way — all the
    # rows, not the page on screen: the session's city has more companies than one page
    every = [
        r["company_code"]
        for r in (await (await s.context.request.get("/api/v1/reports/holdings")).json())["rows"]
    ]
    # ordered as people read them (the page's locale), which is not Python's code point order
    in_order = await page.evaluate(
        "(c) => c.slice().sort((a, b) => a.localeCompare(b, 'zh-CN'))", every
    )
    await table.locator("thead th[data-key=company_code] button").click()
    codes = await table.locator("tbody tr td:first-child").all_inner_texts()
    assert codes == in_order[: len(codes)] and "sort=company_code" in page.url
    await table.locator("thead th[data-key=company_code] button").click()
    shown = await table.locator("tbody tr td:first-child").all_inner_texts()
    assert shown == in_order[::-1][: len(shown)] and len(shown) == len(codes)

    # a quick pick sets the period of a report that takes one
    dated = next((s.name for s in SPECS if "period" in s.filters), None)
    if dated is not None:
        await open_report(s, f"/reports/{dated}")
        today = city_today(live_server.app[SETTINGS])
        await page.get_by_test_id("quick-this_month").click()
        await page.wait_for_url(re.compile(r"from=\d{4}-\d\d-01"))
        assert (
            await page.get_by_test_id("filter-from").input_value()
            == today.replace(day=1).isoformat()
        )
        assert await page.get_by_test_id("filter-to").input_value() == today.isoformat()
        await page.wait_for_function("document.body.dataset.ready === '1'")
    assert s.errors == []


async def test_an_impossible_filter_in_the_url_says_what_is_wrong(regulator: Session) -> None:
    """A shared link with a broken filter shows the API's 400 as an error, not a blank page."""
    s = regulator
    dated = next((s.name for s in SPECS if "period" in s.filters), None)
    if dated is None:
        pytest.skip("no report takes a period")
    # a choice that is not offered is dropped by the select; a period that ends before it
    # starts is the API's to refuse
    await open_report(s, f"/reports/{dated}?from=2026-03-01&to=2026-02-01")
    error = s.page.get_by_test_id("report-state").locator(".alert-error")
    await error.wait_for()
    assert "from" in await error.inner_text()
    assert not await s.page.get_by_test_id("report-table").is_visible()
    assert s.errors and all("400" in e for e in s.errors)


async def test_print_layout_hides_the_filter_bar(regulator: Session) -> None:
    s = regulator
    page = s.page
    await open_report(s, "/reports/holdings")
    await page.emulate_media(media="print")
    try:
        assert not await page.get_by_test_id("report-filters").is_visible()
        assert not await page.locator("header.topbar").is_visible()
        assert not await page.get_by_test_id("report-actions").is_visible()
        assert await page.get_by_test_id("report-chart").is_visible()
        assert await page.get_by_test_id("report-table").is_visible()
        assert "截至" in await page.get_by_test_id("print-filters").inner_text()
        await s.screenshot("report-holdings-print", full_page=True)
    finally:
        await page.emulate_media(media="screen")
    assert await page.get_by_test_id("report-filters").is_visible()


async def test_english_titles_and_labels(open_session: OpenSession, city: City) -> None:
    s = await open_session("t_regulator", lang="en")
    page = s.page
    await page.goto("/reports?lang=en")
    catalogue = page.get_by_test_id("catalogue")
    await catalogue.get_by_test_id("report-card").first.wait_for()
    await s.screenshot("reports-catalogue-en", full_page=True)
    links = await catalogue.get_by_test_id("report-link").all_inner_texts()
    for spec in SPECS:
        if "regulator" in spec.roles:
            assert spec.title_en in links
    await catalogue.locator("[data-report=holdings] [data-testid=report-link]").click()
    await page.wait_for_function("document.body.dataset.ready === '1'")
    assert await page.get_by_test_id("report-title").inner_text() == "Cylinders held per company"
    heads = await page.locator("[data-testid=report-table] thead th").all_inner_texts()
    assert heads[:3] == ["Company code", "Company", "Total"]
    assert await page.get_by_test_id("export-xlsx").inner_text() == "Export Excel"
    assert s.errors == []


XSS = '<img src=x onerror="window.__xss=1">"><script>window.__xss=2</script>'


@pytest.fixture
async def marked_names(pool: asyncpg.Pool, world: World, city: City) -> AsyncIterator[None]:
    """Company A and its station named with markup for one test, restored after."""
    company, site = world.companies["A"], world.sites["STA-A1"]
    old_company = await pool.fetchval("SELECT name FROM companies WHERE id = $1", company)
    old_site = await pool.fetchval("SELECT name FROM sites WHERE id = $1", site)
    await pool.execute("UPDATE companies SET name = $2 WHERE id = $1", company, XSS)
    await pool.execute("UPDATE sites SET name = $2 WHERE id = $1", site, XSS)
    try:
        yield
    finally:
        await pool.execute("UPDATE companies SET name = $2 WHERE id = $1", company, old_company)
        await pool.execute("UPDATE sites SET name = $2 WHERE id = $1", site, old_site)


async def test_names_with_markup_stay_text_in_tables_charts_and_tooltips(
    regulator: Session, marked_names: None
) -> None:
    """A company's name is a category of a bar chart, a line of a trend and a cell of a
    table; hovering the chart shows its tooltip — nothing of it runs."""
    s = regulator
    page = s.page
    for name in ("holdings", "sales", "overstock"):
        if name not in SPEC_BY_NAME:
            continue
        await open_report(s, f"/reports/{name}")
        table = page.get_by_test_id("report-table")
        assert XSS in await table.inner_text()
        box = await page.get_by_test_id("report-chart").bounding_box()
        assert box is not None
        for i in range(1, 12):
            await page.mouse.move(box["x"] + box["width"] * i / 12, box["y"] + box["height"] / 2)
        assert await page.evaluate("window.__xss") is None, name
    assert s.errors == []


@pytest.fixture
async def many_companies(
    pool: asyncpg.Pool, world: World, city: City, settings: Any
) -> AsyncIterator[str]:
    """More companies than a table page holds, each with one cylinder; removed after."""
    tag = city.seeded.tag
    ids = []
    for i in range(55):
        cid = await pool.fetchval(
            """INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105')
               RETURNING id""",
            f"RPG-{tag}-{i:02d}",
            f"分页测试燃气{i:02d}",
        )
        ids.append(cid)
        await pool.execute(
            """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l,
                   tare_kg, manufacturer, manufacture_date, next_inspection_date, scrap_date,
                   status, district_code)
               VALUES ($1, $1, $1, $2, 'YSP35.5', 35.5, 15.5, '测试压力容器厂', $3, $4, $5,
                       'in_service', '410105')""",
            f"RPG-{tag}-{i:02d}",
            cid,
            world.today - dt.timedelta(days=365),
            world.today + dt.timedelta(days=3 * 365),
            world.today + dt.timedelta(days=7 * 365),
        )
    await refreshed(pool, settings)  # holdings counts on the census (migration 0226)
    try:
        yield tag
    finally:
        await pool.execute("DELETE FROM cylinders WHERE owner_company_id = ANY($1)", ids)
        await pool.execute("DELETE FROM companies WHERE id = ANY($1)", ids)
        await refreshed(pool, settings)


async def test_a_long_table_pages_on_screen_in_its_sort_order(
    open_session: OpenSession, live_server: Live, many_companies: str
) -> None:
    s = await open_session("t_regulator")
    page = s.page
    size = live_server.app[SETTINGS].http.page_size_default
    await open_report(s, "/reports/holdings")
    table = page.get_by_test_id("report-table")
    body = await (await s.context.request.get("/api/v1/reports/holdings")).json()
    everyone = len(body["rows"])
    assert everyone > size
    assert await table.locator("tbody tr").count() == size
    await table.locator("thead th[data-key=company_code] button").click()
    first = await table.locator("tbody tr td:first-child").all_inner_texts()
    await page.locator("#pager").get_by_role("button", name="下一页").click()
    await page.wait_for_url(re.compile(r"page=2"))
    second = await table.locator("tbody tr td:first-child").all_inner_texts()
    assert len(second) == min(size, everyone - size)
    # one order across the pages, and every row once
    codes = first + second
    in_order = await page.evaluate(
        "(c) => c.slice().sort((a, b) => a.localeCompare(b, 'zh-CN'))", codes
    )
    assert codes == in_order and len(set(codes)) == len(codes)
    # the totals are the whole table's, whatever the page
    total = await table.locator("tfoot td[data-key=total]").inner_text()
    assert as_number(total) == body["totals"]["total"]
    assert s.errors == []


async def test_the_catalogue_lists_what_the_role_may_run(
    open_session: OpenSession, city: City
) -> None:
    """An inspection agency reads the archive's reports, not the fills' or the alerts'."""
    s = await open_session("t_inspector")
    await s.page.goto("/reports")
    catalogue = s.page.get_by_test_id("catalogue")
    await catalogue.get_by_test_id("report-card").first.wait_for()
    listed = {
        await card.get_attribute("data-report")
        for card in await catalogue.get_by_test_id("report-card").all()
    }
    assert listed == {spec.name for spec in SPECS if "inspector" in spec.roles}
    assert "holdings" in listed
    assert s.errors == []
