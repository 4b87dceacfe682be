"""The officer PWA's lookup and the registration from the phone (/m), in a real Chromium at a
phone's size (issue 12 items 1 and 6).

Why these: an officer at a store scans a cylinder and must see what the platform knows — the
archive, the last fills, the trajectory, where it is on a map and the stock of the site it is
at (the last-fill station and the current site used never to show: the page read two fields
the detail endpoint does not have). An inspection agency registers cylinders where they stand,
with the phone: scan, fill the form, see the derived dates; a tag already registered is
refused with a message a person can read, under the tag.

Headless Chromium has no camera and no BarcodeDetector: both are stood in for by an init
script (a canvas stream for the camera, a detector that reads the QR code's public URL), so
the page's own scanning path runs; everything after the read is real.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.domain.dates import derive_next_inspection, derive_scrap_date
from tests.browser.conftest import Live, OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

# A camera and a QR reader where headless Chromium has neither: the video plays a canvas
# stream, and the detector "reads" the code given here once the video plays.
FAKE_SCANNER = """
(() => {
  const raw = __RAW__;
  navigator.mediaDevices.getUserMedia = () => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 64;
    c.getContext('2d').fillRect(0, 0, 64, 64);
    return Promise.resolve(c.captureStream(5));
  };
  window.BarcodeDetector = class {
    detect() { return Promise.resolve([{ rawValue: raw, format: 'qr_code' }]); }
  };
})();
"""


def scanner_reading(raw: str) -> str:
    return FAKE_SCANNER.replace("__RAW__", json.dumps(raw))


@pytest.fixture
async def at_store(pool: asyncpg.Pool, world: World) -> AsyncIterator[dict[str, Any]]:
    """A full cylinder of company A standing at station STA-A1 (金水区, the officer's
    district), with fills there and a trajectory; removed afterwards."""
    key = secrets.token_hex(3).upper()
    tag = f"MLK-{key}"
    now = dt.datetime.now(dt.UTC)
    station = world.sites["STA-A1"]
    cid = await pool.fetchval(
        """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l,
               manufacture_date, next_inspection_date, scrap_date, status, district_code,
               location_kind, location_site_id, fill_state, registered_by_site_id,
               last_fill_at, last_fill_site_id)
           VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, $5, $6, $7, 'in_service', '410105',
                   'site', $8, 'full', $9, $10, $8)
           RETURNING id""",
        tag,
        f"ST-{key}",
        f"BC-{key}",
        world.companies["A"],
        world.today - dt.timedelta(days=900),
        world.today + dt.timedelta(days=400),
        world.today + dt.timedelta(days=2000),
        station,
        world.sites["INS-1"],
        now - dt.timedelta(hours=1),
    )
    steps = [
        ("register", "commissioning", "active", "INS-1", 34.78, 113.65),
        ("fill", "urn:cylwatch:bizstep:filling", "active", "STA-A1", 34.80, 113.65),
        ("receive", "arriving", "active", "STA-A1", None, None),
    ]
    for i, (kind, step, disp, site, lat, lon) in enumerate(steps):
        await pool.execute(
            """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
                   site_id, company_id, operator, lat, lon, district_code, details)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '王五', $10, $11, '410105', '{}')""",
            now - dt.timedelta(hours=6 - 2 * i),
            f"mlk-{key}-{i}",
            cid,
            tag,
            kind,
            step,
            disp,
            world.sites[site],
            world.companies["A"],
            lat,
            lon,
        )
    fills = []
    for i, net in enumerate((14.6, 14.8)):
        msg = f"mlkf-{key}-{i}"
        fills.append(msg)
        await pool.execute(
            """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code,
                   cylinder_id, tag, spec, net_kg, result, assessment, operator)
               VALUES ($1, $2, 'GUN-STA-A1', $3, $4, '410105', $5, $6, 'YSP35.5', $7,
                       'completed', 'ok', '李四')""",
            now - dt.timedelta(hours=1 + 30 * i),
            msg,
            station,
            world.companies["A"],
            cid,
            tag,
            net,
        )
    yield {"id": cid, "tag": tag, "barcode": f"BC-{key}", "station": station}
    await pool.execute("DELETE FROM fills WHERE msg_id = ANY($1)", fills)
    await pool.execute("DELETE FROM events WHERE cylinder_id = $1", cid)
    await pool.execute("DELETE FROM cylinders WHERE id = $1", cid)


async def open_tab(s: Any, tab: str) -> None:
    await s.page.goto("/m")
    await s.page.wait_for_selector("#view-app", state="visible")
    await s.page.click(f".m-tabs button[data-tab={tab}]")


async def test_officer_scans_a_cylinder_and_sees_what_the_platform_knows(
    open_session: OpenSession,
    live_server: Live,
    at_store: dict[str, Any],
    pool: asyncpg.Pool,
    settings: Any,
) -> None:
    s = await open_session("t_officer", viewport=PHONE)
    # the QR code on the cylinder holds the public page's URL
    await s.context.add_init_script(scanner_reading(f"{live_server.url}/q/{at_store['barcode']}"))
    await open_tab(s, "lookup")
    await s.page.click("#scan-btn")
    await s.page.wait_for_selector("#lookup-result[data-ready='1']", timeout=10_000)
    assert await s.page.input_value("#lookup-code") == at_store["barcode"]

    # the archive, with the last-fill station and the current site
    card = await s.page.text_content("#cylinder-card")
    assert at_store["tag"] in card and "测试燃气A公司" in card
    assert await s.page.text_content("#cylinder-compliance") == "合格"
    assert "站点STA-A1" in await s.page.text_content("#cylinder-last-fill")
    assert await s.page.text_content("#cylinder-location") == "在站点 · 站点STA-A1"

    # its fills, newest first, and its trajectory, newest first
    fills = s.page.locator("#fills-list li")
    assert await fills.count() == 2
    assert "14.6 kg" in await fills.nth(0).inner_text()
    steps = s.page.locator("#trajectory-list li")
    assert await steps.count() == 3
    assert await steps.nth(0).get_attribute("data-kind") == "receive"
    assert "入库" in await steps.nth(0).inner_text()

    # the small map: one marker, at the station (the cylinder reports no position itself)
    await s.page.wait_for_selector("#cylinder-map path.m-pos-marker")
    assert await s.page.evaluate("window.__m.lookup.marker") == [34.80, 113.65]
    assert await s.page.evaluate("window.__m.lookup.markerSource") == "site"

    # the station's live stock: the cylinders held there now, against its storage limit
    full, empty = await pool.fetchrow(
        """SELECT count(*) FILTER (WHERE fill_state = 'full'),
                  count(*) FILTER (WHERE fill_state = 'empty')
             FROM cylinders WHERE location_site_id = $1 AND location_kind = 'site'""",
        at_store["station"],
    )
    assert full >= 1
    permitted = settings.alerts.default_storage_filling_station
    assert await s.page.text_content("#stock-full") == f"{full} / {permitted:,}"
    assert await s.page.text_content("#stock-empty") == str(empty)
    await s.screenshot("m-lookup", full_page=True)

    # typing works as well, and the full archive is one tap away
    await s.page.fill("#lookup-code", at_store["tag"])
    await s.page.click("#lookup-form button[type=submit]")
    await s.page.wait_for_selector("#lookup-result[data-ready='1']")
    href = await s.page.get_attribute("#cylinder-card .m-more a", "href")
    assert href == f"/cylinders/{at_store['id']}"
    assert s.requests.foreign() == []
    assert s.errors == [], s.errors


async def test_inspector_sees_no_fills_and_no_coordinates(
    open_session: OpenSession, live_server: Live, at_store: dict[str, Any]
) -> None:
    """An inspection agency reads no fills and no positions (docs/SECURITY.md "Privacy"):
    the fills section is left out and the trajectory's coordinates are not drawn."""
    s = await open_session("t_inspector", viewport=PHONE)
    await open_tab(s, "lookup")
    await s.page.fill("#lookup-code", at_store["tag"])
    await s.page.click("#lookup-form button[type=submit]")
    await s.page.wait_for_selector("#lookup-result[data-ready='1']")
    assert await s.page.locator("#cylinder-fills").count() == 0
    assert await s.page.locator("#trajectory-list li").count() == 3
    # the marker is the station's (public business data), never a trajectory coordinate
    assert await s.page.evaluate("window.__m.lookup.markerSource") in ("site", None)
    assert s.errors == [], s.errors


