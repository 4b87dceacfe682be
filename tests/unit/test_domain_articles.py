"""The articles' rules (server.domain.articles): who edits, when an article may be published,
how a medium is shown, and the plain text of the markup (the portal's excerpts)."""

from __future__ import annotations

import re

import pytest

from server.domain import articles as a

pytestmark = pytest.mark.no_services


def test_editors_are_the_bureau() -> None:
    assert [r for r in ("admin", "regulator", "officer", "company_admin") if a.is_editor(r)] == [
        "admin",
        "regulator",
    ]
    assert not a.is_editor(None)


def test_publishing_needs_a_title_and_something_to_read() -> None:
    assert a.publish_refusal("标题", "正文", 0) is None
    assert a.publish_refusal("标题", "", 1) is None  # a PDF alone is an announcement
    assert (a.publish_refusal("标题", "  \n", 0) or "").startswith("body:")
    assert (a.publish_refusal(" ", "正文", 0) or "").startswith("title:")


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/png", "image"),
        ("image/webp", "image"),
        ("video/mp4", "video"),
        ("application/pdf", "file"),
    ],
)
def test_media_kind(mime: str, kind: str) -> None:
    assert a.media_kind(mime) == kind


def test_plain_text_drops_only_the_markup() -> None:
    body = "# 标题\n\n第一段 **重点** 见 [通知](https://gov.example/x)。\n\n- 一\n1. 二\n> 引用\n#不是标题"
    assert a.plain_text(body) == "标题 第一段 重点 见 通知。 一 二 引用 #不是标题"
    # an address that is not http(s) is no link: its text stays as typed
    assert a.plain_text("[x](javascript:alert(1))") == "[x](javascript:alert(1))"
    assert a.plain_text("<script>alert(1)</script>") == "<script>alert(1)</script>"


def test_excerpt_prefers_the_summary_and_is_bounded() -> None:
    assert a.excerpt("摘要", "正文") == "摘要"
    assert a.excerpt(None, "## 正文") == "正文"
    long = a.excerpt("", "字" * 500)
    assert len(long) == a.EXCERPT_CHARS and long.endswith("…")


def test_the_link_pattern_is_the_migrations() -> None:
    url = re.compile(a.URL_RE)
    assert url.match("https://v.example.cn/a?b=1")
    for bad in ("javascript:alert(1)", "https://a b", 'https://x/"><script>', "ftp://x"):
        assert not url.match(bad), bad
