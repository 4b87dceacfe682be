"""Which language a page speaks, and its string tables (docs/ARCHITECTURE.md "Pages").

Every page surface — the regulator pages, the officer PWA (``/m``) and the command-centre
wall — negotiates its language the same way, so the negotiation lives here and each surface
keeps only its own string table (one JSON file per language in its own folder). Why JSON
files and not gettext: the same strings serve the server-rendered templates and the page
scripts (handed over once per page as JSON), there is no build step, and a test can check
that every key exists in every language. A missing key renders as the key itself, so a gap
is visible on screen instead of crashing a page.

The language of a request, by precedence: ``?lang=`` (remembered in a cookie), the cookie,
the user's profile language, then ``[http] default_language`` (docs/CONFIG.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aiohttp import web

from server.kernel.appkeys import SETTINGS
from server.kernel.principal import principal_of

__all__ = [
    "LANGUAGES",
    "LANG_COOKIE",
    "Translator",
    "load_strings",
    "normalize",
    "remember_language",
    "request_language",
    "translator",
]

LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
"""Supported UI languages; the first is the fallback when nothing else matches."""
LANG_COOKIE = "cylwatch_lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

Translator = Callable[..., str]


def normalize(tag: str | None) -> str | None:
    """Map a language tag (``en-US``, ``zh``, ``zh-cn``) onto a supported language or None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    if primary == "en":
        return "en"
    if primary == "zh":
        return "zh-CN"
    return None


@cache
def load_strings(path: Path) -> Mapping[str, str]:
    """A string table (``{key: text}``) read once per process from *path*."""
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return MappingProxyType({str(k): str(v) for k, v in data.items()})


def translator(table: Mapping[str, str]) -> Translator:
    """``t(key, **vars)``: the string for *key* with ``{name}`` placeholders filled in."""

    def t(key: str, **values: Any) -> str:
        text = table.get(key, key)
        if values:
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    return t


def request_language(request: web.Request) -> tuple[str, bool]:
    """The language for this request, and whether it was chosen by ``?lang=`` just now."""
    chosen = normalize(request.query.get("lang"))
    if chosen:
        return chosen, True
    cookie = normalize(request.cookies.get(LANG_COOKIE))
    if cookie:
        return cookie, False
    p = principal_of(request)
    if p is not None:
        profile = normalize(p.language)
        if profile:
            return profile, False
    default = normalize(request.app[SETTINGS].http.default_language)
    return default or LANGUAGES[0], False


def remember_language(response: web.StreamResponse, lang: str) -> None:
    """Keep an explicit choice for the next pages (a plain preference, not a credential)."""
    response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, path="/", samesite="Lax")
