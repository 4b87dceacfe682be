"""Messages and notices in a real Chromium, as the people who use them: a regulator writes to
company A; company A's admin, on the live map, sees the header's count rise without a reload
(over the map's own websocket, not a second one), opens the message and reads it; the
regulator sees the read receipt. A notice with a PDF goes to companies A and B; company A's
admin downloads the PDF and signs; the regulator's page shows who signed and that company B
has not."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from tests.browser.conftest import OpenSession, wait_ready
from tests.conftest import World

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WAIT_MS = 15_000


async def header_count(page: Any) -> int:
    """The header's unread count once header.js has filled it."""
    link = page.get_by_test_id("inbox-count")
    await page.wait_for_function(
        "document.querySelector('[data-testid=inbox-count]').dataset.count !== ''",
        timeout=WAIT_MS,
    )
    return int(await link.get_attribute("data-count") or "0")


async def pick(page: Any, kind: str, query: str, ident: int | str) -> None:
    """Choose a recipient in the form's picker."""
    await page.get_by_test_id("to-kind").select_option(kind)
    await page.get_by_test_id("to-search").fill(query)
    option = page.locator(f'[data-testid=to-option][data-kind="{kind}"][data-id="{ident}"]')
    await option.click(timeout=WAIT_MS)
    await page.locator(f'[data-testid=to-chip][data-kind="{kind}"][data-id="{ident}"]').wait_for()


async def test_a_message_read_live_and_its_receipt(open_session: OpenSession, world: World) -> None:
    company = await open_session("t_company_a")
    sockets: list[Any] = []
    company.page.on("websocket", lambda ws: sockets.append(ws))
    await company.page.goto("/")
    await wait_ready(company.page)
    before = await header_count(company.page)

    regulator = await open_session("t_regulator")
    await regulator.page.goto("/messages")
    await regulator.page.get_by_test_id("results").locator(".loading").wait_for(state="detached")
    subject = f"燃气安全自查 {secrets.token_hex(3)}"
    await regulator.page.get_by_test_id("compose").click()
    await pick(regulator.page, "companies", "测试燃气A", world.companies["A"])
    await regulator.page.get_by_test_id("compose-subject").fill(subject)
    await regulator.page.get_by_test_id("compose-body").fill("请于本周五前完成自查并回复。")
    await regulator.page.get_by_test_id("compose-send").click()
    sent_row = regulator.page.get_by_test_id("message-row").filter(has_text=subject)
    await sent_row.wait_for(timeout=WAIT_MS)  # the outbox, with nobody having read it
    assert re.match(r"^0 / \d+$", await sent_row.get_by_test_id("read-count").inner_text())

    # company A's admin, still on the map, sees the count rise without a reload
    await company.page.wait_for_function(
        f"Number(document.querySelector('[data-testid=inbox-count]').dataset.count) === {before + 1}",
        timeout=WAIT_MS,
    )
    badge = company.page.get_by_test_id("inbox-count").locator(".inbox-badge")
    assert await badge.is_visible() and await badge.inner_text() == str(before + 1)
    assert len(sockets) == 1, [ws.url for ws in sockets]  # the map's socket carries the inbox
    await company.screenshot("messages-header-count")

    # ... opens the inbox, the message, and reads it
    await company.page.get_by_test_id("inbox-count").click()
    await company.page.wait_for_url(re.compile(r"/messages$"))
    row = company.page.get_by_test_id("message-row").filter(has_text=subject)
    await row.wait_for(timeout=WAIT_MS)
    assert await row.get_attribute("data-unread") == "1"
    message_id = await row.get_attribute("data-id")
    await row.get_by_test_id("message-open").click()
    dialog = company.page.get_by_test_id("message-dialog")
    await dialog.get_by_test_id("message-subject").filter(has_text=subject).wait_for()
    assert (
        "请于本周五前完成自查并回复。" in await dialog.get_by_test_id("message-thread").inner_text()
    )
    await company.page.wait_for_function(
        f"Number(document.querySelector('[data-testid=inbox-count]').dataset.count) === {before}",
        timeout=WAIT_MS,
    )
    await company.screenshot("messages-read")

    # the regulator's outbox shows it read, and the receipt names who and when
    await (
        sent_row.get_by_test_id("read-count")
        .filter(has_text=re.compile(r"^1 / "))
        .wait_for(timeout=WAIT_MS)
    )
    await sent_row.get_by_test_id("message-open").click()
    receipt = regulator.page.locator('[data-testid=receipt-row][data-username="t_company_a"]')
    await receipt.get_by_test_id("receipt-read").wait_for(timeout=WAIT_MS)
    await regulator.screenshot("messages-receipts")

    # in English too, opened from its link: once read, it sorts after the unread ones (the
    # inbox is unread first), which other tests' messages may fill the first page with
    await company.page.goto(f"/messages?lang=en&open={message_id}")
    assert await company.page.locator("h1").inner_text() == "Messages"
    await dialog.get_by_test_id("message-subject").filter(has_text=subject).wait_for()
    assert (
        "请于本周五前完成自查并回复。" in await dialog.get_by_test_id("message-thread").inner_text()
    )
    await company.page.get_by_test_id("message-row").first.wait_for()
    assert (await company.page.get_by_test_id("tab-inbox").inner_text()).startswith("Inbox")
    assert company.errors == [] and regulator.errors == [], (company.errors, regulator.errors)


