"""Periodic inspection and scrapping (/inspections) in a real Chromium, as the roles that use it,
with a filling gun asking over MQTT (a private broker and a real ingest worker on the session
database):

- an inspection agency's inspector scraps a batch by scanning — codes typed into the scan box
  and Enter, as a handheld scanner does, by tag, QR code and steel stamp — each becomes
  scrapped with its tag voided, the gun is then refused, and the day's work lists them;
- a pass shows the new next-inspection date before it is confirmed with one key (F2), sets it,
  and the cylinder's page shows the record in its inspection history;
- a regulator sees the day's work of its districts but has nothing to act with (and the API
  refuses it); a company admin gets the 403 page.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from server.domain.dates import add_years
from server.kernel.clock import city_today
from tests.api.fill_auth import station_with_gun
from tests.browser.conftest import OpenSession, Session
from tests.conftest import World
from tests.gun_mqtt import answering_guns, ask_gun

pytestmark = pytest.mark.browser


@dataclass
class Made:
    """Rows a test made, removed afterwards (the session database is shared)."""

    cylinders: list[int] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)


@pytest.fixture
async def made(pool: asyncpg.Pool) -> AsyncIterator[Made]:
    m = Made()
    yield m
    await pool.execute(
        "DELETE FROM alerts WHERE cylinder_id = ANY($1) OR site_id = ANY($2)", m.cylinders, m.sites
    )
    await pool.execute(
        "DELETE FROM events WHERE cylinder_id = ANY($1) OR site_id = ANY($2)", m.cylinders, m.sites
    )
    await pool.execute("DELETE FROM fill_denials_daily WHERE station_id = ANY($1)", m.sites)
    await pool.execute("DELETE FROM devices WHERE site_id = ANY($1)", m.sites)
    await pool.execute("DELETE FROM inspections WHERE cylinder_id = ANY($1)", m.cylinders)
    await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", m.cylinders)
    await pool.execute("DELETE FROM sites WHERE id = ANY($1)", m.sites)


async def _cylinder(pool: asyncpg.Pool, world: World, made: Made, **over: Any) -> dict[str, Any]:
    """A cylinder of company A (金水区) with unique tag, barcode and stamp."""
    code = secrets.token_hex(4).upper()
    values: dict[str, Any] = {
        "tag": f"INSP-{code}",
        "barcode": f"QR-{code}",
        "stamp": f"GY-{code}",
        "owner_company_id": world.companies["A"],
        "spec": "YSP35.5",
        "manufacture_date": world.today - dt.timedelta(days=5 * 365),
        "next_inspection_date": world.today + dt.timedelta(days=200),
        "scrap_date": world.today + dt.timedelta(days=3 * 365),
        "status": "in_service",
        "district_code": "410105",
    }
    values.update(over)
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    cid = await pool.fetchval(
        f"INSERT INTO cylinders ({cols}) VALUES ({marks}) RETURNING id", *values.values()
    )
    made.cylinders.append(int(cid))
    return {"id": int(cid), **values}


@pytest.fixture
async def broker_url(settings: Any, pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A private broker and an ingest worker on the session database, answering guns."""
    async with answering_guns(settings, pool, "insp") as url:
        yield url


async def _scan(s: Session, code: str) -> None:
    """What a handheld scanner does: the code typed where the focus is, then Enter."""
    await s.page.keyboard.type(code)
    await s.page.keyboard.press("Enter")


async def _focused(s: Session) -> str:
    return str(await s.page.evaluate("document.activeElement && document.activeElement.id"))


