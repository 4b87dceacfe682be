"""A complaint in a real Chromium, from the public page to its answer, as each person does it:

- a member of the public files a complaint with a photo and gets a ticket; the tracking page
  (no login) shows it received (待派发), also when the ticket is typed in lower case;
- a regulator opens it on /complaints — the caller's phone number and the photo are there —
  and assigns it to the company concerned;
- the company's admin opens it, sees no contact details anywhere, and answers;
- the regulator closes it as upheld;
- the tracking page now shows the answer and the outcome, and nobody's name.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from PIL import Image

from tests.browser.conftest import Live, OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser

PHONE_VIEWPORT = {"width": 390, "height": 844}


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
async def tickets(pool: asyncpg.Pool, live_server: Live) -> AsyncIterator[list[str]]:
    """Tickets a test filed, removed afterwards (with their history); the public rate limit
    starts afresh (every request of the session comes from 127.0.0.1)."""
    from server.api.public import RATE_PREFIX
    from server.kernel.appkeys import REDIS

    redis = live_server.app[REDIS]
    keys = [k async for k in redis.scan_iter(match=RATE_PREFIX + "*")]
    if keys:
        await redis.delete(*keys)
    made: list[str] = []
    yield made
    await pool.execute("DELETE FROM complaints WHERE ticket = ANY($1)", made)


async def test_a_complaint_from_the_public_page_to_its_answer(
    open_session: OpenSession, pool: asyncpg.Pool, world: World, tickets: list[str]
) -> None:
    phone = "138" + "".join(secrets.choice("0123456789") for _ in range(8))
    text = f"送气工短斤少两，称重时做手脚 BRW-{secrets.token_hex(3)}"
    answer = "经核查属实，已对送气工批评教育并补足气量。"

    # the public files a complaint with a photo
    public = await open_session(None, viewport=PHONE_VIEWPORT)
    resp = await public.context.request.post(
        "/api/v1/public/complaints",
        multipart={
            "text": text,
            "code": "BC-TAG-A-OK",
            "contact": phone,
            "photo": {"name": "valve.png", "mimeType": "image/png", "buffer": png()},
        },
    )
    assert resp.status == 201, await resp.text()
    filed = await resp.json()
    ticket = filed["ticket"]
    tickets.append(ticket)
    assert filed["photo"] is True

    # typed as people type it, on the lookup form
    await public.page.goto("/complaints/track")
    await public.page.get_by_test_id("track-ticket").fill(
        f"{ticket[:4].lower()} {ticket[4:8].lower()}-{ticket[8:].lower()}"
    )
    await public.page.get_by_test_id("track-submit").click()
    state = public.page.get_by_test_id("track-state")
    await state.wait_for()
    assert await state.get_attribute("data-value") == "new"
    assert await state.inner_text() == "待派发"
    await public.page.get_by_test_id("track-waiting").wait_for()
    assert phone not in await public.page.locator("main").inner_text()
    await public.screenshot("complaint-track-new", full_page=True)

    # a regulator assigns it to the company concerned
    reg = await open_session("t_regulator")
    await reg.page.goto(f"/complaints?ticket={ticket}")
    row = reg.page.locator(f'tr[data-ticket="{ticket}"]')
    await row.wait_for()
    assert await row.get_attribute("data-state") == "new"
    await row.locator('[data-action="open"]').click()
    dialog = reg.page.get_by_test_id("complaint-dialog")
    await dialog.get_by_test_id("detail-text").wait_for()
    assert phone in await dialog.get_by_test_id("detail-contact").inner_text()
    assert text in await dialog.get_by_test_id("detail-text").inner_text()
    photo = dialog.get_by_test_id("detail-photo")
    await photo.wait_for()
    await reg.page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=detail-photo]');"
        " return i && i.complete && i.naturalWidth === 160; }"
    )
    await dialog.get_by_test_id("assign-to").select_option(f"company:{world.companies['A']}")
    await dialog.get_by_test_id("assign-note").fill("请三个工作日内核实")
    await dialog.get_by_test_id("assign-save").click()
    await dialog.locator('[data-testid=complaint-state][data-value="assigned"]').wait_for()
    assert "测试燃气A公司" in await dialog.get_by_test_id("history").inner_text()
    await reg.page.locator(f'tr[data-ticket="{ticket}"][data-state="assigned"]').wait_for()
    await reg.screenshot("complaint-assigned")

    # the company's admin answers, and never sees the complainant's contact
    co = await open_session("t_company_a")
    await co.page.goto(f"/complaints?ticket={ticket}")
    co_row = co.page.locator(f'tr[data-ticket="{ticket}"]')
    await co_row.wait_for()
    await co_row.locator('[data-action="open"]').click()
    co_dialog = co.page.get_by_test_id("complaint-dialog")
    await co_dialog.get_by_test_id("answer-form").wait_for()
    assert await co_dialog.get_by_test_id("detail-contact").count() == 0
    assert await co_dialog.get_by_test_id("assign-form").is_hidden()
    assert await co_dialog.get_by_test_id("close-form").is_hidden()
    assert phone not in await co.page.content()
    await co_dialog.get_by_test_id("answer-text").fill(answer)
    await co_dialog.get_by_test_id("answer-save").click()
    await co_dialog.locator('[data-testid=complaint-state][data-value="answered"]').wait_for()
    assert answer in await co_dialog.get_by_test_id("detail-answer").inner_text()
    assert await co_dialog.get_by_test_id("answer-form").is_hidden()
    assert phone not in await co.page.content()

    # the regulator closes it as upheld
    await reg.page.reload()
    await (
        reg.page.locator(f'tr[data-ticket="{ticket}"][data-state="answered"]')
        .locator('[data-action="open"]')
        .click()
    )
    await dialog.get_by_test_id("close-form").wait_for()
    assert await dialog.get_by_test_id("close-answer").is_hidden()  # answered already
    await dialog.get_by_test_id("close-upheld").check()
    await dialog.get_by_test_id("close-save").click()
    closed = dialog.locator('[data-testid=complaint-state][data-value="closed"]')
    await closed.wait_for()
    assert "属实" in await closed.inner_text()
    kinds = await dialog.get_by_test_id("history-item").evaluate_all(
        "items => items.map(i => i.dataset.kind)"
    )
    assert kinds == ["filed", "assign", "answer", "close"]

    # the tracking page shows the answer and the outcome
    await public.page.reload()
    await public.page.locator('[data-testid=track-state][data-value="closed"]').wait_for()
    assert await public.page.get_by_test_id("track-answer").inner_text() == answer
    assert await public.page.get_by_test_id("track-outcome").get_attribute("data-value") == "upheld"
    body = await public.page.locator("main").inner_text()
    assert phone not in body and "t_company_a" not in body and "请三个工作日内核实" not in body
    await public.screenshot("complaint-track-closed", full_page=True)

    for s in (public, reg, co):
        assert not s.errors, s.errors


async def test_an_unknown_ticket_says_so_in_english(
    open_session: OpenSession, tickets: list[str]
) -> None:
    s = await open_session(None, lang="en", viewport=PHONE_VIEWPORT)
    await s.page.goto("/complaints/track?ticket=ZZZZ-ZZZZ-ZZZZ&lang=en")
    found = s.page.get_by_test_id("track-not-found")
    await found.wait_for()
    assert "No complaint has this ticket" in await found.inner_text()
    await s.page.goto("/complaints/track?ticket=hello&lang=en")
    await s.page.get_by_test_id("track-error").wait_for()
    assert "12 letters and digits" in await s.page.get_by_test_id("track-error").inner_text()
    # 404 is an expected answer of the lookup, not a page error
    assert all("404" in e for e in s.errors), s.errors
