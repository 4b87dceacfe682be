"""Articles (公益宣传) as the editors write them and the platform's users read them
(docs/API.md "Articles"; docs/ARCHITECTURE.md §8).

``GET/POST /api/v1/articles`` and ``GET/PATCH/DELETE /api/v1/articles/{id}``; the media are
``server.api.articles_media`` and the public's reading ``server.api.articles_public``. Who edits and what may be published are the domain's (:mod:`server.domain.articles`): admins
and regulators see every state and write; every other role reads published articles only
(a draft answers 404, its existence undisclosed). A published article is never deleted: it is
taken back to draft (``PATCH {"state": "draft"}``), then a draft may be deleted. Every write
is audited in the same transaction, with the fields before and after.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from server.api import articles_media, articles_public
from server.api.articles_media import READERS, blank_to_none, locked, media_item
from server.api.common import (
    API,
    UNSET,
    Id,
    Param,
    UnsetType,
    api_doc,
    changes,
    check_query,
    contains,
    envelope,
    fetch_page,
    jsonable,
    read_body,
    require_some,
)
from server.api.db_errors import db_errors
from server.db import articles as store
from server.domain.articles import (
    AUTHOR_MAX,
    BODY_MAX,
    CATEGORIES,
    EDITOR_ROLES,
    LANGUAGES,
    LINK_LABEL_MAX,
    LINKS_MAX,
    STATES,
    SUMMARY_MAX,
    TITLE_MAX,
    URL_MAX,
    URL_RE,
    Category,
    Language,
    State,
    excerpt,
    is_editor,
    media_kind,
    publish_refusal,
)
from server.kernel import errors
from server.kernel.appkeys import POOL
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql

__all__ = ["routes"]

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=TITLE_MAX)]
Summary = Annotated[str, msgspec.Meta(max_length=SUMMARY_MAX)]
Body = Annotated[str, msgspec.Meta(max_length=BODY_MAX)]
Author = Annotated[str, msgspec.Meta(max_length=AUTHOR_MAX)]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=URL_MAX, pattern=URL_RE)]
LinkLabel = Annotated[str, msgspec.Meta(max_length=LINK_LABEL_MAX)]


class Link(msgspec.Struct, forbid_unknown_fields=True):
    """A video on another site or a related page: shown as a link, never embedded."""

    url: Url
    label: LinkLabel | None = None


Links = Annotated[list[Link], msgspec.Meta(max_length=LINKS_MAX)]


class ArticleCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new draft; media are added afterwards (``POST …/media``)."""

    title: Title
    category: Category
    language: Language
    summary: Summary | None = None
    body: Body = ""
    author: Author | None = None
    """The by-line: the office that writes, e.g. 特种设备安全监察科."""
    links: Links = msgspec.field(default_factory=list)


class ArticlePatch(msgspec.Struct, forbid_unknown_fields=True):
    """The fields to change; ``state`` publishes (``published``) or takes back (``draft``)."""

    title: Title | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    language: Language | UnsetType = UNSET
    summary: Summary | UnsetType | None = UNSET
    body: Body | UnsetType = UNSET
    author: Author | UnsetType | None = UNSET
    links: Links | UnsetType = UNSET
    cover_upload_id: Id | UnsetType | None = UNSET
    """One of the article's pictures (null: the first picture is the cover)."""
    state: State | UnsetType = UNSET


