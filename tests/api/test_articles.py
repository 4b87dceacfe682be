"""Articles (公益宣传) through the API: drafts hidden from the public and from every role but
the editors, publish and unpublish (audited, never a published article deleted), media types
and sizes, who reads which file, markup kept as the text it is, the public list's shape."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from server.domain.articles import MEDIA_MAX
from tests.api.conftest import ALL_USERS, ANON, call, unique

EDITORS = ("t_admin", "t_regulator", "t_regulator_jinshui")
READERS = tuple(u for u in ALL_USERS if u not in EDITORS and u != ANON)
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@pytest.fixture(autouse=True)
async def _remove_made_articles(pool: Any) -> AsyncIterator[None]:
    """Articles made here are removed afterwards: the session's other suites count the
    published ones (tests/api/test_public_reports.py: as many in each language)."""
    before = await pool.fetchval("SELECT COALESCE(max(id), 0) FROM articles")
    yield
    await pool.execute("DELETE FROM articles WHERE id > $1", before)


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
MP4 = MP4_HEAD + bytes(range(256)) * 40


def form(data: bytes, filename: str, content_type: str, caption: str | None = None) -> Any:
    f = aiohttp.FormData(default_to_multipart=True)
    if caption is not None:
        f.add_field("caption", caption)
    f.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
    return f


async def new_article(client: Any, user: str = "t_regulator", **over: Any) -> dict[str, Any]:
    body = {
        "title": "燃气安全 " + unique(),
        "category": "news",
        "language": "zh-CN",
        "body": "## 小标题\n\n第一段。\n\n- 一\n- 二",
    }
    body.update(over)
    status, got = await call(client, "POST", "/api/v1/articles", user, body)
    assert status == 201, got
    assert got["state"] == "draft" and got["published_at"] is None
    return dict(got)


async def attach(
    client: Any, aid: int, data: bytes, filename: str, ctype: str, caption: str | None = None
) -> tuple[int, Any]:
    return await call(
        client,
        "POST",
        f"/api/v1/articles/{aid}/media",
        "t_admin",
        data=form(data, filename, ctype, caption),
    )


async def publish(client: Any, aid: int, state: str = "published") -> dict[str, Any]:
    status, got = await call(
        client, "PATCH", f"/api/v1/articles/{aid}", "t_admin", {"state": state}
    )
    assert status == 200, got
    return dict(got)


async def public_ids(client: Any, **query: Any) -> list[int]:
    status, got = await call(client, "GET", "/api/v1/public/articles", ANON, params=query)
    assert status == 200, got
    return [a["id"] for a in got["items"]]


async def test_a_draft_is_seen_by_editors_only(client: Any) -> None:
    a = await new_article(client, "t_regulator_jinshui")
    aid = a["id"]
    assert a["may"] == {"edit": True, "publish": True, "unpublish": False, "delete": True}
    for user in EDITORS:
        status, got = await call(client, "GET", f"/api/v1/articles/{aid}", user)
        assert status == 200 and got["title"] == a["title"], user
        _, listed = await call(client, "GET", "/api/v1/articles", user, params={"state": "draft"})
        assert aid in [x["id"] for x in listed["items"]], user
    for user in READERS:
        status, _ = await call(client, "GET", f"/api/v1/articles/{aid}", user)
        assert status == 404, user
        _, listed = await call(client, "GET", "/api/v1/articles", user, params={"page_size": 100})
        assert aid not in [x["id"] for x in listed["items"]], user
        assert {x["state"] for x in listed["items"]} == {"published"}, user
    assert (await call(client, "GET", f"/api/v1/public/articles/{aid}", ANON))[0] == 404
    assert aid not in await public_ids(client, limit=50)
    assert (await call(client, "GET", f"/api/v1/articles/{aid}", ANON))[0] == 401


async def test_publish_unpublish_and_delete_only_drafts(client: Any, pool: Any) -> None:
    empty = await new_article(client, body="")
    assert empty["may"]["publish"] is False and empty["publish_refusal"]
    status, err = await call(
        client, "PATCH", f"/api/v1/articles/{empty['id']}", "t_admin", {"state": "published"}
    )
    assert status == 400 and err["error"]["details"]["field"] == "body"

    a = await new_article(client, category="announcement")
    aid = a["id"]
    published = await publish(client, aid)
    first_at = published["published_at"]
    assert published["state"] == "published" and first_at
    assert published["public_url"] == f"/portal/{aid}"
    ids = await public_ids(client)
    assert ids[0] == aid  # the newest first
    assert aid in await public_ids(client, category="announcement")
    assert aid not in await public_ids(client, category="law")
    assert aid not in await public_ids(client, lang="en")  # a Chinese article
    for user in READERS:
        assert (await call(client, "GET", f"/api/v1/articles/{aid}", user))[0] == 200, user

    # a published article is not deleted: taken back to draft first
    status, err = await call(client, "DELETE", f"/api/v1/articles/{aid}", "t_admin")
    assert status == 409 and err["error"]["code"] == "conflict"
    assert (await call(client, "GET", f"/api/v1/public/articles/{aid}", ANON))[0] == 200

    await publish(client, aid, "draft")
    assert (await call(client, "GET", f"/api/v1/public/articles/{aid}", ANON))[0] == 404
    assert (await call(client, "GET", f"/api/v1/articles/{aid}", "t_officer"))[0] == 404
    again = await publish(client, aid)
    assert again["published_at"] == first_at  # the first publication's date is kept
    await publish(client, aid, "draft")

    status, got = await call(client, "DELETE", f"/api/v1/articles/{aid}", "t_regulator")
    assert status == 200 and got == {"deleted": aid}
    assert (await call(client, "GET", f"/api/v1/articles/{aid}", "t_admin"))[0] == 404
    rows = await pool.fetch(
        "SELECT action, username, details FROM audit_log"
        " WHERE entity = 'article' AND entity_id = $1 ORDER BY id",
        str(aid),
    )
    assert [r["action"] for r in rows] == [
        "article.create",
        "article.publish",
        "article.unpublish",
        "article.publish",
        "article.unpublish",
        "article.delete",
    ]
    assert rows[1]["details"]["before"] == {"state": "draft"}
    assert rows[1]["details"]["after"] == {"state": "published"}
    assert rows[-1]["username"] == "t_regulator"
    assert rows[-1]["details"]["title"] == a["title"]


async def test_an_edit_is_audited_with_before_and_after(client: Any, pool: Any) -> None:
    a = await new_article(client)
    status, got = await call(
        client,
        "PATCH",
        f"/api/v1/articles/{a['id']}",
        "t_regulator",
        {"summary": "  新摘要  ", "body": "新的正文", "links": [{"url": "https://v.example.cn/1"}]},
    )
    assert status == 200, got
    assert got["summary"] == "新摘要" and got["links"] == [
        {"url": "https://v.example.cn/1", "label": None}
    ]
    details = await pool.fetchval(
        "SELECT details FROM audit_log WHERE entity = 'article' AND entity_id = $1"
        " AND action = 'article.update'",
        str(a["id"]),
    )
    assert details["before"]["summary"] is None and details["after"]["summary"] == "新摘要"
    assert details["after"]["body"] == {"chars": 4}  # the text's size, not the text
    # nothing changed: no new audit row
    await call(client, "PATCH", f"/api/v1/articles/{a['id']}", "t_regulator", {"summary": "新摘要"})
    count = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE entity = 'article' AND entity_id = $1",
        str(a["id"]),
    )
    assert count == 2


@pytest.mark.parametrize(
    "body",
    [
        {"title": "   "},
        {"category": "gossip"},
        {"language": "fr"},
        {"links": [{"url": "javascript:alert(1)"}]},
        {"links": [{"url": 'https://x.example/"><script>'}]},
        {"links": [{"url": f"https://x.example/{i}"} for i in range(6)]},
        {"body": "x" * 20_001},
        {"state": "archived"},
        {"cover_upload_id": 0},
        {"surprise": 1},
        {},
    ],
)
async def test_bad_changes_are_400_and_change_nothing(client: Any, body: dict[str, Any]) -> None:
    a = await new_article(client)
    status, err = await call(client, "PATCH", f"/api/v1/articles/{a['id']}", "t_admin", body)
    assert status == 400, err
    assert set(err["error"]) >= {"code", "message", "details"}
    _, after = await call(client, "GET", f"/api/v1/articles/{a['id']}", "t_admin")
    assert after["updated_at"] == a["updated_at"] and after["title"] == a["title"]


async def test_markup_is_kept_as_the_text_it_is(client: Any) -> None:
    a = await new_article(client, title=XSS, summary=XSS, body=f"**{XSS}**\n\n{XSS}", author=XSS)
    await publish(client, a["id"])
    resp = await client.get(f"/api/v1/public/articles/{a['id']}")
    assert resp.content_type == "application/json"
    got = await resp.json()
    assert got["title"] == XSS and got["summary"] == XSS and got["author"] == XSS
    assert got["body"] == f"**{XSS}**\n\n{XSS}"
    _, listed = await call(client, "GET", "/api/v1/public/articles", ANON)
    card = next(x for x in listed["items"] if x["id"] == a["id"])
    assert card["title"] == XSS and card["excerpt"] == XSS


async def test_media_types_sizes_and_who_reads_them(client: Any, pool: Any) -> None:
    a = await new_article(client)
    aid = a["id"]
    status, img = await attach(client, aid, png(), "valve.png", "image/png", "阀门")
    assert status == 201, img
    assert img["kind"] == "image" and img["caption"] == "阀门" and img["width"] == 40
    status, pdf = await attach(client, aid, PDF, "regulation.pdf", "application/pdf")
    assert status == 201 and pdf["kind"] == "file" and pdf["filename"] == "regulation.pdf"
    status, clip = await attach(client, aid, MP4, "clip.mp4", "video/mp4")
    assert status == 201 and clip["kind"] == "video"

    before = await pool.fetchval("SELECT count(*) FROM uploads")
    # a 60 MB clip is over [uploads] file_max_mb (50): refused while reading, nothing stored
    big = MP4_HEAD + bytes(60 * 1024 * 1024)
    status, err = await attach(client, aid, big, "long.mp4", "video/mp4")
    assert status == 413 and err["error"]["code"] == "payload_too_large"
    # a program is no file type of ours, whatever it is called
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(500)
    status, err = await attach(client, aid, exe, "setup.exe", "application/octet-stream")
    assert status == 415 and err["error"]["code"] == "unsupported_media_type"
    status, err = await attach(client, aid, exe, "leaflet.pdf", "application/pdf")
    assert status == 415
    status, err = await call(
        client,
        "POST",
        f"/api/v1/articles/{aid}/media",
        "t_admin",
        data=aiohttp.FormData({"caption": "x"}),
    )
    assert status in (400, 415), err
    assert await pool.fetchval("SELECT count(*) FROM uploads") == before
    _, got = await call(client, "GET", f"/api/v1/articles/{aid}", "t_admin")
    assert [m["upload_id"] for m in got["media"]] == [
        img["upload_id"],
        pdf["upload_id"],
        clip["upload_id"],
    ]
    assert got["cover_url"] == img["url"]  # the first picture, until one is chosen

    # a draft's files: editors only
    for user in ALL_USERS:
        status, _ = await call(client, "GET", img["url"], user)
        assert status == (200 if user in EDITORS else 401 if user == ANON else 404), user
    public_img = f"/api/v1/public/articles/{aid}/media/{img['upload_id']}"
    assert (await call(client, "GET", public_img, ANON))[0] == 404

    # the cover is one of the article's pictures
    status, err = await call(
        client, "PATCH", f"/api/v1/articles/{aid}", "t_admin", {"cover_upload_id": pdf["upload_id"]}
    )
    assert status == 400 and err["error"]["details"]["field"] == "cover_upload_id"

    await publish(client, aid)
    for user in ALL_USERS:
        status, _ = await call(client, "GET", img["url"], user)
        assert status == (401 if user == ANON else 200), user
    _, pub = await call(client, "GET", f"/api/v1/public/articles/{aid}", ANON)
    urls = {m["kind"]: m["url"] for m in pub["media"]}
    assert pub["cover_url"] == urls["image"] == public_img

    resp = await client.get(urls["image"])
    assert resp.status == 200 and resp.content_type == "image/png"
    assert "Content-Disposition" not in resp.headers
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    etag = resp.headers["ETag"]
    resp = await client.get(urls["image"], headers={"If-None-Match": etag})
    assert resp.status == 304

    resp = await client.get(urls["file"])
    assert resp.status == 200 and await resp.read() == PDF
    assert resp.headers["Content-Disposition"].startswith("attachment")

    resp = await client.get(urls["video"], headers={"Range": "bytes=100-199"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(MP4)}"
    assert await resp.read() == MP4[100:200]
    resp = await client.get(urls["video"], headers={"Range": f"bytes={len(MP4) + 5}-"})
    assert resp.status == 416
    resp = await client.get(urls["video"])
    assert (
        resp.status == 200 and await resp.read() == MP4 and resp.headers["Accept-Ranges"] == "bytes"
    )

    # removing the picture: the article has no picture left, so no cover
    status, _ = await call(client, "DELETE", img["url"], "t_admin")
    assert status == 200
    assert (await call(client, "GET", public_img, ANON))[0] == 404
    _, pub = await call(client, "GET", f"/api/v1/public/articles/{aid}", ANON)
    assert pub["cover_url"] is None and len(pub["media"]) == 2
    actions = await pool.fetch(
        "SELECT action FROM audit_log WHERE entity = 'article' AND entity_id = $1"
        " AND action LIKE 'article.media_%' ORDER BY id",
        str(aid),
    )
    assert [r["action"] for r in actions] == ["article.media_add"] * 3 + ["article.media_remove"]


async def test_an_article_holds_a_bounded_number_of_media(client: Any, pool: Any) -> None:
    a = await new_article(client)
    uid = await pool.fetchval(
        """INSERT INTO uploads (sha256, mime, size, purpose)
           VALUES (repeat('a', 64), 'application/pdf', 10, 'article_media') RETURNING id"""
    )
    for _ in range(MEDIA_MAX):
        other = await pool.fetchval(
            "INSERT INTO uploads (sha256, mime, size, purpose)"
            " SELECT sha256, mime, size, purpose FROM uploads WHERE id = $1 RETURNING id",
            uid,
        )
        await pool.execute(
            "INSERT INTO article_media (article_id, upload_id, position) VALUES ($1, $2, $3)",
            a["id"],
            other,
            other,
        )
    status, err = await attach(client, a["id"], PDF, "more.pdf", "application/pdf")
    assert status == 400 and err["error"]["details"]["field"] == "file"


async def test_public_list_pages_by_limit_and_keeps_its_shape(client: Any) -> None:
    _, zh = await call(client, "GET", "/api/v1/public/articles", ANON, params={"limit": 2})
    assert len(zh["items"]) == 2 and zh["page_size"] == 2 and zh["total"] >= 4
    first = zh["items"][0]
    assert {"id", "title", "body", "summary", "excerpt", "category", "published_at", "url"} <= set(
        first
    )
    _, page2 = await call(
        client, "GET", "/api/v1/public/articles", ANON, params={"limit": 2, "page": 2}
    )
    assert {x["id"] for x in page2["items"]}.isdisjoint({x["id"] for x in zh["items"]})
    _, en = await call(client, "GET", "/api/v1/public/articles", ANON, params={"lang": "en"})
    assert {x["language"] for x in en["items"]} == {"en"}
    for query in ({"limit": "0"}, {"limit": "51"}, {"category": "gossip"}, {"sort": "x"}):
        status, err = await call(client, "GET", "/api/v1/public/articles", ANON, params=query)
        assert status == 400 and err["error"]["code"] == "invalid_query", query
    assert (await call(client, "GET", "/api/v1/public/articles/99999999", ANON))[0] == 404
    assert (await call(client, "GET", "/api/v1/public/articles/abc", ANON))[0] == 404
