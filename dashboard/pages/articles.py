"""Articles (公益宣传): the editors' pages and the public portal (docs/ARCHITECTURE.md §8).

``GET /admin/articles`` lists every article with its state (filters: state, category,
language, title); ``/admin/articles/new`` and ``/admin/articles/{id}`` are the editor: title,
category, language, by-line, summary, the text with a live preview built as DOM nodes (the
markup of :mod:`server.domain.articles`), links, media uploaded one file at a time with their
progress and refusals, publish and unpublish, delete a draft. Editors are the roles of
:data:`dashboard.render.NAV` (admin, regulator), the same as the API's
(``server.domain.articles.EDITOR_ROLES``).

``GET /portal`` and ``GET /portal/{id}`` are for everybody, without logging in: the published
articles of the reader's language by category, and one article with its pictures, its clips
played from the platform, its documents to download and its links (never embedded). Phone
first, like the QR page. The rows come from ``/api/v1/articles`` and ``/api/v1/public/articles``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain.articles import (
    BODY_MAX,
    CAPTION_MAX,
    CATEGORIES,
    LANGUAGES,
    LINKS_MAX,
    MEDIA_MAX,
    STATES,
    SUMMARY_MAX,
    TITLE_MAX,
)
from server.kernel.appkeys import SETTINGS
from server.kernel.principal import Principal

__all__ = ["routes"]

_VOCAB: dict[str, Any] = {
    "article_categories": list(CATEGORIES),
    "article_languages": list(LANGUAGES),
    "article_states": list(STATES),
}
"""The vocabularies the pages offer (named apart from the layout's own ``languages``)."""


@page("articles")
async def article_list(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    return render(
        request,
        "articles.html",
        title=t("nav.articles"),
        active="articles",
        **_VOCAB,
        page_config=_VOCAB,
    )


async def _editor(request: web.Request, article_id: int | None) -> web.StreamResponse:
    t = page_translator(request)
    uploads = request.app[SETTINGS].uploads
    limits = {
        "title": TITLE_MAX,
        "summary": SUMMARY_MAX,
        "body": BODY_MAX,
        "caption": CAPTION_MAX,
        "links": LINKS_MAX,
        "media": MEDIA_MAX,
        # files over these are refused in the page before minutes of upload end in a 413
        "image_mb": uploads.image_max_mb,
        "file_mb": uploads.file_max_mb,
    }
    return render(
        request,
        "articles_edit.html",
        title=t("articles.edit_title") if article_id else t("articles.new_title"),
        active="articles",
        article_id=article_id,
        limits=limits,
        **_VOCAB,
        page_config={**_VOCAB, "article_id": article_id, "limits": limits},
    )


@page("articles")
async def article_new(request: web.Request, p: Principal) -> web.StreamResponse:
    return await _editor(request, None)


@page("articles")
async def article_edit(request: web.Request, p: Principal) -> web.StreamResponse:
    return await _editor(request, int(request.match_info["id"]))


async def portal(request: web.Request) -> web.StreamResponse:
    """The public list (no login)."""
    t = page_translator(request)
    category = request.query.get("category")
    return render(
        request,
        "portal.html",
        title=t("portal.title"),
        article_categories=list(CATEGORIES),
        category=category if category in CATEGORIES else None,
    )


async def portal_article(request: web.Request) -> web.StreamResponse:
    """One published article (no login); a draft or an unknown id shows "not found"."""
    t = page_translator(request)
    article_id = int(request.match_info["id"])
    return render(
        request,
        "portal_article.html",
        title=t("portal.title"),
        article_id=article_id,
        page_config={"article_id": article_id},
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/articles", article_list),
        web.get("/admin/articles/new", article_new),
        web.get(r"/admin/articles/{id:\d{1,18}}", article_edit),
        web.get("/portal", portal),
        web.get(r"/portal/{id:\d{1,18}}", portal_article),
    ]
