"""Registration (建档) in a real Chromium, as the roles that register: an inspection agency and a
company admin. While typing, the derived dates appear (asked of the server) and the tag is checked;
a taken, a voided tag and an impossible date are refused with a readable message next to the
field and nothing written; a good cylinder is registered, linked, found in /cylinders, and the
form is ready for the next one of the series."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.domain.dates import add_years
from tests.browser.conftest import OpenSession, Session, wait_ready
from tests.conftest import World

pytestmark = pytest.mark.browser

REFUSALS = re.compile(r"status of (400|409)")
"""The browser logs each refused request; those are the point of these tests, nothing else may."""


@pytest.fixture
async def prefix(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A tag prefix of this test; its cylinders are removed afterwards (the session database
    is shared with suites that count rows)."""
    p = f"BRR-{secrets.token_hex(3).upper()}-"
    yield p
    ids = await pool.fetch("SELECT id FROM cylinders WHERE tag LIKE $1", p + "%")
    ids = [r["id"] for r in ids]
    await pool.execute("DELETE FROM events WHERE cylinder_id = ANY($1)", ids)
    await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", ids)


async def _count(pool: asyncpg.Pool, tag: str) -> tuple[int, int]:
    """(cylinders, register events) with *tag*."""
    return (
        await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", tag),
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE tag = $1 AND kind = 'register'", tag
        ),
    )


async def _open(s: Session, lang: str = "") -> Any:
    page = s.page
    await page.goto("/registration" + (f"?lang={lang}" if lang else ""))
    await wait_ready(page)
    return page


async def _error(page: Any, field: str) -> str:
    node = page.get_by_test_id(f"error-{field}")
    await node.wait_for(state="visible")
    return str(await node.inner_text())


