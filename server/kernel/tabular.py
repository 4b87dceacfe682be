"""Every table that leaves the platform as a file — CSV or XLSX — is written here.

The archive export (`server.archive.exporter`, docs/API.md "Cylinder archive"), the reports
(`server.api.reports`) and any page that offers a download use this one module, so three
things hold for all of them:

- **Formula injection is neutralised** in every text cell of every export, CSV and XLSX
  alike: a text starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be read
  by a spreadsheet as a formula (a station named `=HYPERLINK(…)` becomes a link, worse
  ones run commands), so it is written with a single quote `'` in front — the OWASP
  "CSV injection" advice. Numbers stay numbers. `neutralise` is the rule; `neutralise_sql`
  is the same rule for a CSV that PostgreSQL writes itself (`COPY … TO STDOUT`), and
  `restore` undoes it for a file read back in (the archive importer), so an export
  imports again unchanged.
- **Memory stays flat**: CSV is produced chunk by chunk (`CsvWriter`), XLSX rows go straight
  into a deflated ZIP entry (`XlsxWriter`), and a larger table continues on a further sheet
  past Excel's XLSX_MAX_ROWS.
- **Excel opens it right**: CSV is UTF-8 with a BOM (Excel on a Chinese Windows otherwise
  shows mojibake); XLSX cells are typed (codes as text, amounts as numbers, dates as dates).

Why a writer of our own rather than xlsxwriter: its per-cell API costs ~5 µs a cell even in
constant_memory mode — 67 s of CPU for the 14M cells of a 1M-row archive before any
database work, over the 60 s target (docs/BENCHMARKS.md). Formatting a whole row as one
string is about five times cheaper. What is written is the subset of ECMA-376 that
xlsxwriter's own constant_memory output uses: inline strings, numbers, booleans, one date
format (style 1), a frozen header row. `<dimension>` (optional in the schema) is left out
because the row count is known only at the end.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import datetime as dt
import io
import logging
import math
import os
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any, Final

from aiohttp import web

__all__ = [
    "CSV_BOM",
    "CSV_MIME",
    "EXCEL_EPOCH",
    "FORMULA_TRIGGERS",
    "XLSX_MAX_ROWS",
    "XLSX_MIME",
    "CsvWriter",
    "XlsxWriter",
    "neutralise",
    "neutralise_sql",
    "restore",
    "send_file",
    "stream_table",
    "table_bytes",
]

log = logging.getLogger(__name__)

CSV_BOM: Final = codecs.BOM_UTF8
CSV_MIME: Final = "text/csv"
XLSX_MIME: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS: Final = 1_048_576
"""Rows per worksheet in Excel; a larger table continues on another sheet."""
EXCEL_EPOCH: Final = dt.date(1899, 12, 30)
"""Day 0 of Excel's 1900 date system as it counts from 1900-03-01 on (serial 61)."""
SHEET_NAME_MAX: Final = 31
"""Excel refuses longer worksheet names."""

FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a text cell as a formula (OWASP)."""
_TRIGGERS: Final = frozenset(FORMULA_TRIGGERS)
_QUOTE: Final = "'"

CSV_FLUSH_ROWS: Final = 1000
"""Rows of a streamed CSV between two writes to the client: small enough to start the
download at once, large enough that a write is not a syscall per row."""
XLSX_BATCH_ROWS: Final = 5000
"""Rows handed to the XLSX writer's thread at a time (one thread hop per batch)."""
SEND_CHUNK: Final = 1 << 20
"""Bytes per read when a finished file is sent."""


# ---------------------------------------------------------------- formula injection


def neutralise(text: str) -> str:
    """*text* as a spreadsheet shows it literally: a formula trigger gets a `'` in front."""
    return _QUOTE + text if text[:1] in _TRIGGERS else text


def restore(text: str) -> str:
    """Undo `neutralise` on a cell read back from an exported file."""
    return text[1:] if text[:1] == _QUOTE and text[1:2] in _TRIGGERS else text


def neutralise_sql(expr: str) -> str:
    """`neutralise` as a SQL expression over a text *expr* (for `COPY … TO STDOUT` CSV)."""
    firsts = ", ".join(f"chr({ord(ch)})" for ch in FORMULA_TRIGGERS)
    return f"CASE WHEN left({expr}, 1) IN ({firsts}) THEN '{_QUOTE * 2}' || {expr} ELSE {expr} END"


