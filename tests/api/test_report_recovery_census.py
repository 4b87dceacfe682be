"""The recovery census (migration 0233; server/db/rollup_recovery.py): ``recovery-rate`` read
from it answers what the cylinder census with the fill-day rollup answers and what the raw
fills answer — cylinders, filled, never filled, rate, this period's and the previous one's —
for a regulator, a district regulator and a company admin, over the page's period, a year and
a period crossing a year boundary and the watermark; a period before its first year is read
the other way; a database never refreshed answers from the raw fills, then from the view."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import asyncpg
import pytest

from server.api.report_cylinders_flow import SPECS
from server.api.report_frame import build_context, compute_report
from server.db import rollup_fill_days, rollup_recovery
from server.db.rollup_refresh import refresh
from server.db.rollups import RECENT_DAYS
from server.kernel.principal import Principal
from tests.api.report_activity_city import refreshed, refreshed_to
from tests.api.test_report_recovery_rollup import PERIOD, WATERMARK, _jan1, _period, _report, _world
from tests.api.test_reports_circulation import _company
from tests.conftest import World

USERS = ("t_regulator", "t_regulator_jinshui", "t_company_a")


async def _three(
    client: Any, monkeypatch: pytest.MonkeyPatch, user: str, query: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
    """The answer as served, from the census and the fill-day rollup, from the raw fills;
    and how many times the served answer read the recovery census."""
    read = 0
    bits = rollup_recovery.filled

    def counted(*args: Any, **kwargs: Any) -> rollup_fill_days.Filled:
        nonlocal read
        read += 1
        return bits(*args, **kwargs)

    async def none(*_: Any) -> None:
        return None

    with monkeypatch.context() as m:
        m.setattr(rollup_recovery, "filled", counted)
        served = await _report(client, user, query)
    with monkeypatch.context() as m:
        m.setattr(rollup_recovery, "usable_mark", none)
        fill_days = await _report(client, user, query)
        m.setattr(rollup_fill_days, "usable_mark", none)
        raw = await _report(client, user, query)
    return served, fill_days, raw, read


async def _refresh_at(pool: Any, settings: Any, upto: dt.date) -> None:
    """The fill-day rollup and the recovery census made with their watermark at *upto*."""
    for function in ("cyl_fill_days_refresh", "cyl_recovery_refresh"):
        await refreshed_to(pool, function, settings, upto)


async def test_the_recovery_census_answers_as_the_fill_days_and_the_raw_fills(
    client: Any, pool: Any, world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, cid = await _company(pool)
    await _world(pool, world, cid, code)
    await _world(pool, world, world.companies["A"], f"{code}-A")
    await refreshed(pool, settings)
    jan1 = _jan1(world)
    year = f"from={world.today - dt.timedelta(days=364)}&to={world.today}"
    crossing = _period(jan1, *PERIOD)
    try:
        for query in ("", year, crossing, f"company={code}&{crossing}"):
            for user in USERS:
                served, fill_days, raw, read = await _three(client, monkeypatch, user, query)
                assert read == 1, (user, query)
                assert served == fill_days == raw, (user, query)
                # company A holds a FLEET too; its admin asking for another company sees none
                mixed = user == "t_company_a" and "company=" in query
                n = served["totals"]["cylinders"]
                assert n == 0 if mixed else n >= 8, (user, query)
        # both sides of the watermark: the view's bits up to day 4, the raw fills from day 5
        await _refresh_at(pool, settings, jan1 + dt.timedelta(days=WATERMARK))
        mark = await rollup_recovery.usable_mark(pool, settings)
        assert mark is not None and mark.upto == jan1 + dt.timedelta(days=WATERMARK)
        mine = f"company={code}&{crossing}"
        for user in USERS[:2]:
            served, fill_days, raw, read = await _three(client, monkeypatch, user, mine)
            assert read == 1 and served == fill_days == raw, user
            # FLEET: k1, k2, k8 from the bits, k3 from the raw fills, k6 from both
            assert served["totals"] == {
                "cylinders": 8,
                "filled": 5,
                "never_filled": 3,
                "rate": 0.625,
            }
            assert served["previous"] == {
                "cylinders": 8,
                "filled": 1,
                "never_filled": 7,
                "rate": 0.125,
            }
        # a period before the view's first year: read from the census and the fill days
        old = world.today - dt.timedelta(days=1100)
        query = f"from={old}&to={old + dt.timedelta(days=30)}"
        served, fill_days, raw, read = await _three(client, monkeypatch, "t_regulator", query)
        assert read == 0 and served == fill_days == raw
    finally:
        await refreshed(pool, settings)


async def test_a_city_never_refreshed_reads_the_raw_fills(
    fresh_databases: Any, settings: Any
) -> None:
    """Before the first refresh the view holds no data, and a statement naming it would fail
    (a 500): the report reads the raw fills, and the view once the round has made it."""
    from tests.fresh_db import drop_database

    name = f"cylwatch_test_recovery_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(await fresh_databases.create(name))
    regulator = Principal(1, "r", "regulator")
    spec = next(s for s in SPECS if s.name == "recovery-rate")
    try:
        assert await rollup_recovery.usable_mark(conn, settings) is None
        # its own refresh before the census and the fill days exist: nothing made, no error
        today = dt.date.today()
        assert await conn.fetchval(
            "SELECT cyl_recovery_refresh($1, $2, true, $3, false)",
            today,
            settings.alerts.timezone,
            today - dt.timedelta(days=RECENT_DAYS),
        )
        assert await rollup_recovery.usable_mark(conn, settings) is None
        body = await compute_report(build_context(conn, settings, regulator, spec, {}), spec)
        assert body["totals"]["cylinders"] == 0 and body["as_of"] is None
        assert await refresh(conn, settings, wait=True, full=True)
        mark = await rollup_recovery.usable_mark(conn, settings)
        assert mark is not None and mark.census_at is not None
        body = await compute_report(build_context(conn, settings, regulator, spec, {}), spec)
        assert body["totals"]["cylinders"] == 0 and body["as_of"] == mark.census_at
    finally:
        await conn.close()
        await drop_database(name)
