"""Constraint violations as client errors naming the field (docs/API.md "Errors").

Why: the database is the last word on uniqueness and references (two requests racing for
the same tag cannot both pass a check in Python), so its refusal must reach the client as
a 409 or 400 that says which field to fix — never as a 500.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Final

import asyncpg

from server.kernel import errors
from server.kernel.errors import ApiError, bad_field

__all__ = ["db_errors"]

_CONSTRAINT_FIELD: Final = re.compile(
    r"^(?:[a-z]+?)_(?P<field>[a-z_]+?)_(?:key|fkey|check|uidx|idx)$"
)
_SUFFIXES: Final = ("_key", "_fkey", "_check", "_uidx", "_idx")

_KNOWN_CONSTRAINTS: Final = {
    "customers_company_id_account_no_key": "account_no",
    "devices_check": "site_id",
    "users_check": "role",
    "users_check1": "site_id",
    "users_check2": "site_id",
    "users_check3": "districts",
    "cylinders_check": "scrap_date",
    "cylinders_scrapped_final": "status",
}
"""Constraints whose name does not spell the one field a client should fix."""


def _field_of(exc: asyncpg.PostgresError, fallback: str) -> str:
    name = getattr(exc, "constraint_name", None) or ""
    if name in _KNOWN_CONSTRAINTS:
        return _KNOWN_CONSTRAINTS[name]
    table = getattr(exc, "table_name", None) or ""
    if table and name.startswith(table + "_"):
        core = name[len(table) + 1 :]
        for suffix in _SUFFIXES:
            if core.endswith(suffix):
                return core[: -len(suffix)]
    m = _CONSTRAINT_FIELD.match(name)
    return m.group("field") if m else fallback


@contextlib.asynccontextmanager
async def db_errors(fallback: str = "body") -> AsyncIterator[None]:
    """Turn constraint violations into 409/400 naming the field (never a 500 for bad input)."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        f = _field_of(exc, fallback)
        raise ApiError(409, errors.CONFLICT, f"{f}: already exists", {"field": f}) from None
    except asyncpg.ForeignKeyViolationError as exc:
        f = _field_of(exc, fallback)
        raise bad_field(f, "refers to a record that does not exist") from None
    except asyncpg.CheckViolationError as exc:
        f = _field_of(exc, fallback)
        raise bad_field(f, "violates a rule of the record") from None
    except asyncpg.NotNullViolationError as exc:
        f = getattr(exc, "column_name", None) or fallback
        raise bad_field(f, "is required") from None
    except (asyncpg.DataError, asyncpg.exceptions.NumericValueOutOfRangeError) as exc:
        raise bad_field(fallback, f"value out of range: {exc.__class__.__name__}") from None
