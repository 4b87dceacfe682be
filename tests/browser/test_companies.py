"""Companies, licences and entrustments in a real Chromium, as the roles that do the work, with
a gun asking over MQTT (a private broker and a real ingest worker on the session database):

- a regulator suspends a station's licence on the licences page, and that station's gun is
  refused at its next request with ``station_not_licensed``;
- a company admin entrusts another company on the entrustments page, and the other company's
  gun may then fill its cylinder (``not_owner`` gone); ending it brings the refusal back;
- scope: company B sees none of company A's entrustments with others, nor A's licences;
- the register: the admin registers a company with its order phone; an officer reads only;
- a company admin opens its own company (and no other), sets the notice of the public QR page,
  and a household scanning one of its cylinders reads it there as text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from server.api.public import RATE_PREFIX
from server.kernel.appkeys import REDIS
from server.kernel.clock import city_today
from tests.api.fill_auth import station_with_gun
from tests.browser.conftest import Live, OpenSession
from tests.conftest import World
from tests.gun_mqtt import answering_guns, ask_gun

pytestmark = pytest.mark.browser


@dataclass
class Gun:
    """Asks the platform over MQTT exactly as a filling gun does (docs/ARCHITECTURE.md §5)."""

    url: str

    async def ask(self, gun_id: str, tag: str) -> dict[str, Any]:
        return await ask_gun(self.url, gun_id, tag, operator="张师傅")


@dataclass
class Made:
    """Rows a test made, removed afterwards (the session database is shared)."""

    sites: list[int] = field(default_factory=list)
    cylinders: list[int] = field(default_factory=list)
    companies: list[int] = field(default_factory=list)


@pytest.fixture
async def gun(settings: Any, pool: asyncpg.Pool) -> AsyncIterator[Gun]:
    """A private broker and an ingest worker on the session database, answering guns."""
    async with answering_guns(settings, pool, "brw") as url:
        yield Gun(url)


@pytest.fixture
async def made(pool: asyncpg.Pool) -> AsyncIterator[Made]:
    m = Made()
    yield m
    await pool.execute(
        "DELETE FROM alerts WHERE site_id = ANY($1) OR cylinder_id = ANY($2)", m.sites, m.cylinders
    )
    await pool.execute("DELETE FROM events WHERE site_id = ANY($1)", m.sites)
    await pool.execute("DELETE FROM events WHERE cylinder_id = ANY($1)", m.cylinders)
    await pool.execute(
        "DELETE FROM entrustments WHERE owner_company_id = ANY($1) OR filler_company_id = ANY($1)"
        " OR note LIKE 'BRW-%'",
        m.companies,
    )
    await pool.execute("DELETE FROM fill_denials_daily WHERE station_id = ANY($1)", m.sites)
    await pool.execute("DELETE FROM devices WHERE site_id = ANY($1)", m.sites)
    await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", m.cylinders)
    await pool.execute("DELETE FROM sites WHERE id = ANY($1)", m.sites)
    with contextlib.suppress(asyncpg.ForeignKeyViolationError):
        await pool.execute("DELETE FROM companies WHERE id = ANY($1)", m.companies)


async def _cylinder(pool: asyncpg.Pool, world: World, owner: str, made: Made) -> str:
    tag = f"BRW-{secrets.token_hex(4).upper()}"
    cid = await pool.fetchval(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                  next_inspection_date, scrap_date, status, district_code)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, 'in_service', '410105') RETURNING id""",
        tag,
        world.companies[owner],
        world.today - dt.timedelta(days=700),
        world.today + dt.timedelta(days=600),
        world.today + dt.timedelta(days=2000),
    )
    made.cylinders.append(int(cid))
    return tag


