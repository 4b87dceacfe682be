"""The ``safety-inspections`` report (server/api/report_safety.py; docs/API.md "Reports")
against an independent count: a small set of records built by hand in a period of their own
(January 2020), the expected numbers counted in Python from the same set, the open and
overdue rectifications of other tests' records counted apart by plain SQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from server.api.report_safety import pass_rate
from server.domain.localtime import city_date
from tests.api.conftest import call
from tests.api.report_activity_city import refreshed
from tests.conftest import World

FAR = dt.date.today() + dt.timedelta(days=30)  # open, not overdue, whatever the city's day
PAST = dt.date(2020, 1, 11)
# (key, company, day and hour (city time), failed codes, na codes, corrects,
#  [(code, state, deadline)] of its rectifications)
SET: list[
    tuple[str, str, tuple[int, int], tuple[str, ...], tuple[str, ...], str | None, list[Any]]
] = [
    ("a1", "A", (10, 9), (), (), None, []),
    (
        "a2",
        "A",
        (10, 15),
        ("valve_no_leak",),
        ("gas_alarm",),
        None,
        [("valve_no_leak", "open", PAST)],
    ),
    (
        "a3",
        "A",
        (11, 8),
        ("valve_no_leak", "hose_type"),
        (),
        None,
        [("valve_no_leak", "closed", PAST), ("hose_type", "open", FAR)],
    ),
    (
        "a4",
        "A",
        (11, 10),
        ("cylinder_upright",),
        (),
        None,
        [("cylinder_upright", "superseded", FAR)],
    ),
    ("a5", "A", (11, 12), (), (), "a4", []),
    ("a_late", "A", (12, 0), ("valve_no_leak",), (), None, [("valve_no_leak", "open", PAST)]),
    ("b1", "B", (10, 11), ("valve_no_leak",), (), None, [("valve_no_leak", "open", PAST)]),
    ("b2", "B", (10, 23), (), ("gas_alarm",), None, []),
]
IN_PERIOD = {k for k, _, (d, _h), *_ in SET if d in (10, 11)}
CORRECTED = {c for *_, c, _r in SET if c}


async def build(pool: Any, world: World, settings: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Write the set; the record ids by key and the item ids by code."""
    zone = ZoneInfo(settings.alerts.timezone)
    cat = await pool.fetchval(
        "SELECT id FROM safety_catalogues WHERE customer_kind = 'resident' ORDER BY version DESC LIMIT 1"
    )
    items = {
        r["code"]: r["id"]
        for r in await pool.fetch("SELECT id, code FROM safety_items WHERE catalogue_id = $1", cat)
    }
    upload = await pool.fetchval(
        """INSERT INTO uploads (sha256, mime, size, purpose) VALUES ($1, 'image/png', 1,
           'safety_signature') RETURNING id""",
        "c" * 64,
    )
    ids: dict[str, int] = {}
    for key, comp, (day, hour), failed, na, corrects, rects in SET:
        district = "410105" if comp == "A" else "410103"
        async with pool.acquire() as conn, conn.transaction():
            rid = await conn.fetchval(
                """INSERT INTO safety_inspections (client_id, customer_id, company_id,
                       district_code, catalogue_id, inspector_id, inspector_role, inspected_at,
                       result, failed_count, signature_upload_id, corrects, prev_hash,
                       record_hash, seal)
                   VALUES ($1, $2, $3, $4, $5, $6, 'officer', $7, $8, $9, $10, $11, $12, $13, $12)
                   RETURNING id""",
                uuid.uuid4(),
                world.customers[comp],
                world.companies[comp],
                district,
                cat,
                world.users["t_officer"],
                dt.datetime(2020, 1, day, hour, 30, tzinfo=zone),
                "fail" if failed else "pass",
                len(failed),
                upload,
                ids[corrects] if corrects else None,
                "0" * 64,
                uuid.uuid4().hex * 2,
            )
            await conn.executemany(
                "INSERT INTO safety_answers (inspection_id, item_id, answer) VALUES ($1, $2, $3)",
                [
                    (rid, iid, "fail" if code in failed else "na" if code in na else "pass")
                    for code, iid in items.items()
                ],
            )
            for code, state, deadline in rects:
                await conn.execute(
                    """INSERT INTO safety_rectifications (inspection_id, item_id, company_id,
                           district_code, deadline, state, closed_at, recheck_upload_id,
                           superseded_by)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                    rid,
                    items[code],
                    world.companies[comp],
                    district,
                    deadline,
                    state,
                    None if state == "open" else dt.datetime.now(dt.UTC),
                    upload if state == "closed" else None,
                    rid if state == "superseded" else None,
                )
        ids[key] = rid
    return ids, items


def expected(
    companies: tuple[str, ...],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Per item code and per company: records, passed, failed, na, open, overdue — counted
    from SET in Python."""
    by_item: dict[str, dict[str, int]] = {}
    by_comp: dict[str, dict[str, int]] = {}
    zero = dict.fromkeys(("records", "passed", "failed", "na", "open", "overdue"), 0)
    today = TODAY[0]
    for key, comp, _when, failed, na, _c, rects in SET:
        if comp not in companies:
            continue
        if key in IN_PERIOD and key not in CORRECTED:
            c = by_comp.setdefault(comp, dict(zero))
            c["records"] += 1
            c["failed" if failed else "passed"] += 1
            for code in ALL_CODES:
                e = by_item.setdefault(code, dict(zero))
                e["records"] += 1
                e["failed" if code in failed else "na" if code in na else "passed"] += 1
        for code, state, deadline in rects:
            if state == "open":
                for e in (
                    by_item.setdefault(code, dict(zero)),
                    by_comp.setdefault(comp, dict(zero)),
                ):
                    e["open"] += 1
                    e["overdue"] += deadline < today
    return by_item, by_comp


ALL_CODES: list[str] = []
TODAY: list[dt.date] = []


async def others(
    pool: Any, mine: list[int], companies: list[int], today: dt.date
) -> tuple[int, int]:
    """Open and overdue rectifications of records not in the set (other tests'), by plain SQL."""
    row = await pool.fetchrow(
        """SELECT count(*) AS open, count(*) FILTER (WHERE deadline < $3) AS overdue
             FROM safety_rectifications
            WHERE state = 'open' AND inspection_id <> ALL($1::bigint[])
              AND company_id = ANY($2::bigint[])""",
        mine,
        companies,
        today,
    )
    return row["open"], row["overdue"]


async def test_report_counts_match_an_independent_count(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    ids, items = await build(pool, world, settings)
    # the set's days are long closed: the report reads them from the safety rollup (migration
    # 0231), which holds a record stored for a closed day from the next refresh on
    await refreshed(pool, settings)
    ALL_CODES[:] = sorted(items)
    TODAY[:] = [city_date(dt.datetime.now(dt.UTC), settings.alerts)]
    path = "/api/v1/reports/safety-inspections?from=2020-01-10&to=2020-01-11"
    status, listing = await call(client, "GET", "/api/v1/reports", "t_company_a")
    assert status == 200 and "safety-inspections" in {r["name"] for r in listing["items"]}

    for user, comps in (
        ("t_admin", ("A", "B")),
        ("t_company_b", ("B",)),
        ("t_regulator_jinshui", ("A",)),
    ):
        status, out = await call(client, "GET", path, user)
        assert status == 200, out
        exp_items, exp_comps = expected(comps)
        extra_open, extra_overdue = await others(
            pool, list(ids.values()), [world.companies[c] for c in comps], TODAY[0]
        )
        got_comps = {r["code"]: r for r in out["by_company"]}
        codes = {
            c: await pool.fetchval("SELECT code FROM companies WHERE id = $1", world.companies[c])
            for c in comps
        }
        assert set(got_comps) == {codes[c] for c in exp_comps}, user
        for comp, e in exp_comps.items():
            g = got_comps[codes[comp]]
            assert (g["records"], g["passed"], g["failed"]) == (
                e["records"],
                e["passed"],
                e["failed"],
            ), user
            assert g["pass_rate"] == pass_rate(e["passed"], e["failed"])
        got_items = {r["code"]: r for r in out["by_item"]}
        for code, e in exp_items.items():
            g = got_items[code]
            assert (g["records"], g["passed"], g["failed"], g["na"]) == (
                e["records"],
                e["passed"],
                e["failed"],
                e["na"],
            ), (user, code)
        assert out["by_item"][0]["name"] and "{" not in "".join(r["name"] for r in out["by_item"])
        # open and overdue: the set's plus the other tests' (counted apart)
        assert (
            out["totals"]["open_rectifications"]
            == sum(e["open"] for e in exp_comps.values()) + extra_open
        )
        assert (
            out["totals"]["overdue_rectifications"]
            == sum(e["overdue"] for e in exp_comps.values()) + extra_overdue
        )
        assert out["totals"]["records"] == sum(e["records"] for e in exp_comps.values())

    # the numbers by hand, once: company A in the period = a1, a2, a3, a5 (a4 corrected, a_late after)
    code_a = await pool.fetchval("SELECT code FROM companies WHERE id = $1", world.companies["A"])
    status, out = await call(client, "GET", f"{path}&company={code_a}", "t_admin")
    assert status == 200 and [r["code"] for r in out["by_company"]] == [code_a]
    valve = next(r for r in out["by_item"] if r["code"] == "valve_no_leak")
    assert (valve["records"], valve["passed"], valve["failed"]) == (4, 2, 2)
    assert valve["pass_rate"] == 0.5
    # CSV: the same rows, one per item and per company
    status, body = await call(client, "GET", path + "&format=csv", "t_admin")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert {r["dimension"] for r in rows} == {"item", "company"}
    assert next(r for r in rows if r["code"] == "valve_no_leak")["records"] == "6"
    # who may not
    for user, code in (("t_operator_a", 403), ("t_inspector", 403), ("anonymous", 401)):
        status, _ = await call(client, "GET", path, user)
        assert status == code, user
    status, err = await call(client, "GET", path.replace("2020-01-10", "2020-01-12"), "t_admin")
    assert status == 400 and err["error"]["details"]["field"] == "to"
