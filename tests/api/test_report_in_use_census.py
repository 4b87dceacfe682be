"""The in-use census (migration 0234; server/db/census.py in_use_day): ``in-use-distribution``
read from the counts the refresh made for today answers what the cylinder census answers —
every district's row and the totals — for a regulator, a district regulator and a company
admin, with a customer holding cylinders in two districts and one holding two owners'
cylinders counted once in the totals; the counts of another day are not used; a database
never refreshed answers from the archive, then from the view."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import asyncpg
import pytest

from server.api.report_cylinders import SPECS
from server.api.report_frame import build_context, compute_report
from server.db import census
from server.db.rollup_refresh import refresh
from server.db.rollups import RECENT_DAYS
from server.kernel.principal import Principal
from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

USERS = ("t_regulator", "t_regulator_jinshui", "t_company_a")


async def _customer(pool: Any, cid: int, district: str) -> int:
    code = unique("USE")
    return int(
        await pool.fetchval(
            """INSERT INTO customers (company_id, account_no, name, district_code)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            cid,
            code,
            "在用" + code,
            district,
        )
    )


async def _cylinder(
    pool: Any, world: World, cid: int, district: str, customer: int, **state: Any
) -> None:
    await pool.execute(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
               next_inspection_date, scrap_date, status, district_code, location_kind,
               location_customer_id)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, 'customer', $8)""",
        unique("USE-T"),
        cid,
        world.today - dt.timedelta(days=400),
        state.get("next_inspection", world.today + dt.timedelta(days=300)),
        state.get("scrap", world.today + dt.timedelta(days=3000)),
        state.get("status", "in_service"),
        district,
        customer,
    )


async def _city(pool: Any, world: World) -> None:
    """Cylinders at customers of companies A and B in both districts: a customer holding
    cylinders in two districts, one holding A's and B's, one overdue, one past its scrap
    date and one lost (neither in use)."""
    a, b = world.companies["A"], world.companies["B"]
    one, two = world.districts[0], world.districts[1]
    plain = await _customer(pool, a, one)
    await _cylinder(pool, world, a, one, plain)
    await _cylinder(pool, world, a, one, plain, next_inspection=world.today - dt.timedelta(days=1))
    moved = await _customer(pool, a, one)  # one cylinder in each district
    await _cylinder(pool, world, a, one, moved)
    await _cylinder(pool, world, a, two, moved)
    shared = await _customer(pool, b, two)  # B's cylinder and A's
    await _cylinder(pool, world, b, two, shared)
    await _cylinder(pool, world, a, two, shared)
    gone = await _customer(pool, b, two)
    await _cylinder(pool, world, b, two, gone, scrap=world.today)
    await _cylinder(pool, world, b, two, gone, status="lost")


async def _body(client: Any, user: str) -> dict[str, Any]:
    status, body = await call(client, "GET", "/api/v1/reports/in-use-distribution", user=user)
    assert status == 200, body
    return {k: body[k] for k in ("rows", "totals", "as_of")}


async def _both(
    client: Any, monkeypatch: pytest.MonkeyPatch, user: str
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The answer as served, the same over the cylinder census, and how many times the
    served one was counted over the census."""
    counted = 0
    over = census.census

    async def spied(db: Any) -> census.Census:
        nonlocal counted
        counted += 1
        return await over(db)

    async def none(*_: Any) -> None:
        return None

    with monkeypatch.context() as m:
        m.setattr("server.api.report_cylinders.census", spied)
        served = await _body(client, user)
    with monkeypatch.context() as m:
        m.setattr("server.api.report_cylinders.in_use_day", none)
        plain = await _body(client, user)
    return served, plain, counted


async def test_the_counts_of_today_answer_as_the_census(
    client: Any, pool: Any, world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _city(pool, world)
    await refreshed(pool, settings)
    using = """FROM cylinders WHERE location_kind = 'customer' AND status = 'in_service'
                AND scrap_date > $1"""
    want = await pool.fetchrow(
        f"""SELECT count(*) AS in_use, count(DISTINCT location_customer_id) AS customers,
                   (SELECT sum(n) FROM (SELECT count(DISTINCT location_customer_id) AS n
                                          {using} GROUP BY district_code) d) AS by_district
              {using}""",
        world.today,
    )
    try:
        for user in USERS:
            served, plain, counted = await _both(client, monkeypatch, user)
            assert counted == 0, user  # the view answered
            assert served == plain, user
            assert served["as_of"] is not None
        served, _, _ = await _both(client, monkeypatch, "t_regulator")
        # a customer in two districts is in both districts' rows, once in the totals
        assert served["totals"]["in_use"] == want["in_use"]
        assert served["totals"]["customers"] == want["customers"]
        assert sum(r["customers"] for r in served["rows"]) == want["by_district"]
        assert want["by_district"] > want["customers"]
        # counts made for another day are not today's: the census answers
        await pool.execute("UPDATE rollup_in_use_state SET day = day - 1")
        served, plain, counted = await _both(client, monkeypatch, "t_regulator")
        assert counted == 1 and served == plain
    finally:
        await refreshed(pool, settings)


async def test_a_city_never_refreshed_reads_the_archive(
    fresh_databases: Any, settings: Any
) -> None:
    """Before the first refresh the view holds no data and a statement naming it would fail
    (a 500): the report reads ``cylinders``, and the view once the round has made it."""
    from tests.fresh_db import drop_database

    name = f"cylwatch_test_in_use_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(await fresh_databases.create(name))
    regulator = Principal(1, "r", "regulator")
    spec = next(s for s in SPECS if s.name == "in-use-distribution")
    try:
        today = dt.date.today()
        # its own refresh before the census is filled: nothing made, no error
        assert await conn.fetchval(
            "SELECT cyl_in_use_refresh($1, $2, true, $3, false)",
            today,
            settings.alerts.timezone,
            today - dt.timedelta(days=RECENT_DAYS),
        )
        ctx = build_context(conn, settings, regulator, spec, {})
        assert await census.in_use_day(conn, settings.alerts.timezone, ctx.f.today) is None
        body = await compute_report(ctx, spec)
        assert body["totals"]["in_use"] == 0 and body["as_of"] is None
        assert await refresh(conn, settings, wait=True, full=True)
        made = await census.in_use_day(conn, settings.alerts.timezone, ctx.f.today)
        assert made is not None
        body = await compute_report(ctx, spec)
        assert body["totals"]["in_use"] == 0 and body["as_of"] == made
    finally:
        await conn.close()
        await drop_database(name)
