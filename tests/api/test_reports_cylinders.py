"""``compliance-summary`` and ``in-use-distribution`` (server/api/report_cylinders.py): a
company of this test's own with a hand-built fleet and customers; each cell against the fleet
counted here (compliance by the domain's rule, ``server.domain.dates.compliance_status``),
every count's drill-down against its cell, the earlier JSON keys beside the frame's."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from server.domain.dates import compliance_status
from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

# (status, days to next inspection, days to scrap date, district, where: customer key or None)
FLEET = [
    ("in_service", 400, 2000, "410105", "c1"),  # in use
    ("in_service", 20, 2000, "410105", "c1"),  # in use, inspection due
    ("in_service", -5, 2000, "410105", "c2"),  # in use, overdue
    ("in_service", 400, 60, "410103", "c3"),  # in use, scrap due
    ("in_service", 400, -1, "410103", "c3"),  # scrap date passed: not in use
    ("scrapped", 400, 2000, "410105", "c2"),  # scrapped at a household: not in use
    ("suspended", 400, 2000, "410105", "c1"),  # not in service
    ("in_service", 400, 2000, None, "c4"),  # at a customer, district unknown
    ("in_service", 400, 2000, "410105", None),  # at a site
    ("lost", -30, 2000, None, None),
]
CUSTOMERS = {"c1": "410105", "c2": "410105", "c3": "410103", "c4": None}


async def fleet_company(pool: Any, world: World, settings: Any) -> tuple[str, dict[str, int]]:
    """A company of its own with FLEET, the census refreshed after (the reports count it)."""
    code = unique("CMP")
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
        code,
        "合规测试" + code,
    )
    customers = {}
    for key, district in CUSTOMERS.items():
        customers[key] = await pool.fetchval(
            """INSERT INTO customers (company_id, account_no, name, district_code)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            cid,
            unique("ACC"),
            "用户" + key,
            district,
        )
    today = world.today
    for i, (status, to_next, to_scrap, district, where) in enumerate(FLEET):
        await pool.execute(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, status, tag_voided, district_code,
                   location_kind, location_customer_id)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, $8, $9, $10)""",
            f"{code}-{i}",
            cid,
            today - dt.timedelta(days=2000),
            today + dt.timedelta(days=to_next),
            today + dt.timedelta(days=to_scrap),
            status,
            status == "scrapped",
            district,
            "customer" if where else "site",
            customers[where] if where else None,
        )
    await refreshed(pool, settings)
    return code, customers


async def test_compliance_summary(client: Any, pool: Any, world: World, settings: Any) -> None:
    code, _ = await fleet_company(pool, world, settings)
    status, body = await call(client, "GET", f"/api/v1/reports/compliance-summary?company={code}")
    assert status == 200, body
    want: dict[tuple[str, str | None], dict[str, int]] = {}
    for st, to_next, to_scrap, district, _ in FLEET:
        value = compliance_status(
            st,
            world.today + dt.timedelta(days=to_next),
            world.today + dt.timedelta(days=to_scrap),
            world.today,
            settings.dates,
        ).value
        for key in (("district", district), ("company", code)):
            cell = want.setdefault(key, {"total": 0})
            cell[value] = cell.get(value, 0) + 1
            cell["total"] += 1
    counts = ("scrapped", "overdue", "scrap_due", "inspection_due", "ok", "total")
    got = {(r["dimension"], r["code"]): {k: r[k] for k in counts if r[k]} for r in body["rows"]}
    assert got == want
    assert body["totals"]["total"] == len(FLEET)
    # the earlier keys, for the callers that read them
    assert body["by_company"] == [r for r in body["rows"] if r["dimension"] == "company"]
    assert {d["code"] for d in body["by_district"]} == {"410105", "410103", None}
    assert body["date"] == world.today.isoformat()

    for row in body["rows"]:
        for measure in counts:
            code_q = f"&code={row['code']}" if row["code"] else "&code="
            status, drill = await call(
                client,
                "GET",
                f"/api/v1/reports/compliance-summary/drill?company={code}"
                f"&dimension={row['dimension']}{code_q}&measure={measure}&page_size=1",
            )
            assert status == 200, drill
            assert drill["total"] == row[measure], (row, measure)
            if drill["items"]:
                assert measure == "total" or drill["items"][0]["compliance"] == measure

    status, raw = await call(
        client, "GET", f"/api/v1/reports/compliance-summary?company={code}&format=csv"
    )
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][:3] == ["维度", "代码", "名称"] and len(table) == len(body["rows"]) + 1


async def test_in_use_distribution(client: Any, pool: Any, world: World, settings: Any) -> None:
    code, customers = await fleet_company(pool, world, settings)
    status, body = await call(client, "GET", f"/api/v1/reports/in-use-distribution?company={code}")
    assert status == 200, body
    want: dict[str | None, dict[str, Any]] = {}
    for st, to_next, to_scrap, district, where in FLEET:
        if where is None or st != "in_service" or to_scrap <= 0:
            continue
        cell = want.setdefault(district, {"in_use": 0, "overdue": 0, "customers": set()})
        cell["in_use"] += 1
        cell["overdue"] += to_next < 0
        cell["customers"].add(where)
    got = {
        r["district_code"]: {
            "in_use": r["in_use"],
            "overdue": r["overdue"],
            "customers": r["customers"],
        }
        for r in body["rows"]
    }
    assert got == {d: {**c, "customers": len(c["customers"])} for d, c in want.items()}
    assert body["totals"] == {"in_use": 5, "overdue": 1, "customers": 4}
    assert (
        next(r for r in body["rows"] if r["district_code"] == "410105")["district_name"] == "金水区"
    )

    for row in body["rows"]:
        for measure in ("in_use", "overdue", "customers"):
            key = row["district_code"] or ""
            status, drill = await call(
                client,
                "GET",
                f"/api/v1/reports/in-use-distribution/drill?company={code}"
                f"&district_code={key}&measure={measure}&page_size=1",
            )
            assert status == 200, drill
            assert drill["total"] == row[measure], (row, measure)
            assert drill["target"] == ("customers" if measure == "customers" else "cylinders")
    # the whole scope: no key sent
    status, drill = await call(
        client,
        "GET",
        f"/api/v1/reports/in-use-distribution/drill?company={code}&measure=customers",
    )
    assert drill["total"] == 4
    assert {i["id"] for i in drill["items"]} == set(customers.values())


async def test_in_use_scope(client: Any, pool: Any, world: World, settings: Any) -> None:
    """The Jinshui regulator sees its district only; an inspection agency not at all."""
    code, _ = await fleet_company(pool, world, settings)
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/in-use-distribution?company={code}",
        user="t_regulator_jinshui",
    )
    assert status == 200
    assert [r["district_code"] for r in body["rows"]] == ["410105"]
    assert body["totals"]["in_use"] == 3
    status, _ = await call(client, "GET", "/api/v1/reports/in-use-distribution", user="t_inspector")
    assert status == 403
