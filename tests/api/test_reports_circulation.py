"""``abnormal-cylinders`` and ``recovery-rate`` (server/api/report_cylinders_flow.py): a company
of this test's own with hand-built cylinders, fills, scans and inspections, each cylinder
stating which counts it belongs to; the report's cells and totals against those, the
previous period's, every count's drill-down against its cell, the file against the JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

PERIOD_DAYS = 21  # from today - 20 to today; the previous period: today - 41 .. today - 21
Y = 365

# name: (status, manufactured days ago, days to next inspection, days to scrap date,
#        location, [(what, days ago)], [(inspected days ago, result, days to next)], kinds)
ABNORMAL = {
    # overdue a month: filled and delivered in the period, at a household today
    "c1": (
        "in_service",
        5 * Y,
        -30,
        900,
        "customer",
        [("fill", 10), ("deliver", 9)],
        [],
        {"filled_overdue", "moved_overdue", "held_overdue"},
    ),
    # scrap date passed (not recorded scrapped): filled and dispatched, on a vehicle today
    "c2": (
        "in_service",
        9 * Y,
        300,
        -15,
        "vehicle",
        [("fill", 10), ("dispatch", 9)],
        [],
        {"filled_scrapped", "moved_scrapped", "held_scrapped"},
    ),
    # filled while overdue, inspected since (the record's date moved on): still counted,
    # from manufacture + the interval (no earlier inspection recorded)
    "c3": (
        "in_service",
        5 * Y,
        4 * Y,
        2000,
        "site",
        [("fill", 10)],
        [(5, "pass", 4 * Y)],
        {"filled_overdue"},
    ),
    # inspected a year ago (next: in 10 days), again 3 days ago: in date when filled
    "c4": (
        "in_service",
        5 * Y,
        4 * Y,
        2000,
        "site",
        [("fill", 10)],
        [(Y, "pass", 10), (3, "pass", 4 * Y)],
        set(),
    ),
    "c5": ("in_service", 2 * Y, 500, 2000, "customer", [("fill", 10), ("deliver", 9)], [], set()),
    # overdue, but only taken back (a return is what should happen)
    "c6": ("in_service", 5 * Y, -30, 2000, "site", [("return", 8)], [], set()),
    # filled while overdue in the previous period only
    "c7": ("in_service", 5 * Y, -60, 2000, "site", [("fill", 40)], [], {"prev:filled_overdue"}),
    # scrapped, still at a household
    "c8": ("scrapped", 9 * Y, 300, -100, "customer", [], [], {"held_scrapped"}),
    # overdue only since two days: in date when filled ten days ago
    "c9": ("in_service", 5 * Y, -2, 2000, "site", [("fill", 10)], [], set()),
}
KINDS = (
    "filled_overdue",
    "filled_scrapped",
    "moved_overdue",
    "moved_scrapped",
    "held_overdue",
    "held_scrapped",
)


def _at(world: World, days_ago: int) -> dt.datetime:
    noon = dt.time(12, tzinfo=ZoneInfo("Asia/Shanghai"))
    return dt.datetime.combine(world.today - dt.timedelta(days=days_ago), noon)


async def _company(pool: Any) -> tuple[str, int]:
    code = unique("ABN")
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
        code,
        "异常测试" + code,
    )
    return code, cid


async def _cylinder(
    pool: Any,
    world: World,
    cid: int,
    tag: str,
    status: str,
    made: int,
    to_next: int,
    to_scrap: int,
    location: str,
    customer: int | None = None,
    state_days: int | None = None,
) -> int:
    today = world.today
    return int(
        await pool.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
               next_inspection_date, scrap_date, status, tag_voided, district_code,
               location_kind, location_customer_id, registered_at, state_at)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, '410105', $8, $9,
                   now() - interval '100 days', $10) RETURNING id""",
            tag,
            cid,
            today - dt.timedelta(days=made),
            today + dt.timedelta(days=to_next),
            today + dt.timedelta(days=to_scrap),
            status,
            status == "scrapped",
            location,
            customer,
            None if state_days is None else _at(world, state_days),
        )
    )


