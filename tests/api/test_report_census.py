"""The cylinder census (migration 0226; server/db/census.py; docs/ARCHITECTURE.md §9): the
reports counting today's cylinders read a snapshot taken at the rollups' refresh and say as
of when — a change shows after the next refresh, not before — and right after a refresh their
totals are the counts over the cylinder archive itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.domain.dates import compliance_status
from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World


async def _company(pool: Any, world: World, n: int) -> tuple[str, int]:
    code = unique("CEN")
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
        code,
        "普查" + code,
    )
    for i in range(n):
        await pool.execute(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, district_code)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, '410105')""",
            f"{code}-{i}",
            cid,
            world.today - dt.timedelta(days=400),
            world.today + dt.timedelta(days=300),
            world.today + dt.timedelta(days=3000),
        )
    return code, cid


async def _holdings(client: Any, code: str) -> dict[str, Any]:
    status, body = await call(client, "GET", f"/api/v1/reports/holdings?company={code}")
    assert status == 200, body
    return body


async def test_a_change_shows_after_the_next_refresh(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    code, cid = await _company(pool, world, 3)
    await refreshed(pool, settings)
    first = await _holdings(client, code)
    assert first["totals"]["in_service"] == 3 and first["totals"]["lost"] == 0
    assert first["as_of"] is not None

    # one cylinder lost and one more registered after the refresh: the report is a snapshot
    await pool.execute(
        "UPDATE cylinders SET status = 'lost' WHERE tag = $1 AND owner_company_id = $2",
        f"{code}-0",
        cid,
    )
    await pool.execute(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
               next_inspection_date, scrap_date, district_code)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, '410105')""",
        f"{code}-new",
        cid,
        world.today,
        world.today + dt.timedelta(days=1400),
        world.today + dt.timedelta(days=2900),
    )
    before = await _holdings(client, code)
    assert before["totals"] == first["totals"] and before["as_of"] == first["as_of"]
    # the drill-down reads the archive itself: exact now
    status, drill = await call(
        client, "GET", f"/api/v1/reports/holdings/drill?company={code}&measure=lost"
    )
    assert status == 200 and drill["total"] == 1, drill

    await refreshed(pool, settings)
    after = await _holdings(client, code)
    assert after["totals"]["in_service"] == 3 and after["totals"]["lost"] == 1
    assert after["totals"]["total"] == 4
    assert after["as_of"] > first["as_of"]  # ISO 8601 in UTC: ordered as text


async def test_totals_are_the_archive_counts_after_a_refresh(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    """City-wide, as the admin: every count of the five reports against an independent count
    over ``cylinders`` (the compliance statuses by the domain's own rule)."""
    await _company(pool, world, 2)
    await refreshed(pool, settings)
    today = world.today
    rows = await pool.fetch(
        """SELECT status, location_kind, next_inspection_date, scrap_date FROM cylinders"""
    )

    _, holdings = await call(client, "GET", "/api/v1/reports/holdings")
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert holdings["totals"]["total"] == len(rows)
    for st, n in by_status.items():
        assert holdings["totals"][st] == n, st

    _, compliance = await call(client, "GET", "/api/v1/reports/compliance-summary")
    want: dict[str, int] = {}
    for r in rows:
        value = compliance_status(
            r["status"], r["next_inspection_date"], r["scrap_date"], today, settings.dates
        ).value
        want[value] = want.get(value, 0) + 1
    assert {k: v for k, v in compliance["totals"].items() if v and k != "total"} == want

    _, in_use = await call(client, "GET", "/api/v1/reports/in-use-distribution")
    using = [
        r
        for r in rows
        if r["location_kind"] == "customer"
        and r["status"] == "in_service"
        and r["scrap_date"] > today
    ]
    assert in_use["totals"]["in_use"] == len(using)
    assert in_use["totals"]["overdue"] == sum(
        1 for r in using if r["next_inspection_date"] is None or r["next_inspection_date"] < today
    )

    _, scrap = await call(client, "GET", "/api/v1/reports/scrap-due?months=60")
    horizon = dt.date(today.year + 5, today.month, 1)
    assert scrap["totals"]["cylinders"] == sum(
        1 for r in rows if r["status"] != "scrapped" and r["scrap_date"] < horizon
    )
    _, inspection = await call(client, "GET", "/api/v1/reports/inspection-due?months=60")
    assert inspection["totals"]["cylinders"] == sum(
        1
        for r in rows
        if r["status"] != "scrapped"
        and r["scrap_date"] > today
        and (r["next_inspection_date"] is None or r["next_inspection_date"] < horizon)
    )
    for body in (holdings, compliance, in_use, scrap, inspection):
        assert body["as_of"] == holdings["as_of"] is not None
