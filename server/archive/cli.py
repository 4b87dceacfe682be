"""`cylwatch import cylinders` and `cylwatch export cylinders` (docs/ARCHITECTURE.md §9, docs/API.md).

The command line acts as an admin (an operator with shell access to the server), or as one
company's administrator with `--as-company`. Exports are written next to the target and
renamed when complete, so a failed export never leaves half a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg

from server.archive.exporter import (
    ExportFilters,
    count_export,
    export_csv_chunks,
    write_xlsx,
)
from server.archive.importer import import_archive
from server.archive.interface import ARCHIVE_COLUMNS, REQUIRED_COLUMNS, ArchiveFileError
from server.archive.reader import open_archive
from server.kernel.audit import audit
from server.kernel.principal import Principal
from server.kernel.settings import Settings


def cli_principal(company_id: int | None = None) -> Principal:
    """Who the command line acts as: an operator with shell access to the server is an
    admin (docs/ARCHITECTURE.md §7); `--as-company` narrows that to one company's administrator.
    `user_id` 0 marks the command line in the audit log (no users row has id 0)."""
    try:
        who = getpass.getuser()
    except Exception:  # no login name in some containers
        who = "unknown"
    if company_id is not None:
        return Principal(
            user_id=0, username=f"cli:{who}", role="company_admin", company_id=company_id
        )
    return Principal(user_id=0, username=f"cli:{who}", role="admin")


def _progress_bar(total: int | None, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit=" rows", unit_scale=True, disable=None, file=sys.stderr
    )


IMPORT_HELP = """\
Import a cylinder archive (CSV or XLSX, docs/ARCHITECTURE.md §9) as an idempotent upsert on tag.

Columns (header required, any order, case-insensitive): {columns}.
Required: {required}. Columns the interface does not know are ignored with a warning.
CSV may be UTF-8 (with or without BOM) or GBK/GB18030; XLSX is read from its first sheet.
Dates are YYYY-MM-DD (XLSX date cells too). Empty next_inspection_date / scrap_date are
derived from the rules of DOMAIN.md, an empty volume_l from the model, an empty status is
in_service. A tag repeated in the file: the first good line wins, later ones are rejected.