async def test_an_inspector_scraps_a_batch_by_scanning(
    open_session: OpenSession,
    pool: asyncpg.Pool,
    world: World,
    made: Made,
    settings: Any,
    broker_url: str,
) -> None:
    batch = [await _cylinder(pool, world, made) for _ in range(3)]
    site, gun_id = await station_with_gun(pool, world.companies["A"])
    made.sites.append(site)
    before = await ask_gun(broker_url, gun_id, batch[1]["tag"])
    assert before["decision"] == "allow", before  # a cylinder in service, its owner's gun

    s = await open_session("t_inspector")
    await s.page.goto("/inspections")
    scan = s.page.get_by_test_id("scan-input")
    await scan.wait_for()
    assert await _focused(s) == "scan-input"  # the scanner can type at once
    assert "INS-1" in await s.page.get_by_test_id("own-agency").inner_text()
    await s.page.get_by_test_id("scrap-reason").select_option("damage")
    await s.page.get_by_test_id("mode-scrap").check()
    assert await _focused(s) == "scan-input"  # choosing the mode gives the focus back
    # one by tag, one by QR code, one by steel stamp, and a code no cylinder carries
    for code in (batch[0]["tag"], batch[1]["barcode"], batch[2]["stamp"], "NO-SUCH-CODE-42"):
        await _scan(s, code)
    entries = s.page.get_by_test_id("session-entry")
    await s.page.wait_for_function(
        "document.querySelectorAll('[data-testid=session-entry]').length === 4"
    )
    got = await entries.evaluate_all("es => es.map(e => [e.dataset.result, e.dataset.code])")
    assert got == [  # newest on top
        ["error", "NO-SUCH-CODE-42"],
        ["scrap", batch[2]["tag"]],
        ["scrap", batch[1]["tag"]],
        ["scrap", batch[0]["tag"]],
    ]
    assert "NO-SUCH-CODE-42" in await entries.first.inner_text()
    assert "3" in await s.page.get_by_test_id("session-count").inner_text()
    assert await _focused(s) == "scan-input"
    for c in batch:
        row = await pool.fetchrow(
            """SELECT c.status, c.tag_voided, i.result, i.scrap_reason, i.agency_site_id
                 FROM cylinders c JOIN inspections i ON i.cylinder_id = c.id WHERE c.id = $1""",
            c["id"],
        )
        assert tuple(row.values()) == ("scrapped", True, "scrap", "damage", world.sites["INS-1"])
    # the gun is refused now: a voided tag names no cylinder any more
    after = await ask_gun(broker_url, gun_id, batch[1]["tag"])
    assert after["decision"] == "deny" and after["reasons"] == ["unknown_tag"], after
    # scanning one again in the same mode writes nothing and says why
    await _scan(s, batch[0]["tag"])
    await s.page.wait_for_function(
        "document.querySelectorAll('[data-testid=session-entry]').length === 5"
    )
    assert await entries.first.get_attribute("data-result") == "error"
    assert "已报废" in await entries.first.inner_text()
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM inspections WHERE cylinder_id = $1", batch[0]["id"]
        )
        == 1
    )
    # the day's work lists them, with the counts
    day = s.page.get_by_test_id("day-results")
    for c in batch:
        await day.locator(f'tr[data-tag="{c["tag"]}"][data-result="scrap"]').wait_for()
    scrapped = s.page.get_by_test_id("day-counts").locator('[data-result="scrap"] .kpi-value')
    assert int(await scrapped.inner_text()) >= 3
    export = await s.page.get_by_test_id("export-csv").get_attribute("href")
    assert export and export.startswith("/api/v1/inspections?format=csv")
    assert f"date={city_today(settings).isoformat()}" in export
    await s.screenshot("inspections-batch-scrap", full_page=True)
    assert not s.errors, s.errors