async def test_inspector_registers_a_cylinder_from_the_phone(
    open_session: OpenSession,
    live_server: Live,
    pool: asyncpg.Pool,
    world: World,
    settings: Any,
) -> None:
    key = secrets.token_hex(3).upper()
    tag, barcode = f"MREG-{key}", f"MQR-{key}"
    made = world.today - dt.timedelta(days=30)
    s = await open_session("t_inspector", viewport=PHONE)
    await s.context.add_init_script(scanner_reading(f"https://city.example/q/{barcode}"))
    try:
        await open_tab(s, "register")
        form = s.page.get_by_test_id("register-form")
        await form.wait_for()
        # the QR code gives the barcode; the RFID tag is typed
        await s.page.click("#register-scan-btn")
        await s.page.wait_for_function(
            f"document.getElementById('reg-barcode').value === {json.dumps(barcode)}"
        )
        # a tag that was on a scrapped cylinder is voided for ever: said as it is typed
        await s.page.fill("#reg-tag", "TAG-B-SCRAPPED")
        await s.page.wait_for_function(
            "document.querySelector('[data-error-for=tag]').textContent.includes('作废')"
        )
        await s.page.fill("#reg-tag", tag)
        await s.page.wait_for_function(
            "document.querySelector('[data-error-for=tag]').textContent === ''"
        )
        await s.page.wait_for_function("window.__m.register.owners > 0")
        await s.page.select_option("#reg-owner", str(world.companies["A"]))
        await s.page.select_option("#reg-spec", "YSP35.5")
        await s.page.fill("#reg-made", made.isoformat())
        await s.page.fill("#reg-maker", "测试压力容器厂")
        # the dates the rules derive, shown before sending (the server's preview)
        next_insp = derive_next_inspection(made, None, settings.dates)
        scrap = derive_scrap_date(made, settings.dates)
        await s.page.wait_for_selector("#derived-next")
        assert await s.page.text_content("#derived-next") == next_insp.isoformat()
        assert await s.page.text_content("#derived-scrap") == scrap.isoformat()
        await s.page.click("#register-submit")
        await s.page.wait_for_selector("#register-done")

        row = await pool.fetchrow(
            """SELECT id, owner_company_id, barcode, next_inspection_date, scrap_date,
                      registered_by_site_id FROM cylinders WHERE tag = $1""",
            tag,
        )
        assert row is not None
        assert row["owner_company_id"] == world.companies["A"] and row["barcode"] == barcode
        assert row["registered_by_site_id"] == world.sites["INS-1"]
        # the dates stored are the ones the phone showed
        assert row["next_inspection_date"] == next_insp and row["scrap_date"] == scrap
        assert await s.page.text_content("#done-next") == next_insp.isoformat()
        assert await s.page.text_content("#done-scrap") == scrap.isoformat()
        assert tag in await s.page.text_content("#register-done")
        await s.screenshot("m-register", full_page=True)

        # the same tag again: refused, said under the tag field, nothing written
        await s.page.fill("#reg-tag", tag)
        await s.page.select_option("#reg-owner", str(world.companies["A"]))
        await s.page.select_option("#reg-spec", "YSP35.5")
        await s.page.fill("#reg-made", made.isoformat())
        await s.page.click("#register-submit")
        message = s.page.locator("[data-error-for=tag]")
        await s.page.wait_for_function("window.__m.register.refused !== null")
        assert await message.inner_text() == "该标签已建档"
        assert await s.page.locator("#register-done").count() == 0
        assert await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", tag) == 1
        assert not await s.page.is_disabled("#register-submit")
        # the browser logs the refused request itself (409); nothing else went wrong
        assert [e for e in s.errors if "status of 409" not in e] == [], s.errors
    finally:
        ids = [r["id"] for r in await pool.fetch("SELECT id FROM cylinders WHERE tag = $1", tag)]
        await pool.execute("DELETE FROM events WHERE cylinder_id = ANY($1)", ids)
        await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", ids)


