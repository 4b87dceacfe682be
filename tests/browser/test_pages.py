"""Every regulator page in a real Chromium: login, search → detail with trajectory, the
alerts centre, fills, exports, users, dead letters, the public QR page, English, scope and
empty states. Each page is saved to test-artifacts/ for a person to look at."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.browser.conftest import OpenSession, wait_ready
from tests.browser.data import Seeded, seed, unseed
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.browser


@pytest.fixture
async def seeded(pool: asyncpg.Pool, world: World) -> AsyncIterator[Seeded]:
    s = await seed(pool, world)
    yield s
    await unseed(pool, s)


async def test_login_wrong_password_then_right(open_session: OpenSession) -> None:
    s = await open_session(None)
    await s.page.goto("/cylinders")
    assert "/login?next=/cylinders" in s.page.url
    await s.page.get_by_label("用户名").fill("t_regulator")
    await s.page.get_by_label("密码").fill("not-the-password")
    await s.page.get_by_role("button", name="登录").click()
    error = s.page.get_by_test_id("login-error")
    await error.wait_for()
    assert "用户名或密码错误" in await error.inner_text()
    await s.screenshot("login-error")
    await s.page.get_by_label("密码").fill(PASSWORD)
    await s.page.get_by_role("button", name="登录").click()
    await s.page.wait_for_url(re.compile(r"/cylinders$"))
    assert await s.page.get_by_test_id("user-chip").inner_text()
    await s.page.get_by_role("button", name="退出").click()
    await s.page.wait_for_url(re.compile(r"/login$"))
    await s.screenshot("login")
    # the refused login answers 401 (the browser logs that status); nothing else may fail
    assert [e for e in s.errors if "status of 401" not in e] == [], s.errors


async def test_search_then_detail_with_trajectory(
    open_session: OpenSession, seeded: Seeded
) -> None:
    s = await open_session("t_regulator")
    await s.page.goto("/cylinders")
    await s.page.get_by_test_id("search-tag").fill(seeded.cylinder_tag)
    await s.page.get_by_test_id("search-submit").click()
    link = s.page.get_by_role("link", name=seeded.cylinder_tag)
    await link.wait_for()
    assert "tag=" + seeded.cylinder_tag in s.page.url  # the search is in the URL
    export = await s.page.get_by_test_id("export-csv").get_attribute("href")
    assert export and export.startswith("/api/v1/cylinders/export?format=csv")
    await s.screenshot("cylinders-search")
    await link.click()
    await s.page.wait_for_url(re.compile(rf"/cylinders/{seeded.cylinder_id}$"))
    archive = s.page.get_by_test_id("archive")
    await archive.wait_for()
    text = await archive.inner_text()
    assert f"ST-{seeded.tag}" in text and "测试燃气A公司" in text
    assert await s.page.locator(".badge-inspection_due").count() >= 1  # next inspection in 20 days
    rows = s.page.get_by_test_id("trajectory").locator("tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 4
    kinds = await rows.evaluate_all("rs => rs.map(r => r.dataset.kind)")
    assert kinds == ["register", "fill", "dispatch", "deliver"]
    assert "4" in await s.page.locator("#track-note").inner_text()
    await s.page.wait_for_timeout(300)  # the track's fitBounds animation
    await s.screenshot("cylinder-detail", full_page=True)
    assert not s.errors, s.errors


async def test_cylinder_list_for_company_admin_is_own_only(open_session: OpenSession) -> None:
    s = await open_session("t_company_a")
    await s.page.goto("/cylinders")
    results = s.page.get_by_test_id("results")
    await results.locator("tbody tr").first.wait_for()
    text = await results.inner_text()
    assert "TAG-A-OK" in text and "TAG-B-OK" not in text and "测试燃气B公司" not in text
    await s.screenshot("cylinders-company-a")
    assert not s.errors, s.errors


async def test_table_sorts_the_rows_shown_and_exports_follow_filters(
    open_session: OpenSession,
) -> None:
    """lib/table.js: a sortable column orders the page's rows both ways (aria-sort says
    which), and the CSV/XLSX links carry the filters the export endpoint knows."""
    s = await open_session("t_admin")
    await s.page.goto("/cylinders?status=in_service")
    rows = s.page.locator("#results tbody tr")
    await rows.first.wait_for()
    header = s.page.locator("#results th").first
    tags = "rs => rs.map(r => r.querySelector('td').textContent)"
    await header.get_by_role("button").click()
    assert await header.get_attribute("aria-sort") == "ascending"
    up = await rows.evaluate_all(tags)
    assert up == sorted(up)
    await header.get_by_role("button").click()
    assert await header.get_attribute("aria-sort") == "descending"
    assert await rows.evaluate_all(tags) == sorted(up, reverse=True)
    csv = await s.page.get_by_test_id("export-csv").get_attribute("href")
    assert csv == "/api/v1/cylinders/export?format=csv&status=in_service"
    assert not s.errors, s.errors


async def test_alerts_centre_filter_ack_and_resolve(
    open_session: OpenSession, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    s = await open_session("t_officer")  # officer of 金水区 (410105): sees A's alert only
    await s.page.goto("/alerts")
    row = s.page.locator(f'tr[data-alert-id="{seeded.alerts["A"]}"]')
    await row.wait_for()
    assert await s.page.locator(f'tr[data-alert-id="{seeded.alerts["B"]}"]').count() == 0
    await s.screenshot("alerts")
    await row.get_by_role("textbox").fill("现场核查中")
    await row.locator('[data-action="ack"]').click()
    await s.page.locator(f'tr[data-alert-id="{seeded.alerts["A"]}"]').wait_for(state="detached")
    await s.page.get_by_test_id("filter-state").select_option("acknowledged")
    await s.page.get_by_role("button", name="查询").click()
    row = s.page.locator(f'tr[data-alert-id="{seeded.alerts["A"]}"][data-state="acknowledged"]')
    await row.wait_for()
    assert "现场核查中" in await row.inner_text()
    await row.locator('[data-action="resolve"]').click()
    await row.wait_for(state="detached")
    got = await pool.fetchrow("SELECT state, note FROM alerts WHERE id = $1", seeded.alerts["A"])
    assert got["state"] == "resolved" and got["note"] == "现场核查中"
    assert not s.errors, s.errors


async def test_fills_log_scope_and_empty_state(open_session: OpenSession, seeded: Seeded) -> None:
    s = await open_session("t_company_b")
    await s.page.goto("/fills")
    results = s.page.get_by_test_id("results")
    await results.locator("tbody tr").first.wait_for()
    text = await results.inner_text()
    assert "TAG-B-OK" in text and seeded.cylinder_tag not in text
    await s.screenshot("fills")
    await s.page.goto("/fills?tag=NO-SUCH-TAG")
    empty = s.page.get_by_test_id("empty-state")
    await empty.wait_for()
    assert "没有符合条件的充装记录" in await empty.inner_text()
    await s.screenshot("fills-empty")
    assert not s.errors, s.errors


async def test_empty_states_on_every_list(open_session: OpenSession) -> None:
    s = await open_session("t_admin")
    for path in (
        "/cylinders?tag=NO-SUCH-TAG",
        "/alerts?kind=out_of_region&district=410103&state=resolved&from=2001-01-01&to=2001-01-02",
        "/admin/users?q=no-such-user",
        "/admin/dead-letters?topic=no/such/topic",
    ):
        await s.page.goto(path)
        await s.page.get_by_test_id("empty-state").wait_for()
    await s.screenshot("empty-state")
    assert not s.errors, s.errors


async def test_english_switch(open_session: OpenSession) -> None:
    s = await open_session("t_admin")
    await s.page.goto("/cylinders")
    await s.page.get_by_test_id("lang-switch").click()
    await s.page.get_by_role("heading", name="Cylinder search").wait_for()
    assert await s.page.locator("html").get_attribute("lang") == "en"
    await s.page.get_by_role("link", name="Live map").click()
    await s.page.wait_for_url(re.compile(r"/$"))
    await wait_ready(s.page)
    assert "Live alerts" in await s.page.locator(".dash-side").inner_text()
    await s.screenshot("dashboard-en")
    await s.page.goto("/alerts")
    await s.page.get_by_role("heading", name="Alerts centre").wait_for()
    assert not s.errors, s.errors


async def test_exports_lists_reports_with_scoped_links(open_session: OpenSession) -> None:
    s = await open_session("t_regulator")
    await s.page.goto("/exports")
    reports = s.page.get_by_test_id("reports")
    await reports.locator("[data-report]").first.wait_for()
    names = await reports.locator("[data-report]").evaluate_all(
        "els => els.map(e => e.dataset.report)"
    )
    assert "compliance-summary" in names
    await s.page.locator('select[name="district"]').select_option("410105")
    item = reports.locator('[data-report="compliance-summary"]')
    href = await item.locator("a[download]").first.get_attribute("href")
    assert href and "district=410105" in href and "format=csv" in href
    # the report's name opens its page (chart, table, drill-down)
    page_link = await item.get_by_test_id("report-page-link").get_attribute("href")
    assert page_link == "/reports/compliance-summary"
    archive = await s.page.locator('[data-export="xlsx"]').get_attribute("href")
    assert archive == "/api/v1/cylinders/export?format=xlsx&district=410105"
    await s.screenshot("exports")
    assert not s.errors, s.errors


async def test_user_admin_create_and_disable(open_session: OpenSession, pool: asyncpg.Pool) -> None:
    name = f"op_{secrets.token_hex(3)}"
    s = await open_session("t_company_a")
    await s.page.goto("/admin/users")
    await s.page.get_by_test_id("results").locator("tbody tr").first.wait_for()
    usernames = await s.page.locator("tr[data-username]").evaluate_all(
        "els => els.map(e => e.dataset.username)"
    )
    assert "t_company_a" in usernames and "t_company_b" not in usernames
    await s.page.get_by_test_id("new-user").click()
    dialog = s.page.locator("#user-dialog")
    await dialog.get_by_label("用户名").fill(name)
    await dialog.get_by_label("姓名").fill("王五")
    await dialog.get_by_label("初始密码").fill("a-long-password-1")
    await dialog.locator('select[name="site_id"]').select_option(label="站点STA-A1 (STA-A1)")
    await s.screenshot("users-create")
    await dialog.get_by_role("button", name="保存").click()
    row = s.page.locator(f'tr[data-username="{name}"]')
    await row.wait_for()
    await row.locator('[data-action="disable"]').click()
    await s.page.locator(f'tr[data-username="{name}"] [data-action="enable"]').wait_for()
    assert await pool.fetchval("SELECT active FROM users WHERE username = $1", name) is False
    await s.screenshot("users")
    await pool.execute("DELETE FROM users WHERE username = $1", name)
    assert not s.errors, s.errors


async def test_dead_letters_for_admin(open_session: OpenSession, pool: asyncpg.Pool) -> None:
    topic = f"cyl/v1/gun/BR-{secrets.token_hex(3)}/fill"
    await pool.execute(
        "INSERT INTO dead_letters (topic, payload, reason, worker) VALUES ($1, $2, $3, 'w1')",
        topic,
        b'{"msg_id": 1, "net_kg": "lots"}',
        "invalid_field: net_kg",
    )
    try:
        s = await open_session("t_admin")
        await s.page.goto(f"/admin/dead-letters?topic={topic}")
        rows = s.page.get_by_test_id("results").locator("tbody tr")
        await rows.first.wait_for()
        assert "invalid_field: net_kg" in await rows.first.inner_text()
        await s.screenshot("dead-letters")
        assert not s.errors, s.errors
    finally:
        await pool.execute("DELETE FROM dead_letters WHERE topic = $1", topic)


async def test_public_qr_page_on_a_phone(open_session: OpenSession, seeded: Seeded) -> None:
    s = await open_session(None, viewport={"width": 390, "height": 844})
    await s.page.goto(f"/q/BC-{seeded.tag}")
    status = s.page.get_by_test_id("public-status")
    await status.locator(".status-word").wait_for()
    assert await status.get_attribute("data-compliance") == "inspection_due"
    assert "待检" in await status.inner_text()
    body = await s.page.locator("main").inner_text()
    assert "测试燃气A公司" in body and "站点STA-A1" in body  # owner, last fill station
    assert "13800000000" not in body and "客户A" not in body and "张师傅" not in body
    await s.screenshot("public-qr", full_page=True)
    await s.page.get_by_label("问题描述").fill("送气工未称重就离开")
    await s.page.get_by_role("button", name="提交").click()
    await s.page.get_by_test_id("complaint-ok").wait_for()
    missing = await open_session(None, viewport={"width": 390, "height": 844})
    await missing.page.goto("/q/NO-SUCH-CODE")
    await missing.page.get_by_text("未查询到该气瓶").wait_for()
    assert not s.errors, s.errors
