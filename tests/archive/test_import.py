"""Importing archives (docs/ARCHITECTURE.md §9): encodings, formats, per-row rejections, idempotency,
company scoping, dry runs. Each test builds its own file from rows it names."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import xlsxwriter

from server.archive import ARCHIVE_COLUMNS, ArchiveFileError, importer, open_archive, validation
from server.domain.dates import derive_next_inspection, derive_scrap_date
from server.kernel.settings import Settings
from tests.archive.conftest import Arc, csv_bytes, reasons, run_import, write_file
from tests.conftest import World


async def fetch(pool: asyncpg.Pool, tag: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM cylinders WHERE tag = $1", tag)


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8"), ("gbk", "gb18030")],
)
async def test_csv_encodings(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path, encoding: str, detected: str
) -> None:
    rows = [arc.row(manufacturer="郑州市压力容器厂（二分厂）") for _ in range(3)]
    path = write_file(tmp_path, csv_bytes(rows, encoding=encoding))
    report = await run_import(pool, settings, path, arc.admin)
    assert report.encoding == detected
    assert (report.inserted, report.rejected) == (3, [])
    for r in rows:
        rec = await fetch(pool, r["tag"])
        assert rec is not None and rec["manufacturer"] == "郑州市压力容器厂（二分厂）"


async def test_omitted_values_are_derived(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    """Only the required columns: dates by the domain rules, volume from the model."""
    made = dt.date(arc.today.year - 3, 2, 28)
    insp = dt.date(arc.today.year - 1, 6, 1)
    r1: dict[str, Any] = {
        "tag": arc.tag(),
        "owner_code": arc.code_a,
        "spec": "ysp12",
        "manufacture_date": made,
    }
    r2 = {**r1, "tag": arc.tag(), "last_inspection_date": insp.isoformat()}
    cols = ("tag", "owner_code", "spec", "manufacture_date", "last_inspection_date")
    path = write_file(tmp_path, csv_bytes([r1, r2], cols))
    report = await run_import(pool, settings, path, arc.admin)
    assert report.inserted == 2, report.rejected
    rec = await fetch(pool, r1["tag"])
    assert rec is not None
    assert rec["spec"] == "YSP12"  # the configured spelling
    model_volume = Decimal(str(settings.models["YSP12"].volume_l))
    assert rec["volume_l"] == model_volume.quantize(Decimal("0.01"))
    assert rec["next_inspection_date"] == derive_next_inspection(made, None, settings.dates)
    assert rec["scrap_date"] == derive_scrap_date(made, settings.dates)
    assert (rec["status"], rec["medium"], rec["barcode"]) == ("in_service", "LPG", None)
    assert rec["district_code"] == "410105"  # the owner's district until it is seen elsewhere
    rec2 = await fetch(pool, r2["tag"])
    assert rec2 is not None
    assert rec2["next_inspection_date"] == derive_next_inspection(made, insp, settings.dates)


async def test_bad_rows_are_reported_and_good_rows_stored(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, world: World, tmp_path: Path
) -> None:
    future = (arc.today + dt.timedelta(days=1)).isoformat()
    made = dt.date.fromisoformat(arc.row()["manufacture_date"])
    dup = arc.tag()
    bad: list[tuple[dict[str, Any], str, str]] = [
        # (row, column, part of the reason)
        (arc.row(tag=" "), "tag", "tag is required"),
        (arc.row(tag="A B"), "tag", "must not contain spaces"),
        (arc.row(tag="X" * 65), "tag", "longer than 64"),
        (arc.row(owner_code="NOPE"), "owner_code", "not a registered company"),
        (arc.row(spec="YSP99"), "spec", "not a configured model"),
        (arc.row(spec=""), "spec", "spec is required"),
        (arc.row(manufacture_date="05/01/2020"), "manufacture_date", "expected a date YYYY-MM-DD"),
        (arc.row(manufacture_date="2021-02-30"), "manufacture_date", "not a calendar date"),
        (arc.row(manufacture_date=""), "manufacture_date", "manufacture_date is required"),
        (arc.row(manufacture_date=future), "manufacture_date", "in the future"),
        (arc.row(tare_kg="-1"), "tare_kg", "must be positive"),
        (arc.row(tare_kg="abc"), "tare_kg", "expected a number"),
        (arc.row(tare_kg="0.001"), "tare_kg", "too small"),
        (arc.row(volume_l="100000"), "volume_l", "larger than"),
        (arc.row(volume_l="NaN"), "volume_l", "expected a number"),
        (arc.row(last_inspection_date="2000-01-01"), "last_inspection_date", "before manufacture"),
        (arc.row(last_inspection_date=future), "last_inspection_date", "in the future"),
        (arc.row(next_inspection_date="2000-01-01"), "next_inspection_date", "after manufacture"),
        # the rule a registration and a change by hand obey (server.domain.record_changes)
        (
            arc.row(manufacture_date=made.isoformat(), next_inspection_date=made.isoformat()),
            "next_inspection_date",
            "next_inspection_date must be after manufacture_date",
        ),
        (
            arc.row(
                last_inspection_date=(made + dt.timedelta(days=300)).isoformat(),
                next_inspection_date=(made + dt.timedelta(days=200)).isoformat(),
            ),
            "next_inspection_date",
            "next_inspection_date must be after last_inspection_date",
        ),
        (arc.row(scrap_date="2000-01-01"), "scrap_date", "before manufacture"),
        (arc.row(status="broken"), "status", "status must be one of"),
        (arc.row(status="active"), "status", "status must be one of"),
        (arc.row(tag=dup), "tag", "repeats line"),
        (arc.row(barcode="BC-TAG-A-OK"), "barcode", "already belongs to cylinder TAG-A-OK"),
    ]
    good = [arc.row(), arc.row(tag=dup, barcode=f"BC-{dup}"), arc.row()]
    # line 1 is the header; good rows first so that the duplicate of `dup` comes later
    rows = good + [b[0] for b in bad]
    path = write_file(tmp_path, csv_bytes(rows))
    report = await run_import(pool, settings, path, arc.admin)
    got = reasons(report)
    for i, (_, column, reason) in enumerate(bad):
        line = len(good) + i + 2
        assert line in got, f"line {line} ({reason}) not rejected"
        assert got[line][0] == column, (line, got[line])
        assert reason in got[line][1], (line, got[line])
    assert got[len(good) + len(bad) - 2 + 2][1] == f"tag {dup} repeats line 3 of this file"
    assert len(report.rejected) == len(bad)
    assert (report.inserted, report.total_rows) == (len(good), len(rows))
    for r in good:
        assert await fetch(pool, r["tag"]) is not None
    other = await fetch(pool, "TAG-A-OK")
    assert other is not None and other["barcode"] == "BC-TAG-A-OK"
    rejected_csv = report.rejected_csv()
    assert rejected_csv.splitlines()[0] == "line,column,value,reason"
    assert len(rejected_csv.splitlines()) == len(bad) + 1


async def test_barcode_repeated_in_file(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    a, b = arc.row(barcode="SAMEBC-" + arc.prefix), arc.row(barcode="SAMEBC-" + arc.prefix)
    path = write_file(tmp_path, csv_bytes([a, b]))
    report = await run_import(pool, settings, path, arc.admin)
    assert report.inserted == 1
    assert reasons(report) == {
        3: ("barcode", f"barcode SAMEBC-{arc.prefix} is also given to tag {a['tag']} on line 2")
    }


async def test_duplicates_across_chunks(
    pool: asyncpg.Pool,
    settings: Settings,
    arc: Arc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first good line wins even when the repeat is thousands of rows later."""
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    rows = [arc.row() for _ in range(8)]
    rows.append(arc.row(tag=rows[0]["tag"], barcode="OTHER-" + arc.prefix))  # line 10
    rows.append(arc.row(barcode=rows[1]["barcode"]))  # line 11
    path = write_file(tmp_path, csv_bytes(rows))
    report = await run_import(pool, settings, path, arc.admin)
    got = reasons(report)
    assert got[10] == ("tag", f"tag {rows[0]['tag']} repeats line 2 of this file")
    assert got[11][0] == "barcode" and "line 3" in got[11][1]
    assert (report.inserted, report.total_rows, len(report.rejected)) == (8, 10, 2)
    first = await fetch(pool, rows[0]["tag"])
    assert first is not None and first["barcode"] == rows[0]["barcode"]


