"""`POST /api/v1/cylinders/import` and `GET /api/v1/cylinders/export` over real HTTP."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import python_calamine
import xlsxwriter

from server.archive import ARCHIVE_COLUMNS
from server.kernel.tabular import CSV_BOM, XLSX_MIME
from tests.archive.conftest import Arc, csv_bytes
from tests.conftest import login

URL = "/api/v1/cylinders/import"
_tokens: dict[str, dict[str, str]] = {}


async def auth(client: Any, username: str) -> dict[str, str]:
    """Bearer headers (bearer requests need no CSRF token); one login per user and session."""
    if username not in _tokens:
        _tokens[username] = await login(client, username)
    client.session.cookie_jar.clear()
    return dict(_tokens[username])


def company_a_row(arc: Arc, **over: Any) -> dict[str, Any]:
    return arc.row(owner_code="TEST-A", **over)


async def test_multipart_upload_as_company_admin(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool
) -> None:
    rows = [company_a_row(arc), company_a_row(arc), company_a_row(arc, tag="TAG-B-OK")]
    form = aiohttp.FormData()
    form.add_field(
        "file", csv_bytes(rows, encoding="gbk"), filename="档案.csv", content_type="text/csv"
    )
    headers = await auth(archive_client, "t_company_a")
    resp = await archive_client.post(URL, data=form, headers=headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["inserted"], body["rejected"], body["filename"]) == (2, 1, "档案.csv")
    assert body["encoding"] == "gb18030"
    assert body["rejected_rows"] == [
        {
            "line": 4,
            "column": "tag",
            "value": "TAG-B-OK",
            "reason": "tag belongs to another company",
            "code": "tag_other_company",
            "params": {},
        }
    ]
    owner = await pool.fetchval(
        "SELECT c.code FROM cylinders y JOIN companies c"
        " ON c.id = y.owner_company_id WHERE y.tag = 'TAG-B-OK'"
    )
    assert owner == "TEST-B"


async def test_raw_csv_dry_run_and_csv_report(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool
) -> None:
    rows = [company_a_row(arc), company_a_row(arc, spec="NOPE")]
    headers = {**await auth(archive_client, "t_admin"), "Content-Type": "text/csv"}
    resp = await archive_client.post(
        URL + "?dry_run=true&filename=a.csv", data=csv_bytes(rows), headers=headers
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["dry_run"], body["inserted"], body["rejected"]) == (True, 1, 1)
    assert body["rejected_rows"][0]["column"] == "spec"
    assert await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", rows[0]["tag"]) == 0

    resp = await archive_client.post(URL + "?report=csv", data=csv_bytes(rows), headers=headers)
    assert resp.status == 200
    assert resp.headers["X-Import-Inserted"] == "1"
    assert resp.headers["X-Import-Rejected"] == "1"
    text = (await resp.read()).decode("utf-8-sig")
    report = list(csv.reader(io.StringIO(text)))
    assert report[0] == ["line", "column", "value", "reason"]
    assert report[1][:3] == ["3", "spec", "NOPE"]


async def test_raw_xlsx_upload(archive_client: Any, arc: Arc, tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    row = company_a_row(arc)
    ws.write_row(0, 0, ARCHIVE_COLUMNS)
    ws.write_row(1, 0, [row[c] for c in ARCHIVE_COLUMNS])
    wb.close()
    headers = {**await auth(archive_client, "t_inspector"), "Content-Type": XLSX_MIME}
    resp = await archive_client.post(URL, data=path.read_bytes(), headers=headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["format"], body["inserted"], body["rejected"]) == ("xlsx", 1, 0)


async def test_bad_files_are_400_invalid_file(archive_client: Any) -> None:
    headers = await auth(archive_client, "t_admin")
    for data, ctype, words in (
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "application/octet-stream", "neither CSV"),
        (b"name,age\nx,1\n", "text/csv", "missing required column(s) tag"),
        (b"", "text/csv", "empty"),
        (b"PK\x03\x04broken", XLSX_MIME, "cannot be read"),
    ):
        resp = await archive_client.post(URL, data=data, headers={**headers, "Content-Type": ctype})
        assert resp.status == 400, (data, await resp.text())
        err = (await resp.json())["error"]
        assert err["code"] == "invalid_file" and words in err["message"], err
    form = aiohttp.FormData()
    form.add_field("other", b"tag\n", filename="x.csv")
    resp = await archive_client.post(URL, data=form, headers=headers)
    assert resp.status == 400
    assert "'file'" in (await resp.json())["error"]["message"]
    resp = await archive_client.post(URL, json={"tag": "x"}, headers=headers)
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_import_roles(archive_client: Any) -> None:
    for user, status in (("t_regulator", 403), ("t_operator_a", 403), ("t_officer", 403)):
        headers = {**await auth(archive_client, user), "Content-Type": "text/csv"}
        resp = await archive_client.post(URL, data=b"tag\n", headers=headers)
        assert resp.status == status, user
    resp = await archive_client.post(URL, data=b"tag\n", headers={"Content-Type": "text/csv"})
    assert resp.status == 401


async def test_export_csv_is_scoped_and_streamed(archive_client: Any) -> None:
    resp = await archive_client.get(
        "/api/v1/cylinders/export?format=csv", headers=await auth(archive_client, "t_company_a")
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="cylinders-' in resp.headers["Content-Disposition"]
    data = await resp.read()
    assert data.startswith(CSV_BOM)
    tags = {r["tag"] for r in csv.DictReader(io.StringIO(data[3:].decode()))}
    assert "TAG-A-OK" in tags and "TAG-B-OK" not in tags


async def test_export_xlsx_and_filters(archive_client: Any, pool: asyncpg.Pool) -> None:
    headers = await auth(archive_client, "t_admin")
    resp = await archive_client.get(
        "/api/v1/cylinders/export?format=xlsx&company=TEST-B&status=scrapped", headers=headers
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == XLSX_MIME
    wb = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(await resp.read()))
    rows = wb.get_sheet_by_index(0).to_python()
    assert [r[0] for r in rows[1:]] == ["TAG-B-SCRAPPED"]
    audit = await pool.fetchrow(
        "SELECT details FROM audit_log WHERE action = 'cylinder.export' ORDER BY id DESC LIMIT 1"
    )
    assert audit is not None
    assert audit["details"] == {
        "format": "xlsx",
        "rows": 1,
        "company": "TEST-B",
        "status": "scrapped",
    }
    for query, field in (
        ("format=pdf", "format"),
        ("status=gone", "status"),
        ("district=abc", "district"),
        ("colour=red", "colour"),
    ):
        resp = await archive_client.get(f"/api/v1/cylinders/export?{query}", headers=headers)
        assert resp.status == 400, query
        err = (await resp.json())["error"]
        assert err["code"] == "invalid_query" and err["details"]["field"] == field
    resp = await archive_client.get("/api/v1/cylinders/export")
    assert resp.status == 401


async def test_rejected_rows_come_back_in_the_files_columns_to_correct(
    archive_client: Any, arc: Arc, pool: asyncpg.Pool
) -> None:
    """`report=rows`: the rejected rows as the file had them (its header, its extra columns,
    its values) plus why — a formula-like cell neutralised — and the corrected file imports."""
    good = company_a_row(arc)
    bad_date = company_a_row(arc, manufacture_date="2021-02-30", manufacturer="=1+2")
    bad_spec = company_a_row(arc, spec="YSP99")
    columns = (*ARCHIVE_COLUMNS, "备注")
    data = csv_bytes(
        [{**good, "备注": "a"}, {**bad_date, "备注": "b"}, {**bad_spec, "备注": "c"}], columns
    )
    headers = {**await auth(archive_client, "t_company_a"), "Content-Type": "text/csv"}
    resp = await archive_client.post(URL + "?dry_run=true&report=rows", data=data, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (resp.headers["X-Import-Rejected"], resp.headers["X-Import-Dry-Run"]) == ("2", "true")
    raw = await resp.read()
    assert raw.startswith(CSV_BOM)
    back = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(back[0]) == [*columns, "reason"]
    assert [(r["tag"], r["备注"]) for r in back] == [(bad_date["tag"], "b"), (bad_spec["tag"], "c")]
    assert back[0]["manufacture_date"] == "2021-02-30"
    assert back[0]["manufacturer"] == "'=1+2"  # neutralised, as every export
    assert back[0]["reason"].startswith("manufacture_date")
    assert "not a calendar date" in back[0]["reason"]
    assert back[1]["reason"].startswith("spec") and "YSP99" in back[1]["reason"]
    assert await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", good["tag"]) == 0

    # corrected where it was written, uploaded again with its reason column: all stored
    back[0]["manufacture_date"] = good["manufacture_date"]
    back[1]["spec"] = "YSP12"
    fixed = csv_bytes(back, [*columns, "reason"])
    resp = await archive_client.post(URL, data=fixed, headers=headers)
    body = await resp.json()
    assert (body["inserted"], body["rejected"]) == (2, 0), body
    assert "reason" in body["warnings"][0]  # ignored, said so
    stored = await pool.fetchval(
        "SELECT manufacturer FROM cylinders WHERE tag = $1", bad_date["tag"]
    )
    assert stored == "=1+2"  # the quote came off again


async def test_rejected_rows_of_a_second_round_keep_one_reason_column(
    archive_client: Any, arc: Arc
) -> None:
    row = {**company_a_row(arc, spec="NOPE"), "reason": "an earlier reason"}
    data = csv_bytes([row], (*ARCHIVE_COLUMNS, "reason"))
    headers = {**await auth(archive_client, "t_inspector"), "Content-Type": "text/csv"}
    resp = await archive_client.post(URL + "?dry_run=true&report=rows", data=data, headers=headers)
    back = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert back[0] == [*ARCHIVE_COLUMNS, "reason"]
    assert "not a configured model" in back[1][-1]


async def test_rejected_rows_of_an_xlsx(archive_client: Any, arc: Arc, tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    row = arc.row(owner_code="NOPE-CO")
    ws.write_row(0, 0, ARCHIVE_COLUMNS)
    ws.write_row(1, 0, [row[c] for c in ARCHIVE_COLUMNS])
    ws.write_number(1, ARCHIVE_COLUMNS.index("tare_kg"), 15.0)
    wb.close()
    headers = {**await auth(archive_client, "t_admin"), "Content-Type": XLSX_MIME}
    resp = await archive_client.post(
        URL + "?dry_run=true&report=rows", data=path.read_bytes(), headers=headers
    )
    back = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert [(r["tag"], r["owner_code"], r["tare_kg"]) for r in back] == [
        (row["tag"], "NOPE-CO", "15")
    ]
    assert "not a registered company" in back[0]["reason"]


async def test_the_template_is_the_archive_header(archive_client: Any) -> None:
    headers = await auth(archive_client, "t_company_a")
    resp = await archive_client.get("/api/v1/cylinders/import/template", headers=headers)
    assert resp.status == 200
    assert "cylinder-archive.csv" in resp.headers["Content-Disposition"]
    assert (await resp.read()).decode("utf-8-sig").splitlines() == [",".join(ARCHIVE_COLUMNS)]
    resp = await archive_client.get(
        "/api/v1/cylinders/import/template?format=xlsx", headers=headers
    )
    assert resp.headers["Content-Type"] == XLSX_MIME
    wb = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(await resp.read()))
    assert wb.get_sheet_by_index(0).to_python() == [list(ARCHIVE_COLUMNS)]
    resp = await archive_client.get("/api/v1/cylinders/import/template?format=pdf", headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["field"] == "format"
    resp = await archive_client.get(
        "/api/v1/cylinders/import/template", headers=await auth(archive_client, "t_regulator")
    )
    assert resp.status == 403
