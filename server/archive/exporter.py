"""Exporting the archive (docs/ARCHITECTURE.md §9), streamed, in the caller's role scope.

CSV is produced by PostgreSQL itself (`COPY (SELECT …) TO STDOUT`), UTF-8 with a BOM so
that Excel on Chinese Windows opens it without mojibake; PostgreSQL formats CSV at several
times the speed of building it row by row in Python (docs/BENCHMARKS.md). XLSX is written
from a server-side cursor by the platform's streaming writer (`server.kernel.tabular`)
into a file (the format is a ZIP and cannot be written to a pipe). Both keep memory flat
whatever the row count, both neutralise formula injection in every text cell, and both
limit rows to the caller's role scope in SQL (docs/ARCHITECTURE.md §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg

from server.archive.interface import ARCHIVE_COLUMNS, CHUNK_ROWS
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.tabular import (
    CSV_BOM,
    DATE,
    EXCEL_EPOCH,
    NUMBER,
    TEXT,
    XlsxWriter,
    neutralise_sql,
)

_AMOUNTS: Final = frozenset(("tare_kg", "volume_l"))
"""The archive's numeric columns: numbers in an XLSX, as PostgreSQL prints them in a CSV."""
_XLSX_KINDS: Final = tuple(
    DATE if col.endswith("_date") else NUMBER if col in _AMOUNTS else TEXT
    for col in ARCHIVE_COLUMNS
)
"""Typed cells: codes as text (a numeric tag must not become 1.2E+15 in Excel), amounts as
numbers, dates as date cells (the query already gives Excel serial days, see `_select`)."""


SearchTerms = Callable[[Sql], Sequence[str]]
"""Conditions on ``cylinders c`` whose parameters go into the given ``Sql``: the cylinder
search's own filters (``server.api.cylinders.search_where``), so that the export of a page
holds exactly the rows its search lists — compliance included, by the one builder
``server.db.compliance`` (docs/ARCHITECTURE.md §4)."""


@dataclass(frozen=True)
class ExportFilters:
    """What to export (docs/ARCHITECTURE.md §9): owner company (code or id), status, district,
    model — the command line's filters — and/or *search*, the terms of the cylinder search
    (the API passes the page's search through it)."""

    company: str | None = None
    status: str | None = None
    district: str | None = None
    spec: str | None = None
    search: SearchTerms | None = None


def company_term(company: str, q: Sql) -> str:
    """The owner company given as its id (digits, as the pages send it) or as its code (as
    files and the command line name it), like the API's ``company=`` everywhere. One indexed
    lookup either way; an unknown one matches nothing."""
    if company.isascii() and company.isdigit() and 0 < int(company) < 2**63:
        return f"c.owner_company_id = {q.add(int(company))}"
    return f"c.owner_company_id = (SELECT id FROM companies WHERE code = {q.add(company)})"


def _export_sql(principal: Principal, filters: ExportFilters, select: str) -> tuple[str, list[Any]]:
    """The export query: role scope and filters in SQL (docs/ARCHITECTURE.md §7), oldest record first."""
    q = Sql()
    where = [scope_where(principal, "cylinders", "c", q)]
    if filters.search is not None:
        where.extend(filters.search(q))
    if filters.company:
        where.append(company_term(filters.company, q))
    if filters.status:
        where.append(f"c.status = {q.add(filters.status)}")
    if filters.district:
        where.append(f"c.district_code = {q.add(filters.district)}")
    if filters.spec:
        where.append(f"c.spec = {q.add(filters.spec)}")
    from_where = (
        "cylinders c JOIN companies co ON co.id = c.owner_company_id WHERE " + " AND ".join(where)
    )
    if select == "count":
        return f"SELECT count(*) FROM {from_where}", q.params
    return f"SELECT {select} FROM {from_where} ORDER BY c.id", q.params


def _date_as(column: str, fmt: str) -> str:
    if fmt == "text":
        # independent of the session's DateStyle
        return f"to_char(c.{column}, 'YYYY-MM-DD') AS {column}"
    # Excel's serial day number: the XLSX writer stores it with a date format
    return f"(c.{column} - DATE '{EXCEL_EPOCH.isoformat()}') AS {column}"