async def test_regulator_suspends_a_station_and_its_gun_is_refused(
    made: Made,  # before the gun: torn down after the worker has stopped and committed
    open_session: OpenSession,
    gun: Gun,
    pool: asyncpg.Pool,
    world: World,
    settings: Any,
) -> None:
    expiry = city_today(settings) + dt.timedelta(days=200)
    site, gun_id = await station_with_gun(
        pool, world.companies["A"], "410105", licence_expiry=expiry
    )
    made.sites.append(site)
    code = await pool.fetchval("SELECT code FROM sites WHERE id = $1", site)
    tag = await _cylinder(pool, world, "A", made)
    before = await gun.ask(gun_id, tag)
    assert before["decision"] == "allow", before

    s = await open_session("t_regulator_jinshui")
    await s.page.goto(f"/admin/licences?q={code}")
    row = s.page.locator(f'tr[data-code="{code}"]')
    await row.wait_for()
    assert await row.get_attribute("data-state") == "valid"
    assert "200 天" in await row.inner_text()  # days left
    await row.locator('[data-action="suspend"]').click()
    dialog = s.page.get_by_test_id("licence-dialog")
    await dialog.wait_for()
    assert "充装请求即被拒绝" in await dialog.inner_text()
    await s.page.get_by_test_id("licence-save").click()  # no reason yet: refused on the page
    error = s.page.locator("#licence-form-error")
    await error.wait_for()
    assert "请填写原因" in await error.inner_text()
    await s.page.get_by_test_id("licence-reason").fill("消防检查不合格，责令停业整改")
    await s.page.get_by_test_id("licence-save").click()
    suspended = s.page.locator(f'tr[data-code="{code}"][data-state="suspended"]')
    await suspended.wait_for()
    assert "消防检查不合格" in await suspended.inner_text()
    assert "已暂停" in await suspended.get_by_test_id("licence-state").inner_text()
    await s.screenshot("licences-suspended")

    after = await gun.ask(gun_id, tag)
    assert after["decision"] == "deny" and after["reasons"] == ["station_not_licensed"], after

    # reinstated on the page: the gun may fill again
    await suspended.locator('[data-action="reinstate"]').click()
    await s.page.get_by_test_id("licence-reason").fill("整改完成，复查合格")
    await s.page.get_by_test_id("licence-save").click()
    await s.page.locator(f'tr[data-code="{code}"][data-state="valid"]').wait_for()
    assert (await gun.ask(gun_id, tag))["decision"] == "allow"
    assert not s.errors, s.errors


async def test_company_entrusts_another_and_its_gun_may_fill_the_cylinder(
    made: Made,  # before the gun: torn down after the worker has stopped and committed
    open_session: OpenSession,
    gun: Gun,
    pool: asyncpg.Pool,
    world: World,
    settings: Any,
) -> None:
    site_b, gun_b = await station_with_gun(pool, world.companies["B"], "410103")
    made.sites.append(site_b)
    tag = await _cylinder(pool, world, "A", made)
    first = await gun.ask(gun_b, tag)
    assert first["decision"] == "deny" and first["reasons"] == ["not_owner"], first

    s = await open_session("t_company_a")
    await s.page.goto("/admin/entrustments")
    await s.page.get_by_test_id("results").locator(".loading").wait_for(state="detached")
    await s.page.get_by_test_id("new-entrustment").click()
    await s.page.get_by_test_id("entrustment-dialog").wait_for()
    assert (
        await s.page.get_by_test_id("entrustment-from").input_value()
        == city_today(settings).isoformat()
    )
    # company A is not offered to itself; B, which runs a filling station, is
    fillers = await s.page.get_by_test_id("entrustment-filler").locator("option").all_inner_texts()
    assert "测试燃气B公司 (TEST-B)" in fillers and not any("TEST-A" in f for f in fillers)
    await s.page.get_by_test_id("entrustment-filler").select_option(str(world.companies["B"]))
    await s.page.get_by_test_id("entrustment-to").fill(
        (world.today + dt.timedelta(days=30)).isoformat()
    )
    await s.page.get_by_test_id("entrustment-note").fill("BRW-委托协议-001")
    await s.page.get_by_test_id("entrustment-save").click()
    row = s.page.locator('tr[data-filler="TEST-B"][data-state="active"]')
    await row.wait_for()
    assert "BRW-委托协议-001" in await row.inner_text()
    await s.screenshot("entrustments-active")

    allowed = await gun.ask(gun_b, tag)
    assert allowed["decision"] == "allow" and allowed["reasons"] == [], allowed

    # ended on the page: B's gun is refused again at once
    await row.locator('[data-action="end"]').click()
    await s.page.get_by_test_id("end-reason").fill("合同到期不再续签")
    await s.page.get_by_test_id("end-save").click()
    await s.page.locator('tr[data-filler="TEST-B"][data-state="active"]').wait_for(state="detached")
    ended = s.page.locator('tr[data-filler="TEST-B"][data-state="ended"]').first
    assert "合同到期不再续签" in await ended.inner_text()
    again = await gun.ask(gun_b, tag)
    assert again["decision"] == "deny" and again["reasons"] == ["not_owner"], again
    assert not s.errors, s.errors


