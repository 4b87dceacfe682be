"""The archive import page (/registration/import) in Chromium, as the people who import.

A company admin uploads a file with bad rows — an impossible date, an unknown code, a repeated
tag, a scrapped cylinder's voided tag, a change of a date the company may not make — checks it,
reads the per-row report in Chinese (each reason said from its code and parameters, the
server's English kept on hover and in the download), downloads the rejected rows, corrects
them where they were written, uploads them again and the cylinders exist; an inspector does
the same in English with a change of owner it may not make; a reason whose code the page does
not know shows the server's own sentence; a zip bomb comes back as a readable message, nothing
stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import xlsxwriter

from server.kernel.settings import Settings
from tests.archive.conftest import csv_bytes
from tests.archive.test_import_limits import _SHEET
from tests.browser.conftest import OpenSession, wait_ready
from tests.conftest import World

pytestmark = pytest.mark.browser

COLUMNS = (
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
"""The archive interface (docs/ARCHITECTURE.md §9), as a person's file has it."""


class Stock:
    """Cylinders of company A this test made (removed afterwards: the session database is
    shared with suites that count rows)."""

    def __init__(self, pool: asyncpg.Pool, world: World) -> None:
        self.pool, self.world = pool, world
        self.prefix = f"IMP{secrets.token_hex(3).upper()}"
        self.made = world.today.replace(year=world.today.year - 2, day=1)

    def tag(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def existing(self, name: str, status: str = "in_service") -> dict[str, str]:
        """A registered cylinder of company A, as its row in a file."""
        tag = self.tag(name)
        made = self.made
        row = {
            "tag": tag,
            "stamp": f"ST-{tag}",
            "barcode": f"BC-{tag}",
            "owner_code": "TEST-A",
            "spec": "YSP35.5",
            "medium": "LPG",
            "manufacturer": "测试压力容器厂",
            "manufacture_date": made.isoformat(),
            "tare_kg": "15.50",
            "volume_l": "35.50",
            "last_inspection_date": "",
            "next_inspection_date": made.replace(year=made.year + 4).isoformat(),
            "scrap_date": made.replace(year=made.year + 8).isoformat(),
            "status": status,
        }
        await self.pool.execute(
            """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l, tare_kg,
                   medium, manufacturer, manufacture_date, next_inspection_date, scrap_date,
                   status, district_code, tag_voided)
               VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, 'LPG', $5, $6, $7, $8, $9, '410105',
                       $9 = 'scrapped')""",
            tag,
            row["stamp"],
            row["barcode"],
            self.world.companies["A"],
            row["manufacturer"],
            made,
            dt.date.fromisoformat(row["next_inspection_date"]),
            dt.date.fromisoformat(row["scrap_date"]),
            status,
        )
        return row

    def new(self, name: str, **over: str) -> dict[str, str]:
        """A row registering a new cylinder of company A (no inspection findings stated)."""
        row = {
            "tag": self.tag(name),
            "owner_code": "TEST-A",
            "spec": "YSP35.5",
            "manufacturer": "测试压力容器厂",
            "manufacture_date": self.made.isoformat(),
        }
        row.update(over)
        return row

    async def stored(self, *names: str) -> dict[str, asyncpg.Record]:
        rows = await self.pool.fetch(
            "SELECT * FROM cylinders WHERE tag = ANY($1)", [self.tag(n) for n in names]
        )
        return {r["tag"].split("-", 1)[1]: r for r in rows}

    async def remove(self) -> None:
        like = self.prefix + "-%"
        await self.pool.execute("DELETE FROM events WHERE tag LIKE $1", like)
        await self.pool.execute("DELETE FROM cylinders WHERE tag LIKE $1", like)


@pytest.fixture
async def stock(pool: asyncpg.Pool, world: World) -> AsyncIterator[Stock]:
    s = Stock(pool, world)
    yield s
    await s.remove()


async def choose(page: Any, name: str, data: bytes, mime: str = "text/csv") -> None:
    await page.set_input_files(
        "[data-testid=import-file]", files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    await page.wait_for_selector("[data-testid=import-file-info]:not([hidden])")


async def check(page: Any) -> dict[str, str]:
    """Click "check", wait for the report; the counts it shows."""
    await page.click("[data-testid=import-check]")
    await page.wait_for_selector("[data-testid=report-counts]")
    return await counts(page)


async def counts(page: Any) -> dict[str, str]:
    out = {}
    for key in ("total_rows", "inserted", "updated", "unchanged", "rejected"):
        out[key] = (await page.text_content(f"[data-testid=count-{key}] .kpi-value") or "").strip()
    return out


async def rejected_on_screen(page: Any) -> dict[int, tuple[str, str]]:
    """line → (column, reason) of the rejected rows the report lists."""
    out = {}
    for row in await page.query_selector_all("[data-testid=import-report] tbody tr"):
        cells = [
            ((await c.text_content()) or "").strip() for c in await row.query_selector_all("td")
        ]
        out[int(cells[0])] = (cells[1], cells[3])
    return out


async def codes_on_screen(page: Any) -> dict[int, tuple[str, str]]:
    """line → (reason code, the server's English on hover) of the rejected rows listed."""
    return {
        int(r["line"]): (r["code"], r["english"])
        for r in await page.eval_on_selector_all(
            "[data-testid=import-report] tbody tr",
            "rows => rows.map(r => ({line: r.dataset.line, code: r.dataset.code,"
            " english: r.querySelector('td:last-child span').title}))",
        )
    }


async def download_rejected(page: Any, tmp_path: Path) -> list[dict[str, str]]:
    async with page.expect_download() as info:
        await page.click("[data-testid=download-rejected]")
    download = await info.value
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    assert download.suggested_filename.endswith(".csv")
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


async def import_for_real(page: Any) -> dict[str, str]:
    await page.click("[data-testid=import-real]")
    await page.wait_for_function(
        "document.querySelector('[data-testid=report-title]').textContent.includes('导入结果')"
        " || document.querySelector('[data-testid=report-title]').textContent.includes('Import of')"
    )
    await page.wait_for_selector("[data-testid=report-counts]")
    return await counts(page)


async def test_a_company_admin_imports_fixes_the_rejected_rows_and_imports_again(
    open_session: OpenSession, stock: Stock, tmp_path: Path, settings: Settings
) -> None:
    mine = await stock.existing("MINE")
    await stock.existing("GONE", status="scrapped")  # its tag is voided
    later = dt.date.fromisoformat(mine["next_inspection_date"]).replace(year=2040).isoformat()
    rows = [
        stock.new("G1"),  # line 2
        stock.new("D1", manufacture_date="2021-02-30"),  # 3: no such day
        stock.new("U1", spec="YSP99"),  # 4: an unknown model
        stock.new("G1", manufacturer="重复"),  # 5: the tag of line 2 again
        stock.new("GONE"),  # 6: a scrapped cylinder's voided tag
        {**mine, "next_inspection_date": later},  # 7: a date a company may not move
        stock.new("G2", manufacturer='=HYPERLINK("x")'),  # 8: good, formula-like text
    ]
    s = await open_session("t_company_a")
    page = s.page
    await page.goto("/registration/import")
    await wait_ready(page)
    limits = (await page.text_content("[data-testid=import-limits]")) or ""
    assert f"{settings.http.max_upload_mb} MB" in limits
    assert await page.is_disabled("[data-testid=import-real]")
    await choose(page, "本公司档案.csv", csv_bytes(rows, COLUMNS))

    got = await check(page)
    assert got == {
        "total_rows": "7",
        "inserted": "2",
        "updated": "0",
        "unchanged": "0",
        "rejected": "5",
    }
    shown = await rejected_on_screen(page)
    assert {line: col for line, (col, _) in shown.items()} == {
        3: "manufacture_date",
        4: "spec",
        5: "tag",
        6: "tag",
        7: "next_inspection_date",
    }
    # said in Chinese from each reason's code, the file's own values filled in
    assert shown[3][1] == "manufacture_date：“2021-02-30”不是实际存在的日期"
    assert (
        shown[4][1].startswith("spec“YSP99”不是已配置的型号（可用：") and "YSP35.5" in shown[4][1]
    )
    assert shown[5][1] == f"标签 {stock.tag('G1')} 与本文件第 2 行重复"
    assert shown[6][1].startswith(f"标签 {stock.tag('GONE')} 已作废")
    assert shown[7][1] == (
        f"企业管理员无权修改 next_inspection_date（档案中：{mine['next_inspection_date']}，"
        f"文件中：{later}）"
    )
    codes = await codes_on_screen(page)
    assert {line: code for line, (code, _) in codes.items()} == {
        3: "not_calendar_date",
        4: "unknown_model",
        5: "tag_repeated",
        6: "tag_voided",
        7: "field_not_changeable",
    }
    assert "role company_admin may not change next_inspection_date" in codes[7][1]  # on hover
    assert "检查结果" in ((await page.text_content("[data-testid=report-title]")) or "")
    await s.screenshot("imports-dry-run-report", full_page=True)
    assert await stock.stored("G1", "G2") == {}  # a check stores nothing

    back = await download_rejected(page, tmp_path)
    assert [r["tag"] for r in back] == [stock.tag(n) for n in ("D1", "U1", "G1", "GONE", "MINE")]
    assert list(back[0]) == [*COLUMNS, "reason"]
    assert back[0]["manufacture_date"] == "2021-02-30" and "calendar" in back[0]["reason"]

    got = await import_for_real(page)
    assert (got["inserted"], got["rejected"]) == ("2", "5")
    stored = await stock.stored("G1", "G2", "MINE")
    assert set(stored) == {"G1", "G2", "MINE"}
    assert stored["G2"]["manufacturer"] == '=HYPERLINK("x")'
    assert stored["MINE"]["next_inspection_date"].isoformat() == mine["next_inspection_date"]
    assert await page.is_disabled("[data-testid=import-real]")  # done: check again to re-import

    # corrected where they were written, uploaded again with their reason column
    fixes = {
        stock.tag("D1"): {"manufacture_date": stock.made.isoformat()},
        stock.tag("U1"): {"spec": "YSP12"},
        stock.tag("G1"): {"tag": stock.tag("G3")},
        stock.tag("GONE"): {"tag": stock.tag("NEW")},
        stock.tag("MINE"): {"next_inspection_date": mine["next_inspection_date"]},
    }
    fixed = [{**r, **fixes[r["tag"]]} for r in back]
    await choose(page, "本公司档案-改.csv", csv_bytes(fixed, [*COLUMNS, "reason"]))
    assert await page.is_disabled("[data-testid=import-real]")  # a new file is checked first
    got = await check(page)
    assert got == {
        "total_rows": "5",
        "inserted": "4",
        "updated": "0",
        "unchanged": "1",
        "rejected": "0",
    }
    warned = (await page.text_content("[data-testid=report-warnings]")) or ""
    assert warned == "以下列不属于档案格式，已忽略：reason", warned
    assert await page.is_hidden("[data-testid=download-rejected]")
    got = await import_for_real(page)
    assert got["inserted"] == "4"
    assert set(await stock.stored("D1", "U1", "G3", "NEW")) == {"D1", "U1", "G3", "NEW"}
    assert [e for e in s.errors if "status of 4" not in e] == [], s.errors


async def test_an_inspector_imports_without_moving_an_owner(
    open_session: OpenSession, stock: Stock, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    theirs = await stock.existing("THEIRS")
    await stock.existing("OLD", status="scrapped")
    made = stock.made
    rows = [
        stock.new("N1", next_inspection_date=made.replace(year=made.year + 3).isoformat()),  # 2
        stock.new("N2", manufacture_date="2023-13-01"),  # 3: no such month
        stock.new("N3", owner_code="NO-SUCH-CO"),  # 4: an unknown company
        stock.new("N1"),  # 5: repeated
        stock.new("OLD"),  # 6: voided
        {**theirs, "owner_code": "TEST-B"},  # 7: an owner an agency may not change
        {**theirs, "tag": stock.tag("N4"), "stamp": "", "barcode": ""},  # 8: good
    ]
    s = await open_session("t_inspector", lang="en")
    page = s.page
    await page.goto("/registration/import?lang=en")
    await wait_ready(page)
    await choose(page, "agency.csv", csv_bytes(rows, COLUMNS))
    got = await check(page)
    assert (got["total_rows"], got["inserted"], got["rejected"]) == ("7", "2", "5")
    shown = await rejected_on_screen(page)
    assert {line: col for line, (col, _) in shown.items()} == {
        3: "manufacture_date",
        4: "owner_code",
        5: "tag",
        6: "tag",
        7: "owner_code",
    }
    assert shown[7][1] == (
        "Inspection agency may not change owner_code (on record: TEST-A, in the file: TEST-B)"
    )
    assert shown[4][1] == "owner_code “NO-SUCH-CO” is not a registered company"
    await s.screenshot("imports-inspector-report-en", full_page=True)
    assert "would be rejected" in ((await page.text_content("[data-testid=report-counts]")) or "")
    back = await download_rejected(page, tmp_path)
    got = await import_for_real(page)
    assert got["inserted"] == "2"
    owner = await pool.fetchval(
        "SELECT co.code FROM cylinders c JOIN companies co ON co.id = c.owner_company_id"
        " WHERE c.tag = $1",
        theirs["tag"],
    )
    assert owner == "TEST-A"

    fixes = {
        stock.tag("N2"): {"manufacture_date": made.isoformat()},
        stock.tag("N3"): {"owner_code": "TEST-B"},
        stock.tag("N1"): {"tag": stock.tag("N5")},
        stock.tag("OLD"): {"tag": stock.tag("N6")},
        stock.tag("THEIRS"): {"owner_code": "TEST-A"},
    }
    fixed = [{**r, **fixes[r["tag"]]} for r in back]
    await choose(page, "agency-fixed.csv", csv_bytes(fixed, [*COLUMNS, "reason"]))
    got = await check(page)
    assert (got["inserted"], got["unchanged"], got["rejected"]) == ("4", "1", "0")
    await import_for_real(page)
    assert set(await stock.stored("N2", "N3", "N5", "N6")) == {"N2", "N3", "N5", "N6"}
    assert [e for e in s.errors if "status of 4" not in e] == [], s.errors


async def test_a_reason_the_page_does_not_know_shows_the_servers_sentence(
    open_session: OpenSession, stock: Stock
) -> None:
    """A server newer than the page's strings (a code added, a parameter the string lacks
    being impossible: tests/api/test_import_reasons.py) still tells the reader why."""
    report = {
        "filename": "x.csv",
        "dry_run": True,
        "total_rows": 2,
        "inserted": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "warnings": ["a warning from a newer server"],
        "warning_details": [
            {"code": "some_new_warning", "params": {}, "text": "a warning from a newer server"}
        ],
        "rejected_rows": [
            {
                "line": 3,
                "column": "tag",
                "value": "T",
                "reason": "tag T is refused for a reason this page has no words for",
                "code": "some_new_rule",
                "params": {"tag": "T"},
            }
        ],
        "rejected_truncated": False,
    }

    async def answer(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/json", json=report)

    s = await open_session("t_company_a")
    page = s.page
    await page.route("**/api/v1/cylinders/import?*", answer)
    await page.goto("/registration/import")
    await wait_ready(page)
    await choose(page, "x.csv", csv_bytes([stock.new("X")], COLUMNS))
    await check(page)
    shown = await rejected_on_screen(page)
    assert shown == {3: ("tag", "tag T is refused for a reason this page has no words for")}
    warned = (await page.text_content("[data-testid=report-warnings]")) or ""
    assert warned == "a warning from a newer server"
    assert s.errors == [], s.errors


async def test_a_zip_bomb_comes_back_as_a_readable_message(
    open_session: OpenSession, stock: Stock
) -> None:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    ws.write_row(0, 0, COLUMNS)
    ws.write_row(1, 0, [stock.new("BOMB").get(c, "") for c in COLUMNS])
    wb.close()
    bomb = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(
                item.filename, data + b" " * (3 << 20) if item.filename == _SHEET else data
            )
    s = await open_session("t_company_a")
    page = s.page
    await page.goto("/registration/import")
    await wait_ready(page)
    mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    await choose(page, "bomb.xlsx", bomb.getvalue(), mime)
    await page.click("[data-testid=import-check]")
    error = page.locator("[data-testid=import-error]")
    await error.wait_for(state="visible")
    text = (await error.text_content()) or ""
    assert text.startswith("文件无法导入：") and "zip bomb" in text, text
    await s.screenshot("imports-zip-bomb")
    assert await page.is_disabled("[data-testid=import-real]")
    assert await stock.stored("BOMB") == {}
    assert [e for e in s.errors if "status of 400" not in e] == [], s.errors


async def test_a_file_over_the_limit_is_refused_before_it_is_sent(
    open_session: OpenSession, settings: Settings
) -> None:
    """The page knows the limit (page config from `[http] max_upload_mb`) and says so at once
    rather than send hundreds of megabytes to be refused (the server's own 413 for a larger
    body is tests/archive/test_import_limits.py)."""
    limit = settings.http.max_upload_mb
    s = await open_session("t_company_a", lang="en")
    page = s.page
    await page.goto("/registration/import?lang=en")
    await wait_ready(page)
    # a file one MB over the limit, made in the page (no bytes cross the test's connection)
    await page.evaluate(
        """(mb) => {
            const input = document.querySelector('[data-testid=import-file]');
            const big = new File([new Uint8Array((mb + 1) * 1024 * 1024)], 'huge.csv', {type: 'text/csv'});
            const dt = new DataTransfer();
            dt.items.add(big);
            input.files = dt.files;
            input.dispatchEvent(new Event('change'));
        }""",
        limit,
    )
    error = page.locator("[data-testid=import-error]")
    await error.wait_for(state="visible")
    text = (await error.text_content()) or ""
    assert f"larger than the {limit} MB" in text and "split it" in text, text
    assert await page.is_disabled("[data-testid=import-check]")
    assert s.errors == [], s.errors