def _list_item(row: Any) -> dict[str, Any]:
    aid = row["id"]
    cover = row["cover_upload_id"]
    return {
        "id": aid,
        "category": row["category"],
        "language": row["language"],
        "title": row["title"],
        "summary": row["summary"],
        "author": row["author"],
        "state": row["state"],
        "published_at": row["published_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "media_count": row["media_count"],
        "cover_url": f"{API}/articles/{aid}/media/{cover}" if cover else None,
    }


async def _detail(db: Any, p: Principal, aid: int) -> dict[str, Any]:
    editor = is_editor(p.role)
    row = await store.fetch_article(db, aid, published_only=not editor)
    if row is None:
        raise not_found(f"article {aid}")
    base = f"{API}/articles/{aid}"
    media = await store.fetch_media(db, aid)
    out: dict[str, Any] = {
        "id": aid,
        "category": row["category"],
        "language": row["language"],
        "title": row["title"],
        "summary": row["summary"],
        "excerpt": excerpt(row["summary"], row["body"]),
        "body": row["body"],
        "author": row["author"],
        "links": row["links"],
        "state": row["state"],
        "published_at": row["published_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "cover_upload_id": row["cover_upload_id"],
        "cover_url": f"{base}/media/{row['cover_shown']}" if row["cover_shown"] else None,
        "media": [media_item(m, base) for m in media],
        "public_url": f"/portal/{aid}" if row["state"] == "published" else None,
    }
    if editor:
        out["created_by"] = row["created_by_name"]
        out["updated_by"] = row["updated_by_name"]
        refusal = publish_refusal(row["title"], row["body"], len(media))
        out["may"] = {
            "edit": True,
            "publish": row["state"] == "draft" and refusal is None,
            "unpublish": row["state"] == "published",
            "delete": row["state"] == "draft",
        }
        out["publish_refusal"] = refusal
    return out


QUERY = (
    Param("state", enum=STATES, description="editors only; others always read published"),
    Param("category", enum=CATEGORIES),
    Param("language", enum=LANGUAGES),
    Param("q", description="text in the title"),
)


@api_doc(
    "List articles",
    tags=["articles"],
    roles=READERS,
    query=QUERY,
    paginated=True,
    description="Editors (admin, regulator): every article, the last edited first. Every other "
    "role: published articles, the newest first. Items carry no body (GET one for it); "
    "`cover_url` is the chosen cover or the first picture.",
)
async def list_articles(request: web.Request) -> web.Response:
    """Articles the caller may read, filtered and paged."""
    p = require(request)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where: list[str] = []
    editor = is_editor(p.role)
    if not editor:
        where.append(store.PUBLISHED)
    for name, vocab in (("state", STATES), ("category", CATEGORIES), ("language", LANGUAGES)):
        value = q_choice(request, name, vocab)
        if value:
            where.append(f"a.{name} = {q.add(value)}")
    text = q_str(request, "q", max_len=TITLE_MAX)
    if text:
        where.append(f"a.title ILIKE {q.add(contains(text))}")
    order = "a.updated_at DESC, a.id DESC" if editor else "a.published_at DESC, a.id DESC"
    rows, total = await fetch_page(
        request.app[POOL],
        store.LIST_COLUMNS,
        f"articles a WHERE {' AND '.join(where) or 'TRUE'}",
        order,
        q,
        page,
    )
    return json_response(envelope([_list_item(r) for r in rows], page, total))


@api_doc(
    "One article, with its text, links and media",
    tags=["articles"],
    roles=READERS,
    responses={404: "no such article, or a draft and the caller no editor"},
    description='`body` is the text in the articles\' markup (docs/API.md "Articles"), to be '
    "shown as text; `media` [{upload_id, kind image|video|file, mime, size, width, height, "
    "filename, caption, url}]; editors also get `may` {edit, publish, unpublish, delete} and "
    "`publish_refusal` (why it may not be published yet, or null).",
)
async def get_article(request: web.Request) -> web.Response:
    p = require(request)
    return json_response(await _detail(request.app[POOL], p, path_int(request)))


def _texts(values: dict[str, Any]) -> dict[str, Any]:
    """Trimmed texts; an empty summary or author is none; a title of spaces is refused."""
    out = dict(values)
    if "title" in out:
        out["title"] = out["title"].strip()
        if not out["title"]:
            raise bad_field("title", "is empty")
    for name in ("summary", "author"):
        if name in out:
            out[name] = blank_to_none(out[name])
    if "links" in out:
        out["links"] = [
            {"url": link.url, "label": blank_to_none(link.label)} for link in out["links"]
        ]
    return out


@api_doc(
    "Write a new article (a draft)",
    tags=["articles"],
    roles=EDITOR_ROLES,
    body=ArticleCreate,
    responses={201: "the draft, as GET answers it"},
)
async def create_article(request: web.Request) -> web.Response:
    """A new draft (audited ``article.create``)."""
    p = require(request, *EDITOR_ROLES)
    body = await read_body(request, ArticleCreate)
    values = _texts({f: getattr(body, f) for f in body.__struct_fields__})
    async with request.app[POOL].acquire() as conn, conn.transaction():
        q = Sql()
        cols = [*values, "created_by", "updated_by"]
        marks = [q.add(v) for v in values.values()] + [q.add(p.user_id), q.add(p.user_id)]
        async with db_errors("body"):
            aid = await conn.fetchval(
                f"INSERT INTO articles ({', '.join(cols)}) VALUES ({', '.join(marks)}) RETURNING id",
                *q.params,
            )
        await audit(
            conn,
            p,
            "article.create",
            "article",
            aid,
            {
                "title": values["title"],
                "category": values["category"],
                "language": values["language"],
            },
            request.remote,
        )
        out = await _detail(conn, p, aid)
    return json_response(out, 201)


def _audit_value(name: str, value: Any) -> Any:
    """An audit entry keeps a long text's size, not the text (the article keeps the text)."""
    return {"chars": len(value)} if name == "body" else value


@api_doc(
    "Change, publish or unpublish an article",
    tags=["articles"],
    roles=EDITOR_ROLES,
    body=ArticlePatch,
    responses={
        200: "the article, as GET answers it",
        400: "a bad field; publishing an article without a title or anything to read; a "
        "cover that is not one of the article's pictures",
        404: "no such article",
    },
    description="Only the fields sent change. `state: published` publishes (the first "
    "publication date is kept when an article is published again); `state: draft` takes a "
    "published article off the portal. Audited as article.publish, article.unpublish or "
    "article.update with the changed fields before and after (the body by its length).",
)
async def patch_article(request: web.Request) -> web.Response:
    p = require(request, *EDITOR_ROLES)
    aid = path_int(request)
    body = await read_body(request, ArticlePatch)
    values = _texts(changes(body))
    require_some(values)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await locked(conn, aid)
        cover = values.get("cover_upload_id")
        if cover is not None:
            mime = await conn.fetchval(
                """SELECT u.mime FROM article_media m JOIN uploads u ON u.id = m.upload_id
                    WHERE m.article_id = $1 AND m.upload_id = $2""",
                aid,
                cover,
            )
            if mime is None or media_kind(mime) != "image":
                raise bad_field("cover_upload_id", "is not one of this article's pictures")
        new_state = values.get("state", row["state"])
        # publishing, or emptying a published article's text: it must still have something
        if new_state == "published" and (row["state"] != "published" or "body" in values):
            refusal = publish_refusal(
                values.get("title", row["title"]),
                values.get("body", row["body"]),
                await store.media_count(conn, aid),
            )
            if refusal:
                field, _, message = refusal.partition(": ")
                raise bad_field(field, message)
        changed = {k: v for k, v in values.items() if row[k] != v}
        if changed:
            q = Sql(aid)
            sets = [f"{k} = {q.add(v)}" for k, v in changed.items()]
            if changed.get("state") == "published":
                sets.append("published_at = COALESCE(published_at, now())")
            sets += [f"updated_by = {q.add(p.user_id)}", "updated_at = now()"]
            async with db_errors("body"):
                await conn.execute(
                    f"UPDATE articles SET {', '.join(sets)} WHERE id = $1", *q.params
                )
            action = {"published": "article.publish", "draft": "article.unpublish"}.get(
                changed.get("state", ""), "article.update"
            )
            details = {
                "title": values.get("title", row["title"]),
                "before": jsonable({k: _audit_value(k, row[k]) for k in changed}),
                "after": jsonable({k: _audit_value(k, v) for k, v in changed.items()}),
            }
            await audit(conn, p, action, "article", aid, details, request.remote)
        out = await _detail(conn, p, aid)
    return json_response(out)


@api_doc(
    "Delete a draft",
    tags=["articles"],
    roles=EDITOR_ROLES,
    responses={
        200: "{deleted: id}",
        404: "no such article",
        409: "the article is published: take it back to draft first (PATCH state=draft)",
    },
    description="Only a draft is deleted (with its media list; the uploaded files stay, as "
    "every upload does). A published article is unpublished, never deleted. Audited.",
)
async def delete_article(request: web.Request) -> web.Response:
    p = require(request, *EDITOR_ROLES)
    aid = path_int(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await locked(conn, aid)
        if row["state"] != "draft":
            raise ApiError(
                409,
                errors.CONFLICT,
                "state: a published article is not deleted; unpublish it first (state=draft)",
                {"field": "state", "state": row["state"]},
            )
        await conn.execute("DELETE FROM articles WHERE id = $1", aid)
        await audit(
            conn,
            p,
            "article.delete",
            "article",
            aid,
            {"title": row["title"], "category": row["category"], "language": row["language"]},
            request.remote,
        )
    return json_response({"deleted": aid})


def routes() -> list[web.RouteDef]:
    """The editors' and readers' routes, the media's and the public's (one module in
    ``server.api.API_MODULES``)."""
    one = API + r"/articles/{id:\d+}"
    return [
        web.get(f"{API}/articles", list_articles, allow_head=False),
        web.post(f"{API}/articles", create_article),
        web.get(one, get_article, allow_head=False),
        web.patch(one, patch_article),
        web.delete(one, delete_article),
        *articles_media.routes(),
        *articles_public.routes(),
    ]