async def test_idempotent_upsert(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    rows = [arc.row() for _ in range(5)]
    path = write_file(tmp_path, csv_bytes(rows))
    first = await run_import(pool, settings, path, arc.admin)
    assert (first.inserted, first.updated, first.unchanged) == (5, 0, 0)
    again = await run_import(pool, settings, path, arc.admin)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 5, [])
    rows[2]["tare_kg"] = "16.25"
    rows[3]["status"] = "suspended"
    rows[4]["barcode"] = ""  # the file is the record: an empty cell clears the field
    path = write_file(tmp_path, csv_bytes(rows))
    changed = await run_import(pool, settings, path, arc.admin)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 3, 2)
    rec = await fetch(pool, rows[2]["tag"])
    assert rec is not None and rec["tare_kg"] == Decimal("16.25")
    rec = await fetch(pool, rows[4]["tag"])
    assert rec is not None and rec["barcode"] is None
    tags = [r["tag"] for r in rows]
    events = await pool.fetch(
        "SELECT tag, kind, biz_step, disposition, details FROM events WHERE tag = ANY($1)"
        " ORDER BY ts",
        tags,
    )
    registered = [e for e in events if e["kind"] == "register"]
    assert sorted(e["tag"] for e in registered) == sorted(tags)  # one per new tag
    assert {(e["biz_step"], e["disposition"]) for e in registered} == {("commissioning", "active")}
    # each changed cylinder records what a PATCH records (server.api.cylinder_changes)
    moved = {(e["tag"], e["kind"], e["biz_step"], e["disposition"]) for e in events} - {
        (e["tag"], "register", "commissioning", "active") for e in registered
    }
    assert moved == {
        (rows[2]["tag"], "update", None, None),
        (rows[3]["tag"], "status_change", None, None),
        (rows[4]["tag"], "update", None, None),
    }
    details = {(e["tag"], e["kind"]): e["details"] for e in events}
    assert details[rows[2]["tag"], "update"]["fields"] == ["tare_kg"]
    assert details[rows[4]["tag"], "update"]["fields"] == ["barcode"]
    status = details[rows[3]["tag"], "status_change"]
    assert (status["from"], status["to"], status["source"]) == ("in_service", "suspended", "import")
    audits = await pool.fetch(
        "SELECT details FROM audit_log WHERE action = 'cylinder.import'"
        " AND details->>'filename' = $1 ORDER BY id DESC LIMIT 3",
        path.name,
    )
    assert [(a["details"]["inserted"], a["details"]["updated"]) for a in audits][:3] == [
        (0, 3),
        (0, 0),
        (5, 0),
    ]


