"""The fill-day rollup (migration 0230; server/db/rollup_fill_days.py): ``recovery-rate`` read
from it answers what the raw fills answer — filled, never filled, cylinders, rate — for a
regulator and a company admin, over periods crossing a year boundary and the rollup's
watermark, with completed fills on both sides of each; and it is the rollup that answers (a
closed day's fill removed from the raw table still counts until the next refresh)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.db import rollup_fill_days, rollup_recovery
from tests.api.conftest import call
from tests.api.report_activity_city import refreshed, refreshed_to
from tests.api.test_reports_circulation import _at, _company, _fill
from tests.conftest import World

COUNTS = ("cylinders", "filled", "never_filled", "rate")


def _jan1(world: World) -> dt.date:
    """A New Year's Day at least 40 days back, so that the days around it are closed."""
    return dt.date((world.today - dt.timedelta(days=40)).year, 1, 1)


# name: the fills, as (days from New Year's Day, result); the watermark is day 5
FLEET: dict[str, list[tuple[int, str]]] = {
    "k1": [(-1, "completed")],  # 31 December: the last bit of the previous year's row
    "k2": [(0, "completed")],  # 1 January: the first bit of the year's row
    "k3": [(10, "completed")],  # after the watermark: the raw fills
    "k4": [(-3, "aborted"), (12, "aborted")],  # never completed
    "k5": [(-20, "completed")],  # before the period (in the previous one)
    "k6": [(-8, "completed"), (8, "completed")],  # both sides of the watermark
    "k7": [(20, "completed")],  # after the period
    "k8": [(4, "completed")],  # the last day before the watermark
}
WATERMARK = 5
PERIOD = (-10, 15)  # crosses the year boundary and the watermark


async def _world(pool: Any, world: World, cid: int, prefix: str) -> dict[str, int]:
    jan1 = _jan1(world)
    ids: dict[str, int] = {}
    for name, fills in FLEET.items():
        tag = f"{prefix}-{name}"
        ids[name] = await pool.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
               next_inspection_date, scrap_date, status, district_code, location_kind,
               registered_at)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, 'in_service', '410105', 'site', $6)
               RETURNING id""",
            tag,
            cid,
            jan1 - dt.timedelta(days=1500),
            world.today + dt.timedelta(days=900),
            world.today + dt.timedelta(days=3000),
            _at(world, (world.today - jan1).days + 400),
        )
        for day, result in fills:
            await _fill(pool, world, ids[name], tag, (world.today - jan1).days - day, result)
    return ids


async def _report(client: Any, user: str, query: str) -> dict[str, Any]:
    status, body = await call(client, "GET", f"/api/v1/reports/recovery-rate?{query}", user=user)
    assert status == 200, body
    return {
        "rows": [{k: r[k] for k in ("company_code", *COUNTS)} for r in body["rows"]],
        "totals": {k: body["totals"][k] for k in COUNTS},
        "previous": body["previous"],
    }


async def _both(
    client: Any, monkeypatch: pytest.MonkeyPatch, user: str, query: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer from the rollup, then the same read from the raw fills only (the recovery
    census of migration 0233 set aside: it is made from this rollup, and
    tests/api/test_report_recovery_census.py compares it with both)."""

    async def no_rollup(*_: Any) -> None:
        return None

    with monkeypatch.context() as m:
        m.setattr(rollup_recovery, "usable_mark", no_rollup)
        rolled = await _report(client, user, query)
        m.setattr(rollup_fill_days, "usable_mark", no_rollup)
        raw = await _report(client, user, query)
    return rolled, raw


def _period(jan1: dt.date, first: int, last: int) -> str:
    return f"from={jan1 + dt.timedelta(days=first)}&to={jan1 + dt.timedelta(days=last)}"


async def test_the_rollup_answers_as_the_raw_fills(
    client: Any, pool: Any, world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, cid = await _company(pool)
    ids = await _world(pool, world, cid, code)
    # the session company A's too, for its admin (what else A holds counts on both paths)
    await _world(pool, world, world.companies["A"], f"{code}-A")
    await refreshed(pool, settings)  # the census holds the new cylinders
    jan1 = _jan1(world)
    upto = jan1 + dt.timedelta(days=WATERMARK)
    try:
        # the rollup's watermark moved back to day 5: days before it from the rollup's rows
        # (both years), days from it on from the raw fills
        await refreshed_to(pool, "cyl_fill_days_refresh", settings, upto)
        period = _period(jan1, *PERIOD)
        mine = f"company={code}&{period}"
        rolled, raw = await _both(client, monkeypatch, "t_regulator", mine)
        assert rolled == raw
        want = {"cylinders": 8, "filled": 5, "never_filled": 3, "rate": 0.625}
        assert rolled["totals"] == want
        assert rolled["previous"] == {"cylinders": 8, "filled": 1, "never_filled": 7, "rate": 0.125}
        # wholly before the watermark, across the year boundary
        before = f"company={code}&{_period(jan1, PERIOD[0], WATERMARK - 1)}"
        rolled, raw = await _both(client, monkeypatch, "t_regulator", before)
        assert rolled == raw and rolled["totals"]["filled"] == 4
        # the whole city, and a company admin's own company, over the period and a year
        year = f"from={world.today - dt.timedelta(days=364)}&to={world.today}"
        for user in ("t_regulator", "t_company_a"):
            for query in (period, year):
                rolled, raw = await _both(client, monkeypatch, user, query)
                assert rolled == raw, (user, query)
                assert rolled["totals"]["filled"] >= 5

        # a closed day's fill gone from the raw table: the rollup still holds it
        await pool.execute(
            "DELETE FROM fills WHERE cylinder_id = $1 AND ts < $2",
            ids["k1"],
            _at(world, (world.today - jan1).days),
        )
        rolled, raw = await _both(client, monkeypatch, "t_regulator", mine)
        assert rolled["totals"]["filled"] == 5 and raw["totals"]["filled"] == 4
    finally:
        await refreshed(pool, settings)
    # and from the next refresh on, the rollup without it
    rolled, raw = await _both(client, monkeypatch, "t_regulator", mine)
    assert rolled == raw and rolled["totals"]["filled"] == 4


async def test_a_city_never_refreshed_reads_the_raw_fills(
    fresh_databases: Any, settings: Any
) -> None:
    """Before the first refresh the views hold no data, and PostgreSQL refuses a statement
    naming them: recovery-rate answered 500 until the rollup round had run once (a full test
    run met it). The rollup is not used then, and is once refreshed."""
    import secrets

    import asyncpg

    from tests.fresh_db import drop_database

    name = f"cylwatch_test_filldays_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(await fresh_databases.create(name))
    try:
        assert await rollup_fill_days.usable_mark(conn, settings) is None
        today = dt.date.today()
        await refreshed_to(conn, "cyl_fill_days_refresh", settings, today)
        mark = await rollup_fill_days.usable_mark(conn, settings)
        assert mark == rollup_fill_days.Mark(today, None)
    finally:
        await conn.close()
        await drop_database(name)