async def test_company_b_sees_none_of_company_as_entrustments_or_licences(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, made: Made
) -> None:
    code_c = f"BRW-C-{secrets.token_hex(3).upper()}"
    c = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, '丙燃气公司', '410105')"
        " RETURNING id",
        code_c,
    )
    made.companies.append(int(c))
    await pool.execute(
        """INSERT INTO entrustments (owner_company_id, filler_company_id, valid_from, note)
           VALUES ($1, $2, $3, 'BRW-scope')""",
        world.companies["A"],
        c,
        world.today,
    )
    a = await open_session("t_company_a")
    await a.page.goto("/admin/entrustments?direction=given")
    await a.page.locator(f'tr[data-filler="{code_c}"][data-state="active"]').wait_for()

    b = await open_session("t_company_b")
    await b.page.goto("/admin/entrustments")
    results = b.page.get_by_test_id("results")
    await results.locator(".loading").wait_for(state="detached")
    assert await b.page.locator(f'tr[data-filler="{code_c}"]').count() == 0
    for r in await results.locator("tbody tr").all():  # only what B gives or receives
        assert "TEST-B" in (
            await r.get_attribute("data-owner"),
            await r.get_attribute("data-filler"),
        )
    await b.page.goto("/admin/licences")
    rows = b.page.get_by_test_id("results").locator("tbody tr")
    await rows.first.wait_for()
    codes = set(await rows.evaluate_all("rs => rs.map(r => r.dataset.code)"))
    assert {"TEST-B", "STA-B1"} <= codes and not codes & {"TEST-A", "STA-A1"}, codes
    assert await b.page.locator('[data-action="suspend"]').count() == 0  # a company only reads
    await b.screenshot("licences-company-b")
    await b.page.goto("/admin/licences?lang=en")
    await b.page.get_by_role("heading", name="Licences").wait_for()
    assert not a.errors and not b.errors, (a.errors, b.errors)


async def test_admin_registers_a_company_and_an_officer_only_reads(
    open_session: OpenSession, pool: asyncpg.Pool, made: Made
) -> None:
    code = f"BRW-CO-{secrets.token_hex(3).upper()}"
    s = await open_session("t_admin")
    await s.page.goto("/admin/companies")
    await s.page.get_by_test_id("results").locator(".loading").wait_for(state="detached")
    await s.page.get_by_test_id("new-company").click()
    await s.page.get_by_test_id("company-save").click()  # empty: the browser asks for the code
    assert await s.page.get_by_test_id("company-dialog").is_visible()
    await s.page.get_by_test_id("company-code").fill(code)
    await s.page.get_by_test_id("company-name").fill("新登记燃气有限公司")
    await s.page.get_by_test_id("company-district").select_option("410105")
    await s.page.get_by_test_id("company-order-phone").fill("0371-12345678")
    await s.page.get_by_test_id("company-licence-no").fill("LIC-BRW-1")
    await s.page.get_by_test_id("company-licence-expiry").fill("2030-06-30")
    await s.page.get_by_test_id("company-save").click()
    await s.page.get_by_test_id("company-dialog").wait_for(state="hidden")
    made.companies.append(
        int(await pool.fetchval("SELECT id FROM companies WHERE code = $1", code))
    )

    await s.page.get_by_test_id("search-q").fill(code)
    await s.page.get_by_test_id("search-submit").click()
    row = s.page.locator(f'tr[data-code="{code}"]')
    await row.wait_for()
    assert "0371-12345678" in await row.inner_text()
    await row.locator('[data-action="edit"]').click()
    await s.page.get_by_test_id("company-contact").fill("王经理")
    await s.page.get_by_test_id("company-save").click()
    await s.page.get_by_test_id("company-dialog").wait_for(state="hidden")
    await s.page.locator(f'tr[data-code="{code}"]:has-text("王经理")').wait_for()
    assert (
        await pool.fetchval("SELECT contact_name FROM companies WHERE code = $1", code) == "王经理"
    )
    assert not s.errors, s.errors

    o = await open_session("t_officer")
    await o.page.goto(f"/admin/companies?q={code}")
    row = o.page.locator(f'tr[data-code="{code}"]')
    await row.wait_for()
    assert await o.page.get_by_test_id("new-company").count() == 0
    assert await row.locator('[data-action="edit"]').count() == 0
    await row.locator('[data-action="view"]').click()
    view = o.page.get_by_test_id("company-view")
    await view.wait_for()
    text = await view.inner_text()
    assert "0371-12345678" in text and "LIC-BRW-1" in text and "2030-06-30" in text
    href = await o.page.get_by_test_id("company-view-licences").get_attribute("href")
    assert href == f"/admin/licences?kind=company&q={code}"
    await o.screenshot("company-view")
    assert not o.errors, o.errors


