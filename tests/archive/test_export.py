"""Exporting archives: what goes out comes back unchanged, and only what the caller may see
goes out at all."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import asyncpg
import pytest
import python_calamine

from server.archive import (
    ARCHIVE_COLUMNS,
    ExportFilters,
    export_csv_chunks,
    write_xlsx,
)
from server.kernel import tabular
from server.kernel.principal import Principal
from server.kernel.settings import Settings
from server.kernel.tabular import CSV_BOM
from tests.archive.conftest import Arc, csv_bytes, new_company, run_import, write_file
from tests.conftest import World


async def export_csv(pool: asyncpg.Pool, principal: Principal, filters: ExportFilters) -> bytes:
    out = bytearray()
    async with pool.acquire() as conn:
        async for chunk in export_csv_chunks(conn, principal, filters):
            out += chunk
    return bytes(out)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(CSV_BOM)
    reader = csv.DictReader(io.StringIO(data[len(CSV_BOM) :].decode()))
    assert tuple(reader.fieldnames or ()) == ARCHIVE_COLUMNS
    return list(reader)


async def _seed_company(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> tuple[str, list[dict[str, str]]]:
    code, _ = await new_company(pool)
    rows = [
        arc.row(owner_code=code, manufacturer='厂, "甲" 车间\n二号'),
        arc.row(owner_code=code, barcode="", stamp="", tare_kg="", manufacturer=""),
        arc.row(owner_code=code, last_inspection_date=arc.today.isoformat(), status="suspended"),
        arc.row(owner_code=code, spec="YSP118-II", volume_l="", scrap_date="2039-12-31"),
        arc.row(owner_code=code, status="scrapped", medium="丙烷"),
        arc.row(owner_code=code, manufacturer="A&B <厂>\r\n\t二号 ]]>"),
    ]
    report = await run_import(pool, settings, write_file(tmp_path, csv_bytes(rows)), arc.admin)
    assert (report.inserted, report.rejected) == (len(rows), [])
    return code, rows


async def test_csv_round_trip_is_unchanged(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    code, rows = await _seed_company(pool, settings, arc, tmp_path)
    data = await export_csv(pool, arc.admin, ExportFilters(company=code))
    out = csv_rows(data)
    assert [r["tag"] for r in out] == [r["tag"] for r in rows]
    assert out[0]["manufacturer"] == '厂, "甲" 车间\n二号'
    assert out[1]["barcode"] == "" and out[1]["tare_kg"] == ""
    assert out[3]["volume_l"] == "118.00" and out[3]["scrap_date"] == "2039-12-31"
    assert out[2]["next_inspection_date"] == arc.today.replace(year=arc.today.year + 4).isoformat()
    path = write_file(tmp_path, data, "export.csv")
    again = await run_import(pool, settings, path, arc.admin)
    assert (again.unchanged, again.inserted, again.updated, again.rejected) == (len(rows), 0, 0, [])


async def test_xlsx_round_trip_is_unchanged_with_real_date_cells(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    code, rows = await _seed_company(pool, settings, arc, tmp_path)
    path = tmp_path / "export.xlsx"
    async with pool.acquire() as conn:
        n = await write_xlsx(conn, arc.admin, ExportFilters(company=code), path)
    assert n == len(rows)
    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    sheet = wb.get_sheet_by_index(0).to_python()
    wb.close()
    assert tuple(sheet[0]) == ARCHIVE_COLUMNS
    first = dict(zip(ARCHIVE_COLUMNS, sheet[1], strict=True))
    assert isinstance(first["manufacture_date"], dt.date)
    assert first["tare_kg"] == 15.5 and first["tag"] == rows[0]["tag"]
    again = await run_import(pool, settings, path, arc.admin)
    assert (again.unchanged, again.inserted, again.updated, again.rejected) == (len(rows), 0, 0, [])


def test_xml_text_escapes_what_xml_cannot_hold() -> None:
    assert tabular.xml_text("厂 A1") == "厂 A1"
    assert tabular.xml_text("a&b<c>\r\x01") == "a&amp;b&lt;c&gt;&#13;_x0001_"


async def test_xlsx_continues_on_another_sheet_past_the_row_limit(
    pool: asyncpg.Pool,
    settings: Settings,
    arc: Arc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, rows = await _seed_company(pool, settings, arc, tmp_path)
    monkeypatch.setattr(tabular, "XLSX_MAX_ROWS", 3)  # header + 2 rows per sheet
    path = tmp_path / "export.xlsx"
    async with pool.acquire() as conn:
        await write_xlsx(conn, arc.admin, ExportFilters(company=code), path)
    with zipfile.ZipFile(path) as zf:  # every part is well-formed XML
        for name in zf.namelist():
            ElementTree.fromstring(zf.read(name))
    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    assert wb.sheet_names == ["cylinders", "cylinders (2)", "cylinders (3)"]
    tags = []
    for i in range(3):
        sheet = wb.get_sheet_by_index(i).to_python()
        assert tuple(sheet[0]) == ARCHIVE_COLUMNS
        tags += [r[0] for r in sheet[1:]]
    wb.close()
    assert tags == [r["tag"] for r in rows]


async def test_export_is_scoped_by_role(pool: asyncpg.Pool, world: World) -> None:
    company_a = Principal(
        user_id=world.users["t_company_a"],
        username="t_company_a",
        role="company_admin",
        company_id=world.companies["A"],
    )
    tags = {r["tag"] for r in csv_rows(await export_csv(pool, company_a, ExportFilters()))}
    assert {"TAG-A-OK", "TAG-A-OVERDUE"} <= tags
    assert not {"TAG-B-OK", "TAG-B-SCRAPPED"} & tags
    # asking for another company's rows gives nothing, not an error
    other = await export_csv(pool, company_a, ExportFilters(company="TEST-B"))
    assert csv_rows(other) == []
    regulator = Principal(
        user_id=world.users["t_regulator_jinshui"],
        username="t_regulator_jinshui",
        role="regulator",
        districts=("410103",),
    )
    tags = {r["tag"] for r in csv_rows(await export_csv(pool, regulator, ExportFilters()))}
    assert "TAG-B-OK" in tags and "TAG-A-OK" not in tags


async def test_export_filters(pool: asyncpg.Pool, world: World, arc: Arc) -> None:
    f = ExportFilters(company="TEST-B", status="scrapped", district="410103", spec="YSP35.5")
    assert [r["tag"] for r in csv_rows(await export_csv(pool, arc.admin, f))] == ["TAG-B-SCRAPPED"]
    f = ExportFilters(company="TEST-B", spec="YSP12")
    assert csv_rows(await export_csv(pool, arc.admin, f)) == []
