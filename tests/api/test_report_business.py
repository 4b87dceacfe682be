"""Business reports on customers and deliveries (server/api/report_business.py; docs/API.md
"Reports"): ``sales``, ``real-name-progress`` and ``account-opening`` on a hand-built city of
this test's own — companies, customers and delivery scans in a period two years back, where
no other test writes — counted here independently, every drill-down against its cell, the
exports against the JSON, the scope of a district regulator and a company admin."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from python_calamine import CalamineWorkbook

from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

FIRST = dt.date(2024, 3, 1)
LAST = dt.date(2024, 4, 30)
SPAN = (LAST - FIRST).days + 1
PREV_LAST = FIRST - dt.timedelta(days=1)
PREV_FIRST = PREV_LAST - dt.timedelta(days=SPAN - 1)
PERIOD = f"from={FIRST}&to={LAST}"
NO_CUSTOMER = 2**62
"""A customer id no account has: a scan naming an account that does not exist."""


@dataclass
class City:
    x: str  # company codes
    y: str
    x_id: int = 0
    y_id: int = 0
    # (day, customer: "real" | "ghost" | None, company) of each delivery
    deliveries: list[tuple[dt.date, str | None, str]] = field(default_factory=list)


def _at(day: dt.date, settings: Any, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZoneInfo(settings.alerts.timezone))


async def _company(pool: Any, code: str, district: str) -> int:
    return int(
        await pool.fetchval(
            "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3) RETURNING id",
            code,
            "业务报表测试" + code,
            district,
        )
    )


DELIVERIES = [
    # (day, customer, company): X in 金水区, Y in 二七区
    (dt.date(2024, 3, 5), "real", "x"),
    (dt.date(2024, 3, 5), "real", "x"),
    (dt.date(2024, 3, 5), "ghost", "x"),
    (dt.date(2024, 3, 20), None, "x"),
    (dt.date(2024, 4, 10), "real", "x"),
    (dt.date(2024, 4, 30), "real", "x"),  # the period's last day, late evening below
    (dt.date(2024, 2, 10), "real", "x"),  # the previous period
    (dt.date(2024, 2, 11), None, "x"),
    (dt.date(2024, 5, 1), "real", "x"),  # after the period
    (dt.date(2024, 3, 7), "real", "y"),
]


@pytest.fixture
async def city(pool: Any, settings: Any) -> City:
    c = City(unique("BIZX"), unique("BIZY"))
    c.x_id = await _company(pool, c.x, "410105")
    c.y_id = await _company(pool, c.y, "410103")
    ids = {"x": c.x_id, "y": c.y_id}
    districts = {"x": "410105", "y": "410103"}
    customers = {}
    for key, cid in ids.items():
        customers[key] = await pool.fetchval(
            """INSERT INTO customers (company_id, account_no, name, district_code, opened_on)
               VALUES ($1, $2, '实名用户', $3, '2020-01-01') RETURNING id""",
            cid,
            unique("ACC"),
            districts[key],
        )
    for i, (day, who, comp) in enumerate(DELIVERIES):
        hour = 23 if day == LAST else 12
        customer = customers[comp] if who == "real" else NO_CUSTOMER if who == "ghost" else None
        await pool.execute(
            """INSERT INTO events (ts, msg_id, tag, kind, company_id, customer_id, district_code)
               VALUES ($1, $2, $3, 'deliver', $4, $5, $6)""",
            _at(day, settings, hour),
            unique("MSG"),
            f"{c.x}-T{i}",
            ids[comp],
            customer,
            districts[comp],
        )
        c.deliveries.append((day, who, comp))
    # not a delivery: never counted
    await pool.execute(
        """INSERT INTO events (ts, msg_id, tag, kind, company_id, district_code)
           VALUES ($1, $2, 'x', 'dispatch', $3, '410105')""",
        _at(dt.date(2024, 3, 5), settings),
        unique("MSG"),
        c.x_id,
    )
    # rolled up: the counts read closed days from the deliveries rollup (migration 0229), which
    # a refresh by another test would otherwise have left without this city's deliveries
    await refreshed(pool, settings)
    return c


def _expected(c: City, comp: str, first: dt.date, last: dt.date) -> dict[dt.date, list[int]]:
    """{month: [deliveries, real_name]} counted from the fixture's own list."""
    out: dict[dt.date, list[int]] = {}
    for day, who, co in c.deliveries:
        if co == comp and first <= day <= last:
            cell = out.setdefault(day.replace(day=1), [0, 0])
            cell[0] += 1
            cell[1] += who == "real"
    return out


