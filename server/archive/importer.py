"""Cylinder archive (气瓶档案) import and export: the interface of DESIGN §9.

Gas companies and inspection agencies keep their archives in spreadsheets; this module is
the one place that turns such a file into cylinder records and back, used alike by the CLI
(`cylwatch import cylinders` / `cylwatch export cylinders`), the REST API
(`server.api.archive`) and the tests.

Reading (why it is shaped like this):

- The file is opened by content, not by name: a ZIP is an XLSX (first sheet, read by
  python-calamine), an OLE2 file a legacy XLS (calamine reads it too); anything else must be
  text. A CSV's encoding is settled *before* any row is stored, by one decoding pass over
  the whole file: UTF-8 with BOM, then UTF-8, then GB18030 (a superset of GBK, which is what
  Excel writes on a Chinese Windows). A file that decodes as none of these is refused whole.
- The header is required and matched case-insensitively after trimming. The columns
  `tag, owner_code, spec, manufacture_date` must be present (missing ones are named in a
  whole-file error); the other archive columns may be absent (their values are empty).
  Columns the interface does not know are **ignored with a warning** in the report rather
  than refused: archives exported from other systems carry extra columns (备注, 序号) and
  refusing the whole file for them would only make operators delete columns by hand.
- Rows stream in chunks of `CHUNK_ROWS`; nothing holds the whole file in Python lists
  (calamine does hold the parsed XLSX sheet in its own Rust memory).

Storing:

- Each row is checked on its own (`_validate_row`) and a bad row is reported with its line,
  column and reason — one reason per row, the first failing column in archive order — while
  the good rows of the file are stored.
- Checks that need the database run in SQL against a staging table (COPY of the chunk):
  a tag repeated in the file (the **first** line that passed the row checks wins, later
  lines are rejected naming it — silently letting a later line win would hide a data error),
  a barcode repeated in the file or already carried by *another* cylinder, a tag owned by
  another company (company administrators only ever touch their own cylinders), and a
  scrapped cylinder being put back into use (a tag is never reused after scrapping).
- Then one `INSERT … ON CONFLICT (tag) DO UPDATE … WHERE … IS DISTINCT FROM …` per chunk:
  importing the same file twice changes nothing and reports every row as unchanged.
  The file is the record: an empty optional cell clears that field; an empty
  `next_inspection_date` / `scrap_date` is derived by the domain rules (DOMAIN.md "Dates"),
  an empty `volume_l` comes from the model and an empty `status` is `in_service`.
- Newly inserted cylinders get a `register` (建档) trajectory event; each import (not a dry
  run) writes one audit row with its counts.
- Each chunk commits on its own, so a long import never holds row locks that ingest (which
  updates the live state of the same cylinders) would wait on. The price: an import stopped
  part way (a CSV syntax error at line N, a crash) leaves the chunks before it stored; the
  upsert is idempotent, so importing the corrected file again is always safe.
- A dry run does everything, including the SQL checks and the upsert, inside savepoints that
  are rolled back, so its counts are exactly those a real import would report.

Exporting streams: CSV is produced by PostgreSQL itself (`COPY (SELECT …) TO STDOUT`),
UTF-8 with a BOM so that Excel on Chinese Windows opens it without mojibake; XLSX is written
from a server-side cursor by a small streaming SpreadsheetML writer (`_XlsxWriter`: five
times cheaper per cell than xlsxwriter, whose per-cell cost alone exceeded the 60 s target)
into a file (the format is a ZIP and cannot be written to a pipe). Both keep memory flat
whatever the row count, and both limit rows to the caller's role scope in SQL (DESIGN §7).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import csv
import datetime as dt
import getpass
import io
import math
import os
import re
import sys
import tempfile
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo

import asyncpg

from server.domain.dates import derive_next_inspection, derive_scrap_date
from server.domain.events import EventKind, epcis_for
from server.domain.statuses import IMPORT_STATUSES, IN_SERVICE, SCRAPPED
from server.kernel.audit import audit
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Settings

__all__ = [
    "ARCHIVE_COLUMNS",
    "CSV_BOM",
    "IMPORT_ROLES",
    "REQUIRED_COLUMNS",
    "XLSX_MIME",
    "ArchiveFileError",
    "ArchiveSource",
    "ExportFilters",
    "ImportReport",
    "RejectedRow",
    "add_commands",
    "count_export",
    "export_csv_chunks",
    "export_filename",
    "import_archive",
    "open_archive",
    "write_xlsx",
]

# ---------------------------------------------------------------- the interface (DESIGN §9)

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
"""Columns of the archive file, in the order exports write them (DESIGN §9)."""

REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("tag", "owner_code", "spec", "manufacture_date")
"""Columns without which no row could be stored: everything else is optional or derived."""

IMPORT_ROLES: Final[tuple[str, ...]] = ("admin", "inspector", "company_admin")
"""Who registers archives (DESIGN §1): agencies (建档), companies (own cylinders), admins."""

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

CSV_BOM: Final = codecs.BOM_UTF8
XLSX_MIME: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME: Final = "text/csv"
XLSX_MAX_ROWS: Final = 1_048_576
"""Rows per worksheet in Excel; a larger export continues on another sheet."""

_EXCEL_EPOCH: Final = dt.date(1899, 12, 30)
_EXCEL_FIRST_REAL_SERIAL: Final = 61
"""Excel's 1900 date system counts a 29 Feb 1900 that never was; serials from 61
(1900-03-01) on map to `_EXCEL_EPOCH + serial` days, smaller ones are no cylinder's date."""