async def _fill(
    pool: Any, world: World, cyl: int, tag: str, days_ago: int, result: str = "completed"
) -> None:
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, tag, cylinder_id, net_kg, result, district_code)
           VALUES ($1, $2, 'GUN-ABN', $3, $4, 14.5, $5, '410105')""",
        _at(world, days_ago),
        unique("fill"),
        tag,
        cyl,
        result,
    )


async def abnormal_world(pool: Any, world: World, settings: Any) -> str:
    """The company and its cylinders, rolled up (a refresh by another test would otherwise
    leave this test's rows of closed days out of the abnormal rollup until the next one)."""
    code, cid = await _company(pool)
    for name, (status, made, to_next, to_scrap, location, seen, inspections, _) in ABNORMAL.items():
        tag = f"{code}-{name}"
        cyl = await _cylinder(pool, world, cid, tag, status, made, to_next, to_scrap, location)
        for what, days_ago in seen:
            if what == "fill":
                await _fill(pool, world, cyl, tag, days_ago)
            else:
                await pool.execute(
                    """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, company_id,
                                           district_code) VALUES ($1, $2, $3, $4, $5, $6, '410105')""",
                    _at(world, days_ago),
                    unique("ev"),
                    cyl,
                    tag,
                    what,
                    cid,
                )
        for days_ago, result, to_next_then in inspections:
            day = world.today - dt.timedelta(days=days_ago)
            await pool.execute(
                """INSERT INTO inspections (cylinder_id, inspected_on, result, next_inspection_date)
                   VALUES ($1, $2, $3, $4)""",
                cyl,
                day,
                result,
                world.today + dt.timedelta(days=to_next_then),
            )
        if inspections:
            last = world.today - dt.timedelta(days=min(i[0] for i in inspections))
            await pool.execute(
                "UPDATE cylinders SET last_inspection_date = $2 WHERE id = $1", cyl, last
            )
    await refreshed(pool, settings)
    return code


def _period(world: World) -> str:
    first = world.today - dt.timedelta(days=PERIOD_DAYS - 1)
    return f"from={first}&to={world.today}"


async def test_abnormal_cylinders(client: Any, pool: Any, world: World, settings: Any) -> None:
    code = await abnormal_world(pool, world, settings)
    query = f"company={code}&{_period(world)}"
    status, body = await call(client, "GET", f"/api/v1/reports/abnormal-cylinders?{query}")
    assert status == 200, body
    (row,) = body["rows"]
    for kind in KINDS:
        want = sum(kind in kinds for *_, kinds in ABNORMAL.values())
        assert row[kind] == want, kind
        assert body["totals"][kind] == want
    flagged = [n for n, (*_, kinds) in ABNORMAL.items() if kinds & set(KINDS)]
    assert row["cylinders"] == len(flagged) == 4
    assert body["previous"]["filled_overdue"] == 1
    assert body["previous"]["moved_overdue"] == 0

    for measure in ("cylinders", *KINDS):
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/abnormal-cylinders/drill?{query}&company_code={code}"
            f"&measure={measure}&page_size=50",
        )
        assert status == 200, drill
        assert drill["total"] == row[measure], measure
        names = {i["tag"].rsplit("-", 1)[1] for i in drill["items"]}
        if measure == "cylinders":
            assert names == set(flagged)
        else:
            assert names == {n for n, (*_, kinds) in ABNORMAL.items() if measure in kinds}

    status, raw = await call(
        client, "GET", f"/api/v1/reports/abnormal-cylinders?{query}&format=csv"
    )
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][:3] == ["企业代码", "企业", "异常钢瓶"] and table[1][2] == "4"


async def test_abnormal_scope(client: Any, pool: Any, world: World, settings: Any) -> None:
    code = await abnormal_world(pool, world, settings)
    query = f"company={code}&{_period(world)}"
    status, body = await call(
        client, "GET", f"/api/v1/reports/abnormal-cylinders?{query}", user="t_company_a"
    )
    assert status == 200 and body["rows"] == []
    status, body = await call(
        client, "GET", f"/api/v1/reports/abnormal-cylinders?{query}", user="t_officer"
    )
    assert status == 200 and body["rows"][0]["cylinders"] == 4  # its district's
    status, _ = await call(client, "GET", "/api/v1/reports/abnormal-cylinders", user="t_inspector")
    assert status == 403