async def test_a_pass_shows_the_new_date_then_sets_it(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, made: Made, settings: Any
) -> None:
    c = await _cylinder(pool, world, made, status="in_inspection")
    expected = add_years(city_today(settings), settings.dates.inspection_interval_years)
    s = await open_session("t_inspector")
    await s.page.goto("/inspections")
    await s.page.get_by_test_id("scan-input").wait_for()
    await s.page.get_by_test_id("report-no").fill("JY-2026-001")
    await s.page.get_by_test_id("scan-input").focus()
    await _scan(s, c["tag"])
    preview = s.page.get_by_test_id("preview-next")
    await preview.wait_for()
    assert expected.isoformat() in await preview.inner_text()
    card = s.page.get_by_test_id("cyl-card")
    assert c["tag"] in await card.inner_text()
    # nothing is written by looking
    assert (
        await pool.fetchval("SELECT count(*) FROM inspections WHERE cylinder_id = $1", c["id"]) == 0
    )
    await s.screenshot("inspections-pass-preview")
    await s.page.keyboard.press("F2")
    await s.page.get_by_test_id("card-done").wait_for()
    assert expected.isoformat() in await s.page.get_by_test_id("card-done").inner_text()
    entry = s.page.get_by_test_id("session-entry").first
    assert await entry.get_attribute("data-result") == "pass"
    assert expected.isoformat() in await entry.inner_text()
    row = await pool.fetchrow(
        "SELECT status, next_inspection_date, inspection_count FROM cylinders WHERE id = $1",
        c["id"],
    )
    assert tuple(row.values()) == ("in_service", expected, 1)
    # the buttons are spent: a second F2 records nothing (a new scan is a new record)
    await s.page.keyboard.press("F2")
    await s.page.get_by_test_id(f"card-{c['tag']}").wait_for()
    assert (
        await pool.fetchval("SELECT count(*) FROM inspections WHERE cylinder_id = $1", c["id"]) == 1
    )
    await (
        s.page.get_by_test_id("day-results")
        .locator(f'tr[data-tag="{c["tag"]}"][data-result="pass"]')
        .wait_for()
    )
    # the cylinder's page shows the record in its inspection history
    await s.page.goto(f"/cylinders/{c['id']}")
    history = s.page.get_by_test_id("inspection-history")
    await history.locator("tbody tr").first.wait_for()
    text = await history.inner_text()
    assert "合格" in text and expected.isoformat() in text and "JY-2026-001" in text
    assert "t_inspector" in text
    await s.screenshot("cylinder-inspection-history", full_page=True)
    assert not s.errors, s.errors


async def test_a_regulator_sees_but_cannot_act(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, made: Made, settings: Any
) -> None:
    c = await _cylinder(pool, world, made)
    await pool.execute(
        """INSERT INTO inspections (cylinder_id, agency_site_id, inspected_on, result,
               next_inspection_date, scrap_date, report_no, created_by)
           VALUES ($1, $2, $3, 'pass', $4, $5, 'JY-REG-1', $6)""",
        c["id"],
        world.sites["INS-1"],
        city_today(settings),
        add_years(city_today(settings), 4),
        c["scrap_date"],
        world.users["t_inspector"],
    )
    s = await open_session("t_regulator_jinshui", lang="en")
    await s.page.goto("/inspections?lang=en")
    row = s.page.get_by_test_id("day-results").locator(f'tr[data-tag="{c["tag"]}"]')
    await row.wait_for()
    assert "Pass" in await row.inner_text() or "pass" in await row.inner_text()
    assert "Periodic inspection and scrapping" in await s.page.locator("h1").inner_text()
    assert await s.page.get_by_test_id("scan-input").count() == 0
    assert await s.page.locator("[data-testid^=act-]").count() == 0
    assert await s.page.get_by_test_id("day-agency").count() == 1  # may look at any agency
    # and the API refuses the acts the page does not offer
    resp = await s.page.request.post(
        f"/api/v1/cylinders/{c['id']}/scrap",
        data={"reason": "damage"},
        headers={"X-CSRF-Token": await _csrf(s)},
    )
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    assert await pool.fetchval("SELECT status FROM cylinders WHERE id = $1", c["id"]) == (
        "in_service"
    )
    await s.screenshot("inspections-regulator")
    assert not s.errors, s.errors


async def _csrf(s: Session) -> str:
    cookies = await s.context.cookies()
    return next((c["value"] for c in cookies if "csrf" in c["name"]), "")


async def test_a_company_admin_gets_the_forbidden_page(open_session: OpenSession) -> None:
    s = await open_session("t_company_a")
    resp = await s.page.goto("/inspections")
    assert resp is not None and resp.status == 403
    assert "无权访问" in await s.page.locator("main").inner_text()
    assert await s.page.get_by_test_id("scan-input").count() == 0
    # the navigation does not offer the page either
    assert await s.page.locator('nav a[href="/inspections"]').count() == 0
    assert re.search(r"/inspections$", s.page.url)
