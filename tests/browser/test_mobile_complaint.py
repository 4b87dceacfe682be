"""A field officer files a complaint from the phone app (/m, 投诉登记; issue 13 item 1), in a
real Chromium at a phone's size.

Why: complaints come from the public QR page, the phone, or a regulator's desk; an officer
meeting one on a round scans the cylinder (its QR code's public URL gives the barcode), writes
what happened and the complainant's contact, adds a photo, and must see the ticket to hand on.
The regulator then finds it in the complaints list, filed from the phone (source `mobile`),
with the photo. A cylinder outside the officer's districts is refused in words. Roles that do
not file from the phone (an inspection agency) have no such tab.

Headless Chromium has no camera and no BarcodeDetector: the lookup tests' stand-in
(tests/browser/test_mobile_lookup.py) runs the page's own scanning path.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from PIL import Image

from tests.browser.conftest import OpenSession
from tests.browser.test_mobile_lookup import PHONE, scanner_reading

pytestmark = pytest.mark.browser


@pytest.fixture
async def texts(pool: asyncpg.Pool) -> AsyncIterator[list[str]]:
    """Texts of complaints a test filed, removed afterwards."""
    made: list[str] = []
    yield made
    await pool.execute("DELETE FROM complaints WHERE text = ANY($1)", made)


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (200, 60, 30)).save(buf, "JPEG")
    return buf.getvalue()


async def test_officer_files_a_complaint_and_the_regulator_sees_it(
    open_session: OpenSession, pool: asyncpg.Pool, texts: list[str]
) -> None:
    text = f"用户反映送气工未做安检 MCP-{secrets.token_hex(3)}"
    texts.append(text)
    s = await open_session("t_officer", viewport=PHONE)
    await s.context.add_init_script(scanner_reading("https://city.example/q/BC-TAG-A-OK"))
    await s.page.goto("/m")
    tab = s.page.locator("#tab-btn-complaint")
    await tab.click()
    form = s.page.get_by_test_id("complaint-form")
    await form.wait_for()
    await s.page.click("#complaint-scan-btn")
    await s.page.wait_for_function("document.getElementById('complaint-code').value !== ''")
    assert await s.page.input_value("#complaint-code") == "BC-TAG-A-OK"
    await s.page.fill("#complaint-text", text)
    await s.page.fill("#complaint-contact", "张女士 13912345678")
    await s.page.set_input_files(
        "#complaint-photo", {"name": "leak.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}
    )
    await s.page.get_by_test_id("complaint-thumb").wait_for()
    await s.page.click("#complaint-submit")
    done = s.page.get_by_test_id("complaint-ticket")
    await done.wait_for()
    ticket = await done.locator(".m-ticket").get_attribute("data-ticket")
    assert ticket and len(ticket) == 12
    shown = (await done.locator(".m-ticket").inner_text()).replace("-", "")
    assert shown == ticket
    assert await form.is_hidden()
    row = await pool.fetchrow(
        "SELECT source, district_code, contact, photo_upload_id FROM complaints WHERE ticket = $1",
        ticket,
    )
    assert row["source"] == "mobile" and row["district_code"] == "410105"
    assert row["contact"] == "张女士 13912345678" and row["photo_upload_id"] is not None
    assert s.errors == []

    # the regulator finds it in the list, filed from the phone
    reg = await open_session("t_regulator")
    await reg.page.goto(f"/complaints?ticket={ticket}")
    line = reg.page.locator(f'tr[data-ticket="{ticket}"]')
    await line.wait_for()
    assert await line.get_attribute("data-state") == "new"
    assert text[:8] in await line.inner_text()
    assert reg.errors == []


async def test_a_cylinder_outside_the_districts_is_refused_in_words(
    open_session: OpenSession, pool: asyncpg.Pool
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM complaints")
    s = await open_session("t_officer", lang="en", viewport=PHONE)
    await s.page.goto("/m?lang=en")
    await s.page.locator("#tab-btn-complaint").click()
    await s.page.fill("#complaint-code", "BC-TAG-B-OK")
    await s.page.fill("#complaint-text", "leaking valve")
    await s.page.click("#complaint-submit")
    await s.page.wait_for_function("window.__m.complaint.refused !== null")
    assert "outside your districts" in await s.page.inner_text("#complaint-error")
    assert await s.page.locator("#complaint-submit").is_enabled()
    assert await pool.fetchval("SELECT count(*) FROM complaints") == before


async def test_an_inspection_agency_has_no_complaint_tab(open_session: OpenSession) -> None:
    s = await open_session("t_inspector", viewport=PHONE)
    await s.page.goto("/m")
    await s.page.wait_for_selector("#view-app", state="visible")
    await s.page.locator("#tab-btn-register").wait_for()  # the role's own tabs are set
    assert await s.page.locator("#tab-btn-complaint").is_hidden()
    assert s.errors == []