async def test_a_notice_with_a_pdf_signed_by_company_a(
    open_session: OpenSession, world: World
) -> None:
    regulator = await open_session("t_regulator")
    await regulator.page.goto("/notices")
    await regulator.page.get_by_test_id("results").locator(".loading").wait_for(state="detached")
    title = f"关于开展春季安全检查的通知 {secrets.token_hex(3)}"
    await regulator.page.get_by_test_id("new-notice").click()
    await pick(regulator.page, "companies", "测试燃气A", world.companies["A"])
    await pick(regulator.page, "companies", "测试燃气B", world.companies["B"])
    await regulator.page.get_by_test_id("notice-title").fill(title)
    await regulator.page.get_by_test_id("notice-body").fill(
        "请按附件要求组织检查，并于期限前签收。"
    )
    await regulator.page.get_by_test_id("notice-files").set_input_files(
        {"name": "春季检查方案.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    await regulator.page.get_by_test_id("notice-send").click()
    sent = regulator.page.get_by_test_id("notice-row").filter(has_text=title)
    await sent.wait_for(timeout=WAIT_MS)
    assert (await sent.get_by_test_id("signed-count").inner_text()).startswith("已签收 0 /")

    company = await open_session("t_company_a")
    await company.page.goto("/notices")
    row = company.page.get_by_test_id("notice-row").filter(has_text=title)
    await row.wait_for(timeout=WAIT_MS)
    assert await row.get_attribute("data-signed") == "0"
    await row.get_by_test_id("notice-open").click()
    await company.page.wait_for_url(re.compile(r"/notices/\d+$"))
    link = company.page.get_by_test_id("notice-file-link")
    await link.wait_for(timeout=WAIT_MS)
    assert await link.inner_text() == "春季检查方案.pdf"
    async with company.page.expect_download() as download:
        await link.click()
    assert (await download.value).suggested_filename == "春季检查方案.pdf"
    await company.page.get_by_test_id("sign-notice").click()
    await company.page.get_by_test_id("notice-signed").wait_for(timeout=WAIT_MS)
    await company.screenshot("notice-signed")

    await sent.get_by_test_id("notice-open").click()
    await regulator.page.wait_for_url(re.compile(r"/notices/\d+$"))
    signed = regulator.page.get_by_test_id("signed-list")
    await signed.locator('[data-testid=person-row][data-username="t_company_a"]').wait_for(
        timeout=WAIT_MS
    )
    unsigned = regulator.page.get_by_test_id("unsigned-list")
    await unsigned.locator('[data-testid=person-row][data-username="t_company_b"]').wait_for()
    assert "测试燃气B公司" in await unsigned.inner_text()
    assert "t_company_a" not in await unsigned.inner_text()
    assert (await regulator.page.get_by_test_id("progress-summary").inner_text()).startswith(
        "已签收 1 /"
    )
    await regulator.screenshot("notice-progress", full_page=True)
    assert company.errors == [] and regulator.errors == [], (company.errors, regulator.errors)
