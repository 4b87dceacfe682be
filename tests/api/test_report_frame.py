"""The report frame (server/api/report_frame.py; docs/API.md "Reports") through ``holdings``:
a company of this test's own with a hand-built fleet, its counts against the fleet counted
here, every count's drill-down against its cell, the CSV export against the JSON, and the
bad input every report refuses with the one error shape."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

# (status, years since manufacture) of the hand-built fleet
FLEET = [
    ("in_service", 1),
    ("in_service", 2),
    ("in_service", 5),
    ("in_service", 9),
    ("in_inspection", 6),
    ("lost", 3),
    ("scrapped", 13),
    ("scrapped", 7),
]


async def _company(pool: Any, world: World) -> str:
    code = unique("HOLD")
    await pool.execute(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105')",
        code,
        "持有测试" + code,
    )
    cid = await pool.fetchval("SELECT id FROM companies WHERE code = $1", code)
    for i, (status, years) in enumerate(FLEET):
        made = world.today - dt.timedelta(days=int(years * 365.25) + 10)
        await pool.execute(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, status, tag_voided, district_code)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, '410105')""",
            f"{code}-{i}",
            cid,
            made,
            world.today + dt.timedelta(days=300),
            world.today + dt.timedelta(days=1000) if status != "scrapped" else world.today,
            status,
            status == "scrapped",
        )
    return code


def _expected() -> dict[str, int]:
    out = {"total": len(FLEET)}
    for status, _ in FLEET:
        out[status] = out.get(status, 0) + 1
    for status, years in FLEET:
        if status == "scrapped":
            continue
        band = (
            "age_0_4"
            if years < 4
            else "age_4_8"
            if years < 8
            else "age_8_12"
            if years < 12
            else "age_12_plus"
        )
        out[band] = out.get(band, 0) + 1
    return out


async def test_holdings_counts_drill_and_export(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    code = await _company(pool, world)
    await refreshed(pool, settings)  # holdings counts on the census (migration 0226)
    status, body = await call(client, "GET", f"/api/v1/reports/holdings?company={code}")
    assert status == 200, body
    assert body["report"] == "holdings"
    assert [c["key"] for c in body["columns"]][:3] == ["company_code", "company_name", "total"]
    (row,) = body["rows"]
    expected = _expected()
    for key in (
        "total",
        "in_service",
        "in_inspection",
        "lost",
        "scrapped",
        "age_0_4",
        "age_4_8",
        "age_8_12",
        "age_12_plus",
    ):
        assert row[key] == expected.get(key, 0), key
    assert body["totals"]["total"] == len(FLEET)

    # every count opens exactly the cylinders it counts
    for col in body["columns"]:
        if not col["drill"]:
            continue
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/holdings/drill?company={code}&company_code={code}&measure={col['key']}&page_size=50",
        )
        assert status == 200, drill
        assert drill["total"] == row[col["key"]], col["key"]
        assert all(item["owner_code"] == code for item in drill["items"])
        assert drill["target"] == "cylinders"

    # the drill-down's export holds the same rows
    status, raw = await call(
        client,
        "GET",
        f"/api/v1/reports/holdings/drill?company={code}&company_code={code}&measure=in_service&format=xlsx",
    )
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    assert len(sheet) - 1 == expected["in_service"]

    # the report's CSV: labels as header, the same numbers
    status, raw = await call(client, "GET", f"/api/v1/reports/holdings?company={code}&format=csv")
    assert status == 200
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[:3] == ["企业代码", "企业", "合计"]
    assert lines[1].split(",")[2] == str(len(FLEET))


async def test_holdings_scope(client: Any, pool: Any, world: World, settings: Any) -> None:
    """A company admin's holdings are its own company's, whatever company it asks for."""
    code = await _company(pool, world)
    await refreshed(pool, settings)
    status, body = await call(
        client, "GET", f"/api/v1/reports/holdings?company={code}", user="t_company_a"
    )
    assert status == 200
    assert body["rows"] == []
    status, body = await call(client, "GET", "/api/v1/reports/holdings", user="t_company_a")
    assert status == 200
    own = await pool.fetchval("SELECT code FROM companies WHERE id = $1", world.companies["A"])
    assert {r["company_code"] for r in body["rows"]} == {own}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group=fortnight", "group"),
        ("from=2026-02-30", "from"),
        ("from=2026-03-01&to=2026-02-01", "to"),
        ("from=1900-01-01", "from"),
        ("district=41", "district"),
        ("company=" + "x" * 80, "company"),
        ("nonsense=1", "nonsense"),
        ("format=pdf", "format"),
    ],
)
async def test_bad_input_is_a_400(client: Any, query: str, field: str) -> None:
    """Impossible values are 400s naming the field (a period report is ``fills-daily``'s
    successor; until one lands here, holdings refuses period parameters as unknown)."""
    status, body = await call(client, "GET", f"/api/v1/reports/holdings?{query}")
    assert status == 400, body
    if field in ("group", "from", "to"):
        return
    assert body["error"]["details"]["field"] == field


async def test_drill_refusals(client: Any) -> None:
    status, body = await call(client, "GET", "/api/v1/reports/nope/drill?measure=total")
    assert status == 404
    status, body = await call(client, "GET", "/api/v1/reports/holdings/drill?measure=company_name")
    assert status == 400
    assert body["error"]["details"]["field"] == "measure"
    status, body = await call(
        client, "GET", "/api/v1/reports/holdings/drill?measure=total&page_size=100000"
    )
    assert status == 400


async def test_catalogue_lists_specs(client: Any) -> None:
    status, body = await call(client, "GET", "/api/v1/reports")
    assert status == 200
    spec = next(r for r in body["items"] if r["name"] == "holdings")
    assert spec["chart"]["kind"] == "stacked_bar"
    assert spec["title"] == "企业钢瓶保有量"
    assert "company_code" in spec["keys"]