# ---------------------------------------------------------------- CSV


class CsvWriter:
    """Rows to CSV text chunk by chunk: `add` rows, `take` what is ready (BOM and header
    come with the first chunk). Text cells are neutralised; None is an empty cell."""

    def __init__(
        self, header: Sequence[str], *, bom: bool = True, lineterminator: str = "\r\n"
    ) -> None:
        self._buf = io.StringIO()
        if bom:
            self._buf.write("\ufeff")
        self._csv = csv.writer(self._buf, lineterminator=lineterminator)
        self.add((header,))

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        self._csv.writerows(
            [neutralise(v) if isinstance(v, str) else v for v in row] for row in rows
        )

    def take(self) -> str:
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        return text


# ---------------------------------------------------------------- XLSX

_NS_MAIN: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml"
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

TEXT: Final = "s"
"""Column kind: a string cell (codes stay text: a numeric tag must not become 1.2E+15)."""
NUMBER: Final = "n"
"""Column kind: a number (int, float or Decimal)."""
DATE: Final = "d"
"""Column kind: a date given as an Excel serial day (see `EXCEL_EPOCH`), shown yyyy-mm-dd."""
AUTO: Final = "a"
"""Column kind: by the value's type — bool, number, else its text."""


def xml_text(value: str) -> str:
    """Text for a SpreadsheetML <t>: XML-escaped, control characters as Excel's _xHHHH_."""
    if _XML_SPECIAL.search(value) is None:
        return value
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace("\r", "&#13;")
    return _XML_CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", value)


def _column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA (a cell reference's column)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _text_cell(ref: str, value: str) -> str:
    value = neutralise(value)
    keep = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{keep}>{xml_text(value)}</t></is></c>'


def _auto_cell(ref: str, value: Any) -> str:
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | Decimal) or (isinstance(value, float) and math.isfinite(value)):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return _text_cell(ref, value if isinstance(value, str) else str(value))


class XlsxWriter:
    """A streaming XLSX workbook: `write` batches of rows, then `close`.

    *kinds* gives each column's kind (TEXT, NUMBER, DATE, AUTO; default AUTO for all).
    Rows past XLSX_MAX_ROWS continue on sheets named "*sheet_name* (2)", "(3)" …, each
    with the header again. Not thread-safe; call it from one thread at a time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: Sequence[str],
        *,
        kinds: Sequence[str] | None = None,
        sheet_name: str = "Sheet1",
    ) -> None:
        self.header = list(header)
        self.kinds = list(kinds) if kinds is not None else [AUTO] * len(self.header)
        if len(self.kinds) != len(self.header):
            raise ValueError("one kind per column")
        self.sheet_name = sheet_name[:SHEET_NAME_MAX]
        self.letters = [_column_letter(i) for i in range(len(self.header))]
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self.sheet: IO[str] | None = None
        self.sheets = 0
        self.row = XLSX_MAX_ROWS  # forces the first sheet

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
            _text_cell(f"{letter}1", name)
            for letter, name in zip(self.letters, self.header, strict=True)
        )
        self.sheet.write(f'{_SHEET_HEAD}<row r="1">{header}</row>')
        self.row = 1

    def write(self, records: Sequence[Sequence[Any]]) -> None:
        columns = list(zip(self.letters, self.kinds, strict=True))
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
            for (letter, kind), v in zip(columns, rec, strict=True):
                if v is None:
                    continue
                if kind == TEXT:  # the hot path of a large export: _text_cell inlined
                    if v[:1] in _TRIGGERS:
                        v = _QUOTE + v
                    keep = ' xml:space="preserve"' if v[:1].isspace() or v[-1:].isspace() else ""
                    cells.append(
                        f'<c r="{letter}{n}" t="inlineStr"><is><t{keep}>{xml_text(v)}</t></is></c>'
                    )
                elif kind == NUMBER:
                    cells.append(f'<c r="{letter}{n}"><v>{v}</v></c>')
                elif kind == DATE:
                    cells.append(f'<c r="{letter}{n}" s="1"><v>{v}</v></c>')
                else:
                    cells.append(_auto_cell(f"{letter}{n}", v))
            parts.append(f'<row r="{n}">{"".join(cells)}</row>')
        if parts and self.sheet is not None:
            self.sheet.write("".join(parts))

    def close(self) -> None:
        if self.sheets == 0:
            self._new_sheet()
        self._end_sheet()
        names = [xml_text(self.sheet_name)] + [
            xml_text(f"{self.sheet_name[: SHEET_NAME_MAX - 4 - len(str(i))]} ({i})")
            for i in range(2, self.sheets + 1)
        ]
        sheets = "".join(
            f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(names, start=1)
        )
        ws_type = f"{_NS_REL}/worksheet"
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{ws_type}" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, self.sheets + 1)
        )
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT}.worksheet+xml"/>'
            for i in range(1, self.sheets + 1)
        )
        parts = {
            "[Content_Types].xml": (
                f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                'content-types"><Default Extension="rels" ContentType="application/'
                'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                f'ContentType="{_CT}.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
                f'ContentType="{_CT}.styles+xml"/>{overrides}</Types>'
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


# ---------------------------------------------------------------- over HTTP


def _plain(value: Any) -> Any:
    """A report value as its table shows it: amounts as numbers, days and times in ISO 8601,
    anything structured as its text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return str(value)
    return value


