"""``periodic-inspections`` over the cylinder census (server/api/report_business_flow.py;
migration 0226): the counts per bucket, owner and agency equal those over the live
``cylinders`` — the answer before this change — for a regulator, a district regulator, a
company admin and an inspection agency, over a month and a year, with an inspection of a
cylinder registered after the census's snapshot counted at once; a database never refreshed
reads ``cylinders``."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import asyncpg
import pytest

from server.api.report_business_flow import SPECS
from server.api.report_frame import build_context, compute_report
from server.db import census
from server.kernel.principal import Principal
from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

USERS = ("t_regulator", "t_regulator_jinshui", "t_company_a", "t_inspector")


async def _cylinder(pool: Any, world: World, company: str, district: str) -> int:
    return int(
        await pool.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, district_code)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6) RETURNING id""",
            unique("INSP"),
            world.companies[company],
            world.today - dt.timedelta(days=2000),
            world.today + dt.timedelta(days=700),
            world.today + dt.timedelta(days=3000),
            district,
        )
    )


async def _inspect(pool: Any, world: World, cylinder: int, days_ago: int, result: str) -> None:
    # the test inspector's agency for every other one, none recorded for the rest
    agency = world.sites["INS-1"] if days_ago % 2 else None
    await pool.execute(
        """INSERT INTO inspections (cylinder_id, agency_site_id, inspected_on, result)
           VALUES ($1, $2, $3, $4)""",
        cylinder,
        agency,
        world.today - dt.timedelta(days=days_ago),
        result,
    )


async def _answer(client: Any, user: str, query: str) -> dict[str, Any]:
    status, body = await call(
        client, "GET", f"/api/v1/reports/periodic-inspections?{query}", user=user
    )
    assert status == 200, body
    return {k: body[k] for k in ("rows", "totals", "previous")}


async def _both(
    client: Any, monkeypatch: pytest.MonkeyPatch, user: str, query: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer as served (over the census), then over the live ``cylinders``."""
    served = await _answer(client, user, query)

    async def live(_: Any) -> census.Census:
        return census.Census(census.LIVE, None)

    with monkeypatch.context() as m:
        m.setattr("server.api.report_business_flow.census", live)
        plain = await _answer(client, user, query)
    return served, plain


async def test_the_census_answers_as_the_archive(
    client: Any, pool: Any, world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = world.districts[0], world.districts[1]
    for i, (company, district) in enumerate(
        (("A", one), ("A", two), ("B", one), ("B", two), ("A", one))
    ):
        cyl = await _cylinder(pool, world, company, district)
        for days_ago, result in ((3 + i, "pass"), (40 + i, "fail"), (200 + i, "scrap")):
            await _inspect(pool, world, cyl, days_ago, result)
    await refreshed(pool, settings)
    # registered after the census's snapshot: counted at once, with its owner and district
    late = await _cylinder(pool, world, "A", one)
    await _inspect(pool, world, late, 1, "pass")
    year = f"from={world.today - dt.timedelta(days=364)}&to={world.today}&group=month"
    for query in ("", year):
        for user in USERS:
            served, plain = await _both(client, monkeypatch, user, query)
            assert served == plain, (user, query)
            assert served["totals"]["inspections"] >= (1 if query == "" else 3), (user, query)
    # and against a count of the inspections themselves, for the company admin's year
    want = await pool.fetchval(
        """SELECT count(*) FROM inspections i JOIN cylinders c ON c.id = i.cylinder_id
            WHERE c.owner_company_id = $1 AND i.inspected_on BETWEEN $2 AND $3""",
        world.companies["A"],
        world.today - dt.timedelta(days=364),
        world.today,
    )
    served, _ = await _both(client, monkeypatch, "t_company_a", year)
    assert served["totals"]["inspections"] == want


async def test_a_city_never_refreshed_reads_the_archive(
    fresh_databases: Any, settings: Any
) -> None:
    """No census yet: the report joins ``cylinders`` and answers (no 500)."""
    from tests.fresh_db import drop_database

    name = f"cylwatch_test_inspections_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(await fresh_databases.create(name))
    spec = next(s for s in SPECS if s.name == "periodic-inspections")
    try:
        ctx = build_context(conn, settings, Principal(1, "r", "regulator"), spec, {})
        body = await compute_report(ctx, spec)
        assert body["totals"]["inspections"] == 0 and body["as_of"] is None
    finally:
        await conn.close()
        await drop_database(name)
