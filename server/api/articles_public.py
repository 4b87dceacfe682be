"""The public's articles (公益宣传): the portal (``/portal``) and the QR page read them without
logging in (docs/API.md "Public"; docs/ARCHITECTURE.md §1, §8).

``GET /api/v1/public/articles`` (the newest published articles of the reader's language, by
category, paged by ``limit``), ``GET /api/v1/public/articles/{id}`` and its media. Only
published articles exist here: a draft, or a medium of one, answers 404 like an id that
never was. The JSON endpoints count against the public rate limit of ``server.api.public``;
media do not, because one article page asks for each of its pictures — what bounds them is
that only a published article's files are served, and the browser's cache (ETag → 304
without reading the file).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from server.api.articles_media import media_item, media_response
from server.api.common import API, Param, api_doc, check_query
from server.api.public import rate_limit
from server.db import articles as store
from server.domain.articles import CATEGORIES, LANGUAGES, excerpt
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import not_found
from server.kernel.http import Page as HttpPage
from server.kernel.http import json_response, paged, path_int, q_choice, q_int
from server.kernel.scope import Sql

__all__ = ["routes"]

LIMIT_DEFAULT: Final = 20
"""A portal page: a phone's few screens of cards."""
LIMIT_MAX: Final = 50
"""Items carry their text (the QR page shows an excerpt of it), so a page stays bounded."""

PUBLIC_BASE: Final = f"{API}/public/articles"


def reader_language(request: web.Request) -> str:
    """The articles' language: ``lang``, else the browser's, else zh-CN (as the QR page)."""
    lang = request.query.get("lang") or request.headers.get("Accept-Language", "") or "zh-CN"
    return "en" if lang.lower().startswith("en") else "zh-CN"


def _card(row: Any) -> dict[str, Any]:
    aid = row["id"]
    cover = row["cover_upload_id"]
    return {
        "id": aid,
        "category": row["category"],
        "language": row["language"],
        "title": row["title"],
        "summary": row["summary"],
        "excerpt": excerpt(row["summary"], row["body"]),
        "body": row["body"],
        "author": row["author"],
        "published_at": row["published_at"],
        "cover_url": f"{PUBLIC_BASE}/{aid}/media/{cover}" if cover else None,
        "url": f"/portal/{aid}",
    }


LIST_QUERY = (
    Param("lang", enum=list(LANGUAGES), description="the reader's language (else the browser's)"),
    Param("category", enum=list(CATEGORIES)),
    Param("limit", "integer", f"articles per page, 1–{LIMIT_MAX} (default {LIMIT_DEFAULT})"),
    Param("page", "integer", "1-based page number"),
)


@api_doc(
    "Public: the published articles (公益宣传), newest first",
    tags=["public"],
    roles=["public"],
    query=LIST_QUERY,
    description="{items, page, page_size, total}; an item is {id, category, language, title, "
    "summary, excerpt, body, author, published_at, cover_url, url}: the articles of the "
    "reader's language only. `body` is text in the articles' markup, to be shown as text; "
    "`excerpt` is the summary or the start of the text without markup. Rate-limited.",
)
async def list_public(request: web.Request) -> web.Response:
    """What the portal lists and the QR page shows the latest of."""
    await rate_limit(request)
    check_query(request, [x.name for x in LIST_QUERY])
    limit = q_int(request, "limit", LIMIT_DEFAULT, lo=1, hi=LIMIT_MAX) or LIMIT_DEFAULT
    offset_max = request.app[SETTINGS].http.page_offset_max
    page = HttpPage(q_int(request, "page", 1, lo=1, hi=offset_max // limit + 1) or 1, limit)
    q = Sql()
    where = [store.PUBLISHED, f"a.language = {q.add(reader_language(request))}"]
    category = q_choice(request, "category", CATEGORIES)
    if category:
        where.append(f"a.category = {q.add(category)}")
    from_where = f"articles a WHERE {' AND '.join(where)}"
    pool = request.app[POOL]
    rows = await pool.fetch(
        f"SELECT {store.LIST_COLUMNS}, a.body FROM {from_where}"
        f" ORDER BY a.published_at DESC, a.id DESC LIMIT {page.page_size} OFFSET {page.offset}",
        *q.params,
    )
    if page.offset == 0 and len(rows) < page.page_size:
        total = len(rows)
    else:
        total = int(await pool.fetchval(f"SELECT count(*) FROM {from_where}", *q.params) or 0)
    return json_response(paged([_card(r) for r in rows], page, total))


@api_doc(
    "Public: one published article, with its media and links",
    tags=["public"],
    roles=["public"],
    query=[Param("lang", enum=list(LANGUAGES))],
    responses={404: "no such article, or not published"},
    description="{id, category, language, title, summary, body, author, published_at, "
    "updated_at, cover_url, links [{url, label}], media [{upload_id, kind image|video|file, "
    "mime, size, width, height, filename, caption, url}]}. Links are addresses to show as "
    "links, never to embed. Rate-limited.",
)
async def get_public(request: web.Request) -> web.Response:
    """An article page of the portal."""
    await rate_limit(request)
    check_query(request, ["lang"])
    aid = path_int(request)
    pool = request.app[POOL]
    row = await store.fetch_article(pool, aid, published_only=True)
    if row is None:
        raise not_found(f"article {aid}")
    base = f"{PUBLIC_BASE}/{aid}"
    media = await store.fetch_media(pool, aid)
    cover = row["cover_shown"]
    return json_response(
        {
            "id": aid,
            "category": row["category"],
            "language": row["language"],
            "title": row["title"],
            "summary": row["summary"],
            "body": row["body"],
            "author": row["author"],
            "published_at": row["published_at"],
            "updated_at": row["updated_at"],
            "cover_url": f"{base}/media/{cover}" if cover else None,
            "links": row["links"],
            "media": [media_item(m, base) for m in media],
        }
    )


@api_doc(
    "Public: a picture, clip or document of a published article",
    tags=["public"],
    roles=["public"],
    responses={
        200: "the file (pictures inline; clips and PDFs as attachments)",
        206: "a byte range of a clip",
        304: "unchanged (If-None-Match)",
        404: "no such medium, or the article is not published",
    },
    description="Not counted against the rate limit (a page asks for each picture); only a "
    "published article's files are served.",
)
async def get_public_media(request: web.Request) -> web.StreamResponse:
    aid = path_int(request)
    uid = path_int(request, "upload_id")
    return await media_response(request, aid, uid, published_only=True)


def routes() -> list[web.RouteDef]:
    one = PUBLIC_BASE + r"/{id:\d+}"
    return [
        web.get(PUBLIC_BASE, list_public, allow_head=False),
        web.get(one, get_public, allow_head=False),
        web.get(one + r"/media/{upload_id:\d+}", get_public_media, allow_head=False),
    ]
