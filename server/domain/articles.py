"""Articles (公益宣传): vocabularies, bounds, who edits, when an article may be published, and
the small markup of an article's text (docs/API.md "Articles"; docs/ARCHITECTURE.md §4).

Who edits: the bureau publishes, so admins and regulators (every regulator, district ones
included: what they write is the bureau's voice, and every change is in the audit log) write
drafts, publish, unpublish and delete drafts. Everybody else — other roles, and the public on
``/portal`` and the QR page — reads published articles only.

The markup is deliberately tiny, so that the pages build it as DOM nodes themselves
(``dashboard/static/js/articles-render.js``) and nothing in an article can ever become HTML:

- blocks are separated by a blank line; a block's lines are joined into one paragraph;
- a line ``# Heading`` or ``## Heading`` is a heading;
- lines ``- item`` or ``* item`` make a list; lines ``1. item`` a numbered list;
- a line ``> text`` is a quotation;
- inside a line, ``**bold**`` and ``[text](https://address)`` (http and https only; any
  other address is shown as the text it is).

Anything else is text, shown as typed: ``<script>`` is eight characters on the page.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

__all__ = [
    "AUTHOR_MAX",
    "BODY_MAX",
    "CAPTION_MAX",
    "CATEGORIES",
    "EDITOR_ROLES",
    "EXCERPT_CHARS",
    "LANGUAGES",
    "LINKS_MAX",
    "LINK_LABEL_MAX",
    "MEDIA_MAX",
    "STATES",
    "SUMMARY_MAX",
    "TITLE_MAX",
    "URL_MAX",
    "URL_RE",
    "Category",
    "Language",
    "State",
    "excerpt",
    "is_editor",
    "media_kind",
    "plain_text",
    "publish_refusal",
]

Category = Literal["safety", "news", "announcement", "law"]
"""安全知识, 新闻, 公告, 法规 — the kinds of article the bureau publishes."""
CATEGORIES: Final[tuple[str, ...]] = get_args(Category)

State = Literal["draft", "published"]
STATES: Final[tuple[str, ...]] = get_args(State)

Language = Literal["zh-CN", "en"]
"""One article is in one language; a reader sees the articles of the language they read."""
LANGUAGES: Final[tuple[str, ...]] = get_args(Language)

EDITOR_ROLES: Final = ("admin", "regulator")

TITLE_MAX: Final = 200
SUMMARY_MAX: Final = 500
"""A list's card: two or three lines on a phone."""
BODY_MAX: Final = 20_000
"""Characters of the text: a long notice or the relevant articles of a regulation. A whole
law goes as a PDF attachment, which is what attachments are for."""
AUTHOR_MAX: Final = 100
"""A by-line: the office that writes (市场监督管理局特种设备安全监察科), not a person."""
CAPTION_MAX: Final = 200
LINKS_MAX: Final = 5
LINK_LABEL_MAX: Final = 100
URL_MAX: Final = 500
MEDIA_MAX: Final = 20
"""Pictures, clips and documents of one article: a page a phone still loads."""
EXCERPT_CHARS: Final = 120
"""The plain-text excerpt of a list's card when the article has no summary."""

URL_RE: Final = r'^https?://[^\s<>"]+$'
"""A link's address (migration 0180 checks the same): http(s), no spaces or quotes."""

MediaKind = Literal["image", "video", "file"]


def is_editor(role: str | None) -> bool:
    return role in EDITOR_ROLES


def media_kind(mime: str) -> MediaKind:
    """How a page shows an upload: a picture, a clip played from the platform, a download."""
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    return "file"


def publish_refusal(title: str, body: str, media_count: int) -> str | None:
    """Why an article may not be published yet (None: it may): a title, and something to
    read or look at — a text, or at least one picture, clip or document."""
    if not title.strip():
        return "title: an article needs a title to be published"
    if not body.strip() and media_count == 0:
        return "body: write the text or attach a picture, clip or document first"
    return None


_BLOCK_MARK = re.compile(r"^\s*(?:#{1,2}\s+|[-*]\s+|\d{1,3}\.\s+|>\s?)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s<>\")]+)\)")


def plain_text(body: str) -> str:
    """The text of *body* without its markup, on one line (for excerpts and search)."""
    lines = []
    for line in body.splitlines():
        line = _BLOCK_MARK.sub("", line)
        line = _LINK.sub(r"\1", line)
        line = _BOLD.sub(r"\1", line)
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines)


def excerpt(summary: str | None, body: str, limit: int = EXCERPT_CHARS) -> str:
    """What a list shows under a title: the summary, else the start of the text."""
    text = (summary or "").strip() or plain_text(body)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
