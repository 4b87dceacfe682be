"""The archive export takes the cylinder search's filters (issue 11 item 6).

The pages send a company's *id* (their company select); files and the command line name its
*code*: both must give the same, non-empty file (the export once matched the code only and
the page's file came out empty). The compliance filter of the search reaches the export by
the one SQL builder (``server.db.compliance``), so for every status the export holds
exactly the rows the search lists. Rows are this module's own company's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import python_calamine

from server.db.compliance import COMPLIANCE_VALUES
from server.kernel.clock import city_today
from server.kernel.settings import Settings
from server.kernel.tabular import CSV_BOM
from tests.api.conftest import call

EXPORT = "/api/v1/cylinders/export"


@dataclass(frozen=True)
class Own:
    code: str
    company_id: int
    tags: dict[str, str]  # tag -> the compliance status it was made to have


@pytest.fixture
async def own(pool: asyncpg.Pool, settings: Settings) -> Own:
    """A company of this test with one cylinder per compliance status (two that are ok)."""
    today = city_today(settings)
    day = dt.timedelta(days=1)
    code = f"EXPF-{secrets.token_hex(4).upper()}"
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
        code,
        f"导出筛选{code}",
    )
    far = today + 3000 * day
    plan = (  # status, next inspection, scrap date, what the domain calls it
        ("in_service", today + 500 * day, far, "ok"),
        ("in_service", today + 400 * day, far, "ok"),
        ("in_service", today + 10 * day, far, "inspection_due"),
        ("in_service", today + 500 * day, today + 40 * day, "scrap_due"),
        ("in_service", today - day, far, "overdue"),
        ("scrapped", today + 500 * day, far, "scrapped"),
        ("in_service", today + 500 * day, today, "scrapped"),  # its scrap date has come
    )
    tags: dict[str, str] = {}
    for i, (status, next_insp, scrap, compliance) in enumerate(plan):
        tag = f"{code}-{i}"
        await pool.execute(
            """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l,
                   tare_kg, manufacture_date, next_inspection_date, scrap_date, status,
                   district_code)
               VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, $5, $6, $7, $8, '410105')""",
            tag,
            f"ST{tag}",
            f"BC{tag}",
            cid,
            today - 800 * day,
            next_insp,
            scrap,
            status,
        )
        tags[tag] = compliance
    return Own(code, int(cid), tags)


def csv_tags(raw: bytes) -> list[str]:
    assert raw.startswith(CSV_BOM)
    return [r["tag"] for r in csv.DictReader(io.StringIO(raw[len(CSV_BOM) :].decode()))]


def xlsx_tags(raw: bytes) -> list[str]:
    rows = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw))
    table = rows.get_sheet_by_index(0).to_python()
    assert table[0][0] == "tag"
    return [str(r[0]) for r in table[1:]]


async def test_company_id_and_code_give_the_same_export(client: Any, own: Own) -> None:
    by_code = await call(client, "GET", f"{EXPORT}?format=csv&company={own.code}")
    by_id = await call(client, "GET", f"{EXPORT}?format=csv&company={own.company_id}")
    assert by_code[0] == by_id[0] == 200
    assert csv_tags(by_code[1]) == csv_tags(by_id[1]) == list(own.tags)  # oldest record first
    status, raw = await call(client, "GET", f"{EXPORT}?format=xlsx&company={own.company_id}")
    assert status == 200
    assert sorted(xlsx_tags(raw)) == sorted(own.tags)
    # what the page's company select sends, as a company admin of another company: nothing
    status, raw = await call(
        client, "GET", f"{EXPORT}?format=csv&company={own.company_id}", "t_company_a"
    )
    assert status == 200 and csv_tags(raw) == []


async def test_compliance_filter_agrees_with_the_search(client: Any, own: Own) -> None:
    for compliance in COMPLIANCE_VALUES:
        expected = sorted(t for t, c in own.tags.items() if c == compliance)
        assert expected, compliance  # every status is represented
        query = f"company={own.company_id}&compliance={compliance}"
        status, page = await call(client, "GET", f"/api/v1/cylinders?{query}&page_size=100")
        assert status == 200
        listed = sorted(r["tag"] for r in page["items"])
        assert listed == expected, compliance
        assert {r["compliance"] for r in page["items"]} == {compliance}
        status, raw = await call(client, "GET", f"{EXPORT}?format=csv&{query}")
        assert status == 200
        assert sorted(csv_tags(raw)) == expected, compliance
        status, raw = await call(client, "GET", f"{EXPORT}?format=xlsx&{query}")
        assert sorted(xlsx_tags(raw)) == expected, compliance


async def test_every_search_filter_reaches_the_export(client: Any, own: Own) -> None:
    tag = next(iter(own.tags))
    for query in (f"tag={tag}", f"stamp=ST{tag}", f"barcode=BC{tag}", f"q={tag}"):
        status, raw = await call(client, "GET", f"{EXPORT}?format=csv&company={own.code}&{query}")
        assert status == 200, query
        assert csv_tags(raw) == [tag], query
    status, raw = await call(
        client, "GET", f"{EXPORT}?format=csv&company={own.code}&status=scrapped"
    )
    assert len(csv_tags(raw)) == 1


async def test_bad_filters_are_refused(client: Any, own: Own) -> None:
    for query, field in (
        ("compliance=fine", "compliance"),
        ("company=" + "9" * 30, "company"),
        ("site=x", "site"),
    ):
        status, body = await call(client, "GET", f"{EXPORT}?format=csv&{query}")
        assert status == 400, (query, body)
        assert body["error"]["details"]["field"] == field


async def test_the_exporter_takes_a_company_id_or_code(pool: asyncpg.Pool, own: Own) -> None:
    """The command line and the benches call the exporter directly, with a code or an id."""
    from server.archive import ExportFilters, export_csv_chunks
    from server.kernel.principal import Principal

    admin = Principal(user_id=0, username="t", role="admin")
    got = []
    for company in (own.code, str(own.company_id)):
        out = bytearray()
        async with pool.acquire() as conn:
            async for chunk in export_csv_chunks(conn, admin, ExportFilters(company=company)):
                out += chunk
        got.append(csv_tags(bytes(out)))
    assert got[0] == got[1] == list(own.tags)