async def test_a_company_admin_sets_its_qr_notice_and_the_public_page_shows_it(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, made: Made, live_server: Live
) -> None:
    company_a = world.companies["A"]
    before = await pool.fetchrow(
        "SELECT notice_text, notice_url, contact_name FROM companies WHERE id = $1", company_a
    )
    tag = await _cylinder(pool, world, "A", made)
    barcode = f"BRW-QR-{secrets.token_hex(4).upper()}"
    await pool.execute("UPDATE cylinders SET barcode = $1 WHERE tag = $2", barcode, tag)
    notice = f"<b>夏季</b>免费入户安检 {barcode[-8:]}"
    try:
        s = await open_session("t_company_a")
        await s.page.goto("/admin/companies")
        rows = s.page.get_by_test_id("results").locator("tbody tr")
        await rows.first.wait_for()
        # its own company only (the API's scope), and no register of others to edit
        assert await rows.evaluate_all("rs => rs.map(r => r.dataset.code)") == ["TEST-A"]
        assert await s.page.get_by_test_id("new-company").count() == 0
        await s.page.get_by_test_id("edit-own-company").click()
        dialog = s.page.get_by_test_id("company-dialog")
        await dialog.wait_for()
        # the contacts and the notice; the code, name and licence are the bureau's
        for testid in ("company-code", "company-name", "company-licence-no"):
            assert await dialog.get_by_test_id(testid).count() == 0, testid
        url = dialog.get_by_test_id("company-notice-url")
        await url.fill("javascript:alert(1)")
        await dialog.get_by_test_id("company-save").click()  # not a web address: refused here
        assert await url.evaluate("e => e.validity.patternMismatch")
        assert await dialog.is_visible()
        await dialog.get_by_test_id("company-contact").fill("李站长")
        await dialog.get_by_test_id("company-notice-text").fill(notice)
        await dialog.get_by_test_id("company-notice-url").fill("https://gas.example.com/brw")
        await s.screenshot("company-own-notice")
        await dialog.get_by_test_id("company-save").click()
        await dialog.wait_for(state="hidden")
        await s.page.locator('tr[data-code="TEST-A"]:has-text("李站长")').wait_for()
        stored = await pool.fetchrow(
            "SELECT notice_text, notice_url FROM companies WHERE id = $1", company_a
        )
        assert (stored["notice_text"], stored["notice_url"]) == (
            notice,
            "https://gas.example.com/brw",
        )
        # the details show it as it was typed
        await s.page.locator('tr[data-code="TEST-A"] [data-action="view"]').click()
        view = s.page.get_by_test_id("company-view")
        await view.wait_for()
        assert notice in await view.locator('[data-field="notice_text"]').inner_text()
        assert not s.errors, s.errors

        # a household scans one of the company's cylinders
        redis = live_server.app[REDIS]
        keys = [k async for k in redis.scan_iter(match=RATE_PREFIX + "*")]
        if keys:
            await redis.delete(*keys)
        q = await open_session(None, viewport={"width": 390, "height": 844})
        await q.page.goto(f"/q/{barcode}")
        shown = q.page.get_by_test_id("company-notice")
        await shown.wait_for()
        assert notice in await shown.inner_text()  # the markup as text, never as markup
        assert await shown.locator("b").count() == 0
        link = shown.get_by_role("link")
        assert await link.get_attribute("href") == "https://gas.example.com/brw"
        await q.screenshot("public-qr-company-notice")
        assert not q.errors, q.errors
    finally:
        await pool.execute(
            "UPDATE companies SET notice_text = $2, notice_url = $3, contact_name = $4"
            " WHERE id = $1",
            company_a,
            *before.values(),
        )
