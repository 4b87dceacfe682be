"""Archive import/export over HTTP (docs/ARCHITECTURE.md §9): `POST /api/v1/cylinders/import` and
`GET /api/v1/cylinders/export`.

The work is `server.archive`'s; this module only moves bytes: an upload goes to a
temporary file first (calamine needs a seekable file, and the CSV encoding is decided over
the whole file before a row is stored), an export streams out as it is produced. Every
problem with the file itself is a 400 `invalid_file` naming it; a problem with rows is in
the report, never an error status.

Import answers JSON (the report, with at most `MAX_REJECTED_JSON` rejected rows listed
and their total count) or, with `?report=csv`, the rejected rows as CSV (line, column, value,
reason) with the counts in `X-Import-*` headers — every one of them up to `[http]
max_rejected_rows_kept` (docs/CONFIG.md), beyond which they are counted, not kept — and no
link to a stored report is needed. `?report=rows` gives the rejected rows back in the file's
own columns with a `reason` column, to correct and upload again (`server.archive.rejected`);
the import page asks for it with a dry run. `GET /api/v1/cylinders/import/template` is an
empty archive (the header row) to start a file from.

The rules a row obeys are the import's, and a change of an existing cylinder is judged by
the rule a change by hand obeys (`server.domain.record_changes`): the file is no side door.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import AsyncIterator
from typing import IO, Final

from aiohttp import BodyPartReader, web

from server.api.common import API, Param, api_doc, check_query, today
from server.api.cylinders import LIST_QUERY, search_where
from server.archive import (
    ARCHIVE_COLUMNS,
    IMPORT_ROLES,
    ArchiveFileError,
    ExportFilters,
    export_csv_chunks,
    export_filename,
    import_archive,
    open_archive,
    write_xlsx,
)
from server.archive.rejected import rejected_rows_csv
from server.domain.statuses import ROLES
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import json_response, q_bool, q_choice, q_str
from server.kernel.limits import body_limit
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.kernel.tabular import CSV_MIME, XLSX_MIME, send_file, stream_table

log = logging.getLogger(__name__)

MAX_REJECTED_JSON: Final = 1000
"""Rejected rows listed in a JSON report (the total is always given; `?report=csv` lists
all): a browser showing a million-line JSON helps nobody."""

RAW_TYPES: Final = frozenset(
    {
        CSV_MIME,
        "application/csv",
        "text/plain",
        XLSX_MIME,
        "application/vnd.ms-excel",
        "application/octet-stream",
    }
)
"""Content types accepted as a raw upload body; the content decides the format."""

_CHUNK: Final = 1 << 16

REPORT_FORMATS: Final = ("json", "csv", "rows")
"""`?report=` of an import: the JSON report, the rejected rows as a list, or the rejected
rows in the file's own columns (module docstring)."""

TEMPLATE_NAME: Final = "cylinder-archive"
"""File name (without extension) of the empty archive."""


async def _write_stream(chunks: AsyncIterator[bytes], fh: IO[bytes], limit: int) -> int:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413,
                errors.PAYLOAD_TOO_LARGE,
                f"the file is larger than {limit} bytes",
                {"limit_bytes": limit},  # as the body-limit middleware says it
            )
        await asyncio.to_thread(fh.write, chunk)
    return size


async def _receive(request: web.Request, path: str) -> str | None:
    """Store the uploaded file at *path*; return its name when the client gave one."""
    limit = request.app[SETTINGS].http.max_upload_mb * 1024 * 1024
    ctype = request.content_type
    filename = q_str(request, "filename", max_len=255)
    with open(path, "wb") as fh:  # noqa: ASYNC230 - a local temp file; writes go to a thread
        if ctype == "multipart/form-data":
            if request.body_exists and request.content.at_eof():
                # the CSRF check of a cookie session already parsed the form
                form = await request.post()
                part = form.get("file")
                if not isinstance(part, web.FileField):
                    raise ApiError(400, errors.INVALID_FILE, "the form has no file field 'file'")
                await asyncio.to_thread(shutil.copyfileobj, part.file, fh)
                return _upload_name(part.filename) or filename
            reader = await request.multipart()
            async for item in reader:
                if isinstance(item, BodyPartReader) and item.name == "file":
                    await _write_stream(_part_chunks(item), fh, limit)
                    return _upload_name(item.filename) or filename
            raise ApiError(400, errors.INVALID_FILE, "the form has no file field 'file'")
        if ctype in RAW_TYPES:
            await _write_stream(request.content.iter_chunked(_CHUNK), fh, limit)
            return filename
    raise ApiError(
        415,
        errors.UNSUPPORTED_MEDIA_TYPE,
        "send the archive as multipart/form-data (field 'file') or as a raw body with "
        f"Content-Type {CSV_MIME} or {XLSX_MIME} (got {ctype or 'none'})",
    )


