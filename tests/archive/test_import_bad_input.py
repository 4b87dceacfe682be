"""Bad files at the archive import (docs/API.md "Errors"; docs/CONFIG.md `[http]` limits).

What a user would notice: an upload that answers 500, or a bad file half-stored. Each file
here is one a person or a broken export could really send — huge cells (past Excel's
32,767 characters, past the CSV reader's field limit), text PostgreSQL cannot hold (NUL),
thousands of columns, a damaged sheet inside a sound zip, an XML entity bomb, a zip bomb at
the shipped limits — and each answers either 200 with the bad rows listed (the good ones
stored) or 400 ``invalid_file`` with nothing stored. Never a 5xx.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import asyncpg
import pytest
import xlsxwriter

from server.archive import ARCHIVE_COLUMNS
from server.kernel.tabular import XLSX_MIME
from tests.archive.conftest import Arc, csv_bytes
from tests.archive.test_api import URL, auth

_SHEET = "xl/worksheets/sheet1.xml"
EXCEL_CELL_MAX = 32_767
"""The most characters an Excel cell holds."""
CSV_FIELD_LIMIT = 131_072
"""Python's csv module's default field size limit."""
STORED = "SELECT count(*) FROM cylinders WHERE strpos(upper(tag), upper($1)) > 0"
"""Rows of a case: its tag, or a longer one that holds it (a huge tag, a NUL dropped)."""


def _xlsx(rows: list[list[Any]]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            ws.write_string(r, c, str(value))
    wb.close()
    return buf.getvalue()


def _xlsx_of(arc: Arc, **over: Any) -> tuple[bytes, str]:
    row = arc.row(owner_code="TEST-A", **over)
    return _xlsx([list(ARCHIVE_COLUMNS), [row[c] for c in ARCHIVE_COLUMNS]]), row["tag"]


def _replace_member(data: bytes, name: str, body: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, body if info.filename == name else src.read(info))
    return out.getvalue()


def _csv_of(arc: Arc, **over: Any) -> tuple[bytes, str]:
    row = arc.row(owner_code="TEST-A", **over)
    return csv_bytes([row]), row["tag"]


async def _post(client: Any, data: bytes, ctype: str) -> tuple[int, dict[str, Any]]:
    headers = {**await auth(client, "t_admin"), "Content-Type": ctype}
    resp = await client.post(URL, data=data, headers=headers)
    return resp.status, await resp.json()


def _huge_cells(arc: Arc) -> list[tuple[str, bytes, str, str]]:
    """(case, file, content type, tag): one cell of each size in a field of each kind."""
    cases = []
    for size in (EXCEL_CELL_MAX, CSV_FIELD_LIMIT - 10, CSV_FIELD_LIMIT + 10):
        for column in ("tag", "manufacturer", "spec", "manufacture_date", "tare_kg"):
            tag = arc.tag()
            huge = tag + "9" * size if column == "tag" else "9" * size
            data, _ = _csv_of(arc, **{"tag": tag, column: huge})
            cases.append((f"csv {column} {size}", data, "text/csv", tag))
        extra = arc.tag()
        row = arc.row(owner_code="TEST-A", tag=extra)
        data = csv_bytes([{**row, "remarks": "备" * size}], [*ARCHIVE_COLUMNS, "remarks"])
        cases.append((f"csv unknown column {size}", data, "text/csv", extra))
    for column in ("tag", "manufacturer", "barcode"):
        tag = arc.tag()
        huge = tag + "Z" * EXCEL_CELL_MAX if column == "tag" else "Z" * EXCEL_CELL_MAX
        data, _ = _xlsx_of(arc, **{"tag": tag, column: huge})
        cases.append((f"xlsx {column} {EXCEL_CELL_MAX}", data, XLSX_MIME, tag))
    return cases


async def _no_5xx_and_all_or_listed(
    client: Any, pool: asyncpg.Pool, case: str, data: bytes, ctype: str, tag: str
) -> None:
    status, body = await _post(client, data, ctype)
    assert status in (200, 400, 413), (case, status, body)
    if status != 200:
        assert body["error"]["code"] in ("invalid_file", "payload_too_large"), (case, body)
        assert await pool.fetchval(STORED, tag) == 0
        return
    stored = await pool.fetchval(STORED, tag)
    assert body["inserted"] + body["updated"] + body["rejected"] >= 1, (case, body)
    assert stored == body["inserted"] + body["updated"], (case, body)


async def test_huge_cells_are_rejected_rows_or_invalid_files_never_a_500(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool
) -> None:
    for case, data, ctype, tag in _huge_cells(arc):
        await _no_5xx_and_all_or_listed(archive_client, pool, case, data, ctype, tag)


@pytest.mark.parametrize("column", ["tag", "manufacturer", "stamp", "remarks"])
async def test_nul_in_a_cell_is_never_a_500(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool, column: str
) -> None:
    """PostgreSQL text cannot hold NUL: CSV carries it raw, XLSX as ``_x0000_``."""
    tag = arc.tag()
    row = arc.row(owner_code="TEST-A", tag=tag)
    columns = [*ARCHIVE_COLUMNS, "remarks"]
    row = {**row, "remarks": ""}
    value = f"a\x00b{tag}" if column == "tag" else "a\x00b"
    data = csv_bytes([{**row, column: value}], columns)
    await _no_5xx_and_all_or_listed(archive_client, pool, f"csv {column}", data, "text/csv", tag)
    tag = arc.tag()
    row = {**arc.row(owner_code="TEST-A", tag=tag), "remarks": ""}
    sheet = [columns, [row[c] if c != column else value for c in columns]]
    xlsx = _xlsx(sheet)  # xlsxwriter writes the NUL as _x0000_, calamine reads it back
    await _no_5xx_and_all_or_listed(archive_client, pool, f"xlsx {column}", xlsx, XLSX_MIME, tag)


async def test_damaged_workbooks_are_invalid_files(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool
) -> None:
    good, tag = _xlsx_of(arc)
    sheet = zipfile.ZipFile(io.BytesIO(good)).read(_SHEET)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'.encode()
            for i in range(9)
        )
        + b']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1"'
        + b' uniqueCount="1"><si><t>&lol8;</t></si></sst>'
    )
    members = zipfile.ZipFile(io.BytesIO(good)).namelist()
    cases = [
        ("truncated sheet xml", _replace_member(good, _SHEET, sheet[: len(sheet) // 2])),
        ("sheet not xml", _replace_member(good, _SHEET, b"\x00\xff" * 1000)),
        ("empty sheet member", _replace_member(good, _SHEET, b"")),
        ("no workbook part", _replace_member(good, "xl/workbook.xml", b"<nope/>")),
        ("truncated zip", good[: len(good) // 2]),
        ("zip of nothing", _replace_member(good, _SHEET, sheet)[:30] + b"\x00" * 100),
    ]
    if "xl/sharedStrings.xml" in members:
        cases.append(("entity bomb", _replace_member(good, "xl/sharedStrings.xml", laughs)))
    for case, data in cases:
        await _no_5xx_and_all_or_listed(archive_client, pool, case, data, XLSX_MIME, tag)


async def test_a_zip_bomb_at_the_shipped_limits_is_refused(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool, settings: Any
) -> None:
    """A sheet member inflating past ``max_xlsx_uncompressed_mb`` (200 MB shipped) from a
    few hundred KB: refused before calamine inflates it (docs/CONFIG.md `[http]`)."""
    good, tag = _xlsx_of(arc)
    sheet = zipfile.ZipFile(io.BytesIO(good)).read(_SHEET)
    mb = settings.http.max_xlsx_uncompressed_mb + 1
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(good)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            if info.filename != _SHEET:
                dst.writestr(info.filename, src.read(info))
                continue
            with dst.open(_SHEET, "w", force_zip64=True) as member:
                member.write(sheet)
                blanks = b" " * (1 << 20)
                for _ in range(mb):
                    member.write(blanks)
    bomb = out.getvalue()
    assert len(bomb) < mb * 4096  # a few hundred KB on the wire
    status, body = await _post(archive_client, bomb, XLSX_MIME)
    assert (status, body["error"]["code"]) == (400, "invalid_file"), body
    assert await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", tag) == 0


async def test_thousands_of_columns_and_ragged_rows(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool
) -> None:
    tag = arc.tag()
    row = arc.row(owner_code="TEST-A", tag=tag)
    wide = [*ARCHIVE_COLUMNS, *(f"extra{i}" for i in range(5_000))]
    data = csv_bytes([{**row, **{f"extra{i}": "x" for i in range(5_000)}}], wide)
    await _no_5xx_and_all_or_listed(archive_client, pool, "wide csv", data, "text/csv", tag)
    tag = arc.tag()
    data, _ = _csv_of(arc, tag=tag)
    ragged = data + b"a\r\n" + b",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\r\n" + b'"unclosed\r\n'
    await _no_5xx_and_all_or_listed(archive_client, pool, "ragged csv", ragged, "text/csv", tag)