async def _drill(client: Any, report: str, query: str) -> dict[str, Any]:
    status, body = await call(client, "GET", f"/api/v1/reports/{report}/drill?{query}")
    assert status == 200, body
    return dict(body)


async def test_real_name_progress_counts_and_drills(
    client: Any, pool: Any, settings: Any, city: City
) -> None:
    status, body = await call(
        client, "GET", f"/api/v1/reports/real-name-progress?{PERIOD}&group=month&company={city.x}"
    )
    assert status == 200, body
    expected = _expected(city, "x", FIRST, LAST)
    got = {dt.date.fromisoformat(r["period"]): r for r in body["rows"]}
    assert set(got) == set(expected)
    for month, (n, real) in expected.items():
        row = got[month]
        assert row["company_code"] == city.x
        assert (row["deliveries"], row["real_name"], row["not_real_name"]) == (n, real, n - real)
        assert row["share"] == round(real / n, 4)
    # totals against an independent count of the events table
    n = sum(v[0] for v in expected.values())
    real = sum(v[1] for v in expected.values())
    assert body["totals"] == {
        "deliveries": n,
        "real_name": real,
        "not_real_name": n - real,
        "share": round(real / n, 4),
    }
    independent = await pool.fetchval(
        """SELECT count(*) FROM events WHERE company_id = $1 AND kind = 'deliver'
              AND ts >= $2 AND ts < $3""",
        city.x_id,
        _at(FIRST, settings, 0),
        _at(LAST + dt.timedelta(days=1), settings, 0),
    )
    assert n == independent
    prev = _expected(city, "x", PREV_FIRST, PREV_LAST)
    assert body["previous"]["deliveries"] == sum(v[0] for v in prev.values())
    assert body["previous"]["real_name"] == sum(v[1] for v in prev.values())

    # every count opens exactly its delivery events
    base = f"{PERIOD}&group=month&company={city.x}&company_code={city.x}"
    for row in body["rows"]:
        for measure in ("deliveries", "real_name", "not_real_name"):
            drill = await _drill(
                client,
                "real-name-progress",
                f"{base}&period={row['period']}&measure={measure}&page_size=50",
            )
            assert drill["total"] == row[measure], (row["period"], measure)
            assert drill["target"] == "events"
            assert {i["kind"] for i in drill["items"]} <= {"deliver"}
    whole = await _drill(client, "real-name-progress", f"{base}&measure=deliveries")
    assert whole["total"] == n


async def test_sales_by_week_against_previous_and_exports(client: Any, city: City) -> None:
    status, body = await call(
        client, "GET", f"/api/v1/reports/sales?{PERIOD}&group=week&company={city.x}"
    )
    assert status == 200, body
    expected = _expected(city, "x", FIRST, LAST)
    n = sum(v[0] for v in expected.values())
    assert sum(r["deliveries"] for r in body["rows"]) == n == body["totals"]["deliveries"]
    # week buckets start on Mondays, one row per week with deliveries
    weeks: dict[dt.date, int] = {}
    for day, _, co in city.deliveries:
        if co == "x" and FIRST <= day <= LAST:
            monday = day - dt.timedelta(days=day.weekday())
            weeks[monday] = weeks.get(monday, 0) + 1
    assert {dt.date.fromisoformat(r["period"]): r["deliveries"] for r in body["rows"]} == weeks
    prev = _expected(city, "x", PREV_FIRST, PREV_LAST)
    assert body["previous"] == {"deliveries": sum(v[0] for v in prev.values())}
    assert body["group"] == "week"
    for row in body["rows"]:
        drill = await _drill(
            client,
            "sales",
            f"{PERIOD}&group=week&company={city.x}&company_code={city.x}"
            f"&period={row['period']}&measure=deliveries",
        )
        assert drill["total"] == row["deliveries"]

    # the CSV: labels as header, the same rows; the XLSX: the same totals
    status, raw = await call(
        client, "GET", f"/api/v1/reports/sales?{PERIOD}&group=week&company={city.x}&format=csv"
    )
    assert status == 200
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].split(",") == ["期间", "企业代码", "企业", "销售(配送)瓶次"]
    assert sum(int(line.split(",")[3]) for line in lines[1:]) == n
    status, raw = await call(
        client,
        "GET",
        f"/api/v1/reports/sales?{PERIOD}&group=week&company={city.x}&format=xlsx&lang=en",
    )
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    assert sheet[0][3] == "Deliveries"
    assert sum(float(str(r[3])) for r in sheet[1:]) == n