def _upload_name(name: str | None) -> str | None:
    """Browsers send a UTF-8 file name as is; aiohttp's client percent-encodes it."""
    if name and "%" in name:
        return urllib.parse.unquote(name)
    return name


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK):
        yield chunk


@api_doc(
    "Import a cylinder archive (CSV or XLSX)",
    tags=["cylinders"],
    roles=IMPORT_ROLES,
    query=(
        Param("dry_run", "boolean", "check everything and report, store nothing"),
        Param(
            "report",
            "string",
            "json (default); csv: all rejected rows (line, column, value, reason); rows: the "
            "rejected rows in the file's own columns plus a reason column, to correct",
            REPORT_FORMATS,
        ),
        Param("filename", "string", "the file's name for the report and audit (raw uploads)"),
    ),
    formats=("csv", "xlsx"),
    responses={
        200: "the import report",
        400: "invalid_file: not CSV/XLSX, undecodable, or a header without required columns",
        413: "file larger than http.max_upload_mb",
        415: "neither multipart/form-data nor a CSV/XLSX body",
    },
    description="Idempotent upsert on tag (docs/ARCHITECTURE.md §9). Body: multipart/form-data with a "
    "'file' field, or the raw file (text/csv or the XLSX type). Rejected rows are reported "
    "with line, column, value and reason; the good rows are stored. A company administrator "
    "may only import its own company's cylinders. A row that changes an existing cylinder "
    "obeys the field and status rules of PATCH /api/v1/cylinders/{id} for the caller's role "
    "and records the same trajectory events.",
)
@body_limit("upload")
async def import_cylinders(request: web.Request) -> web.StreamResponse:
    """Upload → temp file → `import_archive` → report."""
    p = require(request, *IMPORT_ROLES)
    check_query(request, ["dry_run", "report", "filename"])
    dry_run = bool(q_bool(request, "dry_run"))
    fmt = q_choice(request, "report", REPORT_FORMATS) or "json"
    settings = request.app[SETTINGS]
    fd, path = tempfile.mkstemp(prefix="cylwatch-import-")
    os.close(fd)
    try:
        filename = await _receive(request, path)
        try:
            src = await asyncio.to_thread(open_archive, path, settings.http)
        except ArchiveFileError as exc:
            raise ApiError(400, errors.INVALID_FILE, exc.message) from None
        try:
            async with request.app[POOL].acquire() as conn:
                report = await import_archive(
                    conn,
                    src,
                    settings,
                    p,
                    filename=filename,
                    dry_run=dry_run,
                    remote=request.remote,
                    keep_rejected_cells=fmt == "rows",
                )
        except ArchiveFileError as exc:
            raise ApiError(
                400,
                errors.INVALID_FILE,
                exc.message,
                {"stored_before_line": None if dry_run else exc.stored_before_line},
            ) from None
        finally:
            src.close()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if fmt != "json":
        headers = {
            f"X-Import-{k.replace('_', '-').title()}": str(v)
            for k, v in (
                ("total_rows", report.total_rows),
                ("inserted", report.inserted),
                ("updated", report.updated),
                ("unchanged", report.unchanged),
                ("rejected", report.rejected_total),
                ("dry_run", str(dry_run).lower()),
            )
        }
        text = report.rejected_csv() if fmt == "csv" else rejected_rows_csv(report)
        return web.Response(
            body=text.encode("utf-8-sig"),
            content_type=CSV_MIME,
            charset="utf-8",
            headers={**headers, "Content-Disposition": 'attachment; filename="rejected.csv"'},
        )
    return json_response(report.to_json(MAX_REJECTED_JSON))


