"""The safety inspection at the customer on the phone (/m, issue 8 items 2 and 3), in a real
Chromium at a phone's size, as a station operator of company A (delivery staff inspect their
company's customers).

Why these: the inspection is done in kitchens and basements. Online, the walk must end in a
record the server signed, with the failed item's photo (downscaled on the phone) and the
customer's drawn signature, and the rectification it opened shown to the inspector. Without
signal, the completed inspection must survive a reload of the page (served by the service
worker), be listed as waiting, and reach the server exactly once when the connection returns.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
from typing import Any

import pytest
from PIL import Image

from tests.browser.conftest import Live, OpenSession, Session
from tests.conftest import World

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
FAILED_ITEM = "valve_no_leak"  # a failed item that needs a photo (migration 0200)
# what an offline page logs by itself (its requests fail): not a script error
NETWORK_NOISE = ("ERR_INTERNET_DISCONNECTED", "WebSocket", "Failed to load resource")


def camera_jpeg(width: int = 2400, height: int = 1800) -> bytes:
    """A picture as large as a phone camera's would make it (the page must downscale it)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (180, 60, 40)).save(buf, "JPEG", quality=70)
    return buf.getvalue()


async def _csrf(s: Session) -> str:
    return str(next(c["value"] for c in await s.context.cookies() if "csrf" in c["name"]))