_DATE_RE: Final = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_HUNDREDTH: Final = Decimal("0.01")
_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_READ_BLOCK: Final = 1 << 20

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
    which column is wrong (empty for the row as a whole), the value seen, and why."""

    line: int
    column: str
    value: str
    reason: str


@dataclass
class ImportReport:
    """What an import did. `total_rows` counts data rows (blank rows are skipped);
    `inserted + updated + unchanged + len(rejected) == total_rows`."""

    filename: str | None = None
    format: str = "csv"
    encoding: str | None = None
    dry_run: bool = False
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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
            "rejected": len(self.rejected),
            "warnings": list(self.warnings),
        }

    def to_json(self, max_rejected: int | None = None) -> dict[str, Any]:
        rows = self.rejected if max_rejected is None else self.rejected[:max_rejected]
        out = self.summary()
        out["rejected_rows"] = [asdict(r) for r in rows]
        out["rejected_truncated"] = len(rows) < len(self.rejected)
        return out

    def rejected_csv(self) -> str:
        """The rejected rows as CSV (line, column, value, reason), BOM-less text."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("line", "column", "value", "reason"))
        for r in sorted(self.rejected, key=lambda r: r.line):
            writer.writerow((r.line, r.column, r.value, r.reason))
        return buf.getvalue()


# ---------------------------------------------------------------- reading files


@dataclass
class ArchiveSource:
    """An opened archive file: its header mapped onto the archive columns, and its rows."""

    format: str
    encoding: str | None
    columns: dict[str, int]
    """Archive column → index in a row (absent columns are not keys)."""
    ignored_columns: list[str]
    width: int
    """Cells in the header row: a value to the right of it belongs to no column."""
    rows: Iterator[tuple[int, list[Cell]]]
    """(line, cells) per data row; lines are 1-based and count the header."""
    total_hint: int | None = None
    """Data rows expected (for a progress bar); approximate for CSV."""
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for closer in self._closers:
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()


def _normalise_header(raw: Sequence[Cell]) -> tuple[dict[str, int], list[str]]:
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for i, cell in enumerate(raw):
        name = str(cell if cell is not None else "").replace("\ufeff", "").strip().lower()
        if not name:
            continue
        if name in columns:
            raise ArchiveFileError(f"header: column {name!r} appears twice")
        if name in ARCHIVE_COLUMNS:
            columns[name] = i
        else:
            ignored.append(name)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(str(c) for c in raw if str(c or "").strip()) or "nothing"
        raise ArchiveFileError(
            f"header: missing required column(s) {', '.join(missing)} "
            f"(the first row must name the columns; found: {found[:200]})"
        )
    return columns, ignored


def detect_encoding(path: Path) -> str:
    """UTF-8 with BOM, UTF-8, else GB18030 (GBK's superset), decided over the whole file.

    Deciding on a prefix would let a GBK character at line 900,000 abort an import after
    most of it was stored; one decoding pass costs well under a second even at 1M rows.
    """
    with path.open("rb") as fh:
        head = fh.read(_READ_BLOCK)
        if b"\x00" in head:
            raise ArchiveFileError(
                "the file is neither CSV text nor XLSX (it contains binary data; "
                "UTF-16 text is not accepted — save as CSV UTF-8 or as XLSX)"
            )
        candidates = ["utf-8-sig"] if head.startswith(CSV_BOM) else ["utf-8", "gb18030"]
        for encoding in candidates:
            decoder = codecs.getincrementaldecoder(encoding)()
            fh.seek(0)
            try:
                while block := fh.read(_READ_BLOCK):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            return encoding
    if candidates == ["utf-8-sig"]:
        raise ArchiveFileError("the file starts with a UTF-8 BOM but is not valid UTF-8")
    raise ArchiveFileError("the file is not text in UTF-8 or GBK/GB18030, nor an XLSX workbook")


