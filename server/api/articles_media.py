"""The media of an article: attach, remove and serve pictures, MP4 clips and PDF documents
(docs/API.md "Articles"; docs/ARCHITECTURE.md §3).

``POST /api/v1/articles/{id}/media`` (multipart, editors), ``DELETE`` and ``GET
/api/v1/articles/{id}/media/{upload_id}``. Files are uploads (``server.kernel.uploads``):
sniffed, bounded by ``[uploads]``, pictures re-encoded without their metadata, kept at their
hash. They are served only after the article's check — a draft's media to editors only, a
published article's to every role here and to the public through
``server.api.articles_public`` — with byte ranges for clips (a phone's player asks for ranges
before it plays, and seeks with them) and the file's hash as its ETag.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from server.api.common import API, api_doc
from server.db import articles as store
from server.domain.articles import CAPTION_MAX, EDITOR_ROLES, MEDIA_MAX, is_editor, media_kind
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import bad_field, not_found
from server.kernel.http import json_response, path_int
from server.kernel.limits import body_limit
from server.kernel.principal import require
from server.kernel.uploads import StoredFile, file_response, read_multipart, read_verified
from server.kernel.uploads import store as store_upload

__all__ = ["READERS", "blank_to_none", "locked", "media_item", "media_response", "routes"]

READERS: Final = ("admin", "regulator", "officer", "company_admin", "station_operator", "inspector")
"""Every logged-in role reads published articles (the editors every article)."""


async def locked(conn: Any, aid: int) -> Any:
    """The article's row under its lock (:func:`server.db.articles.lock_article`), or 404."""
    row = await store.lock_article(conn, aid)
    if row is None:
        raise not_found(f"article {aid}")
    return row


def blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def media_item(row: Any, url_base: str) -> dict[str, Any]:
    """A medium as the API answers it, with the URL that serves it to this caller."""
    return {
        "upload_id": row["upload_id"],
        "kind": media_kind(row["mime"]),
        "mime": row["mime"],
        "size": row["size"],
        "width": row["width"],
        "height": row["height"],
        "filename": row["filename"],
        "caption": row["caption"],
        "url": f"{url_base}/media/{row['upload_id']}",
    }


MEDIA_FIELDS: Final = ("caption",)
"""The text part of a media upload; the file is the part named ``file``."""


@api_doc(
    "Attach a picture, an MP4 clip or a PDF to an article",
    tags=["articles"],
    roles=EDITOR_ROLES,
    responses={
        201: "the medium {upload_id, kind, mime, size, width, height, filename, caption, url}",
        400: "no file, a second file, an unreadable picture, too many media",
        404: "no such article",
        413: "a picture over [uploads] image_max_mb, another file over [uploads] file_max_mb",
        415: "not JPEG, PNG, WebP, PDF or MP4 (the bytes are sniffed), or not multipart",
    },
    description="multipart/form-data: `file` (one per request, so that a page shows each "
    f"upload's progress) and `caption` (optional, up to {CAPTION_MAX} characters). At most "
    f"{MEDIA_MAX} media an article. Pictures are re-encoded without their metadata. Audited "
    "(article.media_add).",
)
@body_limit("upload")
async def add_media(request: web.Request) -> web.Response:
    p = require(request, *EDITOR_ROLES)
    aid = path_int(request)
    pool = request.app[POOL]
    # refuse before reading megabytes for an article that is not there
    if await pool.fetchval("SELECT 1 FROM articles WHERE id = $1", aid) is None:
        raise not_found(f"article {aid}")
    rules = request.app[SETTINGS].uploads
    max_bytes = max(rules.image_max_mb, rules.file_max_mb) * 1024 * 1024
    fields, files = await read_multipart(request, max_bytes, files=("file",), max_files=1)
    unknown = sorted(set(fields) - set(MEDIA_FIELDS))
    if unknown:
        raise bad_field(unknown[0], "unknown field; known: caption, file")
    if not files:
        raise bad_field("file", "is required: a picture, an MP4 clip or a PDF")
    caption = blank_to_none(fields.get("caption"))
    if caption is not None and (len(caption) > CAPTION_MAX or "\x00" in caption):
        raise bad_field("caption", f"at most {CAPTION_MAX} characters, no NUL")
    _, filename, data = files[0]
    async with pool.acquire() as conn, conn.transaction():
        await locked(conn, aid)
        if await store.media_count(conn, aid) >= MEDIA_MAX:
            raise bad_field("file", f"an article has at most {MEDIA_MAX} pictures, clips and files")
        f: StoredFile = await store_upload(
            conn,
            rules,
            data,
            purpose="article_media",
            field="file",
            filename=filename,
            uploaded_by=p.user_id,
        )
        await store.add_media(conn, aid, f.id, caption, p.user_id)
        await conn.execute(
            "UPDATE articles SET updated_at = now(), updated_by = $2 WHERE id = $1", aid, p.user_id
        )
        await audit(
            conn,
            p,
            "article.media_add",
            "article",
            aid,
            {"upload_id": f.id, "mime": f.mime, "size": f.size, "filename": f.filename},
            request.remote,
        )
        row = await conn.fetchrow(
            """SELECT m.upload_id, m.caption, u.mime, u.size, u.width, u.height, u.filename
                 FROM article_media m JOIN uploads u ON u.id = m.upload_id
                WHERE m.article_id = $1 AND m.upload_id = $2""",
            aid,
            f.id,
        )
    return json_response(media_item(row, f"{API}/articles/{aid}"), 201)


