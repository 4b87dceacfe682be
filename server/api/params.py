"""What a REST request carries: its body, its query parameters, the fields it may set.

Why one module: every endpoint must refuse bad input alike — a misspelt filter is a 400,
never a silent "everything"; a bad value names its field; a PATCH changes only the fields
it carries (docs/API.md "Conventions" and "Errors"). The generic parsers (``q_str``,
``q_id``, ``q_district``, ``q_page``…) are the kernel's (``server.kernel.http``); these are
the API's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web

from server.api.fields import UNSET
from server.kernel import errors
from server.kernel.errors import ApiError, bad_query
from server.kernel.http import q_id, q_str, read_json
from server.kernel.principal import Principal
from server.kernel.scope import Sql

__all__ = [
    "changes",
    "check_query",
    "company_filter",
    "contains",
    "deny_fields",
    "like_prefix",
    "q_format",
    "read_body",
    "require_some",
]

T = TypeVar("T")
_ALWAYS_ALLOWED: Final = frozenset({"page", "page_size", "lang"})


async def read_body(request: web.Request, schema: type[T]) -> T:
    """The body as *schema*; kept as the API modules' name for `server.kernel.http.read_json`."""
    return await read_json(request, schema)


def changes(body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carries (UNSET ones are absent)."""
    return {
        name: getattr(body, name)
        for name in body.__struct_fields__
        if getattr(body, name) is not UNSET
    }


def require_some(fields: Mapping[str, Any]) -> None:
    if not fields:
        raise ApiError(400, errors.INVALID_FIELD, "body: no field to change", {"field": "body"})


def deny_fields(p: Principal, fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """403 naming the first field the caller's role may not set."""
    for name in fields:
        if name not in allowed:
            raise ApiError(
                403,
                errors.FORBIDDEN,
                f"{name}: role {p.role} may not set this field",
                {"field": name},
            )


def check_query(request: web.Request, allowed: Sequence[str]) -> None:
    """Refuse unknown query parameters: a misspelt filter must not silently return everything."""
    known = set(allowed) | _ALWAYS_ALLOWED
    for name, value in request.query.items():
        if name not in known:
            raise bad_query(name, f"unknown parameter; known: {', '.join(sorted(known))}")
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it here, not as a 500
            raise bad_query(name, "must not contain NUL characters")


def q_format(request: web.Request, formats: Sequence[str] = ("json", "csv", "xlsx")) -> str:
    raw = request.query.get("format") or "json"
    if raw not in formats:
        raise bad_query("format", f"must be one of {', '.join(formats)}")
    return raw


def company_filter(request: web.Request, column: str, q: Sql, name: str = "company") -> str | None:
    """`company=` as a company id or code (one indexed lookup either way)."""
    raw = q_str(request, name, max_len=64)
    if raw is None:
        return None
    if raw.isdigit():
        cid = q_id(request, name)
        return f"{column} = {q.add(cid)}"
    return f"{column} = (SELECT id FROM companies WHERE code = {q.add(raw)})"


def like_prefix(value: str) -> tuple[str, str]:
    """Bounds for a sargable prefix search with text_pattern_ops (`~>=~` / `~<~`) operators.

    `LIKE $1 || '%'` cannot use an index under a generic prepared plan; a range on the
    pattern-ops index can.
    """
    last = value[-1]
    upper = value[:-1] + chr(min(ord(last) + 1, 0x10FFFF))
    return value, upper


def contains(value: str) -> str:
    """An ILIKE pattern matching *value* anywhere, with LIKE's wildcards escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
