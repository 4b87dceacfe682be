"""Opening an archive file (docs/ARCHITECTURE.md §9): by its content, header first, rows streamed.

- The file is opened by content, not by name: a ZIP is an XLSX (first sheet, read by
  python-calamine), an OLE2 file a legacy XLS (calamine reads it too); anything else must be
  text. A CSV's encoding is settled *before* any row is stored, by one decoding pass over
  the whole file: UTF-8 with BOM, then UTF-8, then GB18030 (a superset of GBK, which is what
  Excel writes on a Chinese Windows). A file that decodes as none of these is refused whole.
- The header is required and matched case-insensitively after trimming. The columns
  `REQUIRED_COLUMNS` must be present (missing ones are named in a whole-file error); the
  other archive columns may be absent (their values are empty). Columns the interface does
  not know are **ignored with a warning** in the report rather than refused: archives
  exported from other systems carry extra columns (备注, 序号) and refusing the whole file
  for them would only make operators delete columns by hand.
- Rows are an iterator; the importer takes them in chunks, so nothing holds the whole file
  in Python lists (calamine does hold the parsed XLSX sheet in its own Rust memory).
- Because calamine inflates and holds a whole sheet, a workbook is first checked from its
  ZIP directory alone (docs/CONFIG.md `[http]`): the members' total inflated size
  (`max_xlsx_uncompressed_mb`), each member's compression ratio
  (`max_xlsx_compression_ratio`) and each worksheet's declared `<dimension>`
  (`max_import_rows`). A zip bomb or a sheet claiming ten million rows is refused before
  any of it is parsed; the row count is checked again once the sheet is read, since the
  dimension element is optional.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from server.archive.interface import ARCHIVE_COLUMNS, REQUIRED_COLUMNS, ArchiveFileError, Cell
from server.kernel.settings import Http
from server.kernel.tabular import CSV_BOM

_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_READ_BLOCK: Final = 1 << 20
_MB: Final = 1 << 20
_DIMENSION_HEAD: Final = 4096
"""Bytes of a worksheet read to find `<dimension>`: it precedes the sheet data (ECMA-376
§18.3.1.35 orders `sheetPr`, `dimension`, `sheetViews`, … before `sheetData`)."""
_DIMENSION: Final = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"[A-Z]*\d*:?[A-Z]*(\d+)\"")


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
    header: list[str] = field(default_factory=list)
    """The header row's names as the file spells them (up to `width`), for giving rejected
    rows back in the file's own columns."""
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


def _header_names(raw: Sequence[Cell]) -> list[str]:
    return [str(c if c is not None else "").replace("\ufeff", "").strip() for c in raw]


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


def _check_rows(rows: int, limits: Http) -> None:
    if rows > limits.max_import_rows:
        raise ArchiveFileError(
            f"the file has {rows} rows, more than the {limits.max_import_rows} an import accepts"
            " (split it into several files)"
        )


def check_workbook_zip(path: Path, limits: Http) -> None:
    """Refuse a ZIP that would inflate beyond the limits, reading only its directory and the
    head of each worksheet (a zip bomb is a few KB on disk and gigabytes once parsed)."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            total = sum(m.file_size for m in members)
            if total > limits.max_xlsx_uncompressed_mb * _MB:
                raise ArchiveFileError(
                    f"the workbook inflates to {total // _MB} MB, more than the "
                    f"{limits.max_xlsx_uncompressed_mb} MB an import accepts"
                )
            for m in members:
                if m.file_size > limits.max_xlsx_compression_ratio * max(m.compress_size, 1):
                    raise ArchiveFileError(
                        f"workbook member {m.filename} is compressed more than "
                        f"{limits.max_xlsx_compression_ratio} times: refused as a zip bomb"
                    )
            for m in members:
                if m.filename.startswith("xl/worksheets/") and m.filename.endswith(".xml"):
                    with zf.open(m) as fh:
                        found = _DIMENSION.search(fh.read(_DIMENSION_HEAD))
                    if found:
                        _check_rows(int(found[1]), limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        raise ArchiveFileError(f"the XLSX workbook cannot be read: {exc}") from None


def _open_csv(path: Path, limits: Http) -> ArchiveSource:
    encoding = detect_encoding(path)
    with path.open("rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(_READ_BLOCK), b""))
    _check_rows(lines, limits)
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
    src.header = _header_names(header)
    src._closers.append(text.close)
    return src


def _open_workbook(path: Path, fmt: str, limits: Http) -> ArchiveSource:
    import python_calamine

    if fmt == "xlsx":
        check_workbook_zip(path, limits)
    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
        if not wb.sheet_names:
            raise ArchiveFileError("the workbook has no sheet")
        sheet = wb.get_sheet_by_index(0)
    except ArchiveFileError:
        raise
    except Exception as exc:  # calamine raises several types for a damaged file
        raise ArchiveFileError(f"the {fmt.upper()} workbook cannot be read: {exc}") from None
    _check_rows(sheet.height, limits)
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
    src.header = _header_names(header[:width])
    src._closers.append(wb.close)
    return src


def open_archive(path: str | Path, limits: Http) -> ArchiveSource:
    """Open an archive file by its content (XLSX/XLS by magic number, else CSV text),
    within the size limits of `[http]` (docs/CONFIG.md)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise ArchiveFileError(f"cannot read {p.name}: {exc.strerror}") from None
    if not magic:
        raise ArchiveFileError("the file is empty (a header row is required)")
    if magic.startswith(_ZIP_MAGIC):
        return _open_workbook(p, "xlsx", limits)
    if magic == _OLE_MAGIC:
        return _open_workbook(p, "xls", limits)
    return _open_csv(p, limits)
