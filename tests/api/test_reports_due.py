"""``inspection-due`` and ``scrap-due`` (server/api/report_cylinders_due.py): a company of this
test's own with a hand-built fleet; each (month, company) cell against the fleet bucketed here,
every count's drill-down against its cell, the file against the JSON, ``inspection-due``'s
earlier list beside the frame's rows, and the bad input both refuse."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

# (status, days to next inspection, days to scrap date, at a customer's)
FLEET = [
    ("in_service", -10, 900, True),  # inspection overdue, at a household
    ("in_service", 5, 900, False),  # due within the warning window
    ("in_service", 5, 20, True),  # inspection due, scrap date even sooner
    ("in_service", 40, 900, False),
    ("in_inspection", 200, 900, False),
    ("in_service", 500, 900, False),  # beyond a year of months
    ("in_service", 5, -3, True),  # scrap date passed, not recorded scrapped
    ("lost", 100, 100, False),
    ("scrapped", 5, -1, False),  # recorded scrapped: in neither report
    ("in_service", 800, 150, False),
    ("in_service", 800, 600, False),  # scrap date beyond a year of months
]


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _horizon(today: dt.date, months: int) -> dt.date:
    y, m = divmod(today.month - 1 + months, 12)
    return dt.date(today.year + y, m + 1, 1)


def expected(today: dt.date, report: str, months: int = 12) -> dict[str, dict[str, int]]:
    """{month: {cylinders, at_customers}} of FLEET, bucketed by the rule of docs/API.md."""
    out: dict[str, dict[str, int]] = {}
    horizon = _horizon(today, months)
    for status, to_next, to_scrap, at_customer in FLEET:
        nxt, scrap = today + dt.timedelta(days=to_next), today + dt.timedelta(days=to_scrap)
        if status == "scrapped":
            continue
        if report == "inspection-due":
            if scrap <= today:
                continue
            day, overdue = nxt, nxt < today
        else:
            day, overdue = scrap, scrap <= today
        if not overdue and day >= horizon:
            continue
        cell = out.setdefault(
            "overdue" if overdue else _month(day), {"cylinders": 0, "at_customers": 0}
        )
        cell["cylinders"] += 1
        cell["at_customers"] += at_customer
    return out


async def fleet_company(pool: Any, world: World, settings: Any, prefix: str = "DUE") -> str:
    """A company of its own with FLEET, the census refreshed after (the reports count it)."""
    code = unique(prefix)
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
        code,
        "到期测试" + code,
    )
    today = world.today
    for i, (status, to_next, to_scrap, at_customer) in enumerate(FLEET):
        await pool.execute(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, status, tag_voided, district_code,
                   location_kind)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, '410105', $8)""",
            f"{code}-{i}",
            cid,
            today - dt.timedelta(days=2000),
            today + dt.timedelta(days=to_next),
            today + dt.timedelta(days=to_scrap),
            status,
            status == "scrapped",
            "customer" if at_customer else "site",
        )
    await refreshed(pool, settings)
    return code


def _cells(body: dict[str, Any], code: str) -> dict[str, dict[str, int]]:
    return {
        r["month"]: {"cylinders": r["cylinders"], "at_customers": r["at_customers"]}
        for r in body["rows"]
        if r["company_code"] == code
    }


