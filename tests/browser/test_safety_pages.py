"""Safety inspections on the desktop, in a real Chromium, as the people who do each job:

- delivery staff (t_operator_a) sign an inspection through the API with a photo and a PNG
  signature, two items failed;
- the company's admin finds it by customer and result, opens it: photos and the signature are
  drawn, the seal says valid, the failed items are grouped; the CSV export follows the filters
  and holds the row; a re-check with a photo closes one rectification;
- the admin publishes a new version of the catalogue: the old record still shows its version's
  items, the catalogue page shows the old version as past;
- the notice prints (print media, a PDF) with the failed items and the company's order phone;
- company B sees nothing of A's record; an inspection agency gets 403.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from PIL import Image

from tests.browser.conftest import OpenSession, Session
from tests.conftest import World

pytestmark = pytest.mark.browser

FAILED = ("valve_no_leak", "gas_alarm")


def jpeg(color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buf, "JPEG")
    return buf.getvalue()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 50), (20, 20, 20)).save(buf, "PNG")
    return buf.getvalue()


async def _csrf(s: Session) -> str:
    cookies = await s.context.cookies()
    return str(next(c["value"] for c in cookies if "csrf" in c["name"]))


async def _inspect(open_session: OpenSession, world: World) -> tuple[int, dict[str, Any]]:
    """t_operator_a signs an inspection of customer A: FAILED failed, a photo of the first."""
    s = await open_session("t_operator_a")
    resp = await s.context.request.get("/api/v1/safety-items?customer_kind=resident")
    assert resp.ok, await resp.text()
    cat = await resp.json()
    valve = next(i for i in cat["items"] if i["code"] == FAILED[0])
    note = f"阀门漏气 {secrets.token_hex(3)}"
    record = {
        "client_id": str(uuid.uuid4()),
        "customer_id": world.customers["A"],
        "catalogue_id": cat["catalogue_id"],
        "answers": [
            {
                "item_id": i["id"],
                "answer": "fail" if i["code"] in FAILED else "pass",
                **({"note": note} if i["code"] == FAILED[0] else {}),
            }
            for i in cat["items"]
        ],
        "inspected_at": dt.datetime.now(dt.UTC).isoformat(),
        "photo_items": [valve["id"]],
        "notes": "厨房通风良好",
    }
    resp = await s.context.request.post(
        "/api/v1/safety-inspections",
        multipart={
            "record": orjson.dumps(record).decode(),
            "photo": {"name": "valve.jpg", "mimeType": "image/jpeg", "buffer": jpeg()},
            "signature": {"name": "sig.png", "mimeType": "image/png", "buffer": png()},
        },
        headers={"X-CSRF-Token": await _csrf(s)},
    )
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert out["result"] == "fail" and len(out["rectifications"]) == 2
    return int(out["id"]), cat


async def _loaded(page: Any, testid: str) -> int:
    """How many images with *testid* the browser actually decoded."""
    loc = page.get_by_test_id(testid)
    await loc.first.wait_for()
    return int(
        await loc.evaluate_all(
            "els => Promise.all(els.map(e => e.decode().then(() => e.naturalWidth > 0,"
            " () => false))).then(r => r.filter(Boolean).length)"
        )
    )


async def test_a_company_admin_finds_a_record_exports_it_and_rechecks(
    open_session: OpenSession, world: World, tmp_path: Path
) -> None:
    rid, cat = await _inspect(open_session, world)
    s = await open_session("t_company_a", lang="en")
    await s.page.goto(f"/safety-inspections?customer={world.customers['A']}&result=fail&lang=en")
    row = s.page.locator(f'[data-testid="record-row"][data-id="{rid}"]')
    await row.wait_for()
    assert "Failed" in await row.inner_text()

    # the CSV link follows the filters and holds the row
    href = await s.page.get_by_test_id("export-csv").get_attribute("href")
    assert href is not None and "format=csv" in href and "result=fail" in href
    async with s.page.expect_download() as info:
        await s.page.get_by_test_id("export-csv").click()
    download = await info.value
    target = tmp_path / "safety.csv"
    await download.save_as(str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    mine = [r for r in rows if r["id"] == str(rid)]
    assert len(mine) == 1 and mine[0]["result"] == "fail" and mine[0]["failed_count"] == "2"
    assert all(r["result"] == "fail" for r in rows)

    # the record: failed items grouped, the photo and the signature drawn, the seal valid
    await row.get_by_test_id("record-link").click()
    await s.page.get_by_test_id("group-fail").wait_for()
    failed = await s.page.get_by_test_id("group-fail").inner_text()
    valve = next(i for i in cat["items"] if i["code"] == FAILED[0])
    assert valve["text_en"] in failed and "Failed (2)" in failed
    assert await s.page.get_by_test_id("group-pass").locator("li").count() == len(cat["items"]) - 2
    assert await _loaded(s.page, "item-photo") == 1
    assert await _loaded(s.page, "signature") == 1
    seal = s.page.get_by_test_id("seal")
    assert await seal.get_attribute("data-valid") == "true"
    assert "Valid" in await seal.inner_text()
    assert f"version {cat['version']}" in await s.page.get_by_test_id("record-version").inner_text()

    # re-check the valve with a photo: that rectification closes, the other stays open
    rects = s.page.get_by_test_id("rect-row")
    assert await rects.count() == 2
    first = rects.filter(has_text=valve["text_en"])
    await first.get_by_test_id("recheck").click()
    await s.page.get_by_test_id("recheck-photo").set_input_files(
        {"name": "fixed.jpg", "mimeType": "image/jpeg", "buffer": jpeg((40, 200, 40))}
    )
    await s.page.get_by_test_id("recheck-note").fill("已更换角阀")
    await s.page.get_by_test_id("recheck-save").click()
    closed = s.page.locator('[data-testid="rect-row"][data-state="closed"]')
    await closed.wait_for()
    assert valve["text_en"] in await closed.inner_text()
    assert "Rectified" in await closed.inner_text()
    assert await closed.get_by_test_id("recheck").count() == 0
    assert await _loaded(s.page, "item-photo") == 2  # the re-check's photo is drawn too
    assert await s.page.locator('[data-testid="rect-row"][data-state="open"]').count() == 1
    await s.screenshot("safety-record")
    assert not s.errors, s.errors


async def test_a_new_catalogue_version_leaves_the_old_record_alone(
    open_session: OpenSession, world: World
) -> None:
    rid, cat = await _inspect(open_session, world)
    code = f"drill_{secrets.token_hex(3)}"
    admin = await open_session("t_admin", lang="en")
    await admin.page.goto("/admin/safety-items?kind=resident&lang=en")
    assert "keep the version" in await admin.page.get_by_test_id("versions-note").inner_text()
    await admin.page.locator(f'[data-testid="catalogue-item"][data-code="{FAILED[0]}"]').wait_for()
    await admin.page.get_by_test_id("edit-new").click()
    rows = admin.page.get_by_test_id("editor-row")
    assert await rows.count() == len(cat["items"])
    await admin.page.get_by_test_id("editor-add").click()
    new = rows.last
    await new.locator('input[name="group"]').fill("education")
    await new.locator('input[name="code"]').fill(code)
    await new.locator('input[name="text_zh"]').fill("应急演练")
    await new.locator('input[name="text_en"]').fill("Emergency drill")
    await new.locator('input[name="days"]').fill("7")
    await admin.page.get_by_test_id("editor-publish").click()
    await admin.page.locator(f'[data-testid="catalogue-item"][data-code="{code}"]').wait_for()
    version = admin.page.get_by_test_id("catalogue-version")
    assert await version.input_value() == str(cat["version"] + 1)
    # the version the record used is still there, without the new item
    await version.select_option(str(cat["version"]))
    await admin.page.locator(f'#catalogue-title:has-text("version {cat["version"]}")').wait_for()
    assert await admin.page.locator(f'[data-code="{code}"]').count() == 0

    # the record keeps its version's items
    await admin.page.goto(f"/safety-inspections/{rid}?lang=en")
    await admin.page.get_by_test_id("group-pass").wait_for()
    shown = admin.page.get_by_test_id("record").get_by_test_id("item")
    assert await shown.count() == len(cat["items"])
    assert await admin.page.locator(f'[data-code="{code}"]').count() == 0
    assert (
        f"version {cat['version']}"
        in await admin.page.get_by_test_id("record-version").inner_text()
    )
    assert not admin.errors, admin.errors


async def test_the_notice_prints_with_the_failed_items(
    open_session: OpenSession, world: World, pool: asyncpg.Pool
) -> None:
    rid, cat = await _inspect(open_session, world)
    phone = "0371-" + "".join(secrets.choice("0123456789") for _ in range(8))
    before = await pool.fetchval(
        "UPDATE companies SET order_phone = $2 WHERE id = $1"
        " RETURNING (SELECT order_phone FROM companies WHERE id = $1)",
        world.companies["A"],
        phone,
    )
    try:
        s = await open_session("t_company_a")
        await s.page.goto(f"/safety-inspections/{rid}")
        await s.page.get_by_test_id("notice-link").click()
        items = s.page.get_by_test_id("notice-item")
        await items.first.wait_for()
        assert await items.count() == 2
        text = await s.page.get_by_test_id("notice").inner_text()
        for code in FAILED:
            item = next(i for i in cat["items"] if i["code"] == code)
            assert item["text_zh"] in text
        assert phone in await s.page.get_by_test_id("notice-phone").inner_text()
        assert "客户A" in await s.page.get_by_test_id("notice-customer").inner_text()
        # on paper: the notice alone, no navigation or buttons
        await s.page.emulate_media(media="print")
        assert await s.page.locator("header.topbar").is_hidden()
        assert await s.page.get_by_test_id("notice-print").is_hidden()
        assert await items.first.is_visible()
        pdf = await s.page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000
        assert not s.errors, s.errors
    finally:
        await pool.execute(
            "UPDATE companies SET order_phone = $2 WHERE id = $1", world.companies["A"], before
        )


async def test_scope_company_b_sees_nothing_and_an_inspector_is_refused(
    open_session: OpenSession, world: World, pool: asyncpg.Pool
) -> None:
    rid, _ = await _inspect(open_session, world)
    b = await open_session("t_company_b")
    await b.page.goto("/safety-inspections")
    await b.page.locator("#results :is(table, [data-testid=empty-state])").first.wait_for()
    assert await b.page.locator(f'[data-testid="record-row"][data-id="{rid}"]').count() == 0
    # other tests may have left records of B's own customers: B sees those and only those
    shown = [
        int(i)
        for i in await b.page.get_by_test_id("record-row").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
    ]
    owners = await pool.fetch(
        "SELECT id, company_id FROM safety_inspections WHERE id = ANY($1::bigint[])", shown
    )
    assert len(owners) == len(shown)
    assert {r["company_id"] for r in owners} <= {world.companies["B"]}
    await b.page.goto(f"/safety-inspections/{rid}")
    await b.page.locator("#record-root .alert-error").wait_for()
    assert await b.page.locator("#record-root img").count() == 0
    await b.page.goto(f"/safety-inspections/{rid}/notice")
    await b.page.locator("#notice-root .alert-error").wait_for()
    assert await b.page.get_by_test_id("notice-item").count() == 0
    resp = await b.page.goto("/admin/safety-items")
    assert resp is not None and resp.status == 403

    insp = await open_session("t_inspector")
    for path in ("/safety-inspections", f"/safety-inspections/{rid}", "/admin/safety-items"):
        resp = await insp.page.goto(path)
        assert resp is not None and resp.status == 403, path
    assert await insp.page.locator('nav a[href="/safety-inspections"]').count() == 0
    # the API's 404s (B's record and notice) and the 403 page are what the console reports
    assert b.errors and all(("404 (Not" in e or "403 (Forbidden" in e) for e in b.errors)
