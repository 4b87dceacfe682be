"""The articles' queries (migration 0180; docs/API.md "Articles"), shared by the editors' API
(``server.api.articles``) and the public one (``server.api.articles_public``) so that "what
the public may read" is one WHERE clause (docs/ARCHITECTURE.md §4: one query builder in one
place).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "COVER",
    "LIST_COLUMNS",
    "PUBLISHED",
    "add_media",
    "fetch_article",
    "fetch_media",
    "lock_article",
    "media_count",
    "media_of",
]

PUBLISHED: Final = "a.state = 'published'"
"""What the public, and every role but the editors, may read."""

COVER: Final = """COALESCE(a.cover_upload_id, (
        SELECT m.upload_id FROM article_media m JOIN uploads u ON u.id = m.upload_id
         WHERE m.article_id = a.id AND u.mime LIKE 'image/%'
         ORDER BY m.position LIMIT 1))"""
"""The picture of a list's card: the chosen cover, else the article's first picture."""

LIST_COLUMNS: Final = f"""a.id, a.category, a.language, a.title, a.summary, a.author, a.state,
       a.published_at, a.created_at, a.updated_at,
       (SELECT count(*) FROM article_media m WHERE m.article_id = a.id) AS media_count,
       {COVER} AS cover_upload_id"""

_DETAIL: Final = f"""SELECT a.*, {COVER} AS cover_shown,
       cu.username AS created_by_name, uu.username AS updated_by_name
  FROM articles a
  LEFT JOIN users cu ON cu.id = a.created_by
  LEFT JOIN users uu ON uu.id = a.updated_by
 WHERE a.id = $1"""


async def fetch_article(db: Any, article_id: int, *, published_only: bool) -> Any:
    """The article with its editors' names and the cover a page shows, or None (also when
    *published_only* and it is a draft: a draft's existence is not disclosed)."""
    sql = _DETAIL + (f" AND {PUBLISHED}" if published_only else "")
    return await db.fetchrow(sql, article_id)


async def fetch_media(db: Any, article_id: int) -> list[Any]:
    """The article's media in order, with what the uploads row says of each file."""
    return list(
        await db.fetch(
            """SELECT m.upload_id, m.position, m.caption, m.added_at, u.mime, u.size, u.width,
                      u.height, u.filename, u.sha256
                 FROM article_media m JOIN uploads u ON u.id = m.upload_id
                WHERE m.article_id = $1
                ORDER BY m.position, m.upload_id""",
            article_id,
        )
    )


async def media_count(conn: Any, article_id: int) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM article_media WHERE article_id = $1", article_id)
    )


async def add_media(
    conn: Any, article_id: int, upload_id: int, caption: str | None, user_id: int | None
) -> None:
    """Attach an upload at the end of the article's media (the article's row is locked by
    the caller, so two uploads never take one position)."""
    await conn.execute(
        """INSERT INTO article_media (article_id, upload_id, position, caption, added_by)
           VALUES ($1, $2, (SELECT COALESCE(max(position) + 1, 0) FROM article_media
                             WHERE article_id = $1), $3, $4)
           ON CONFLICT (article_id, upload_id) DO NOTHING""",
        article_id,
        upload_id,
        caption,
        user_id,
    )


async def media_of(db: Any, article_id: int, upload_id: int, *, published_only: bool) -> Any:
    """The upload's hash if it is a medium of the article and the caller may read the article
    (published, unless *published_only* is False), else None."""
    sql = """SELECT u.sha256 FROM article_media m
               JOIN articles a ON a.id = m.article_id
               JOIN uploads u ON u.id = m.upload_id
              WHERE m.article_id = $1 AND m.upload_id = $2"""
    if published_only:
        sql += f" AND {PUBLISHED}"
    return await db.fetchval(sql, article_id, upload_id)


async def lock_article(conn: Any, article_id: int) -> Any:
    """The article's row, locked for the rest of the transaction (None: no such article):
    every write of an article or of its media takes this lock first, so two editors' writes
    follow one another."""
    return await conn.fetchrow("SELECT * FROM articles WHERE id = $1 FOR UPDATE", article_id)
