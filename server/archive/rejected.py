"""The rejected rows of an import given back as a file to correct and upload again
(docs/ARCHITECTURE.md §9, docs/API.md "Cylinders", import `report=rows`).

A person fixes a refused row where it was written: in the file's own columns, spelled as the
file spells them, with one more column saying why the row was refused. Uploading the
corrected file is then the whole round trip — the `reason` column is not part of the archive
interface and is ignored with a warning, and a `reason` column the uploaded file already had
(a second round) is replaced rather than repeated.

It is an export like any other (`server.kernel.tabular`): a cell such as `=HYPERLINK(…)`
comes back neutralised as text, never as a formula, and the importer takes the quote off
again (`server.kernel.tabular.restore`).
"""

from __future__ import annotations

from typing import Final

from server.archive.interface import ImportReport, RejectedRow
from server.archive.validation import show
from server.kernel.tabular import CsvWriter

REASON_COLUMN: Final = "reason"
"""The column added to the file's own: why the row was refused."""


def _reason(row: RejectedRow) -> str:
    """The reason, prefixed with the column at fault unless it already names it."""
    if not row.column or row.reason.startswith(row.column):
        return row.reason
    return f"{row.column}: {row.reason}"


def rejected_rows_csv(report: ImportReport) -> str:
    """The kept rejected rows as CSV text (no BOM; the caller encodes): the file's header
    (less an earlier `reason` column) plus `reason`, one row per rejected line in file
    order. Needs a report made with ``keep_rejected_cells=True``."""
    header = report.header
    keep = [i for i, name in enumerate(header) if name.strip().lower() != REASON_COLUMN]
    writer = CsvWriter([header[i] for i in keep] + [REASON_COLUMN], bom=False)
    rows = []
    for rejected in sorted(report.rejected, key=lambda r: r.line):
        cells = report.rejected_cells.get(rejected.line, [])
        values = [show(cells[i]) if i < len(cells) else "" for i in keep]
        rows.append([*values, _reason(rejected)])
    writer.add(rows)
    return writer.take()