async def test_recovery_rate(client: Any, pool: Any, world: World, settings: Any) -> None:
    code, cid = await _company(pool)
    closed = await pool.fetchval(
        """INSERT INTO customers (company_id, account_no, name, district_code, opened_on, closed_on)
           VALUES ($1, $2, '已销户', '410105', $3, $4) RETURNING id""",
        cid,
        unique("ACC"),
        world.today - dt.timedelta(days=800),
        world.today - dt.timedelta(days=30),
    )
    # name: (status, days to scrap, location, customer, delivered days ago, fills: (days ago, result))
    fleet = {
        "r1": ("in_service", 2000, "site", None, None, [(10, "completed")]),
        "r2": ("in_service", 2000, "site", None, None, [(10, "aborted")]),
        "r3": ("in_service", 2000, "customer", closed, 200, []),  # not returned
        "r4": ("in_service", -30, "site", None, None, [(35, "completed")]),  # scrap date before
        "r5": ("not_activated", 2000, "site", None, None, []),
        "r6": ("scrapped", -5, "site", None, None, [(10, "completed")]),  # scrapped during it
        "r7": ("in_service", 2000, "customer", closed, 10, []),  # delivered lately
    }
    for name, (st, to_scrap, location, customer, delivered, fills) in fleet.items():
        tag = f"{code}-{name}"
        cyl = await _cylinder(
            pool, world, cid, tag, st, 3 * Y, 500, to_scrap, location, customer, delivered
        )
        for days_ago, result in fills:
            await _fill(pool, world, cyl, tag, days_ago, result)
    # the fleet is counted over the cylinder census (as of the last refresh: `as_of`)
    await refreshed(pool, settings)
    query = f"company={code}&{_period(world)}"
    status, body = await call(client, "GET", f"/api/v1/reports/recovery-rate?{query}")
    assert status == 200, body
    (row,) = body["rows"]
    want = {"cylinders": 5, "filled": 2, "never_filled": 3, "rate": 0.4, "unreturned": 1}
    assert {k: row[k] for k in want} == want
    assert body["totals"] == want
    assert body["previous"] == {"cylinders": 6, "filled": 1, "never_filled": 5, "rate": 0.1667}

    expected_tags = {
        "cylinders": {"r1", "r2", "r3", "r6", "r7"},
        "filled": {"r1", "r6"},
        "never_filled": {"r2", "r3", "r7"},
        "unreturned": {"r3"},
    }
    for measure, names in expected_tags.items():
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/recovery-rate/drill?{query}&company_code={code}&measure={measure}",
        )
        assert status == 200, drill
        assert drill["total"] == row[measure]
        assert {i["tag"].rsplit("-", 1)[1] for i in drill["items"]} == names
    status, raw = await call(
        client,
        "GET",
        f"/api/v1/reports/recovery-rate/drill?{query}&measure=never_filled&format=csv",
    )
    assert status == 200 and len(raw.decode("utf-8-sig").splitlines()) == 1 + 3


@pytest.mark.parametrize("report", ["abnormal-cylinders", "recovery-rate"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-02-30", "from"),
        ("group=fortnight", None),
        ("station=S1", "station"),
        ("to=2020-01-01&from=2021-01-01", "to"),
    ],
)
async def test_bad_input_is_a_400(client: Any, report: str, query: str, field: str | None) -> None:
    status, body = await call(client, "GET", f"/api/v1/reports/{report}?{query}")
    assert status == 400, body
    if field:
        assert body["error"]["details"]["field"] == field


async def test_drill_refuses_a_rate(client: Any) -> None:
    status, body = await call(client, "GET", "/api/v1/reports/recovery-rate/drill?measure=rate")
    assert status == 400 and body["error"]["details"]["field"] == "measure"
