"""The regulator pages' strings, one JSON file per language (docs/ARCHITECTURE.md §8: zh-CN by default,
English available). Language negotiation is the kernel's (:mod:`server.kernel.i18n`), shared
with the wall and the officer PWA; this package holds only the table of these pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from server.kernel.i18n import Translator, load_strings
from server.kernel.i18n import translator as _translator

__all__ = ["strings", "translator"]

I18N_DIR = Path(__file__).resolve().parent


def strings(lang: str) -> Mapping[str, str]:
    """All strings of *lang* (read once per process)."""
    return load_strings(I18N_DIR / f"{lang}.json")


def translator(lang: str) -> Translator:
    """``t(key, **vars)`` over the regulator pages' table of *lang*."""
    return _translator(strings(lang))
