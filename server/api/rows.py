"""Rows in and out of the REST API: scoped reads, pages with a cheap total, generic writes.

Why together: these are the few statement shapes every resource module repeats — read one
row only if the caller's scope holds it (404 otherwise, docs/API.md "Roles and scope"), a
page of rows with its total, INSERT/UPDATE of a master-data row with constraint violations
named — and a row's journey back out as JSON (``plain``), as audit details (``jsonable``)
or, through a server-side cursor, into a streamed file (``iter_rows``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import asyncpg
from aiohttp import web

from server.api.db_errors import db_errors
from server.kernel.appkeys import POOL
from server.kernel.errors import not_found
from server.kernel.http import Page, paged
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

__all__ = [
    "envelope",
    "fetch_in_scope",
    "fetch_page",
    "insert_row",
    "iter_rows",
    "jsonable",
    "plain",
    "update_row",
]

_CURSOR_PREFETCH: Final = 2000
"""Rows fetched per round trip by :func:`iter_rows`: memory stays flat, round trips few."""


async def fetch_page(
    db: asyncpg.Pool | asyncpg.Connection,
    select: str,
    from_where: str,
    order: str,
    q: Sql,
    page: Page,
) -> tuple[list[asyncpg.Record], int]:
    """Rows of one page and the total.

    The count is skipped when the first page is not full (its length *is* the total): a
    lookup by tag, barcode or id then costs one index probe, never a `count(*)`. It counts
    the whole SELECT as a subquery, so parameters only the select list uses (a compliance
    CASE) are still referenced — asyncpg refuses arguments a statement does not use — and
    PostgreSQL drops the unused output columns when it flattens the subquery.
    """
    sql = (
        f"SELECT {select} FROM {from_where} ORDER BY {order}"
        f" LIMIT {page.page_size} OFFSET {page.offset}"
    )
    rows = await db.fetch(sql, *q.params)
    if page.offset == 0 and len(rows) < page.page_size:
        return list(rows), len(rows)
    if rows or page.offset > 0:
        count = f"SELECT count(*) FROM (SELECT {select} FROM {from_where}) AS counted"
        total = await db.fetchval(count, *q.params)
        return list(rows), int(total or 0)
    return [], 0


def envelope(items: list[Any], page: Page, total: int) -> dict[str, Any]:
    """The paging envelope of every list (``server.kernel.http.paged``)."""
    return paged(items, page, total)


async def fetch_in_scope(
    request: web.Request,
    p: Principal,
    *,
    entity: str,
    alias: str,
    select: str,
    row_id: int,
    what: str,
) -> asyncpg.Record:
    """One row of *entity* by id, only if the caller's scope holds it (in SQL).

    Outside the scope is a 404, the same as a row that does not exist: the existence of
    another company's cylinder, customer or device is not disclosed by a 403.
    *select* is the ``SELECT … FROM …`` part naming the row ``alias``.
    """
    q = Sql(row_id)
    row = await request.app[POOL].fetchrow(
        f"{select} WHERE {alias}.id = $1 AND {scope_where(p, entity, alias, q)}", *q.params
    )
    if row is None:
        raise not_found(f"{what} {row_id}")
    return row


def plain(record: Mapping[str, Any], drop: Sequence[str] = ()) -> dict[str, Any]:
    """A row as JSON-ready dict (Decimal → float; dates stay dates for orjson)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in drop:
            continue
        out[key] = float(value) if isinstance(value, Decimal) else value
    return out


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values for an audit row's JSON details (dates as ISO strings)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, (dt.date, dt.datetime)):
            out[k] = v.isoformat()
        elif isinstance(v, Decimal):
            out[k] = float(v)
        elif isinstance(v, Mapping):
            out[k] = jsonable(v)  # a before → after pair (:func:`before_after`)
        else:
            out[k] = v
    return out


async def insert_row(
    conn: asyncpg.Connection, table: str, values: Mapping[str, Any], fallback: str
) -> asyncpg.Record:
    """INSERT … RETURNING * with constraint violations mapped to 409/400 naming the field."""
    q = Sql()
    cols = ", ".join(values)
    vals = ", ".join(q.add(v) for v in values.values())
    async with db_errors(fallback):
        row = await conn.fetchrow(
            f"INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING *", *q.params
        )
    assert row is not None
    return row


async def update_row(
    conn: asyncpg.Connection, table: str, row_id: int, values: Mapping[str, Any], fallback: str
) -> asyncpg.Record:
    """UPDATE one row by id (and `updated_at`), mapping constraint violations like insert_row."""
    q = Sql(row_id)
    sets = ", ".join(f"{k} = {q.add(v)}" for k, v in values.items())
    async with db_errors(fallback):
        row = await conn.fetchrow(
            f"UPDATE {table} SET {sets}, updated_at = now() WHERE id = $1 RETURNING *", *q.params
        )
    assert row is not None
    return row


async def update_row_audited(
    conn: asyncpg.Connection, table: str, row_id: int, values: Mapping[str, Any], fallback: str
) -> tuple[asyncpg.Record, dict[str, Any]]:
    """:func:`update_row`, and the changed columns' values before it, read under a row lock in
    the same transaction: the audit log shows before → after (docs/ARCHITECTURE.md §7), not
    only what was written."""
    cols = ", ".join(values)
    old = await conn.fetchrow(f"SELECT {cols} FROM {table} WHERE id = $1 FOR UPDATE", row_id)
    row = await update_row(conn, table, row_id, values, fallback)
    return row, dict(old.items()) if old is not None else {}


def before_after(
    before: Mapping[str, Any], after: Mapping[str, Any], hidden: Sequence[str] = ()
) -> dict[str, Any]:
    """An audit entry's details for a change: ``{"before": {...}, "after": {...}}`` over the
    changed fields, secrets (*hidden*) shown as ``***`` and unchanged fields left out."""
    b: dict[str, Any] = {}
    a: dict[str, Any] = {}
    for k, v in after.items():
        if k in before and before[k] == v:
            continue
        b[k] = "***" if k in hidden else before.get(k)
        a[k] = "***" if k in hidden else v
    return {"before": b, "after": a}


async def iter_rows(
    pool: asyncpg.Pool, sql: str, params: Sequence[Any], columns: Sequence[str]
) -> AsyncIterator[Sequence[Any]]:
    """Rows of a query through a server-side cursor (flat memory for large exports), as
    ``server.kernel.tabular.stream_table`` takes them."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for rec in conn.cursor(sql, *params, prefetch=_CURSOR_PREFETCH):
            yield [rec[c] for c in columns]