async def test_delivery_scope(client: Any, city: City) -> None:
    """A district regulator counts deliveries in its districts; a company admin its own."""
    for company, rows in ((city.x, 1), (city.y, 0)):
        status, body = await call(
            client,
            "GET",
            f"/api/v1/reports/sales?{PERIOD}&group=year&company={company}",
            user="t_regulator_jinshui",
        )
        assert status == 200, body
        assert len(body["rows"]) == rows, company
    status, body = await call(
        client, "GET", f"/api/v1/reports/sales?{PERIOD}&company={city.y}", user="t_company_a"
    )
    assert status == 200
    assert body["rows"] == [] and body["totals"]["deliveries"] == 0
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/sales/drill?{PERIOD}&company_code={city.y}&measure=deliveries",
        user="t_company_a",
    )
    assert status == 200 and body["total"] == 0
    status, body = await call(
        client, "GET", f"/api/v1/reports/sales?{PERIOD}&group=year&company={city.y}"
    )
    assert [r["deliveries"] for r in body["rows"]] == [1]


# ---------------------------------------------------------------- account opening

OPENINGS = [
    # (opened_on, district) of company X's accounts
    (dt.date(2021, 6, 1), "410105"),  # long before
    (dt.date(2024, 2, 10), "410105"),  # the previous period
    (dt.date(2023, 1, 5), None),
    (dt.date(2024, 3, 3), "410105"),
    (dt.date(2024, 3, 15), "410105"),
    (dt.date(2024, 3, 20), None),
    (dt.date(2024, 4, 2), "410105"),
    (dt.date(2024, 5, 2), "410105"),  # after the period
]


@pytest.fixture
async def opened(pool: Any) -> str:
    code = unique("OPEN")
    cid = await _company(pool, code, "410105")
    for day, district in OPENINGS:
        await pool.execute(
            """INSERT INTO customers (company_id, account_no, name, district_code, opened_on)
               VALUES ($1, $2, '开户测试', $3, $4)""",
            cid,
            unique("ACC"),
            district,
            day,
        )
    return code


