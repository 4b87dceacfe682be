"""The archive interface of docs/ARCHITECTURE.md §9 (docs/API.md "Cylinder archive"): its columns, who may
import, the limits a row must respect, and what an import reports.

Everything else in `server.archive` — reading, validating, importing, exporting, the
command line — is written against these names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Final

from server.archive.reasons import Reason
from server.kernel.tabular import CsvWriter

ARCHIVE_COLUMNS: Final[tuple[str, ...]] = (
    "tag",
    "stamp",
    "barcode",
    "owner_code",
    "spec",
    "medium",
    "manufacturer",
    "manufacture_date",
    "tare_kg",
    "volume_l",
    "last_inspection_date",
    "next_inspection_date",
    "scrap_date",
    "status",
)
"""Columns of the archive file, in the order exports write them (docs/ARCHITECTURE.md §9)."""

REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("tag", "owner_code", "spec", "manufacture_date")
"""Columns without which no row could be stored: everything else is optional or derived."""

IMPORT_ROLES: Final[tuple[str, ...]] = ("admin", "inspector", "company_admin")
"""Who registers archives (docs/ARCHITECTURE.md §1): agencies (建档), companies (own cylinders), admins."""

CHUNK_ROWS: Final = 5000
"""Rows per staging COPY, upsert and commit; also the export cursor's fetch size. Large
enough that per-statement overhead vanishes, small enough that a chunk's row locks are
held for a fraction of a second."""

TAG_MAX_LEN: Final = 64
"""Longest tag / barcode / stamp accepted: the longest RFID EPC (TID-based, 96-bit → 24 hex)
and QR payloads seen in deployed systems fit comfortably; anything longer is a pasted
sentence, not a code."""

TEXT_MAX_LEN: Final = 200
"""Longest free text (manufacturer, medium) accepted from a file."""

NUMERIC_MAX: Final = Decimal("99999.99")
"""Largest value of the archive's `numeric(7, 2)` columns (0001_base.sql)."""

DEFAULT_MEDIUM: Final = "LPG"
"""Mirrors the `cylinders.medium` column default of 0001_base.sql (the platform is for LPG)."""

Cell = str | int | float | bool | dt.date | dt.datetime | dt.time | dt.timedelta | None


class ArchiveFileError(Exception):
    """The file as a whole cannot be imported (format, encoding, header). Nothing of it is
    stored when this is raised before the first row; `stored_before_line` says otherwise."""

    def __init__(self, message: str, stored_before_line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.stored_before_line = stored_before_line


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One refused row: where it is (1-based line/row number as a spreadsheet shows it),
    which column is wrong (empty for the row as a whole), the value seen, and why — in
    English (`reason`) and as a stable code with its parameters (`server.archive.reasons`),
    for a page to say in its reader's language."""

    line: int
    column: str
    value: str
    reason: str
    code: str
    params: dict[str, Any]

    @classmethod
    def of(cls, line: int, column: str, value: str, why: Reason) -> RejectedRow:
        return cls(line, column, value, why.text, why.code, why.params)


@dataclass
class ImportReport:
    """What an import did. `total_rows` counts data rows (blank rows are skipped);
    `inserted + updated + unchanged + rejected_total == total_rows`.

    Only the first `rejected_kept_max` rejected rows are kept (`[http]
    max_rejected_rows_kept`, docs/CONFIG.md): a million bad lines must not become a million
    objects in memory, yet the total an operator reads stays exact."""

    filename: str | None = None
    format: str = "csv"
    encoding: str | None = None
    dry_run: bool = False
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_total: int = 0
    rejected_kept_max: int | None = None
    """None: every rejected row is kept."""
    warnings: list[str] = field(default_factory=list)
    """The warnings in English; `warning_reasons` the same with their codes (`warn`)."""
    warning_reasons: list[Reason] = field(default_factory=list)
    keep_cells: bool = False
    """Keep each kept rejected row's original cells too (`rejected_cells`), to give the rows
    back in the file's own columns; off by default, as nothing else needs them."""
    header: list[str] = field(default_factory=list)
    """The file's header as it spells it (for the rejected rows given back)."""
    rejected_cells: dict[int, list[Cell]] = field(default_factory=dict)
    """Line → the original cells of a kept rejected row (only with `keep_cells`)."""

    def reject(self, row: RejectedRow, cells: list[Cell] | None = None) -> None:
        """Count a refused row; keep it (and its *cells*, with `keep_cells`) while fewer than
        `rejected_kept_max` are kept."""
        self.rejected_total += 1
        if self.rejected_kept_max is None or len(self.rejected) < self.rejected_kept_max:
            self.rejected.append(row)
            if self.keep_cells and cells is not None:
                self.rejected_cells[row.line] = cells

    def warn(self, why: Reason) -> None:
        """Add a warning (its English sentence to `warnings`, its code to the JSON report)."""
        self.warnings.append(why.text)
        self.warning_reasons.append(why)

    @property
    def stored(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def summary(self) -> dict[str, Any]:
        """Counts only (the audit log and the CLI's last line)."""
        return {
            "filename": self.filename,
            "format": self.format,
            "encoding": self.encoding,
            "dry_run": self.dry_run,
            "total_rows": self.total_rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected_total,
            "warnings": list(self.warnings),
        }

    def to_json(self, max_rejected: int | None = None) -> dict[str, Any]:
        rows = self.rejected if max_rejected is None else self.rejected[:max_rejected]
        out = self.summary()
        out["rejected_rows"] = [asdict(r) for r in rows]
        out["warning_details"] = [
            {"code": w.code, "params": w.params, "text": w.text} for w in self.warning_reasons
        ]
        out["rejected_truncated"] = len(rows) < self.rejected_total
        return out

    def rejected_csv(self) -> str:
        """The rejected rows as CSV (line, column, value, reason), BOM-less text.

        It is an export like any other (`server.kernel.tabular`): a rejected value such as
        `=HYPERLINK(…)` comes back as text, never as a formula."""
        writer = CsvWriter(("line", "column", "value", "reason"), bom=False, lineterminator="\n")
        writer.add(
            (r.line, r.column, r.value, r.reason)
            for r in sorted(self.rejected, key=lambda r: r.line)
        )
        return writer.take()