def _select(fmt: str) -> str:
    """Archive columns in order; `fmt` "text" for CSV, "excel" for typed XLSX cells.

    PostgreSQL writes the CSV itself, so its text columns are neutralised against formula
    injection here, in SQL (`neutralise_sql`); the XLSX writer neutralises its own cells.
    """
    parts: list[str] = []
    for col in ARCHIVE_COLUMNS:
        expr = "co.code" if col == "owner_code" else f"c.{col}"
        if col.endswith("_date"):
            parts.append(_date_as(col, fmt))
        elif col in _AMOUNTS:
            parts.append(f"{expr}::float8 AS {col}" if fmt == "excel" else expr)
        elif fmt == "text":
            parts.append(f"{neutralise_sql(expr)} AS {col}")
        else:
            parts.append(f"{expr} AS {col}")
    return ", ".join(parts)


async def count_export(
    conn: asyncpg.Connection, principal: Principal, filters: ExportFilters
) -> int:
    """Rows an export will hold (for a progress bar and the audit log)."""
    sql, params = _export_sql(principal, filters, "count")
    return int(await conn.fetchval(sql, *params) or 0)


async def export_csv_chunks(
    conn: asyncpg.Connection,
    principal: Principal,
    filters: ExportFilters,
    *,
    queue_chunks: int = 16,
) -> AsyncGenerator[bytes, None]:
    """The archive as CSV bytes (BOM first), streamed from `COPY … TO STDOUT`.

    PostgreSQL formats the CSV in its own process at several times the speed of building it
    row by row in Python (docs/BENCHMARKS.md), and the bytes pass through here without
    becoming Python objects, so memory stays flat. A bounded queue carries them from the
    COPY to the consumer: a slow consumer (a slow HTTP client) slows the COPY down rather
    than buffering the export in memory.
    """
    sql, params = _export_sql(principal, filters, _select("text"))
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(queue_chunks)

    async def sink(data: bytes) -> None:
        await queue.put(bytes(data))

    async def run() -> None:
        try:
            await conn.copy_from_query(sql, *params, output=sink, format="csv", header=True)
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    try:
        yield CSV_BOM
        while (chunk := await queue.get()) is not None:
            yield chunk
        await task  # re-raise a failed COPY
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def iter_export_rows(
    conn: asyncpg.Connection,
    principal: Principal,
    filters: ExportFilters,
    *,
    excel: bool = False,
) -> AsyncGenerator[list[asyncpg.Record], None]:
    """Archive rows in chunks of CHUNK_ROWS from a server-side cursor (flat memory).

    With *excel*, dates come as Excel serial numbers and amounts as floats, ready for an
    XLSX cell; otherwise as the CSV shows them. Opens a read-only repeatable-read
    transaction unless the caller is already in one (a cursor needs a transaction).
    """
    sql, params = _export_sql(principal, filters, _select("excel" if excel else "text"))
    tx = None
    if not conn.is_in_transaction():
        tx = conn.transaction(readonly=True, isolation="repeatable_read")
        await tx.start()
    try:
        cursor = await conn.cursor(sql, *params)
        while records := await cursor.fetch(CHUNK_ROWS):
            yield records
    finally:
        if tx is not None and not conn.is_closed():
            await tx.rollback()  # read-only: nothing to commit


async def write_xlsx(
    conn: asyncpg.Connection,
    principal: Principal,
    filters: ExportFilters,
    path: str | Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the archive as XLSX to *path*; returns the number of rows.

    Cell writing is CPU-bound and runs in a worker thread chunk by chunk, so the event loop
    keeps serving other requests during a long export.
    """
    writer = XlsxWriter(path, ARCHIVE_COLUMNS, kinds=_XLSX_KINDS, sheet_name="cylinders")
    rows = 0
    async for records in iter_export_rows(conn, principal, filters, excel=True):
        await asyncio.to_thread(writer.write, records)
        rows += len(records)
        if progress is not None:
            progress(len(records))
    await asyncio.to_thread(writer.close)
    return rows


def export_filename(fmt: str, day: dt.date) -> str:
    return f"cylinders-{day.isoformat()}.{fmt}"