async def test_account_opening_counts_cumulative_and_drills(client: Any, opened: str) -> None:
    status, body = await call(
        client, "GET", f"/api/v1/reports/account-opening?{PERIOD}&group=month&company={opened}"
    )
    assert status == 200, body
    got = {(r["period"], r["district_code"]): r for r in body["rows"]}
    expected: dict[tuple[str, str | None], tuple[int, int]] = {}
    for day, district in OPENINGS:
        if not FIRST <= day <= LAST:
            continue
        month = day.replace(day=1)
        n = sum(1 for d, di in OPENINGS if d.replace(day=1) == month and di == district)
        to_date = sum(
            1 for d, di in OPENINGS if d < month.replace(month=month.month + 1) and di == district
        )
        expected[(month.isoformat(), district)] = (n, to_date)
    assert {k: (r["opened"], r["cumulative"]) for k, r in got.items()} == expected
    assert {r["company_code"] for r in body["rows"]} == {opened}
    assert got[("2024-03-01", "410105")]["district_name"] == "金水区"
    in_period = [d for d, _ in OPENINGS if FIRST <= d <= LAST]
    assert body["totals"] == {
        "opened": len(in_period),
        "cumulative": sum(1 for d, _ in OPENINGS if d <= LAST),
    }
    assert body["previous"] == {
        "opened": sum(1 for d, _ in OPENINGS if PREV_FIRST <= d <= PREV_LAST),
        "cumulative": sum(1 for d, _ in OPENINGS if d <= PREV_LAST),
    }
    # every cell drills down to its customers (an empty district key: no district)
    for row in body["rows"]:
        district = row["district_code"] or ""
        for measure in ("opened", "cumulative"):
            drill = await _drill(
                client,
                "account-opening",
                f"{PERIOD}&group=month&company={opened}&company_code={opened}"
                f"&district_code={district}&period={row['period']}&measure={measure}",
            )
            assert drill["total"] == row[measure], (row["period"], district, measure)
            assert drill["target"] == "customers"
            assert all(i["district_code"] == row["district_code"] for i in drill["items"])
            assert "phone" not in drill["items"][0]
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/account-opening?{PERIOD}&company={opened}",
        user="t_company_a",
    )
    assert status == 200 and body["rows"] == [] and body["totals"]["opened"] == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("sales?group=fortnight", "group"),
        ("sales?from=2024-02-30", "from"),
        ("sales?from=2024-03-01&to=2024-02-01", "to"),
        ("sales?district=4101", "district"),
        ("sales?format=pdf", "format"),
        ("credit?group=month", "group"),
        ("circulation?station=STA-A1", "station"),
        ("account-opening?station=STA-A1", "station"),
        ("sales/drill?measure=company_name", "measure"),
        ("sales/drill?measure=deliveries&period=2024-13-01", "period"),
        ("periodic-inspections/drill?measure=agency_name", "measure"),
        ("credit/drill?measure=events", "measure"),
    ],
)
async def test_bad_input_is_a_400(client: Any, path: str, field: str) -> None:
    status, body = await call(client, "GET", f"/api/v1/reports/{path}")
    assert status == 400, body
    assert body["error"]["details"]["field"] == field


async def test_catalogue_lists_the_business_reports(client: Any, world: World) -> None:
    del world
    status, body = await call(client, "GET", "/api/v1/reports")
    assert status == 200
    specs = {r["name"]: r for r in body["items"]}
    for name, kind in (
        ("account-opening", "line"),
        ("real-name-progress", "line"),
        ("sales", "line"),
        ("circulation", "stacked_bar"),
        ("periodic-inspections", "stacked_bar"),
        ("credit", "bar"),
    ):
        assert specs[name]["chart"]["kind"] == kind, name
    assert specs["sales"]["chart"]["x"] == "period"
    assert specs["credit"]["drill"] is False
    assert "inspector" in specs["periodic-inspections"]["roles"]
    assert "inspector" not in specs["sales"]["roles"]


@pytest.mark.parametrize(
    "name",
    [
        "account-opening",
        "real-name-progress",
        "sales",
        "circulation",
        "periodic-inspections",
        "credit",
    ],
)
async def test_every_format_answers(client: Any, city: City, name: str) -> None:
    """JSON, CSV and XLSX of the same rows, over a period holding the fixture's rows and
    whatever else the session wrote, for the city-wide regulator."""
    del city
    query = "from=2023-01-01" + ("" if name in ("circulation", "credit") else "&group=quarter")
    status, body = await call(client, "GET", f"/api/v1/reports/{name}?{query}", user="t_regulator")
    assert status == 200, body
    for fmt in ("csv", "xlsx"):
        status, raw = await call(
            client,
            "GET",
            f"/api/v1/reports/{name}?{query}&format={fmt}",
            user="t_regulator",
        )
        assert status == 200, raw
        if fmt == "csv":
            assert len(raw.decode("utf-8-sig").splitlines()) == len(body["rows"]) + 1
        else:
            book = CalamineWorkbook.from_filelike(io.BytesIO(raw))
            assert len(book.get_sheet_by_index(0).to_python()) == len(body["rows"]) + 1
