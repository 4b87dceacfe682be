"""Formula injection is neutralised in every export (server.kernel.tabular): a text cell that
a spreadsheet would run as a formula comes back as literal text starting with `'`, in CSV
(written by PostgreSQL's COPY) and in XLSX (read back with python-calamine) alike; numbers
stay numbers; and an exported archive still imports back unchanged."""

from __future__ import annotations

import csv
import io
import secrets
from pathlib import Path

import asyncpg
import python_calamine

from server.archive import ARCHIVE_COLUMNS, ExportFilters, export_csv_chunks, write_xlsx
from server.kernel.settings import Settings
from server.kernel.tabular import (
    CSV_BOM,
    FORMULA_TRIGGERS,
    CsvWriter,
    XlsxWriter,
    neutralise,
    neutralise_sql,
    restore,
)
from tests.archive.conftest import Arc, csv_bytes, run_import, write_file

FORMULA = '=HYPERLINK("#x","y")'


def test_a_formula_trigger_gets_a_quote_and_nothing_else_does() -> None:
    for first in FORMULA_TRIGGERS:
        assert neutralise(f"{first}1+1") == f"'{first}1+1"
        assert restore(neutralise(f"{first}1+1")) == f"{first}1+1"
    for text in ("", "'", "'quoted", "E280ABC", "厂家", " =spaced", "1-2"):
        assert neutralise(text) == text
        assert restore(text) == text


async def test_sql_rule_is_the_python_rule(pool: asyncpg.Pool) -> None:
    samples = [f"{first}x" for first in FORMULA_TRIGGERS] + ["x=", "'=x", "", "正常"]
    got = await pool.fetch(
        f"SELECT t, {neutralise_sql('t')} AS safe FROM unnest($1::text[]) AS u(t)", samples
    )
    assert {r["t"]: r["safe"] for r in got} == {t: neutralise(t) for t in samples}


def test_csv_writer_neutralises_text_not_numbers() -> None:
    writer = CsvWriter(("name", "n", "minus"), bom=False)
    writer.add([(FORMULA, -5, "-5"), (None, 1.5, "@SUM(A1)")])
    rows = list(csv.reader(io.StringIO(writer.take())))
    assert rows == [["name", "n", "minus"], ["'" + FORMULA, "-5", "'-5"], ["", "1.5", "'@SUM(A1)"]]


def test_xlsx_writer_neutralises_text_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    book = XlsxWriter(path, ("name", "n", "minus", "flag"), sheet_name="t")
    book.write([(FORMULA, -5, "-5", True), ("+1", None, "\tx", False)])
    book.close()
    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    sheet = wb.get_sheet_by_index(0).to_python()
    wb.close()
    assert sheet[1] == ["'" + FORMULA, -5.0, "'-5", True]
    assert sheet[2][0] == "'+1" and sheet[2][2] == "'\tx" and sheet[2][3] is False


async def _formula_company(pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp: Path) -> str:
    """A company whose code is a formula, with a cylinder whose manufacturer is one too."""
    code = f'=HYPERLINK("#x","{secrets.token_hex(4)}")'  # codes are unique
    await pool.execute(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105')",
        code,
        FORMULA,
    )
    rows = [arc.row(owner_code=code, manufacturer=FORMULA), arc.row(owner_code=code)]
    report = await run_import(pool, settings, write_file(tmp, csv_bytes(rows)), arc.admin)
    assert (report.inserted, report.rejected) == (2, [])
    return code


async def test_archive_csv_export_quotes_formulas(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    code = await _formula_company(pool, settings, arc, tmp_path)
    data = bytearray()
    async with pool.acquire() as conn:
        async for chunk in export_csv_chunks(conn, arc.admin, ExportFilters(company=code)):
            data += chunk
    assert data.startswith(CSV_BOM)
    out = list(csv.DictReader(io.StringIO(data[len(CSV_BOM) :].decode())))
    assert out[0]["owner_code"] == "'" + code
    assert out[0]["manufacturer"] == "'" + FORMULA
    assert out[0]["tare_kg"] == "15.50"
    again = await run_import(pool, settings, write_file(tmp_path, bytes(data), "x.csv"), arc.admin)
    assert (again.unchanged, again.rejected) == (2, [])


async def test_archive_xlsx_export_quotes_formulas(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    code = await _formula_company(pool, settings, arc, tmp_path)
    path = tmp_path / "export.xlsx"
    async with pool.acquire() as conn:
        assert await write_xlsx(conn, arc.admin, ExportFilters(company=code), path) == 2
    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    sheet = wb.get_sheet_by_index(0).to_python()
    wb.close()
    first = dict(zip(ARCHIVE_COLUMNS, sheet[1], strict=True))
    assert first["owner_code"] == "'" + code
    assert first["manufacturer"] == "'" + FORMULA
    assert first["tare_kg"] == 15.5
    again = await run_import(pool, settings, path, arc.admin)
    assert (again.unchanged, again.rejected) == (2, [])


async def test_rejected_rows_report_quotes_formulas(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    rows = [arc.row(owner_code=arc.code_a, spec=FORMULA)]
    report = await run_import(pool, settings, write_file(tmp_path, csv_bytes(rows)), arc.admin)
    assert [r.value for r in report.rejected] == [FORMULA]
    table = list(csv.reader(io.StringIO(report.rejected_csv())))
    assert table[1][1:3] == ["spec", "'" + FORMULA]
