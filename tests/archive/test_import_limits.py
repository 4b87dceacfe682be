"""Size limits of an archive import (docs/CONFIG.md `[http]`): a workbook that would inflate
beyond them is refused before it is parsed, with nothing stored, and a file full of bad rows
is reported in full while only some of its rejected rows are kept."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import xlsxwriter

from server.archive import ARCHIVE_COLUMNS
from server.kernel.settings import Settings
from server.kernel.tabular import XLSX_MIME
from tests.archive.conftest import Arc, csv_bytes, run_import, write_file
from tests.archive.test_api import URL, auth

_SHEET = "xl/worksheets/sheet1.xml"


def limited(settings: Settings, **http: Any) -> Settings:
    return msgspec.structs.replace(settings, http=msgspec.structs.replace(settings.http, **http))


def workbook(arc: Arc, tag: str, padding: int = 0) -> bytes:
    """A valid one-row XLSX whose sheet XML carries *padding* trailing blanks (legal XML,
    compressed to almost nothing: the shape of a zip bomb)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    row = arc.row(tag=tag, owner_code="TEST-A")
    ws.write_row(0, 0, ARCHIVE_COLUMNS)
    ws.write_row(1, 0, [row[c] for c in ARCHIVE_COLUMNS])
    wb.close()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename == _SHEET:
                data += b" " * padding
            dst.writestr(info.filename, data)
    return out.getvalue()


async def _refused(
    make_archive_client: Any, settings: Settings, data: bytes, pool: asyncpg.Pool, tag: str
) -> str:
    client = await make_archive_client(settings)
    headers = {**await auth(client, "t_inspector"), "Content-Type": XLSX_MIME}
    resp = await client.post(URL, data=data, headers=headers)
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (400, "invalid_file"), body
    assert await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", tag) == 0
    message: str = body["error"]["message"]
    return message


async def test_a_zip_bomb_is_refused_before_parsing(
    make_archive_client: Any, settings: Settings, arc: Arc, pool: asyncpg.Pool
) -> None:
    tag = arc.tag()
    bomb = workbook(arc, tag, padding=3 << 20)
    assert len(bomb) < 64 << 10
    # the total inflated size, the ratio allowed being as high as deflate can reach
    total = limited(settings, max_xlsx_uncompressed_mb=2, max_xlsx_compression_ratio=5000)
    assert "inflates to 3 MB" in await _refused(make_archive_client, total, bomb, pool, tag)
    # one member's compression ratio, the total allowed
    ratio = limited(settings, max_xlsx_uncompressed_mb=100, max_xlsx_compression_ratio=100)
    assert _SHEET in await _refused(make_archive_client, ratio, bomb, pool, tag)


async def test_a_sheet_with_too_many_rows_is_refused(
    make_archive_client: Any, settings: Settings, arc: Arc, pool: asyncpg.Pool
) -> None:
    tag = arc.tag()
    rows = limited(settings, max_import_rows=1)
    message = await _refused(make_archive_client, rows, workbook(arc, tag), pool, tag)
    assert "more than the 1 an import accepts" in message


async def test_rejected_rows_beyond_the_cap_are_counted_not_kept(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    rows = [arc.row(spec="NOPE") for _ in range(7)] + [arc.row(), arc.row()]
    path = write_file(tmp_path, csv_bytes(rows))
    report = await run_import(pool, limited(settings, max_rejected_rows_kept=3), path, arc.admin)
    assert (report.total_rows, report.inserted, report.rejected_total) == (9, 2, 7)
    assert [r.line for r in report.rejected] == [2, 3, 4]
    assert report.summary()["rejected"] == 7
    assert report.to_json()["rejected_truncated"] is True
    assert "7 rows rejected; only 3 of them are listed" in report.warnings


_MB = 1 << 20


async def _hundred_mb() -> Any:
    """100 MB of archive rows, streamed (no Content-Length: the limit holds while reading)."""
    yield b"tag,owner_code,spec,manufacture_date\n"
    line = b"T" * 60 + b",TEST-A,YSP35.5,2020-01-01\n"
    block = line * (_MB // len(line))
    for _ in range(100):
        yield block


async def test_a_100_mb_upload_is_refused_in_the_one_error_shape(
    make_archive_client: Any, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Beyond `[http] max_upload_mb` (here lowered to 50): 413 `payload_too_large`, nothing
    stored — announced by Content-Length (refused before a byte is read), streamed (refused
    while reading), raw or as a form."""
    client = await make_archive_client(limited(settings, max_upload_mb=50))
    headers = await auth(client, "t_company_a")
    before = await pool.fetchval("SELECT count(*) FROM cylinders")
    resp = await client.post(
        URL, data=_hundred_mb(), headers={**headers, "Content-Type": "text/csv"}
    )
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (413, "payload_too_large"), body
    assert "larger than" in body["error"]["message"]
    assert body["error"]["details"] == {"limit_bytes": 50 * _MB}
    form = aiohttp.FormData()
    form.add_field("file", _hundred_mb(), filename="big.csv", content_type="text/csv")
    resp = await client.post(URL, data=form, headers=headers)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"
    whole = b"".join([chunk async for chunk in _hundred_mb()])
    assert len(whole) > 99 * _MB
    # a file object of known size: aiohttp announces it by Content-Length
    resp = await client.post(
        URL, data=io.BytesIO(whole), headers={**headers, "Content-Type": "text/csv"}
    )
    assert resp.status == 413
    err = (await resp.json())["error"]
    assert err["code"] == "payload_too_large" and err["details"]["limit_bytes"] == 50 * _MB
    assert await pool.fetchval("SELECT count(*) FROM cylinders") == before
