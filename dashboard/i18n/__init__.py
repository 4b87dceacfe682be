"""The regulator pages' strings (docs/ARCHITECTURE.md §8: zh-CN by default, English available).

One table per language, kept as several files so that each group of work pages owns its own
strings: ``{lang}.json`` holds the shared words (navigation, statuses, errors), and each file
under ``{lang}/`` the strings of one group of pages (``{lang}/registration.json`` ...). They are
merged into one table; a key defined twice is refused at load (two pages would otherwise fight
over one word). Language negotiation is the kernel's (:mod:`server.kernel.i18n`), shared with the
wall and the officer PWA.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

from server.kernel.i18n import Translator
from server.kernel.i18n import translator as _translator

__all__ = ["strings", "translator"]

I18N_DIR = Path(__file__).resolve().parent


def _read(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a string table is a JSON object")
    return {str(k): str(v) for k, v in data.items()}


@cache
def strings(lang: str) -> Mapping[str, str]:
    """All strings of *lang*, merged from its files (read once per process)."""
    table = _read(I18N_DIR / f"{lang}.json")
    part_dir = I18N_DIR / lang
    for path in sorted(part_dir.glob("*.json")) if part_dir.is_dir() else ():
        part = _read(path)
        twice = sorted(set(part) & set(table))
        if twice:
            raise ValueError(f"{path}: keys defined in another file too: {twice[:5]}")
        table.update(part)
    return MappingProxyType(table)


def translator(lang: str) -> Translator:
    """``t(key, **vars)`` over the regulator pages' table of *lang*."""
    return _translator(strings(lang))