async def test_company_admin_only_touches_own_cylinders(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    theirs = arc.row(owner_code=arc.code_b, tare_kg="14")
    path = write_file(tmp_path, csv_bytes([theirs]))
    assert (await run_import(pool, settings, path, arc.admin_b)).inserted == 1

    takeover = {**theirs, "owner_code": arc.code_a, "tare_kg": "99"}
    other_owner = arc.row(owner_code=arc.code_b)
    mine = arc.row()
    path = write_file(tmp_path, csv_bytes([takeover, other_owner, mine]))
    report = await run_import(pool, settings, path, arc.admin_a)
    assert reasons(report) == {
        2: ("tag", "tag belongs to another company"),
        3: ("owner_code", f"owner_code {arc.code_b!r} is not your company"),
    }
    assert report.inserted == 1
    rec = await fetch(pool, theirs["tag"])
    assert rec is not None and rec["owner_company_id"] == arc.company_b
    assert rec["tare_kg"] == Decimal("14")


async def test_admin_may_move_a_cylinder_to_another_owner(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    r = arc.row()
    await run_import(pool, settings, write_file(tmp_path, csv_bytes([r])), arc.admin)
    moved = {**r, "owner_code": arc.code_b}
    path = write_file(tmp_path, csv_bytes([moved]))
    # an inspection agency may not (PATCH forbids it too: tests/archive/test_import_rules.py)
    refused = await run_import(pool, settings, path, arc.inspector)
    assert (refused.updated, reasons(refused)[2][0]) == (0, "owner_code")
    report = await run_import(pool, settings, path, arc.admin)
    assert report.updated == 1
    rec = await fetch(pool, r["tag"])
    assert rec is not None and rec["owner_company_id"] == arc.company_b


async def test_scrapped_cylinder_is_not_put_back_in_use(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    r = arc.row(status="scrapped")
    await run_import(pool, settings, write_file(tmp_path, csv_bytes([r])), arc.admin)
    again = {**r, "status": "in_service"}
    report = await run_import(pool, settings, write_file(tmp_path, csv_bytes([again])), arc.admin)
    # the tag of a scrapped cylinder is voided: the row names it, as registration does
    assert reasons(report)[2][0] == "tag"
    assert "voided: its cylinder was scrapped" in reasons(report)[2][1]
    rec = await fetch(pool, r["tag"])
    assert rec is not None and rec["status"] == "scrapped"


async def test_status_changes_the_life_cycle_allows_are_stored(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    r = arc.row(status="suspended")
    await run_import(pool, settings, write_file(tmp_path, csv_bytes([r])), arc.admin)
    for status in ("in_service", "scrapped"):
        again = {**r, "status": status}
        path = write_file(tmp_path, csv_bytes([again]))
        report = await run_import(pool, settings, path, arc.admin)
        assert (report.updated, report.rejected) == (1, [])
        rec = await fetch(pool, r["tag"])
        assert rec is not None and rec["status"] == status


async def test_inspector_import_records_the_registering_agency(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, world: World, tmp_path: Path
) -> None:
    r = arc.row()
    report = await run_import(pool, settings, write_file(tmp_path, csv_bytes([r])), arc.inspector)
    assert report.inserted == 1
    rec = await fetch(pool, r["tag"])
    assert rec is not None and rec["registered_by_site_id"] == world.sites["INS-1"]


async def test_dry_run_stores_nothing_and_counts_the_same(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    existing = arc.row()
    await run_import(pool, settings, write_file(tmp_path, csv_bytes([existing])), arc.admin)
    rows = [{**existing, "tare_kg": "20"}, arc.row(), arc.row(), arc.row(status="x")]
    path = write_file(tmp_path, csv_bytes(rows))
    audits = await pool.fetchval("SELECT count(*) FROM audit_log")
    dry = await run_import(pool, settings, path, arc.admin, dry_run=True)
    assert (dry.inserted, dry.updated, dry.unchanged, len(dry.rejected)) == (2, 1, 0, 1)
    assert await fetch(pool, rows[1]["tag"]) is None
    rec = await fetch(pool, existing["tag"])
    assert rec is not None and rec["tare_kg"] == Decimal("15.5")
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == audits
    real = await run_import(pool, settings, path, arc.admin)
    assert (real.inserted, real.updated, real.unchanged) == (2, 1, 0)


async def test_header_is_matched_loosely_and_unknown_columns_ignored(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    r = arc.row()
    cols = ["tag", "owner_code", "spec", "manufacture_date", "备注"]
    header = [" TAG ", "Owner_Code", "SPEC", "manufacture_date ", "备注"]
    data = csv_bytes([{**r, "备注": "remark"}], cols, header=header, encoding="utf-8-sig")
    report = await run_import(pool, settings, write_file(tmp_path, data), arc.admin)
    assert report.inserted == 1
    assert report.warnings == ["column(s) ignored, not part of the archive interface: 备注"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"tag,spec\nT1,YSP12\n", "missing required column(s) owner_code, manufacture_date"),
        (b"tag,owner_code,spec,manufacture_date,TAG\n", "column 'tag' appears twice"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "neither CSV text nor XLSX"),
        (b"PK\x03\x04 this is no zip", "cannot be read"),
        (b"\xef\xbb\xbftag,owner_code\xff\xfe\n", "not valid UTF-8"),
        (b"tag,owner_code,spec,manufacture_date\n\x81", "not text in UTF-8 or GBK"),
    ],
)
def test_unreadable_files_are_refused_whole(
    settings: Settings, tmp_path: Path, data: bytes, message: str
) -> None:
    path = write_file(tmp_path, data, "bad.bin")
    with pytest.raises(ArchiveFileError) as exc:
        open_archive(path, settings.http).close()
    assert message in exc.value.message


async def test_value_beyond_the_header_is_rejected(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    r = arc.row()
    extra = f"{arc.tag()},,,{arc.code_a},YSP12,,,2020-01-01,,,,,,,surplus\r\n"
    data = csv_bytes([r]) + extra.encode()
    report = await run_import(pool, settings, write_file(tmp_path, data), arc.admin)
    assert reasons(report) == {3: ("", "row has a value in column 15, beyond the header")}
    assert report.inserted == 1


async def test_blank_rows_are_skipped_and_quoted_newlines_keep_line_numbers(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    r1 = arc.row(manufacturer="厂\n二车间")  # a record over two physical lines
    r2 = arc.row(spec="BAD")
    data = csv_bytes([r1]) + b",,,,\r\n\r\n" + csv_bytes([r2]).split(b"\r\n", 1)[1]
    report = await run_import(pool, settings, write_file(tmp_path, data), arc.admin)
    assert report.total_rows == 2
    assert list(reasons(report)) == [6]  # header 1, record 2-3, blank 4-5, bad row 6


def _xlsx(path: Path, rows: list[list[Any]], date_cells: bool) -> None:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("档案")
    fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if isinstance(v, dt.date) and date_cells:
                ws.write_datetime(i, j, v, fmt)
            elif isinstance(v, dt.date):
                ws.write_string(i, j, v.isoformat())
            elif v is None:
                continue
            else:
                ws.write(i, j, v)
    wb.close()


@pytest.mark.parametrize("date_cells", [True, False], ids=["date-cells", "string-dates"])
async def test_xlsx_import(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path, date_cells: bool
) -> None:
    made = dt.date(arc.today.year - 2, 3, 15)
    numeric_tag = int(arc.prefix[3:], 16) * 1000 + (1 if date_cells else 2)
    rows: list[list[Any]] = [list(ARCHIVE_COLUMNS)]
    rows.append(
        [
            arc.tag(),
            "S1",
            None,
            arc.code_a,
            "YSP35.5",
            "LPG",
            "厂",
            made,
            15.5,
            35.5,
            None,
            None,
            None,
            "in_service",
        ]
    )
    rows.append(
        [
            numeric_tag,
            None,
            None,
            arc.code_a,
            "YSP12",
            None,
            None,
            made,
            7,
            None,
            None,
            made.replace(year=made.year + 4),
            made.replace(year=made.year + 8),
            None,
        ]
    )
    # an Excel serial typed as a number in a date column (43831 = 2020-01-01)
    rows.append(
        [
            arc.tag(),
            None,
            None,
            arc.code_a,
            "YSP12",
            None,
            None,
            43831,
            None,
            None,
            None,
            None,
            None,
            None,
        ]
    )
    rows.append(
        [
            arc.tag(),
            None,
            None,
            arc.code_a,
            "YSP12",
            None,
            None,
            "2020/13/01",
            None,
            None,
            None,
            None,
            None,
            None,
        ]
    )
    path = tmp_path / "archive.xlsx"
    _xlsx(path, rows, date_cells)
    report = await run_import(pool, settings, path, arc.admin)
    assert report.format == "xlsx"
    assert reasons(report) == {
        5: ("manufacture_date", "manufacture_date: '2020/13/01' is not a calendar date")
    }
    assert report.inserted == 3
    rec = await fetch(pool, rows[1][0])
    assert rec is not None
    assert (rec["manufacture_date"], rec["tare_kg"]) == (made, Decimal("15.50"))
    assert rec["manufacturer"] == "厂"
    rec = await fetch(pool, str(numeric_tag))  # a number cell is the tag's digits, not "123.0"
    assert rec is not None and rec["scrap_date"] == made.replace(year=made.year + 8)
    rec = await fetch(pool, rows[3][0])
    assert rec is not None and rec["manufacture_date"] == dt.date(2020, 1, 1)


def test_excel_serials_and_date_strings() -> None:
    date = validation._date
    assert date("d", 43831.75) == dt.date(2020, 1, 1)
    assert date("d", dt.datetime(2020, 1, 2, 13, 0)) == dt.date(2020, 1, 2)
    assert date("d", "2020-1-3") == dt.date(2020, 1, 3)
    assert date("d", "2020/01/04 00:00:00") == dt.date(2020, 1, 4)
    for bad in ("2020-01-05 12:00", "05.01.2020", "20200105", 12):
        with pytest.raises(validation.BadValue):
            date("d", bad)
