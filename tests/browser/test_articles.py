"""Articles (公益宣传) in Chromium: an admin writes a draft with a picture, a clip and a PDF,
previews it, publishes it; the public portal shows it with the picture, the clip played from
the platform and the PDF to download; a draft is never on the portal; markup typed into an
article is shown as text on every page; the portal reads well on a phone, in both languages."""

from __future__ import annotations

import io
import re
import secrets
from typing import Any

import asyncpg
import pytest
from PIL import Image

from tests.browser.conftest import Live, OpenSession

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(4096)
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


async def no_horizontal_scroll(page: Any) -> bool:
    return bool(
        await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    )


async def test_admin_writes_publishes_and_the_portal_shows_it(
    open_session: OpenSession, live_server: Live, pool: asyncpg.Pool
) -> None:
    title = f"液化气钢瓶安全使用须知 {secrets.token_hex(3)}"
    s = await open_session("t_admin")
    page = s.page
    await page.goto("/admin/articles/new")
    await page.wait_for_function("document.body.dataset.ready === '1'")
    # media wait for the first save
    assert await page.get_by_test_id("media-save-first").is_visible()
    await page.get_by_test_id("title").fill(title)
    await page.get_by_test_id("category").select_option("safety")
    await page.get_by_test_id("summary").fill("三个要点，一分钟读完。")
    await page.get_by_test_id("body").fill(
        "# 使用前检查\n\n用肥皂水检查接口，**严禁明火**试漏。\n\n- 直立放置\n- 远离火源\n\n"
        "> 闻到燃气味：关阀、开窗、撤离。"
    )
    # the live preview is built as the text is typed, before anything is saved
    preview = page.get_by_test_id("preview")
    await preview.locator("h2", has_text="使用前检查").wait_for()
    assert await preview.locator("strong").inner_text() == "严禁明火"
    assert await preview.locator("li").count() == 2
    assert await preview.locator("blockquote").count() == 1
    assert await preview.locator("h1").inner_text() == title

    await page.get_by_test_id("save").click()
    await page.wait_for_url(re.compile(r"/admin/articles/\d+$"))
    article_id = int(page.url.rsplit("/", 1)[1])
    await page.locator("[data-testid=state][data-value=draft]").wait_for()

    # a picture, a PDF and a clip, each with its progress; a program is refused on its row
    picker = page.get_by_test_id("media-file")
    await page.get_by_test_id("media-caption").fill("正确的存放方式")
    await picker.set_input_files(
        [
            {"name": "存放.png", "mimeType": "image/png", "buffer": png()},
            {"name": "安全须知.pdf", "mimeType": "application/pdf", "buffer": PDF},
            {"name": "演示.mp4", "mimeType": "video/mp4", "buffer": MP4},
            {
                "name": "setup.exe",
                "mimeType": "application/x-msdownload",
                "buffer": b"MZ" + bytes(64),
            },
        ]
    )
    failed = page.locator("[data-testid=upload][data-state=failed]")
    await failed.wait_for()
    assert "setup.exe" in await failed.inner_text()
    assert "只能上传" in await failed.inner_text()
    media = page.get_by_test_id("media-list")
    await media.locator("[data-testid=medium]").nth(2).wait_for()
    kinds = await media.locator("[data-testid=medium]").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert kinds == ["image", "file", "video"]
    assert await media.locator("[data-testid=cover]").count() == 1  # the first picture
    # the preview shows them as the portal will
    await preview.locator("[data-testid=article-image] img").wait_for()
    assert await preview.locator("[data-testid=article-image] figcaption").inner_text() == (
        "正确的存放方式"
    )
    assert "安全须知.pdf" in await preview.locator("[data-testid=article-file]").inner_text()
    assert await preview.locator("video[controls]").count() == 1
    await s.screenshot("articles-editor-draft")

    # a draft is not on the portal
    reader = await open_session(None, viewport=PHONE)
    await reader.page.goto("/portal")
    await reader.page.wait_for_function("document.body.dataset.ready === '1'")
    assert (
        await reader.page.locator(f"[data-testid=portal-card][data-id='{article_id}']").count() == 0
    )
    await reader.page.goto(f"/portal/{article_id}")
    await reader.page.wait_for_function("document.body.dataset.ready === '1'")
    assert await reader.page.get_by_test_id("empty-state").count() == 1

    await page.get_by_test_id("publish").click()
    await page.locator("[data-testid=state][data-value=published]").wait_for()
    assert await page.get_by_test_id("view-public").get_attribute("href") == f"/portal/{article_id}"
    assert await page.get_by_test_id("unpublish").is_visible()
    assert not await page.get_by_test_id("delete").is_visible()

    # the portal on a phone: the card with its cover, then the article
    await reader.page.goto("/portal")
    card = reader.page.locator(f"[data-testid=portal-card][data-id='{article_id}']")
    await card.wait_for()
    assert title in await card.inner_text()
    assert await card.locator("img.portal-cover").count() == 1
    assert await no_horizontal_scroll(reader.page)
    await card.click()
    await reader.page.wait_for_url(f"**/portal/{article_id}")
    body = reader.page.get_by_test_id("portal-article")
    await body.get_by_test_id("article-title").wait_for()
    assert await body.get_by_test_id("article-title").inner_text() == title
    assert await body.locator(".art-body h2").inner_text() == "使用前检查"
    img = body.locator("[data-testid=article-image] img")
    await img.wait_for()
    await reader.page.wait_for_function(
        "document.querySelector('[data-testid=article-image] img').naturalWidth > 0"
    )
    video = body.locator("video[controls]")
    src = await video.get_attribute("src")
    assert src is not None and src.startswith(f"/api/v1/public/articles/{article_id}/media/")
    assert await body.locator("iframe").count() == 0
    clip = await reader.context.request.get(src, headers={"Range": "bytes=0-15"})
    assert clip.status == 206 and await clip.body() == MP4[:16]
    assert await no_horizontal_scroll(reader.page)
    await reader.screenshot("portal-article-phone", full_page=True)
    async with reader.page.expect_download() as info:
        await body.locator("[data-testid=article-file] a").click()
    download = await info.value
    assert download.suggested_filename == "安全须知.pdf"
    path = await download.path()
    with open(path, "rb") as fh:  # noqa: ASYNC230 - a small file the browser saved
        assert fh.read() == PDF

    # unpublished, it is gone from the portal again
    await page.get_by_test_id("unpublish").click()
    await page.locator("[data-testid=state][data-value=draft]").wait_for()
    await reader.page.reload()
    await reader.page.get_by_test_id("empty-state").wait_for()
    audited = await pool.fetchval(
        "SELECT array_agg(action ORDER BY id) FROM audit_log"
        " WHERE entity = 'article' AND entity_id = $1",
        str(article_id),
    )
    assert audited[0] == "article.create" and audited[-2:] == [
        "article.publish",
        "article.unpublish",
    ]
    assert audited.count("article.media_add") == 3
    assert not s.errors, s.errors
    # Chromium logs every 404 answer; the reader met two on purpose (the draft's page, and the
    # article's page after it was taken back), and nothing else
    assert len(reader.errors) == 2 and all("404" in e for e in reader.errors), reader.errors
    assert not reader.requests.foreign()