async def test_inspector_registers_with_derived_dates_and_refusals(
    open_session: OpenSession, world: World, pool: asyncpg.Pool, settings: Any, prefix: str
) -> None:
    s = await open_session("t_inspector")
    page = await _open(s)
    assert await page.get_by_role("heading", name="气瓶建档").count() == 1
    await page.get_by_test_id("reg-owner_company_id").select_option(str(world.companies["A"]))
    await page.get_by_test_id("reg-spec").select_option("YSP35.5")

    # the derived dates appear while typing the manufacture date
    made = world.today - dt.timedelta(days=800)
    await page.get_by_test_id("reg-manufacture_date").fill(made.isoformat())
    rules = settings.dates
    next_insp = add_years(made, rules.inspection_interval_years).isoformat()
    scrap = add_years(made, rules.design_life_years).isoformat()
    await page.get_by_test_id("derived-next").filter(has_text=next_insp).wait_for()
    assert scrap in await page.get_by_test_id("derived-scrap").inner_text()
    assert "合格" in await page.get_by_test_id("derived-compliance").inner_text()
    assert "35.5" in await page.get_by_test_id("derived-model").inner_text()
    # a last inspection moves the next one (the server's rule, asked again)
    last = world.today - dt.timedelta(days=100)
    await page.get_by_test_id("reg-last_inspection_date").fill(last.isoformat())
    moved = add_years(last, rules.inspection_interval_years).isoformat()
    await page.get_by_test_id("derived-next").filter(has_text=moved).wait_for()
    await page.get_by_test_id("reg-last_inspection_date").fill("")
    await page.get_by_test_id("derived-next").filter(has_text=next_insp).wait_for()

    # a taken tag: said while typing, with a link to the cylinder the agency may open
    await page.get_by_test_id("reg-tag").fill("TAG-A-OK")
    assert "已登记在其他气瓶上" in await _error(page, "tag")
    href = await page.get_by_test_id("tag-cylinder-link").get_attribute("href")
    assert href == f"/cylinders/{world.cylinders['TAG-A-OK']}"

    # a voided tag (its cylinder was scrapped): said while typing, and refused on submit
    voided = prefix + "VOID"
    await pool.execute(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
               next_inspection_date, scrap_date, status, tag_voided, district_code)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, 'scrapped', true, '410105')""",
        voided,
        world.companies["A"],
        world.today - dt.timedelta(days=4000),
        world.today - dt.timedelta(days=100),
        world.today - dt.timedelta(days=50),
    )
    await page.get_by_test_id("reg-tag").fill(voided)
    await page.get_by_test_id("error-tag").filter(has_text="注销").wait_for()
    await page.get_by_test_id("reg-submit").click()
    await page.get_by_test_id("reg-tag").and_(page.locator("[aria-invalid=true]")).wait_for()
    assert "永不再用" in await _error(page, "tag")
    assert await _count(pool, voided) == (1, 0)  # only the scrapped one, no new registration

    # an impossible date: said while typing, refused on submit, nothing written
    fresh_tag = prefix + "GOOD"
    await page.get_by_test_id("reg-tag").fill(fresh_tag)
    await page.get_by_test_id("tag-state").filter(has_text="可以使用").wait_for()
    await page.get_by_test_id("reg-manufacture_date").fill("2999-01-01")
    assert "不能晚于今天" in await _error(page, "manufacture_date")
    await page.get_by_test_id("reg-derived-invalid").wait_for()
    await page.get_by_test_id("reg-submit").click()
    await page.locator("#toasts .toast.error").filter(has_text="未建档").last.wait_for()
    assert "不能晚于今天" in await _error(page, "manufacture_date")
    assert await page.get_by_test_id("reg-created").is_hidden()
    assert await _count(pool, fresh_tag) == (0, 0)
    await s.screenshot("registration-refused", full_page=True)

    # a good one: created, linked, and the form ready for the next of the series
    await page.get_by_test_id("reg-manufacture_date").fill(made.isoformat())
    await page.get_by_test_id("derived-next").filter(has_text=next_insp).wait_for()
    await page.get_by_test_id("reg-barcode").fill(prefix + "BC")
    await page.get_by_test_id("reg-stamp").fill(prefix + "ST")
    await page.get_by_test_id("reg-manufacturer").fill("测试压力容器厂")
    await page.get_by_test_id("reg-submit").click()
    link = page.get_by_test_id("created-link")
    await link.wait_for()
    assert fresh_tag in await page.get_by_test_id("reg-created").inner_text()
    assert await _count(pool, fresh_tag) == (1, 1)
    cid = await pool.fetchval("SELECT id FROM cylinders WHERE tag = $1", fresh_tag)
    assert await link.get_attribute("href") == f"/cylinders/{cid}"
    assert (
        await page.get_by_test_id("reg-recent").locator(f"li[data-tag='{fresh_tag}']").count() == 1
    )
    assert await page.get_by_test_id("reg-tag").input_value() == ""
    assert await page.get_by_test_id("reg-barcode").input_value() == ""
    assert await page.get_by_test_id("reg-owner_company_id").input_value() == str(
        world.companies["A"]
    )
    assert await page.get_by_test_id("reg-spec").input_value() == "YSP35.5"
    assert await page.get_by_test_id("reg-manufacture_date").input_value() == made.isoformat()
    await s.screenshot("registration-created", full_page=True)
    row = await pool.fetchrow(
        """SELECT next_inspection_date, scrap_date, registered_by_site_id, medium, stamp,
                  manufacturer FROM cylinders WHERE id = $1""",
        cid,
    )
    assert (row["next_inspection_date"].isoformat(), row["scrap_date"].isoformat()) == (
        next_insp,
        scrap,
    )
    assert row["registered_by_site_id"] == world.sites["INS-1"]
    assert (row["medium"], row["stamp"], row["manufacturer"]) == (
        "LPG",
        prefix + "ST",
        "测试压力容器厂",
    )

    # it appears in /cylinders
    await page.goto("/cylinders")
    await page.get_by_test_id("search-tag").fill(fresh_tag)
    await page.get_by_test_id("search-submit").click()
    await page.get_by_role("link", name=fresh_tag).click()
    await page.wait_for_url(re.compile(rf"/cylinders/{cid}$"))
    await page.get_by_test_id("archive").wait_for()
    assert [e for e in s.errors if not REFUSALS.search(e)] == [], s.errors


async def test_company_admin_registers_its_own_in_english(
    open_session: OpenSession, world: World, pool: asyncpg.Pool, prefix: str
) -> None:
    s = await open_session("t_company_a")
    page = await _open(s, "en")
    assert await page.get_by_role("heading", name="Register a cylinder").count() == 1
    owner = page.get_by_test_id("reg-owner_company_id")
    options = await owner.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert options == [str(world.companies["A"])]  # its own company, and no other
    sites = (
        await page.get_by_test_id("reg-location_site_id")
        .locator("option")
        .evaluate_all("os => os.map(o => o.value).filter(Boolean)")
    )
    assert str(world.sites["STA-A1"]) in sites and str(world.sites["STA-B1"]) not in sites
    # the inspection findings are not asked: they are derived
    assert await page.get_by_test_id("reg-inspection").count() == 0
    await page.get_by_test_id("reg-dates-note").wait_for()

    # another company's tag is only "taken" (no link to a cylinder it may not see)
    await page.get_by_test_id("reg-tag").fill("TAG-B-OK")
    assert "already registered" in await _error(page, "tag")
    assert await page.get_by_test_id("tag-cylinder-link").count() == 0

    tag = prefix + "COA"
    made = world.today - dt.timedelta(days=30)
    await page.get_by_test_id("reg-tag").fill(tag)
    await page.get_by_test_id("tag-state").filter(has_text="free").wait_for()
    await page.get_by_test_id("reg-spec").select_option("YSP12")
    await page.get_by_test_id("reg-manufacture_date").fill(made.isoformat())
    await page.get_by_test_id("derived-next").filter(has_text=str(made.year + 4)).wait_for()
    await page.get_by_test_id("reg-location_site_id").select_option(str(world.sites["STA-A1"]))
    await page.get_by_test_id("reg-submit").click()
    await page.get_by_test_id("created-link").wait_for()
    assert "Registered" in await page.get_by_test_id("reg-created").inner_text()
    row = await pool.fetchrow(
        "SELECT owner_company_id, spec, location_site_id FROM cylinders WHERE tag = $1", tag
    )
    assert dict(row) == {
        "owner_company_id": world.companies["A"],
        "spec": "YSP12",
        "location_site_id": world.sites["STA-A1"],
    }
    await s.screenshot("registration-company-en", full_page=True)
    assert [e for e in s.errors if not REFUSALS.search(e)] == [], s.errors


async def test_roles_that_do_not_register_are_refused_the_page(open_session: OpenSession) -> None:
    s = await open_session("t_regulator")
    resp = await s.page.goto("/registration")
    assert resp is not None and resp.status == 403