async def test_company_admin_registers_its_own_cylinder(
    open_session: OpenSession, live_server: Live, pool: asyncpg.Pool, world: World
) -> None:
    """A company admin registers for its own company only and states no inspection findings
    (server.domain.registration): the owner is its company, the last inspection is not asked."""
    tag = f"MCO-{secrets.token_hex(3).upper()}"
    s = await open_session("t_company_a", viewport=PHONE)
    try:
        await open_tab(s, "register")
        await s.page.wait_for_function("window.__m.register.owners === 1")
        assert await s.page.input_value("#reg-owner") == str(world.companies["A"])
        assert await s.page.is_hidden("#reg-last")
        await s.page.fill("#reg-tag", tag)
        await s.page.select_option("#reg-spec", "YSP12")
        await s.page.fill("#reg-made", (world.today - dt.timedelta(days=10)).isoformat())
        await s.page.click("#register-submit")
        await s.page.wait_for_selector("#register-done")
        owner = await pool.fetchval("SELECT owner_company_id FROM cylinders WHERE tag = $1", tag)
        assert owner == world.companies["A"]
        assert s.errors == [], s.errors
    finally:
        ids = [r["id"] for r in await pool.fetch("SELECT id FROM cylinders WHERE tag = $1", tag)]
        await pool.execute("DELETE FROM events WHERE cylinder_id = ANY($1)", ids)
        await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", ids)


async def test_officer_has_no_registration_tab(
    open_session: OpenSession, live_server: Live
) -> None:
    s = await open_session("t_officer", viewport=PHONE)
    await s.page.goto("/m")
    await s.page.wait_for_selector("#view-app", state="visible")
    assert await s.page.is_hidden("#tab-btn-register")
    assert s.errors == [], s.errors
