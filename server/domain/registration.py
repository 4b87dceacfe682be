"""Who registers a cylinder (建档), and what each registrant may state when it does.

Why (docs/ARCHITECTURE.md §1, §4): the inspection agency registers cylinders, and the owner
company keeps its own archive — it already imports its own cylinders, so refusing it the
one-cylinder form would only push it to upload a one-line file. But a company's word is not
enough for the facts that decide whether a cylinder may be filled: the last and next
inspection dates, the scrap date, the inspection count and the status are findings of an
inspection agency (TSG 23-2021, GB/T 8334-2022). When a company registers, they are derived
from the manufacture date by :mod:`server.domain.dates` — the strictest reading, since an
inspection can only move them later — and the district follows the owner or the site.

Pure: a role and the names of the fields a request states in, a decision out. The API maps a
refusal onto its 403 naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "INSPECTION_FINDINGS",
    "REGISTRANT_ROLES",
    "refused_at_registration",
]

REGISTRANT_ROLES: Final[tuple[str, ...]] = ("admin", "inspector", "company_admin")
"""Roles that may register a cylinder; a company admin only for its own company."""

INSPECTION_FINDINGS: Final[frozenset[str]] = frozenset(
    {
        "last_inspection_date",
        "next_inspection_date",
        "scrap_date",
        "inspection_count",
        "status",
    }
)
"""Fields of the archive an inspection agency answers for (module docstring)."""

_REFUSED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {"company_admin": INSPECTION_FINDINGS | {"district_code"}}
)
"""Fields each role may not state at registration (a role not listed may state all)."""


def refused_at_registration(role: str, stated: Iterable[str]) -> str | None:
    """The first of *stated* (in the order given) that *role* may not state when registering a
    cylinder, or None when it may state them all."""
    refused = _REFUSED.get(role, frozenset())
    for name in stated:
        if name in refused:
            return name
    return None