async def new_customer(open_session: OpenSession, world: World) -> dict[str, Any]:
    """A household customer of company A, opened by the company's admin through the API."""
    admin = await open_session("t_company_a")
    key = secrets.token_hex(3).upper()
    resp = await admin.context.request.post(
        "/api/v1/customers",
        data={
            "account_no": f"SAF-{key}",
            "name": f"安检户{key}",
            "company_id": world.companies["A"],
            "address": "金水路8号",
            "district_code": "410105",
            "kind": "resident",
        },
        headers={"X-CSRF-Token": await _csrf(admin)},
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def open_safety(s: Session) -> None:
    await s.page.goto("/m")
    await s.page.wait_for_selector("#view-app", state="visible")
    await s.page.click(".m-tabs button[data-tab=safety]")
    await s.page.wait_for_selector("#tab-safety", state="visible")


async def pick_customer(s: Session, customer: dict[str, Any]) -> None:
    await s.page.fill("#safety-q", customer["account_no"])
    await s.page.click("#safety-search-form button[type=submit]")
    await s.page.click(f"button[data-customer='{customer['id']}']")
    await s.page.wait_for_selector("#safety-form", state="visible")


async def answer_all(s: Session, fail: str | None = None) -> None:
    codes = await s.page.eval_on_selector_all(".m-item", "rows => rows.map(r => r.dataset.code)")
    assert FAILED_ITEM in codes and len(codes) >= 10
    for code in codes:
        answer = "fail" if code == fail else "pass"
        await s.page.click(f".m-item[data-code='{code}'] .m-answer.a-{answer}")


async def sign(s: Session) -> None:
    canvas = s.page.locator("#safety-signature")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    assert box is not None
    x, y = box["x"], box["y"]
    await s.page.mouse.move(x + 20, y + 100)
    await s.page.mouse.down()
    for step in range(1, 12):
        await s.page.mouse.move(x + 20 + step * 25, y + 100 + (30 if step % 2 else -30))
    await s.page.mouse.up()


async def records_of(s: Session, customer_id: int) -> list[dict[str, Any]]:
    resp = await s.context.request.get(f"/api/v1/safety-inspections?customer={customer_id}")
    assert resp.ok, await resp.text()
    return list((await resp.json())["items"])


async def test_online_inspection_is_signed_with_photo_and_signature(
    open_session: OpenSession, live_server: Live, world: World
) -> None:
    customer = await new_customer(open_session, world)
    s = await open_session("t_operator_a", viewport=PHONE)
    await open_safety(s)
    # before the customer is chosen, nothing to fill: the form is hidden
    assert await s.page.is_hidden("#safety-form")
    await pick_customer(s, customer)
    await answer_all(s, fail=FAILED_ITEM)

    # a failed item that needs a photo is refused without one
    await sign(s)
    await s.page.click("#safety-submit")
    await s.page.wait_for_function("document.getElementById('safety-error').textContent.length > 0")
    assert await s.page.is_visible(f".m-item[data-code='{FAILED_ITEM}'].m-invalid")

    row = s.page.locator(f".m-item[data-code='{FAILED_ITEM}']")
    await row.locator(".m-item-note").fill("角阀接口有气泡")
    await row.locator("input[type=file]").set_input_files(
        files=[{"name": "valve.jpg", "mimeType": "image/jpeg", "buffer": camera_jpeg()}]
    )
    await row.locator("img[data-photo-of]").wait_for()
    await s.page.fill("#safety-notes", "已告知用户关闭角阀")
    await s.screenshot("m-safety-walk")
    await s.page.click("#safety-submit")
    await s.page.wait_for_selector("#safety-done", timeout=10_000)
    assert await s.page.get_attribute("#safety-done", "data-result") == "fail"
    assert await s.page.locator("#safety-rectifications li").count() == 1
    assert "角阀" in (await s.page.text_content("#safety-rectifications") or "")
    await s.screenshot("m-safety-done")

    rows = await records_of(s, customer["id"])
    assert len(rows) == 1 and rows[0]["client_id"] == await s.page.evaluate(
        "window.__m.safety.clientId"
    )
    resp = await s.context.request.get(f"/api/v1/safety-inspections/{rows[0]['id']}")
    rec = await resp.json()
    assert rec["result"] == "fail" and rec["notes"] == "已告知用户关闭角阀"
    failed = [i for i in rec["items"] if i["answer"] == "fail"]
    assert [i["code"] for i in failed] == [FAILED_ITEM] and failed[0]["note"] == "角阀接口有气泡"
    # the photo, downscaled on the phone to at most 1600 px on its longer side
    assert len(rec["photos"]) == 1
    photo = rec["photos"][0]
    assert max(photo["width"], photo["height"]) == 1600 and photo["item_id"] == failed[0]["item_id"]
    # the signature: a PNG with ink on it (not a blank canvas)
    sig = await s.context.request.get(rec["signature"]["url"])
    assert sig.ok
    img = Image.open(io.BytesIO(await sig.body()))
    assert img.format == "PNG"
    darkest = img.convert("L").getextrema()[0]
    assert isinstance(darkest, int) and darkest < 100  # ink on white
    assert rec["seal"]["valid"] is True
    assert await s.page.evaluate("window.__m.queue.sent") == 1
    assert await s.page.is_hidden("#safety-queue")
    assert s.requests.foreign() == []
    assert s.errors == [], s.errors


async def test_offline_inspection_waits_survives_a_reload_and_is_sent_once(
    open_session: OpenSession, live_server: Live, world: World
) -> None:
    customer = await new_customer(open_session, world)
    s = await open_session("t_operator_a", viewport=PHONE)
    page = s.page
    await page.goto("/m")
    await page.wait_for_function("window.__m.sw === 'ready'")
    await page.reload()
    await page.wait_for_function("navigator.serviceWorker.controller !== null")
    await page.wait_for_selector("#view-app", state="visible")
    # the catalogues of every customer kind are on the phone
    await page.wait_for_function("window.__m.safety.cachedKinds === 3")
    await page.click(".m-tabs button[data-tab=safety]")
    # found once with signal: today's customer is on the phone
    await page.fill("#safety-q", customer["account_no"])
    await page.click("#safety-search-form button[type=submit]")
    await page.wait_for_selector(f"button[data-customer='{customer['id']}']")

    await s.context.set_offline(True)
    try:
        await pick_customer(s, customer)
        assert await page.evaluate("window.__m.safety.customersFrom") == "cache"
        assert await page.evaluate("window.__m.safety.catalogueFrom") == "cache"
        await answer_all(s)
        await sign(s)
        await page.click("#safety-submit")
        await page.wait_for_selector("#safety-kept")
        client_id = await page.evaluate("window.__m.safety.clientId")
        await page.wait_for_selector(f"#safety-queue-list li[data-client-id='{client_id}']")
        assert await page.get_attribute("#safety-queue-list", "data-count") == "1"
        assert await page.is_visible("#safety-badge")

        # the page is reloaded without signal: the service worker serves it, the app opens as
        # the last user and the inspection is still waiting
        await page.reload()
        await page.wait_for_selector("#view-app", state="visible")
        assert await page.evaluate("window.__m.offlineStart") is True
        await page.click(".m-tabs button[data-tab=safety]")
        item = f"#safety-queue-list li[data-client-id='{client_id}'][data-state='waiting']"
        await page.wait_for_selector(item)
        await s.screenshot("m-safety-waiting")
        assert await page.evaluate("window.__m.queue.sent") == 0
    finally:
        await s.context.set_offline(False)

    # the connection returns: sent once, the list empties
    await page.wait_for_function("window.__m.queue.sent === 1", timeout=15_000)
    await page.wait_for_selector("#safety-queue", state="hidden")
    assert await page.locator("#safety-queue-list li").count() == 0
    rows = await records_of(s, customer["id"])
    assert [r["client_id"] for r in rows] == [client_id]
    assert rows[0]["result"] == "pass"
    errors = [e for e in s.errors if not any(n in e for n in NETWORK_NOISE)]
    assert errors == [], errors


async def test_scanned_cylinder_finds_its_customer_and_a_refusal_is_kept_not_retried(
    open_session: OpenSession, live_server: Live, world: World, pool: Any
) -> None:
    """The customer comes from a cylinder standing at the premises (scanned; the camera and
    the QR reader are stood in for as in test_mobile_lookup). A record the server refuses
    (4xx) is marked failed with the server's reason, not sent again when the connection
    comes back, and goes only when the user discards it."""
    from tests.browser.test_mobile_lookup import scanner_reading

    customer = await new_customer(open_session, world)
    key = secrets.token_hex(3).upper()
    cid = await pool.fetchval(
        """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l,
               manufacture_date, next_inspection_date, scrap_date, status, district_code,
               location_kind, location_customer_id, fill_state)
           VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, $5, $6, $7, 'in_service', '410105',
                   'customer', $8, 'full')
           RETURNING id""",
        f"SAF-{key}",
        f"ST-SAF-{key}",
        f"BC-SAF-{key}",
        world.companies["A"],
        world.today - dt.timedelta(days=900),
        world.today + dt.timedelta(days=400),
        world.today + dt.timedelta(days=2000),
        customer["id"],
    )
    s = await open_session("t_operator_a", viewport=PHONE)
    await s.context.add_init_script(scanner_reading(f"{live_server.url}/q/BC-SAF-{key}"))
    page = s.page
    posts: list[str] = []

    async def refuse(route: Any) -> None:
        posts.append(route.request.method)
        await route.fulfill(
            status=400,
            content_type="application/json",
            body='{"error": {"code": "invalid_field", "message": "record.catalogue_id: '
            'a restaurant catalogue", "details": {"field": "record.catalogue_id"}}}',
        )

    try:
        await open_safety(s)
        await page.click("#safety-scan-btn")
        await page.click(f"button[data-customer='{customer['id']}']")
        await page.wait_for_selector("#safety-form", state="visible")
        await answer_all(s)
        await sign(s)
        await page.route("**/api/v1/safety-inspections", refuse)
        await page.click("#safety-submit")
        await page.wait_for_selector("#safety-refused")
        assert "record.catalogue_id" in (await page.text_content("#safety-refused") or "")
        client_id = await page.evaluate("window.__m.safety.clientId")
        item = f"#safety-queue-list li[data-client-id='{client_id}'][data-state='failed']"
        await page.wait_for_selector(item)
        assert "a restaurant catalogue" in (await page.text_content(item) or "")
        # the connection "returns": what waits is sent, a refused record is not sent again
        await page.evaluate("window.dispatchEvent(new Event('online'))")
        await page.wait_for_function("window.__m.queue.flushes >= 2 && !window.__m.queue.sending")
        assert posts == ["POST"]
        page.once("dialog", lambda d: d.accept())
        await page.click(f"{item} button[data-discard]")
        await page.wait_for_selector("#safety-queue", state="hidden")
        assert await records_of(s, customer["id"]) == []
        # the browser logs the refused request itself; nothing else went wrong
        errors = [e for e in s.errors if "status of 400" not in e]
        assert errors == [], errors
    finally:
        await pool.execute("DELETE FROM cylinders WHERE id = $1", cid)