@pytest.mark.parametrize("report", ["inspection-due", "scrap-due"])
async def test_due_by_month_ahead(
    client: Any, pool: Any, world: World, settings: Any, report: str
) -> None:
    code = await fleet_company(pool, world, settings)
    status, body = await call(client, "GET", f"/api/v1/reports/{report}?company={code}")
    assert status == 200, body
    assert body["report"] == report and body["months"] == 12
    want = expected(world.today, report)
    assert _cells(body, code) == want
    assert body["rows"][0]["month"] == "overdue"
    assert body["totals"]["cylinders"] == sum(c["cylinders"] for c in want.values())
    assert body["totals"]["at_customers"] == sum(c["at_customers"] for c in want.values())

    # every count opens exactly the cylinders it counts
    for row in body["rows"]:
        for measure in ("cylinders", "at_customers"):
            status, drill = await call(
                client,
                "GET",
                f"/api/v1/reports/{report}/drill?company={code}&company_code={code}"
                f"&month={row['month']}&measure={measure}&page_size=1",
            )
            assert status == 200, drill
            assert drill["total"] == row[measure], (row, measure)
            assert all(item["owner_code"] == code for item in drill["items"])

    # fewer months ahead: only the buckets within them
    status, body = await call(client, "GET", f"/api/v1/reports/{report}?company={code}&months=2")
    assert status == 200
    assert _cells(body, code) == expected(world.today, report, 2)

    # the file holds the JSON's rows under the labels
    status, raw = await call(client, "GET", f"/api/v1/reports/{report}?company={code}&format=csv")
    assert status == 200
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == ["月份", "企业代码", "企业", "钢瓶数", "其中在用户处"]
    assert {r[0]: int(r[3]) for r in table[1:]} == {m: c["cylinders"] for m, c in want.items()}
    status, raw = await call(
        client,
        "GET",
        f"/api/v1/reports/{report}?company={code}&format=xlsx",
        headers={"Accept-Language": "en"},
    )
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    assert len(sheet) == len(table)


async def test_inspection_due_keeps_its_list(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    """The earlier answer beside the frame's: a page of the cylinders due within the warning
    window or overdue, most urgent first, with their compliance."""
    code = await fleet_company(pool, world, settings, "DUEL")
    status, body = await call(
        client, "GET", f"/api/v1/reports/inspection-due?company={code}&page_size=2"
    )
    assert status == 200, body
    want = sorted(
        to_next
        for status_, to_next, to_scrap, _ in FLEET
        if status_ != "scrapped" and to_scrap > 0 and to_next <= 30
    )
    assert body["total"] == len(want) and body["page"] == 1 and body["page_size"] == 2
    got = [dt.date.fromisoformat(i["next_inspection_date"]) for i in body["items"]]
    assert got == [world.today + dt.timedelta(days=d) for d in want[:2]]
    assert body["items"][0]["compliance"] == "overdue"
    status, body = await call(
        client, "GET", f"/api/v1/reports/inspection-due?company={code}&page_size=2&page=2"
    )
    assert status == 200 and len(body["items"]) == len(want) - 2


async def test_due_scope(client: Any, pool: Any, world: World, settings: Any) -> None:
    """A company admin counts its own cylinders only, whatever company it names."""
    code = await fleet_company(pool, world, settings, "DUES")
    for report in ("inspection-due", "scrap-due"):
        status, body = await call(
            client, "GET", f"/api/v1/reports/{report}?company={code}", user="t_company_a"
        )
        assert status == 200
        assert body["rows"] == [] and body["totals"]["cylinders"] == 0
        status, body = await call(client, "GET", f"/api/v1/reports/{report}", user="t_company_b")
        assert {r["company_code"] for r in body["rows"]} <= {"TEST-B"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("months=0", "months"),
        ("months=61", "months"),
        ("months=soon", "months"),
        ("from=2026-01-01", "from"),
        ("page=0", "page"),
        ("page_size=100000", "page_size"),
        ("district=4101", "district"),
    ],
)
async def test_bad_input_is_a_400(client: Any, query: str, field: str) -> None:
    status, body = await call(client, "GET", f"/api/v1/reports/inspection-due?{query}")
    assert status == 400, body
    assert body["error"]["details"]["field"] == field


async def test_drill_refuses_a_bad_month(client: Any) -> None:
    status, body = await call(
        client, "GET", "/api/v1/reports/scrap-due/drill?measure=cylinders&month=2026-13"
    )
    assert status == 400 and body["error"]["details"]["field"] == "month"