@api_doc(
    "Remove a medium from an article",
    tags=["articles"],
    roles=EDITOR_ROLES,
    responses={200: "{removed: upload_id}", 404: "no such article or medium"},
    description="The article stops showing the file (a cover goes back to the first picture); "
    "the upload itself is kept, as every upload is. Audited (article.media_remove).",
)
async def remove_media(request: web.Request) -> web.Response:
    p = require(request, *EDITOR_ROLES)
    aid = path_int(request)
    uid = path_int(request, "upload_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await locked(conn, aid)
        gone = await conn.fetchval(
            "DELETE FROM article_media WHERE article_id = $1 AND upload_id = $2 RETURNING upload_id",
            aid,
            uid,
        )
        if gone is None:
            raise not_found(f"medium {uid} of article {aid}")
        await conn.execute(
            "UPDATE articles SET updated_at = now(), updated_by = $2 WHERE id = $1", aid, p.user_id
        )
        await audit(
            conn, p, "article.media_remove", "article", aid, {"upload_id": uid}, request.remote
        )
    return json_response({"removed": uid})


async def media_response(
    request: web.Request, article_id: int, upload_id: int, *, published_only: bool
) -> web.StreamResponse:
    """A medium of an article the caller may read: 304 to a browser that has these bytes
    (its ETag is the file's hash, so no file is read), a byte range of a clip (206), or the
    whole file — a picture inline, a clip or a PDF as an attachment (``file_response``)."""
    pool = request.app[POOL]
    sha = await store.media_of(pool, article_id, upload_id, published_only=published_only)
    if sha is None:
        raise not_found(f"medium {upload_id} of article {article_id}")
    etag = f'"{sha}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    f, data = await read_verified(pool, request.app[SETTINGS].uploads, upload_id)
    whole = file_response(f, data)
    whole.headers["Accept-Ranges"] = "bytes"
    if not f.mime.startswith("video/") or "Range" not in request.headers:
        return whole
    try:
        wanted = request.http_range
    except ValueError:
        return whole  # a malformed Range is ignored (RFC 9110 §14.2): the whole file
    start, stop, _ = wanted.indices(len(data))
    if start >= len(data) or stop <= start:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
    headers = {
        k: v for k, v in whole.headers.items() if k not in ("Content-Type", "Content-Length")
    }
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
    return web.Response(status=206, body=data[start:stop], content_type=f.mime, headers=headers)


@api_doc(
    "A picture, clip or document of an article",
    tags=["articles"],
    roles=READERS,
    responses={
        200: "the file (pictures inline; clips and PDFs as attachments)",
        206: "a byte range of a clip (Range: bytes=…)",
        304: "unchanged (If-None-Match with the ETag)",
        404: "no such medium, or the article is a draft and the caller no editor",
    },
)
async def get_media(request: web.Request) -> web.StreamResponse:
    """A medium, for those who may read the article (a draft's: editors only)."""
    p = require(request)
    aid = path_int(request)
    uid = path_int(request, "upload_id")
    return await media_response(request, aid, uid, published_only=not is_editor(p.role))


def routes() -> list[web.RouteDef]:
    one = API + r"/articles/{id:\d+}/media"
    return [
        web.post(one, add_media),
        web.get(one + r"/{upload_id:\d+}", get_media, allow_head=False),
        web.delete(one + r"/{upload_id:\d+}", remove_media),
    ]
