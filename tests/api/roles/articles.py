"""Matrix rows of the articles (server/api/articles.py, articles_media.py, articles_public.py).

Editors are the admin and the regulators (city-wide and district ones alike); every other
role reads published articles only, and a draft answers them 404 (its existence is not
disclosed). The public reads published articles without logging in.

Made articles are new rows per call (a draft, or a published one). A made medium is an
``uploads`` row without a file on disk: the walk checks who may remove one and who reaches
the file's read, where the missing file answers 404 to everyone allowed that far. It is a PDF,
not a picture: the published articles the walk leaves stay in the session database, and a
picture would be their portal card's cover, which every later portal page (in the browser
tests) would ask for and get a 404. Who may read
a real file of a draft or a published article, role by role, is tests/api/test_articles.py,
which stores real files through the API.
"""

from __future__ import annotations

import io
import secrets
from typing import Any

from PIL import Image

from tests.api.roles import Case, Maker

_last_upload: list[int] = []
"""The medium the last ``article_media`` maker attached, for ``article_media_upload``."""


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


_PNG = _png()
"""A 1×1 picture: the smallest file a media upload stores."""
_BOUNDARY = "cwarticlesmatrix"
_MULTIPART = (
    (
        f"--{_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="dot.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    + _PNG
    + f"\r\n--{_BOUNDARY}--\r\n".encode()
)


async def _article(fresh: Any, state: str) -> int:
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO articles (category, language, title, body, state, published_at)
               VALUES ('news', 'zh-CN', $1, '正文', $2,
                       CASE WHEN $2 = 'published' THEN now() END)
               RETURNING id""",
            f"矩阵 {secrets.token_hex(3)}",
            state,
        )
    )


async def _draft(fresh: Any) -> int:
    return await _article(fresh, "draft")


async def _published(fresh: Any) -> int:
    return await _article(fresh, "published")


async def _with_medium(fresh: Any) -> int:
    """A published article with one medium (an uploads row whose file is not on disk; a PDF,
    so no portal card shows it as its cover)."""
    aid = await _published(fresh)
    uid = int(
        await fresh.pool.fetchval(
            """INSERT INTO uploads (sha256, mime, size, width, height, purpose)
               VALUES ($1, 'application/pdf', 67, NULL, NULL, 'article_media') RETURNING id""",
            secrets.token_hex(32),
        )
    )
    await fresh.pool.execute(
        "INSERT INTO article_media (article_id, upload_id, position) VALUES ($1, $2, 0)", aid, uid
    )
    _last_upload.append(uid)
    return aid


async def _its_medium(fresh: Any) -> int:
    return _last_upload[-1]


MEDIUM = "/api/v1/articles/{fresh:article_media}/media/{fresh:article_media_upload}"

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "articles.list": Case("GET", "/api/v1/articles", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "articles.create": Case(
        "POST",
        "/api/v1/articles",
        (201, 201, 201, 403, 403, 403, 403, 403, 401),
        lambda w: {"title": "燃气安全月", "category": "news", "language": "zh-CN"},
    ),
    "articles.get": Case(
        "GET",
        "/api/v1/articles/{fresh:article_published}",
        (200, 200, 200, 200, 200, 200, 200, 200, 401),
    ),
    "articles.get_draft": Case(
        "GET",
        "/api/v1/articles/{fresh:article_draft}",
        (200, 200, 200, 404, 404, 404, 404, 404, 401),
    ),
    "articles.patch": Case(
        "PATCH",
        "/api/v1/articles/{fresh:article_draft}",
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
        lambda w: {"summary": "摘要"},
    ),
    "articles.delete": Case(
        "DELETE",
        "/api/v1/articles/{fresh:article_draft}",
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
    ),
    "articles.media_add": Case(
        "POST",
        "/api/v1/articles/{fresh:article_draft}/media",
        (201, 201, 201, 403, 403, 403, 403, 403, 401),
        raw=(_MULTIPART, f"multipart/form-data; boundary={_BOUNDARY}"),
    ),
    "articles.media_get": Case(
        "GET",
        MEDIUM,
        (404, 404, 404, 404, 404, 404, 404, 404, 401),
        route="/api/v1/articles/{id}/media/{upload_id}",
    ),
    "articles.media_remove": Case(
        "DELETE",
        MEDIUM,
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
        route="/api/v1/articles/{id}/media/{upload_id}",
    ),
    "public.article": Case(
        "GET",
        "/api/v1/public/articles/{fresh:article_published}",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ),
    "public.article_draft": Case(
        "GET",
        "/api/v1/public/articles/{fresh:article_draft}",
        (404, 404, 404, 404, 404, 404, 404, 404, 404),
    ),
    "public.article_media": Case(
        "GET",
        "/api/v1/public/articles/{fresh:article_media}/media/{fresh:article_media_upload}",
        (404, 404, 404, 404, 404, 404, 404, 404, 404),
        route="/api/v1/public/articles/{id}/media/{upload_id}",
    ),
}

FRESH: dict[str, Maker] = {
    "article_draft": _draft,
    "article_published": _published,
    "article_media": _with_medium,
    "article_media_upload": _its_medium,
}