@api_doc(
    "An empty cylinder archive to fill in (the import's columns)",
    tags=["cylinders"],
    roles=IMPORT_ROLES,
    query=(Param("format", "string", "csv (UTF-8 with BOM, default) or xlsx", ("csv", "xlsx")),),
    formats=("csv", "xlsx"),
    description="The header row of the archive interface (docs/ARCHITECTURE.md §9) and no "
    "data: the file a person starts an import from.",
)
async def import_template(request: web.Request) -> web.StreamResponse:
    require(request, *IMPORT_ROLES)
    check_query(request, ["format"])
    fmt = q_choice(request, "format", ("csv", "xlsx")) or "csv"
    return await stream_table(request, fmt, TEMPLATE_NAME, ARCHIVE_COLUMNS, _no_rows())


async def _no_rows() -> AsyncIterator[list[str]]:
    return
    yield []  # an async generator that yields nothing


EXPORT_QUERY: Final = (
    Param("format", "string", "csv (UTF-8 with BOM) or xlsx", ("csv", "xlsx")),
    *LIST_QUERY,
)
"""The cylinder search's filters (``server.api.cylinders.LIST_QUERY``: company code or id,
compliance, status, district…) and the file format: a page's export holds what its search
lists."""


@api_doc(
    "Export the cylinder archive (CSV or XLSX, streamed)",
    tags=["cylinders"],
    roles=ROLES,
    query=EXPORT_QUERY,
    formats=("csv", "xlsx"),
    description="The docs/ARCHITECTURE.md §9 columns, limited to the caller's scope and to the "
    "cylinder search's filters (the same query parameters as GET /api/v1/cylinders, "
    "compliance included). CSV streams as "
    "PostgreSQL produces it (UTF-8 with BOM so that Excel shows Chinese correctly); XLSX is "
    "built in constant memory into a temporary file, then sent, so its first byte comes "
    "only when the workbook is complete.",
)
async def export_cylinders(request: web.Request) -> web.StreamResponse:
    p = require(request)
    check_query(request, [x.name for x in EXPORT_QUERY])
    fmt = q_choice(request, "format", ("csv", "xlsx")) or "csv"
    settings = request.app[SETTINGS]
    day = today(settings)
    # the search's own conditions, checked here (a bad value is a 400 before any byte goes
    # out) and built again for the export's statement with its parameters
    search_where(request, Sql(), settings, day)
    filters = ExportFilters(search=lambda q: search_where(request, q, settings, day))
    name = export_filename(fmt, day)
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    pool = request.app[POOL]
    if fmt == "csv":
        resp = web.StreamResponse(
            headers={"Content-Type": "text/csv; charset=utf-8", "Content-Disposition": disposition}
        )
        resp.enable_chunked_encoding()
        lines = 0
        async with (
            pool.acquire() as conn,
            conn.transaction(readonly=True, isolation="repeatable_read"),
        ):
            chunks = export_csv_chunks(conn, p, filters)
            try:
                async for chunk in chunks:
                    if not resp.prepared:
                        await resp.prepare(request)
                    await resp.write(chunk)
                    lines += chunk.count(b"\n")
            except ConnectionResetError:
                log.info("export: client went away after %d lines", lines)
                return resp
            finally:
                await chunks.aclose()
        await _audit_export(request, fmt, max(lines - 1, 0))
        await resp.write_eof()
    else:
        fd, path = tempfile.mkstemp(prefix="cylwatch-export-", suffix=".xlsx")
        os.close(fd)
        try:
            async with pool.acquire() as conn:
                rows = await write_xlsx(conn, p, filters, path)
            await _audit_export(request, fmt, rows)
            return await send_file(
                request, path, {"Content-Type": XLSX_MIME, "Content-Disposition": disposition}
            )
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return resp


async def _audit_export(request: web.Request, fmt: str, rows: int) -> None:
    """Exports are reads, but a whole archive leaving the platform is worth a line in the
    audit log (who, how many rows, which filters as given); written before the response
    completes so that a client seeing the end of the file can find the audit row."""
    given = {x.name: request.query[x.name] for x in LIST_QUERY if request.query.get(x.name)}
    await audit(
        request.app[POOL],
        require(request),
        "cylinder.export",
        "cylinder",
        None,
        {"format": fmt, "rows": rows, **given},
        request.remote,
    )


def routes() -> list[web.RouteDef]:
    return [
        web.post(f"{API}/cylinders/import", import_cylinders),
        web.get(f"{API}/cylinders/import/template", import_template, allow_head=False),
        web.get(f"{API}/cylinders/export", export_cylinders, allow_head=False),
    ]