async def _published(pool: asyncpg.Pool, **values: Any) -> int:
    cols = {"category": "news", "language": "zh-CN", "state": "published", **values}
    names = ", ".join(cols)
    marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    return int(
        await pool.fetchval(
            f"INSERT INTO articles ({names}, published_at) VALUES ({marks}, now()) RETURNING id",
            *cols.values(),
        )
    )


async def test_markup_in_an_article_is_shown_as_text(
    open_session: OpenSession, pool: asyncpg.Pool
) -> None:
    both = IMG + SCRIPT
    aid = await _published(
        pool,
        title=both,
        summary=both,
        author=both,
        body=f"## {both}\n\n{both} [点我](javascript:window.__xss=3) **{IMG}**",
        links=[{"url": "https://example.org/film", "label": both}],
    )
    try:
        for who, path, ready in (
            (None, "/portal", "[data-testid=portal-card]"),
            (None, f"/portal/{aid}", "[data-testid=article-title]"),
            ("t_admin", "/admin/articles", "#results table"),
            ("t_regulator", f"/admin/articles/{aid}", "[data-testid=preview] h1"),
        ):
            s = await open_session(who)
            await s.page.goto(path)
            await s.page.locator(ready).first.wait_for()
            await s.page.wait_for_load_state("networkidle")
            assert await s.page.evaluate("typeof window.__xss") == "undefined", path
            text = await s.page.evaluate("document.body.innerText")
            assert IMG in text, path
            assert not await s.page.locator("a[href^='javascript']").count(), path
            assert not s.errors, (path, s.errors)
        # the link label is text; the link goes where its address says, out of the platform
        link = s.page.locator("[data-testid=article-link] a")
        assert await link.get_attribute("href") == "https://example.org/film"
        assert await link.get_attribute("rel") == "noopener noreferrer nofollow"
    finally:
        await pool.execute("DELETE FROM articles WHERE id = $1", aid)


async def test_portal_by_category_and_in_english(open_session: OpenSession) -> None:
    s = await open_session(None, viewport=PHONE)
    await s.page.goto("/portal?lang=en&category=safety")
    await s.page.locator("[data-testid=portal-card]").first.wait_for()
    text = await s.page.get_by_test_id("portal-list").inner_text()
    assert "Check before you use gas" in text and "用气前" not in text
    current = s.page.locator(".portal-cats a[aria-current=page]")
    assert await current.inner_text() == "Safety knowledge"
    await s.page.locator(".portal-cats a[data-category=law]").click()
    await s.page.get_by_test_id("empty-state").wait_for()
    assert await no_horizontal_scroll(s.page)
    assert not s.errors, s.errors