def _attachment(filename: str) -> str:
    return f"attachment; filename=\"{filename}\"; filename*=UTF-8''{filename}"


async def send_file(
    request: web.Request, path: str, headers: Mapping[str, str]
) -> web.StreamResponse:
    """Send a finished file (an XLSX cannot be streamed as it is written: it is a ZIP whose
    directory comes last). A client that goes away mid-download is logged, not an error."""
    resp = web.StreamResponse(headers=headers)
    resp.content_length = await asyncio.to_thread(os.path.getsize, path)
    await resp.prepare(request)
    try:
        with open(path, "rb") as fh:  # noqa: ASYNC230 - reads go to a thread
            while chunk := await asyncio.to_thread(fh.read, SEND_CHUNK):
                await resp.write(chunk)
    except ConnectionResetError:
        log.info("download: client went away during %s", request.path)
        return resp
    await resp.write_eof()
    return resp


def table_bytes(
    fmt: str, sheet_name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> bytes:
    """A whole small table as the bytes of a CSV or XLSX file (a scheduled report's file,
    kept and attached rather than streamed). Blocking: call it in a thread."""
    plain = ([_plain(v) for v in row] for row in rows)
    if fmt == "csv":
        writer = CsvWriter(header)
        writer.add(plain)
        return writer.take().encode()
    fd, path = tempfile.mkstemp(prefix="cylwatch-table-", suffix=".xlsx")
    os.close(fd)
    try:
        book = XlsxWriter(path, header, sheet_name=sheet_name)
        book.write(list(plain))
        book.close()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


async def stream_table(
    request: web.Request,
    fmt: str,
    filename: str,
    header: Sequence[str],
    rows: AsyncIterator[Sequence[Any]],
) -> web.StreamResponse:
    """Serve *rows* as `filename.csv` (streamed as rows arrive) or `filename.xlsx`.

    Values are shown plainly (`_plain`). Neither holds the whole table in memory: CSV goes
    out every CSV_FLUSH_ROWS rows; XLSX rows are written in batches off the event loop into
    a temporary file, which is sent when complete.
    """
    if fmt == "csv":
        resp = web.StreamResponse(
            headers={
                "Content-Type": f"{CSV_MIME}; charset=utf-8",
                "Content-Disposition": _attachment(f"{filename}.csv"),
            }
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        writer = CsvWriter(header)
        batch: list[Sequence[Any]] = []
        async for row in rows:
            batch.append([_plain(v) for v in row])
            if len(batch) >= CSV_FLUSH_ROWS:
                writer.add(batch)
                batch = []
                await resp.write(writer.take().encode())
        writer.add(batch)
        await resp.write(writer.take().encode())
        await resp.write_eof()
        return resp
    fd, path = tempfile.mkstemp(prefix="cylwatch-table-", suffix=".xlsx")
    os.close(fd)
    try:
        book = XlsxWriter(path, header, sheet_name=filename)
        batch = []
        async for row in rows:
            batch.append([_plain(v) for v in row])
            if len(batch) >= XLSX_BATCH_ROWS:
                await asyncio.to_thread(book.write, batch)
                batch = []
        await asyncio.to_thread(book.write, batch)
        await asyncio.to_thread(book.close)
        return await send_file(
            request,
            path,
            {"Content-Type": XLSX_MIME, "Content-Disposition": _attachment(f"{filename}.xlsx")},
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
