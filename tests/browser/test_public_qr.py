"""The public QR page on a phone (issue 13, item 6): a household scans a cylinder, sees where
it has been (stations and companies, never a household), calls the owner with one tap, reads
the owner's notice, and reports a leaking valve with a photo — and gets a ticket. And the
company admin prints the QR labels of a search from /cylinders."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import secrets
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from PIL import Image
from pypdf import PdfReader

from server.api.public import RATE_PREFIX
from server.kernel.appkeys import REDIS
from tests.browser.conftest import Live, OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
async def _fresh_rate_limit(live_server: Live) -> None:
    """The public rate limit counts per address, and every page here comes from 127.0.0.1."""
    redis = live_server.app[REDIS]
    keys = [k async for k in redis.scan_iter(match=RATE_PREFIX + "*")]
    if keys:
        await redis.delete(*keys)


async def _scanned_cylinder(pool: asyncpg.Pool, world: World) -> tuple[int, str, int]:
    """A cylinder of a company with an order phone and a notice, with a site-level history."""
    suffix = secrets.token_hex(3).upper()
    company = await pool.fetchval(
        """INSERT INTO companies (code, name, district_code, order_phone, notice_text, notice_url)
           VALUES ($1, $2, '410105', '0371-6666 8888', $3, 'https://gas.example.com/summer')
           RETURNING id""",
        f"QR-{suffix}",
        f"扫码燃气{suffix}公司",
        "<b>夏季</b>免费安检，欢迎预约",
    )
    barcode = f"QR-BC-{suffix}"
    today = world.today
    cid = await pool.fetchval(
        """INSERT INTO cylinders (tag, barcode, owner_company_id, spec, manufacture_date,
                                  next_inspection_date, scrap_date, district_code,
                                  location_site_id)
           VALUES ($1, $2, $3, 'YSP35.5', $4, $5, $6, '410105', $7) RETURNING id""",
        f"QR-TAG-{suffix}",
        barcode,
        company,
        today - dt.timedelta(days=400),
        today + dt.timedelta(days=800),
        today + dt.timedelta(days=3000),
        world.sites["STA-A1"],
    )
    now = dt.datetime.now(dt.UTC)
    for days, kind, site, extra in (
        (9, "register", world.sites["INS-1"], {}),
        (5, "fill", world.sites["STA-A1"], {"operator": "操作员王五"}),
        (3, "deliver", world.sites["STA-B1"], {"customer_id": world.customers["A"]}),
    ):
        values = {
            "ts": now - dt.timedelta(days=days),
            "msg_id": uuid.uuid4().hex,
            "cylinder_id": cid,
            "kind": kind,
            "site_id": site,
            "company_id": company,
            **extra,
        }
        cols = ", ".join(values)
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await pool.execute(f"INSERT INTO events ({cols}) VALUES ({marks})", *values.values())
    return int(cid), barcode, int(company)


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "valve.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (180, 60, 40)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return path


async def test_a_household_scans_calls_and_reports_a_fault(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, tmp_path: Path
) -> None:
    cid, barcode, _ = await _scanned_cylinder(pool, world)
    s = await open_session(None, viewport=PHONE)
    page = s.page
    await page.goto(f"/q/{barcode}")
    await page.get_by_test_id("public-status").locator(".status-word").wait_for()
    # where it has been: newest first, stations and companies — never the household
    trail = page.get_by_test_id("trajectory")
    await trail.locator("li").first.wait_for()
    steps = await trail.locator("li").all_inner_texts()
    assert len(steps) == 3
    assert "送达用户" in steps[0] and "站点STA-B1" in steps[0] and "测试燃气B公司" in steps[0]
    assert "充装" in steps[1] and "站点STA-A1" in steps[1]
    assert "建档登记" in steps[2]
    body = await page.locator("main").inner_text()
    for secret in ("客户A", "13800000000", "测试路1号", "王五", "QR-TAG-"):
        assert secret not in body, secret
    # one tap to order gas
    call = page.get_by_test_id("order-phone")
    assert await call.get_attribute("href") == "tel:037166668888"
    assert "0371-6666 8888" in await call.inner_text()
    # the company's notice is text: its markup shows as typed, and its link is a web address
    notice = page.get_by_test_id("company-notice")
    assert "<b>夏季</b>免费安检" in await notice.inner_text()
    assert await notice.locator("b").count() == 0
    assert (
        await notice.get_by_role("link").get_attribute("href") == "https://gas.example.com/summer"
    )
    # safety articles of the public endpoint
    assert await page.get_by_test_id("article").count() >= 1
    await s.screenshot("public-qr-trajectory", full_page=True)
    # a fault with a photo → a ticket to follow
    fault = page.get_by_test_id("fault-card")
    await fault.get_by_label("故障情况").fill("角阀漏气，有嘶嘶声")
    await page.get_by_test_id("fault-photo").set_input_files(str(_photo(tmp_path)))
    await page.get_by_test_id("fault-submit").click()
    ok = page.get_by_test_id("fault-ok")
    await ok.wait_for()
    ticket_text = await ok.get_by_test_id("ticket").inner_text()
    match = re.search(r"([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})", ticket_text)
    assert match, ticket_text
    assert await ok.get_by_test_id("track-link").count() == 1
    await s.screenshot("public-qr-fault-ticket", full_page=True)
    row = await pool.fetchrow(
        "SELECT kind, cylinder_id, photo_upload_id FROM complaints WHERE ticket = $1",
        match.group(1).replace("-", ""),
    )
    assert row is not None and row["kind"] == "fault" and row["cylinder_id"] == cid
    assert row["photo_upload_id"] is not None
    # the form is ready for another report, the photo gone
    assert await fault.get_by_label("故障情况").input_value() == ""
    assert not s.errors, s.errors


async def test_the_page_in_english_and_an_empty_fault(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    _, barcode, _ = await _scanned_cylinder(pool, world)
    s = await open_session(None, viewport=PHONE, lang="en")
    await s.page.goto(f"/q/{barcode}?lang=en")
    trail = s.page.get_by_test_id("trajectory")
    await trail.locator("li").first.wait_for()
    assert "Filled" in await trail.inner_text()
    assert "Call to order gas" in await s.page.get_by_test_id("order-phone").inner_text()
    before = await pool.fetchval("SELECT count(*) FROM complaints")
    await s.page.get_by_test_id("fault-submit").click()
    await s.page.get_by_text("Please describe the fault.").wait_for()
    assert await pool.fetchval("SELECT count(*) FROM complaints") == before
    assert not s.errors, s.errors


async def test_company_admin_prints_the_labels_of_a_search(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    prefix = f"LBL{secrets.token_hex(3).upper()}"
    for i in range(3):
        await pool.execute(
            """INSERT INTO cylinders (tag, barcode, owner_company_id, spec, manufacture_date,
                                      next_inspection_date, scrap_date, district_code)
               VALUES ($1, $2, $3, 'YSP35.5', $4, $5, $6, '410105')""",
            f"{prefix}-T{i}",
            f"{prefix}-B{i}",
            world.companies["A"],
            world.today - dt.timedelta(days=100),
            world.today + dt.timedelta(days=700),
            world.today + dt.timedelta(days=3000),
        )
    s = await open_session("t_company_a")
    await s.page.goto(f"/cylinders?q={prefix}")
    await s.page.get_by_test_id("results").locator("tbody tr").first.wait_for()
    async with s.page.expect_download() as info:
        await s.page.get_by_test_id("print-labels").click()
    download: Any = await info.value
    pdf = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert pdf.startswith(b"%PDF-")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert all(f"{prefix}-B{i}" in text for i in range(3))
    await s.page.get_by_text("已生成 3 张标签。").wait_for()
    assert not s.errors, s.errors
    # a regulator watches; it does not label cylinders
    r = await open_session("t_regulator")
    await r.page.goto("/cylinders")
    await r.page.get_by_test_id("results").wait_for()
    assert await r.page.get_by_test_id("print-labels").count() == 0