def _open_csv(path: Path) -> ArchiveSource:
    encoding = detect_encoding(path)
    with path.open("rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(_READ_BLOCK), b""))
    text: IO[str] = path.open("r", encoding=encoding, newline="")
    try:
        first = text.readline()
        text.seek(0)
        delimiter = "\t" if "\t" in first and "," not in first else ","
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise ArchiveFileError("the file is empty (a header row is required)") from None
        except csv.Error as exc:
            raise ArchiveFileError(f"line 1: not a readable CSV header: {exc}") from None
        columns, ignored = _normalise_header(header)
    except BaseException:
        text.close()
        raise

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        prev = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ArchiveFileError(
                    f"line {prev + 1}: CSV syntax error: {exc}", stored_before_line=prev + 1
                ) from None
            line, prev = prev + 1, reader.line_num
            yield line, list(cells)

    src = ArchiveSource("csv", encoding, columns, ignored, len(header), rows(), max(lines - 1, 0))
    src._closers.append(text.close)
    return src


def _open_workbook(path: Path, fmt: str) -> ArchiveSource:
    import python_calamine

    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
        if not wb.sheet_names:
            raise ArchiveFileError("the workbook has no sheet")
        sheet = wb.get_sheet_by_index(0)
    except ArchiveFileError:
        raise
    except Exception as exc:  # calamine raises several types for a damaged file
        raise ArchiveFileError(f"the {fmt.upper()} workbook cannot be read: {exc}") from None
    start = sheet.start
    first_row = start[0] if start else 0
    it = iter(sheet.iter_rows())
    header = next(it, None)
    if header is None:
        raise ArchiveFileError("the first sheet is empty (a header row is required)")
    columns, ignored = _normalise_header(header)

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        # Excel row numbers: the sheet's used range may start below row 1
        for i, cells in enumerate(it):
            yield first_row + i + 2, list(cells)

    width = len(header)
    while width and header[width - 1] in ("", None):
        width -= 1  # calamine pads rows to the sheet's used width
    src = ArchiveSource(fmt, None, columns, ignored, width, rows(), max(sheet.height - 1, 0))
    src._closers.append(wb.close)
    return src


def open_archive(path: str | Path) -> ArchiveSource:
    """Open an archive file by its content (XLSX/XLS by magic number, else CSV text)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise ArchiveFileError(f"cannot read {p.name}: {exc.strerror}") from None
    if not magic:
        raise ArchiveFileError("the file is empty (a header row is required)")
    if magic.startswith(_ZIP_MAGIC):
        return _open_workbook(p, "xlsx")
    if magic == _OLE_MAGIC:
        return _open_workbook(p, "xls")
    return _open_csv(p)


# ---------------------------------------------------------------- cell values


class _Bad(Exception):
    """A cell's value is wrong: raised inside row validation, becomes a RejectedRow."""

    def __init__(self, column: str, value: Cell, reason: str) -> None:
        super().__init__(reason)
        self.column, self.value, self.reason = column, value, reason


def _show(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _text(value: Cell) -> str | None:
    """A cell as text; numbers typed into Excel (tags, barcodes) lose their `.0`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _code(column: str, value: Cell, *, required: bool) -> str | None:
    text = _text(value)
    if text is None:
        if required:
            raise _Bad(column, value, f"{column} is required")
        return None
    if len(text) > TAG_MAX_LEN:
        raise _Bad(column, value, f"{column} is longer than {TAG_MAX_LEN} characters")
    if any(ch.isspace() for ch in text):
        raise _Bad(column, value, f"{column} must not contain spaces")
    return text


def _free_text(column: str, value: Cell) -> str | None:
    text = _text(value)
    if text is not None and len(text) > TEXT_MAX_LEN:
        raise _Bad(column, value, f"{column} is longer than {TEXT_MAX_LEN} characters")
    return text


def _date(column: str, value: Cell, *, required: bool = False) -> dt.date | None:
    """YYYY-MM-DD text (also YYYY/M/D, and a midnight time), or an Excel date cell/serial."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < _EXCEL_FIRST_REAL_SERIAL:
            raise _Bad(column, value, f"{column}: {_show(value)} is not a date")
        try:
            return _EXCEL_EPOCH + dt.timedelta(days=int(value))
        except OverflowError:
            raise _Bad(column, value, f"{column}: {_show(value)} is not a date") from None
    text = _text(value)
    if text is None:
        if required:
            raise _Bad(column, value, f"{column} is required")
        return None
    m = _DATE_RE.match(text)
    if m is None:
        raise _Bad(column, value, f"{column}: expected a date YYYY-MM-DD, got {text!r}")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise _Bad(column, value, f"{column}: {text!r} is not a calendar date") from None


def _number(column: str, value: Cell) -> Decimal | None:
    """A positive amount fitting numeric(7, 2), rounded half-up to hundredths."""
    if value is None:
        return None
    if isinstance(value, bool | dt.date | dt.time | dt.timedelta):
        raise _Bad(column, value, f"{column}: expected a number, got {_show(value)!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(column, value, f"{column}: expected a number, got {value!r}")
        number = Decimal(repr(value))
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise _Bad(column, value, f"{column}: expected a number, got {text!r}") from None
        if not number.is_finite():
            raise _Bad(column, value, f"{column}: expected a number, got {text!r}")
    if number <= 0:
        raise _Bad(column, value, f"{column} must be positive")
    if number > NUMERIC_MAX:
        raise _Bad(column, value, f"{column} is larger than {NUMERIC_MAX}")
    number = number.quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)
    if number <= 0:
        raise _Bad(column, value, f"{column} is too small (rounds to 0.00)")
    return number


# ---------------------------------------------------------------- row validation


@dataclass(frozen=True)
class _Company:
    id: int
    district_code: str | None


@dataclass(frozen=True)
class _Context:
    settings: Settings
    companies: dict[str, _Company]
    only_company: int | None
    """A company administrator's company: rows for any other owner are refused."""
    today: dt.date
    specs: dict[str, str]
    """Model code, case-folded → the configured spelling."""


_STAGE_COLUMNS: Final = (
    "line",
    "tag",
    "stamp",
    "barcode",
    "owner_company_id",
    "owner_district",
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
_Staged = tuple[
    int,
    str,
    str | None,
    str | None,
    int,
    str | None,
    str,
    str,
    str | None,
    dt.date,
    Decimal | None,
    Decimal | None,
    dt.date | None,
    dt.date,
    dt.date,
    str,
]


def _validate_row(line: int, cells: list[Cell], src: ArchiveSource, ctx: _Context) -> _Staged:
    """Check one row and give the record to stage; raise `_Bad` naming the first bad column."""
    cols = src.columns

    def get(name: str) -> Cell:
        i = cols.get(name)
        if i is None or i >= len(cells):
            return None
        value = cells[i]
        return None if value == "" else value

    for i in range(src.width, len(cells)):
        if _text(cells[i]) is not None:
            raise _Bad("", cells[i], f"row has a value in column {i + 1}, beyond the header")

    tag = _code("tag", get("tag"), required=True)
    assert tag is not None
    stamp = _code("stamp", get("stamp"), required=False)
    barcode = _code("barcode", get("barcode"), required=False)

    owner_raw = get("owner_code")
    owner_code = _code("owner_code", owner_raw, required=True)
    assert owner_code is not None
    company = ctx.companies.get(owner_code)
    if company is None:
        raise _Bad(
            "owner_code", owner_raw, f"owner_code {owner_code!r} is not a registered company"
        )
    if ctx.only_company is not None and company.id != ctx.only_company:
        raise _Bad("owner_code", owner_raw, f"owner_code {owner_code!r} is not your company")

    spec_raw = get("spec")
    spec_text = _text(spec_raw)
    if spec_text is None:
        raise _Bad("spec", spec_raw, "spec is required")
    spec = ctx.specs.get(spec_text.casefold())
    if spec is None:
        known_specs = ", ".join(sorted(ctx.settings.models))
        raise _Bad(
            "spec", spec_raw, f"spec {spec_text!r} is not a configured model ({known_specs})"
        )

    medium = _free_text("medium", get("medium")) or DEFAULT_MEDIUM
    manufacturer = _free_text("manufacturer", get("manufacturer"))

    mfg_raw = get("manufacture_date")
    manufacture = _date("manufacture_date", mfg_raw, required=True)
    assert manufacture is not None
    if manufacture > ctx.today:
        raise _Bad("manufacture_date", mfg_raw, "manufacture_date is in the future")

    tare = _number("tare_kg", get("tare_kg"))
    volume = _number("volume_l", get("volume_l"))
    if volume is None:
        model = ctx.settings.models[spec]
        volume = Decimal(repr(model.volume_l)).quantize(_HUNDREDTH)

    last_raw = get("last_inspection_date")
    last = _date("last_inspection_date", last_raw)
    if last is not None and last > ctx.today:
        raise _Bad("last_inspection_date", last_raw, "last_inspection_date is in the future")

    next_raw = get("next_inspection_date")
    next_insp = _date("next_inspection_date", next_raw)
    try:
        derived_next = derive_next_inspection(manufacture, last, ctx.settings.dates)
    except ValueError:
        raise _Bad(
            "last_inspection_date", last_raw, "last_inspection_date is before manufacture_date"
        ) from None
    if next_insp is None:
        next_insp = derived_next
    elif next_insp < manufacture:
        raise _Bad(
            "next_inspection_date", next_raw, "next_inspection_date is before manufacture_date"
        )

    scrap_raw = get("scrap_date")
    scrap = _date("scrap_date", scrap_raw)
    if scrap is None:
        scrap = derive_scrap_date(manufacture, ctx.settings.dates)
    elif scrap < manufacture:
        raise _Bad("scrap_date", scrap_raw, "scrap_date is before manufacture_date")

    status_raw = get("status")
    status_text = _text(status_raw)
    status = IN_SERVICE if status_text is None else status_text.lower()
    if status not in IMPORT_STATUSES:
        raise _Bad("status", status_raw, f"status must be one of {', '.join(IMPORT_STATUSES)}")

    return (
        line,
        tag,
        stamp,
        barcode,
        company.id,
        company.district_code,
        spec,
        medium,
        manufacturer,
        manufacture,
        tare,
        volume,
        last,
        next_insp,
        scrap,
        status,
    )


# ---------------------------------------------------------------- SQL

_CREATE_TEMP: Final = """
CREATE TEMP TABLE IF NOT EXISTS cyl_import_stage (
    line integer NOT NULL, tag text NOT NULL, stamp text, barcode text,
    owner_company_id bigint NOT NULL, owner_district text, spec text NOT NULL,
    medium text NOT NULL, manufacturer text, manufacture_date date NOT NULL,
    tare_kg numeric, volume_l numeric, last_inspection_date date,
    next_inspection_date date NOT NULL, scrap_date date NOT NULL, status text NOT NULL
);
CREATE TEMP TABLE IF NOT EXISTS cyl_import_seen_tag (tag text PRIMARY KEY, line integer NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS cyl_import_seen_barcode (
    barcode text PRIMARY KEY, tag text NOT NULL, line integer NOT NULL
);
TRUNCATE cyl_import_stage, cyl_import_seen_tag, cyl_import_seen_barcode;
"""
# Temp tables live as long as the (pooled) connection; they are created once and emptied
# rather than dropped, because asyncpg caches prepared statements that name them.

_CHECK_SQL: Final = """
SELECT s.line, s.tag, s.barcode, s.status,
       t.line AS dup_line,
       (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint) AS other_company,
       (c.status = $2 AND s.status <> $2) AS unscrap,
       b.line AS barcode_dup_line,
       o.tag AS barcode_owner
  FROM cyl_import_stage s
  LEFT JOIN cyl_import_seen_tag t ON t.tag = s.tag
  LEFT JOIN cylinders c ON c.tag = s.tag
  LEFT JOIN cyl_import_seen_barcode b ON b.barcode = s.barcode AND b.tag <> s.tag
  LEFT JOIN cylinders o ON o.barcode = s.barcode AND o.tag <> s.tag
 WHERE t.tag IS NOT NULL
    OR (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint)
    OR (c.status = $2 AND s.status <> $2)
    OR b.barcode IS NOT NULL
    OR o.id IS NOT NULL
"""

_UPDATED_COLUMNS: Final = (
    "stamp",
    "barcode",
    "owner_company_id",
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

_UPSERT_SQL: Final = f"""
WITH up AS (
    INSERT INTO cylinders AS c (
        tag, {", ".join(_UPDATED_COLUMNS)}, district_code, registered_by_site_id)
    SELECT tag, {", ".join(_UPDATED_COLUMNS)}, owner_district, $1::bigint
      FROM cyl_import_stage
    ON CONFLICT (tag) DO UPDATE SET
        {", ".join(f"{col} = EXCLUDED.{col}" for col in _UPDATED_COLUMNS)}, updated_at = now()
    WHERE ({", ".join(f"c.{col}" for col in _UPDATED_COLUMNS)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{col}" for col in _UPDATED_COLUMNS)})
    RETURNING c.id, c.tag, c.owner_company_id, c.district_code, (c.xmax = 0) AS inserted
), ev AS (
    INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                        company_id, district_code, operator, details)
    SELECT now(), 'import-' || up.tag, up.id, up.tag, $2, $3, $4, $1::bigint,
           up.owner_company_id, up.district_code, $5, $6::jsonb
      FROM up WHERE up.inserted
    ON CONFLICT DO NOTHING
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
  FROM up
"""
# (xmax = 0) is PostgreSQL's documented-by-practice way to tell an inserted row from an
# updated one in ON CONFLICT's RETURNING; rows the WHERE skipped are not returned at all,
# which is how "unchanged" is counted.


class _Rollback(Exception):
    """Raised inside a savepoint to undo a dry run's writes."""


def city_today(settings: Settings) -> dt.date:
    """The city's calendar day (settings.alerts.timezone): 'in the future' is judged on it."""
    return dt.datetime.now(ZoneInfo(settings.alerts.timezone)).date()


async def _context(conn: asyncpg.Connection, settings: Settings, principal: Principal) -> _Context:
    rows = await conn.fetch("SELECT id, code, district_code FROM companies")
    companies = {r["code"]: _Company(r["id"], r["district_code"]) for r in rows}
    only = principal.company_id if principal.role == "company_admin" else None
    specs = {spec.casefold(): spec for spec in settings.models}
    return _Context(settings, companies, only, city_today(settings), specs)


def _next_chunk(
    src: ArchiveSource, ctx: _Context, report: ImportReport
) -> tuple[list[_Staged], int, bool]:
    """Read and check up to CHUNK_ROWS data rows (runs in a worker thread: CPU-bound)."""
    staged: list[_Staged] = []
    seen_tags: dict[str, int] = {}
    seen_barcodes: dict[str, tuple[str, int]] = {}
    read = 0
    for line, cells in src.rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # blank rows (Excel leaves them at the end) are not data
        read += 1
        try:
            rec = _validate_row(line, cells, src, ctx)
        except _Bad as bad:
            report.rejected.append(RejectedRow(line, bad.column, _show(bad.value), bad.reason))
        else:
            tag, barcode = rec[1], rec[3]
            first = seen_tags.get(tag)
            if first is not None:
                report.rejected.append(
                    RejectedRow(line, "tag", tag, f"tag {tag} repeats line {first} of this file")
                )
            elif barcode is not None and barcode in seen_barcodes:
                other_tag, other_line = seen_barcodes[barcode]
                report.rejected.append(
                    RejectedRow(
                        line,
                        "barcode",
                        barcode,
                        f"barcode {barcode} is also given to tag {other_tag} on line {other_line}",
                    )
                )
            else:
                seen_tags[tag] = line
                if barcode is not None:
                    seen_barcodes[barcode] = (tag, line)
                staged.append(rec)
        if read >= CHUNK_ROWS:
            return staged, read, False
    return staged, read, True


async def _store_chunk(
    conn: asyncpg.Connection,
    staged: list[_Staged],
    ctx: _Context,
    principal: Principal,
    report: ImportReport,
) -> None:
    """Stage, check against the database, upsert. One transaction (savepoints if dry run)."""
    if not staged:
        return
    register = epcis_for(EventKind.register)
    details = {"source": "import", "file": report.filename, "by": principal.username}
    site_id = principal.site_id if principal.role == "inspector" else None
    async with conn.transaction():
        await conn.execute("TRUNCATE cyl_import_stage")
        await conn.copy_records_to_table("cyl_import_stage", records=staged, columns=_STAGE_COLUMNS)
        await conn.execute("ANALYZE cyl_import_stage")
        problems = await conn.fetch(_CHECK_SQL, ctx.only_company, SCRAPPED)
        await conn.execute(
            "INSERT INTO cyl_import_seen_tag (tag, line) SELECT tag, line FROM cyl_import_stage"
            " ON CONFLICT DO NOTHING"
        )
        if problems:
            for p in problems:
                report.rejected.append(_db_rejection(p))
            await conn.execute(
                "DELETE FROM cyl_import_stage WHERE line = ANY($1::int[])",
                [p["line"] for p in problems],
            )
        await conn.execute(
            "INSERT INTO cyl_import_seen_barcode (barcode, tag, line)"
            " SELECT barcode, tag, line FROM cyl_import_stage WHERE barcode IS NOT NULL"
            " ON CONFLICT DO NOTHING"
        )
        args = (
            site_id,
            EventKind.register.value,
            register.biz_step,
            register.disposition,
            principal.username,
            details,
        )
        if report.dry_run:
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(_UPSERT_SQL, *args)
                    raise _Rollback
            except _Rollback:
                pass
        else:
            row = await conn.fetchrow(_UPSERT_SQL, *args)
    assert row is not None
    inserted, updated = int(row["inserted"]), int(row["updated"])
    report.inserted += inserted
    report.updated += updated
    report.unchanged += len(staged) - len(problems) - inserted - updated


def _db_rejection(p: asyncpg.Record) -> RejectedRow:
    line, tag, barcode = p["line"], p["tag"], p["barcode"]
    if p["dup_line"] is not None:
        return RejectedRow(line, "tag", tag, f"tag {tag} repeats line {p['dup_line']} of this file")
    if p["other_company"]:
        return RejectedRow(line, "tag", tag, "tag belongs to another company")
    if p["unscrap"]:
        return RejectedRow(
            line,
            "status",
            p["status"],
            "the cylinder is scrapped; a scrapped cylinder (and its tag) never returns to use",
        )
    if p["barcode_dup_line"] is not None:
        return RejectedRow(
            line,
            "barcode",
            barcode,
            f"barcode {barcode} is also given to another tag on line {p['barcode_dup_line']}",
        )
    return RejectedRow(
        line,
        "barcode",
        barcode,
        f"barcode {barcode} already belongs to cylinder {p['barcode_owner']}",
    )


async def import_archive(
    conn: asyncpg.Connection,
    src: ArchiveSource,
    settings: Settings,
    principal: Principal,
    *,
    filename: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    remote: str | None = None,
) -> ImportReport:
    """Import an opened archive as *principal* (who must hold one of IMPORT_ROLES).

    Raises `ArchiveFileError` for a whole-file problem met while reading; `PermissionError`
    if the role may not import. Everything about individual rows is in the report.
    """
    if principal.role not in IMPORT_ROLES:
        raise PermissionError(f"role {principal.role} may not import archives")
    report = ImportReport(
        filename=filename, format=src.format, encoding=src.encoding, dry_run=dry_run
    )
    if src.ignored_columns:
        names = ", ".join(src.ignored_columns)
        report.warnings.append(f"column(s) ignored, not part of the archive interface: {names}")
    ctx = await _context(conn, settings, principal)
    await conn.execute(_CREATE_TEMP)
    try:
        done = False
        while not done:
            staged, read, done = await asyncio.to_thread(_next_chunk, src, ctx, report)
            report.total_rows += read
            for attempt in range(2):
                try:
                    await _store_chunk(conn, staged, ctx, principal, report)
                    break
                except asyncpg.UniqueViolationError:
                    # a concurrent writer took a barcode between our check and the upsert:
                    # the chunk rolled back; checking again reports the row instead
                    if attempt:
                        raise
            if progress is not None and read:
                progress(read)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute(
                "TRUNCATE cyl_import_stage, cyl_import_seen_tag, cyl_import_seen_barcode"
            )
    report.rejected.sort(key=lambda r: r.line)
    if not dry_run:
        await audit(conn, principal, "cylinder.import", "cylinder", None, report.summary(), remote)
    return report


# ---------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportFilters:
    """The cylinder search's filters (DESIGN §9): company code, status, district, model."""

    company: str | None = None
    status: str | None = None
    district: str | None = None
    spec: str | None = None


def _export_sql(principal: Principal, filters: ExportFilters, select: str) -> tuple[str, list[Any]]:
    """The export query: role scope and filters in SQL (DESIGN §7), oldest record first."""
    q = Sql()
    where = [scope_where(principal, "cylinders", "c", q)]
    if filters.company:
        where.append(f"co.code = {q.add(filters.company)}")
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
    return f"(c.{column} - DATE '{_EXCEL_EPOCH.isoformat()}') AS {column}"


def _select(fmt: str) -> str:
    """Archive columns in order; `fmt` "text" for CSV, "excel" for typed XLSX cells."""
    parts: list[str] = []
    for col in ARCHIVE_COLUMNS:
        if col == "owner_code":
            parts.append("co.code AS owner_code")
        elif col.endswith("_date"):
            parts.append(_date_as(col, fmt))
        elif col in ("tare_kg", "volume_l") and fmt == "excel":
            parts.append(f"c.{col}::float8 AS {col}")
        else:
            parts.append(f"c.{col}")
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


_NS_MAIN: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_XML_SPECIAL: Final = re.compile(r"[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_STYLES_XML: Final = (
    f'{_XML_HEAD}<styleSheet xmlns="{_NS_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)
_SHEET_HEAD: Final = (
    f'{_XML_HEAD}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
    'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView>'
    '</sheetViews><sheetFormatPr defaultRowHeight="15"/><sheetData>'
)
_SHEET_TAIL: Final = "</sheetData></worksheet>"


def _xml_text(value: str) -> str:
    """Text for a SpreadsheetML <t>: XML-escaped, control characters as Excel's _xHHHH_."""
    if _XML_SPECIAL.search(value) is None:
        return value
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace("\r", "&#13;")
    return _XML_CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", value)


class _XlsxWriter:
    """A streaming XLSX (SpreadsheetML) writer: rows go straight into a deflated ZIP entry.

    Why not xlsxwriter: its per-cell API costs ~5 µs a cell even in constant_memory mode —
    67 s of CPU for the 14M cells of a 1M-row archive before any database work, over the
    60 s target of DESIGN §10 (docs/BENCHMARKS.md). Formatting a whole row as one string
    is ~5× cheaper. What is written is the subset of ECMA-376 that xlsxwriter's own
    constant_memory output uses: inline strings, numbers, one date format (style 1), a
    frozen header row, one sheet per XLSX_MAX_ROWS rows. `<dimension>` (optional in the
    schema) is left out because the row count is known only at the end.

    Cells are typed: codes as strings (a numeric tag must not become 1.2E+15 in Excel),
    amounts as numbers, dates as date cells (the query already gives Excel serial days,
    see `_select`).
    """

    _DATE_COLS: Final = frozenset(
        ("manufacture_date", "last_inspection_date", "next_inspection_date", "scrap_date")
    )
    _NUM_COLS: Final = frozenset(("tare_kg", "volume_l"))

    def __init__(self, path: str) -> None:
        import zipfile

        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self.sheet: IO[str] | None = None
        self.sheets = 0
        self.row = XLSX_MAX_ROWS  # forces the first sheet
        self.kinds = "".join(
            "d" if c in self._DATE_COLS else "n" if c in self._NUM_COLS else "s"
            for c in ARCHIVE_COLUMNS
        )
        self.letters = [chr(ord("A") + i) for i in range(len(ARCHIVE_COLUMNS))]
        assert len(ARCHIVE_COLUMNS) <= 26  # single-letter column references

    def _end_sheet(self) -> None:
        if self.sheet is not None:
            self.sheet.write(_SHEET_TAIL)
            self.sheet.close()
            self.sheet = None

    def _new_sheet(self) -> None:
        self._end_sheet()
        self.sheets += 1
        raw = self.zip.open(f"xl/worksheets/sheet{self.sheets}.xml", "w")
        self.sheet = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        header = "".join(
            f'<c r="{letter}1" t="inlineStr"><is><t>{col}</t></is></c>'
            for letter, col in zip(self.letters, ARCHIVE_COLUMNS, strict=True)
        )
        self.sheet.write(f'{_SHEET_HEAD}<row r="1">{header}</row>')
        self.row = 1

    def write(self, records: Sequence[Sequence[Any]]) -> None:
        kinds, letters = self.kinds, self.letters
        parts: list[str] = []
        for rec in records:
            if self.row >= XLSX_MAX_ROWS:
                if parts and self.sheet is not None:
                    self.sheet.write("".join(parts))
                    parts = []
                self._new_sheet()
            self.row += 1
            n = self.row
            cells: list[str] = []
            for i, kind in enumerate(kinds):
                v = rec[i]
                if v is None:
                    continue
                if kind == "s":
                    keep = ' xml:space="preserve"' if v[:1].isspace() or v[-1:].isspace() else ""
                    cells.append(
                        f'<c r="{letters[i]}{n}" t="inlineStr"><is><t{keep}>'
                        f"{_xml_text(v)}</t></is></c>"
                    )
                elif kind == "n":
                    cells.append(f'<c r="{letters[i]}{n}"><v>{v!r}</v></c>')
                else:
                    cells.append(f'<c r="{letters[i]}{n}" s="1"><v>{v}</v></c>')
            parts.append(f'<row r="{n}">{"".join(cells)}</row>')
        if parts and self.sheet is not None:
            self.sheet.write("".join(parts))

    def close(self) -> None:
        if self.sheets == 0:
            self._new_sheet()
        self._end_sheet()
        names = ["cylinders"] + [f"cylinders ({i})" for i in range(2, self.sheets + 1)]
        sheets = "".join(
            f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(names, start=1)
        )
        ws_type = f"{_NS_REL}/worksheet"
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{ws_type}" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, self.sheets + 1)
        )
        ct_sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct_sheet}"/>'
            for i in range(1, self.sheets + 1)
        )
        ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        parts = {
            "[Content_Types].xml": (
                f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                'content-types"><Default Extension="rels" ContentType="application/'
                'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                f'ContentType="{ct}.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
                f'ContentType="{ct}.styles+xml"/>{overrides}</Types>'
            ),
            "_rels/.rels": (
                f'{_XML_HEAD}<Relationships xmlns="{_NS_PKG_REL}"><Relationship Id="rId1" '
                f'Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
            ),
            "xl/workbook.xml": (
                f'{_XML_HEAD}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><bookViews>'
                f"<workbookView/></bookViews><sheets>{sheets}</sheets></workbook>"
            ),
            "xl/_rels/workbook.xml.rels": (
                f'{_XML_HEAD}<Relationships xmlns="{_NS_PKG_REL}">{rels}<Relationship '
                f'Id="rId{self.sheets + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/>'
                "</Relationships>"
            ),
            "xl/styles.xml": _STYLES_XML,
        }
        for name, xml in parts.items():
            self.zip.writestr(name, xml)
        self.zip.close()


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
    writer = _XlsxWriter(str(path))
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


# ---------------------------------------------------------------- CLI


def cli_principal(company_id: int | None = None) -> Principal:
    """Who the command line acts as: an operator with shell access to the server is an
    admin (DESIGN §7); `--as-company` narrows that to one company's administrator.
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
Import a cylinder archive (CSV or XLSX, DESIGN §9) as an idempotent upsert on tag.

Columns (header required, any order, case-insensitive): {columns}.
Required: {required}. Columns the interface does not know are ignored with a warning.
CSV may be UTF-8 (with or without BOM) or GBK/GB18030; XLSX is read from its first sheet.
Dates are YYYY-MM-DD (XLSX date cells too). Empty next_inspection_date / scrap_date are
derived from the rules of DOMAIN.md, an empty volume_l from the model, an empty status is
in_service. A tag repeated in the file: the first good line wins, later ones are rejected.

Every rejected row is listed (line, column, value, reason) and the good rows are stored.
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
        description="Export the cylinder archive (DESIGN §9 columns) as CSV (UTF-8 with BOM, "
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
            src = await asyncio.to_thread(open_archive, path)
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
    if len(report.rejected) > len(shown):
        print(f"... and {len(report.rejected) - len(shown)} more rejected row(s)", file=sys.stderr)
    if args.report:
        await asyncio.to_thread(
            Path(args.report).write_text, report.rejected_csv(), encoding="utf-8-sig"
        )
    verb = "would be" if args.dry_run else "were"
    print(
        f"{path.name}: {report.total_rows} row(s): {report.inserted} inserted, {report.updated}"
        f" updated, {report.unchanged} unchanged, {len(report.rejected)} rejected"
        f"{' (dry run: nothing stored)' if args.dry_run else ''}"
    )
    if report.rejected:
        where = f" listed in {args.report}" if args.report else " (use --report FILE for the list)"
        print(f"warning: {len(report.rejected)} row(s) {verb} rejected{where}", file=sys.stderr)
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