Rejected rows are listed (line, column, value, reason; beyond [http]
max_rejected_rows_kept only counted) and the good rows are stored.
Exit status: 0 when the file was processed (rows may have been rejected: see the summary
and --report); 1 when the file could not be read (nothing stored) or every row was
rejected; 2 bad configuration; 3 a service is down.
"""


def add_commands(sub: Any) -> None:
    imp = sub.add_parser("import", help="import archives (cylinders)")
    isub = imp.add_subparsers(dest="import_what", metavar="WHAT")
    isub.required = True
    p = isub.add_parser(
        "cylinders",
        help="import a cylinder archive from CSV or XLSX",
        description=IMPORT_HELP.format(
            columns=", ".join(ARCHIVE_COLUMNS), required=", ".join(REQUIRED_COLUMNS)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="the CSV or XLSX file")
    p.add_argument(
        "--as-company",
        metavar="CODE",
        help="act as that company's administrator: only its own cylinders may be touched",
    )
    p.add_argument("--dry-run", action="store_true", help="check everything, store nothing")
    p.add_argument("--report", metavar="CSV", help="write the rejected rows to this CSV file")
    p.set_defaults(func=cmd_import_cylinders)

    exp = sub.add_parser("export", help="export archives (cylinders)")
    esub = exp.add_subparsers(dest="export_what", metavar="WHAT")
    esub.required = True
    p = esub.add_parser(
        "cylinders",
        help="export the cylinder archive to CSV or XLSX",
        description="Export the cylinder archive (docs/ARCHITECTURE.md §9 columns) as CSV (UTF-8 with BOM, "
        "so Excel shows Chinese correctly) or XLSX (more than 1,048,575 rows continue on a "
        "further sheet). Streams: memory stays flat at any size. The command line exports "
        "as an admin (everything) unless filtered.",
    )
    p.add_argument("-o", "--output", required=True, help="output file (.csv or .xlsx)")
    p.add_argument("--format", choices=("csv", "xlsx"), help="default: from the file extension")
    p.add_argument("--company", metavar="CODE", help="only this owner company")
    p.add_argument("--status", help="only this status")
    p.add_argument("--district", metavar="CODE", help="only cylinders now in this district")
    p.add_argument("--spec", help="only this model, e.g. YSP35.5")
    p.set_defaults(func=cmd_export_cylinders)


async def cmd_import_cylinders(args: argparse.Namespace, settings: Settings) -> int:
    from server.db.pool import connect

    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        print(f"cylwatch: no such file: {path}", file=sys.stderr)
        return 1
    conn = await connect(settings)
    try:
        company_id = None
        if args.as_company:
            company_id = await conn.fetchval(
                "SELECT id FROM companies WHERE code = $1", args.as_company
            )
            if company_id is None:
                print(f"cylwatch: no company with code {args.as_company!r}", file=sys.stderr)
                return 1
        principal = cli_principal(company_id)
        try:
            src = await asyncio.to_thread(open_archive, path, settings.http)
        except ArchiveFileError as exc:
            print(f"cylwatch: {path.name}: {exc.message}", file=sys.stderr)
            return 1
        bar = _progress_bar(src.total_hint, f"import {path.name}")
        try:
            report = await import_archive(
                conn,
                src,
                settings,
                principal,
                filename=path.name,
                dry_run=args.dry_run,
                progress=bar.update,
            )
        except ArchiveFileError as exc:
            bar.close()
            print(f"cylwatch: {path.name}: {exc.message}", file=sys.stderr)
            if exc.stored_before_line is not None and not args.dry_run:
                print(
                    f"cylwatch: rows before line {exc.stored_before_line} were stored; the import"
                    " is idempotent: fix the file and import it again",
                    file=sys.stderr,
                )
            return 1
        finally:
            src.close()
        bar.close()
    finally:
        await conn.close()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    shown = report.rejected[:20]
    for r in shown:
        col = f" [{r.column}]" if r.column else ""
        print(f"line {r.line}{col}: {r.reason}", file=sys.stderr)
    if report.rejected_total > len(shown):
        more = report.rejected_total - len(shown)
        print(f"... and {more} more rejected row(s)", file=sys.stderr)
    if args.report:
        await asyncio.to_thread(
            Path(args.report).write_text, report.rejected_csv(), encoding="utf-8-sig"
        )
    verb = "would be" if args.dry_run else "were"
    print(
        f"{path.name}: {report.total_rows} row(s): {report.inserted} inserted, {report.updated}"
        f" updated, {report.unchanged} unchanged, {report.rejected_total} rejected"
        f"{' (dry run: nothing stored)' if args.dry_run else ''}"
    )
    if report.rejected:
        where = f" listed in {args.report}" if args.report else " (use --report FILE for the list)"
        print(f"warning: {report.rejected_total} row(s) {verb} rejected{where}", file=sys.stderr)
    if report.total_rows and report.stored == 0:
        return 1
    return 0


async def cmd_export_cylinders(args: argparse.Namespace, settings: Settings) -> int:
    from server.db.pool import connect

    out = Path(args.output)
    fmt = args.format or out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        print("cylwatch: say --format csv or xlsx (or name the file .csv / .xlsx)", file=sys.stderr)
        return 1
    filters = ExportFilters(args.company, args.status, args.district, args.spec)
    principal = cli_principal()
    conn = await connect(settings)
    try:
        # one snapshot for the count and the rows: the progress bar and the audit agree
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            rows = await count_export(conn, principal, filters)
            bar = _progress_bar(rows, f"export {out.name}")
            # written next to the target, then renamed: a failed export leaves no half file
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
            os.close(fd)
            try:
                if fmt == "csv":
                    await _export_csv_file(conn, principal, filters, tmp, bar.update)
                else:
                    await write_xlsx(conn, principal, filters, tmp, bar.update)
                os.replace(tmp, out)
            finally:
                bar.close()
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        await audit(
            conn,
            principal,
            "cylinder.export",
            "cylinder",
            None,
            {"format": fmt, "rows": rows, "file": out.name, **asdict(filters)},
        )
    finally:
        await conn.close()
    print(f"exported {rows} cylinder(s) to {out}")
    return 0


async def _export_csv_file(
    conn: asyncpg.Connection,
    principal: Principal,
    filters: ExportFilters,
    path: str,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the CSV export to a file (progress counts line ends, less the header's)."""
    header_pending = True
    with open(path, "wb") as fh:  # noqa: ASYNC230 - local file, writes of COPY-sized chunks
        async for chunk in export_csv_chunks(conn, principal, filters):
            fh.write(chunk)
            n = chunk.count(b"\n")
            if header_pending and n:
                n, header_pending = n - 1, False
            if progress is not None and n:
                progress(n)
