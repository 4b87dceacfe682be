"""The customer's share link to a rectification notice, in a real Chromium: the company's admin
copies the link on the notice page; the customer opens it in a fresh browser without a login
and sees the failed items with their deadlines and the order phone — and no ID number, phone
or address; a forged or expired link shows a clear message and no data."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import pytest

from server.api.customers import id_hash_key
from server.domain.safety_share import make_token, share_key
from server.kernel.appkeys import POOL
from tests.browser.conftest import Live, OpenSession
from tests.browser.test_safety_pages import FAILED, _inspect
from tests.conftest import World

pytestmark = pytest.mark.browser

PRIVATE = ("410105********1234", "13800000000", "测试路1号", "CUST-A")
"""What the world's customer A has besides the name (tests/conftest.py): never on the page."""


async def test_the_customer_opens_the_shared_notice_without_login(
    open_session: OpenSession, world: World
) -> None:
    rid, cat = await _inspect(open_session, world)
    admin = await open_session("t_company_a")
    await admin.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await admin.page.goto(f"/safety-inspections/{rid}/notice")
    await admin.page.get_by_test_id("notice-item").first.wait_for()
    await admin.page.get_by_test_id("notice-share").click()
    box = admin.page.get_by_test_id("notice-share-url")
    await box.wait_for()
    await admin.page.wait_for_function(
        "document.querySelector('[data-testid=notice-share-url]').value !== ''"
    )
    url = await box.input_value()
    assert "/n/" in url
    await admin.page.locator(".toast", has_text="已复制").wait_for()
    copied = await admin.page.evaluate("navigator.clipboard.readText()")
    assert copied == url
    assert not admin.errors, admin.errors

    customer = await open_session(None)
    await customer.page.goto(urlparse(url).path)
    items = customer.page.get_by_test_id("share-item")
    await items.first.wait_for()
    assert await items.count() == len(FAILED)
    text = await customer.page.get_by_test_id("share-notice").inner_text()
    for code in FAILED:
        item = next(i for i in cat["items"] if i["code"] == code)
        assert item["text_zh"] in text
    deadlines = await customer.page.get_by_test_id("share-deadline").all_inner_texts()
    assert len(deadlines) == len(FAILED) and all(d.strip() for d in deadlines)
    assert "客户A" in await customer.page.get_by_test_id("share-customer").inner_text()
    page_text = await customer.page.locator("body").inner_text()
    for private in PRIVATE:
        assert private not in page_text, private
    # no staff navigation for the customer; printable
    assert await customer.page.locator("header.topbar").count() == 0
    await customer.page.emulate_media(media="print")
    assert await customer.page.get_by_test_id("share-print").is_hidden()
    assert not customer.errors, customer.errors


async def test_a_forged_or_expired_link_shows_no_data(
    open_session: OpenSession, world: World, live_server: Live
) -> None:
    rid, _ = await _inspect(open_session, world)
    app: Any = live_server.app
    key = share_key(await id_hash_key(app, app[POOL]))
    good = make_token(key, rid, int(time.time()) + 3600)
    rid_s, exp, tag = good.split(".")
    forged = f"{rid_s}.{exp}.{'A' * len(tag)}"
    expired = make_token(key, rid, int(time.time()) - 60)
    s = await open_session(None, lang="en")
    for token, reason, words in ((forged, "invalid", "not valid"), (expired, "expired", "expired")):
        await s.page.goto(f"/n/{token}?lang=en")
        refused = s.page.get_by_test_id("share-refused")
        await refused.wait_for()
        assert await refused.get_attribute("data-reason") == reason
        assert words in await refused.inner_text()
        assert await s.page.get_by_test_id("share-item").count() == 0
        assert "客户A" not in await s.page.locator("body").inner_text()
    # the public endpoint's 404s are all the console reports
    assert s.errors and all("404 (Not" in e for e in s.errors), s.errors
