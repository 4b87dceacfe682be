"""The report rollups (migration 0220; server/db/rollups.py, server/db/rollup_refresh.py): a
period read as rollup + live tail equals the raw count whatever the watermark (hypothesis,
on fills of a station of the test's own), one refresher at a time, a closed day answered
from the rollup, and the refresh command."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.db import rollups
from server.db.rollup_refresh import refresh
from server.kernel.scope import Sql
from tests.api.conftest import call
from tests.api.report_activity_city import Mini, add_fill, add_refusal, mini_city, refreshed

HORIZON = 12
"""Days back the generated fills and periods reach."""

fills_st = st.lists(
    st.tuples(
        st.integers(0, HORIZON),  # days ago
        st.integers(0, 23),  # hour
        st.integers(0, 1),  # station
        st.sampled_from(["completed", "aborted"]),
        st.sampled_from(["ok", "overfill", "underfill", None]),
        st.decimals(min_value=Decimal("0.5"), max_value=Decimal("60"), places=2),
    ),
    max_size=25,
)


async def _totals(
    pool: Any, settings: Any, m: Mini, first: dt.date, last: dt.date, upto: dt.date | None
) -> dict[str, Any]:
    q = Sql()
    src = rollups.source(rollups.FILLS, q, settings, first, last, upto)
    row = await pool.fetchrow(
        f"""SELECT coalesce(sum(r.fills), 0)::bigint AS fills,
                   coalesce(sum(r.completed), 0)::bigint AS completed,
                   coalesce(sum(r.overfill), 0)::bigint AS overfill,
                   coalesce(sum(r.underfill), 0)::bigint AS underfill,
                   coalesce(sum(r.net_kg), 0) AS net_kg
              FROM {src} r WHERE r.company_id = {q.add(m.company_id)}""",
        *q.params,
    )
    return dict(row)


@given(
    rows=fills_st,
    later=fills_st,
    closed_days_ago=st.integers(0, HORIZON + 2),
    span=st.tuples(st.integers(0, HORIZON + 1), st.integers(0, HORIZON + 1)),
)
@example(  # a fill stored after the refresh on the watermark's own day: live, not rolled
    rows=[(3, 10, 0, "completed", "ok", Decimal("14.50"))],
    later=[(2, 11, 1, "completed", "overfill", Decimal("15.20"))],
    closed_days_ago=2,
    span=(0, 5),
)
@hsettings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_rollup_plus_live_tail_equals_raw(
    pool: Any,
    settings: Any,
    rows: list[Any],
    later: list[Any],
    closed_days_ago: int,
    span: tuple[int, int],
) -> None:
    m = await mini_city(pool, settings, "PROP")
    for days_ago, hour, station, result, assessment, net in rows:
        ts = m.at(days_ago, hour)
        await add_fill(pool, m, ts, station, result, assessment, str(net))
    # a refresh as of some day in the past: the watermark falls anywhere in the period or
    # outside it (a refresh never closes a day not yet over, so this is a real state)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=closed_days_ago)
    assert await refresh(pool, settings, wait=True, now=now, full=True)
    state = await rollups.watermark(pool)
    assert state is not None and state.upto == rollups.closed_until(now, settings)
    # rows stored after the refresh, on the days it left open (the live tail's)
    for days_ago, hour, station, result, assessment, net in later:
        ts = m.at(days_ago, hour)
        if ts.astimezone(m.zone).date() >= state.upto:
            await add_fill(pool, m, ts, station, result, assessment, str(net))
    first = m.today - dt.timedelta(days=max(span))
    last = m.today - dt.timedelta(days=min(span))
    got = await _totals(pool, settings, m, first, last, state.upto)
    mine = [f for f in m.fills if first <= f["day"] <= last]
    assert got["fills"] == len(mine)
    assert got["completed"] == sum(f["result"] == "completed" for f in mine)
    assert got["overfill"] == sum(f["assessment"] == "overfill" for f in mine)
    assert got["underfill"] == sum(
        f["assessment"] == "underfill" and f["result"] == "completed" for f in mine
    )
    assert got["net_kg"] == sum(
        (f["net_kg"] for f in mine if f["result"] == "completed"), Decimal(0)
    )
    # and read without the rollup at all (the raw function over the whole period): the same
    assert await _totals(pool, settings, m, first, last, None) == got


async def test_one_refresher_at_a_time(pool: Any, settings: Any) -> None:
    """While one process refreshes (holds the lock), another's scheduled round gives up at
    once and one that must refresh (the CLI) waits, then runs."""
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1)", rollups.LOCK_KEY)
        try:
            assert await refresh(pool, settings, wait=False) is False
            waiting = asyncio.create_task(refresh(pool, settings, wait=True))
            await asyncio.sleep(0.3)
            assert not waiting.done()
        finally:
            await tx.rollback()
        assert await asyncio.wait_for(waiting, 60) is True
    before = await rollups.watermark(pool)
    assert await refresh(pool, settings, wait=False) is True
    after = await rollups.watermark(pool)
    assert before and after and after.refreshed_at and before.refreshed_at
    assert after.refreshed_at > before.refreshed_at


async def test_closed_days_come_from_the_rollup(client: Any, pool: Any, settings: Any) -> None:
    """A closed day is read from the rollup, not the raw table: a fill removed from the raw
    table after a refresh still counts until the next one; a fill added today counts at
    once; a ten-year period answers (from the rollups) without scanning ten years."""
    m = await mini_city(pool, settings, "ROLL")
    ts = m.at(5)
    await add_fill(pool, m, ts)
    await refreshed(pool, settings)
    msg = await pool.fetchval(
        "SELECT msg_id FROM fills WHERE station_id = $1 AND ts = $2", m.stations[0], ts
    )
    await pool.execute("DELETE FROM fills WHERE msg_id = $1 AND ts = $2", msg, ts)
    await add_fill(pool, m, m.at(0))
    big = settings.reports.range_max_days - 1
    path = (
        f"/api/v1/reports/fill-volume?company={m.company_code}&group=year"
        f"&from={(m.today - dt.timedelta(days=big)).isoformat()}"
    )
    started = time.perf_counter()
    status, body = await call(client, "GET", path)
    assert status == 200, body
    assert time.perf_counter() - started < 10
    assert body["totals"]["fills"] == 2  # the removed one (rollup) and today's (live)
    await refreshed(pool, settings)
    _, body = await call(client, "GET", path)
    assert body["totals"]["fills"] == 1


async def test_a_zone_change_rebuilds_the_rollups(pool: Any, settings: Any) -> None:
    """Rollups built in another zone are not read (a report falls back to live rows) and the
    next refresh rebuilds them in the setting's zone."""
    await pool.execute("SELECT cyl_rollups_create('UTC')")
    state = await rollups.watermark(pool)
    assert state is not None and state.tz == "UTC"
    assert state.usable_upto(settings.alerts.timezone) is None
    await refreshed(pool, settings)
    state = await rollups.watermark(pool)
    assert state is not None and state.tz == settings.alerts.timezone and state.upto


async def test_refresh_command(settings: Any, pool: Any, capsys: Any) -> None:
    import argparse

    from server.cli_reports import cmd_reports_refresh

    code = await cmd_reports_refresh(argparse.Namespace(no_wait=False, database_url=None), settings)
    assert code == 0
    out = capsys.readouterr().out
    state = await rollups.watermark(pool)
    assert state is not None  # native, or timescale on a server preloading TimescaleDB
    assert "report rollups refreshed" in out and f"({state.mode})" in out


async def test_old_fills_wait_for_the_daily_refresh(pool: Any, settings: Any) -> None:
    """Fills and refusals older than RECENT_DAYS are refreshed once a day (when the split
    moves), the recent ones at every round (migrations 0221, 0223): a late row for a day
    before the split counts after the next day's first refresh, one inside the window after
    the next round. On the TimescaleDB path the fills rollup is a continuous aggregate that
    refreshes every changed day at every round (migration 0224): there the old fill counts
    after the next round already; refusals keep the split on both paths."""
    m = await mini_city(pool, settings, "SPLIT")
    await refreshed(pool, settings)
    state = await rollups.watermark(pool)
    assert state is not None and state.upto and state.split
    assert state.split == state.upto - dt.timedelta(days=rollups.RECENT_DAYS)
    old_days = (m.today - state.split).days + 3  # before the split
    await add_fill(pool, m, m.at(old_days))
    await add_refusal(pool, m, m.at(old_days), ["not_owner"])
    await add_fill(pool, m, m.at((m.today - state.upto).days + 2))  # inside the window
    first, last = m.today - dt.timedelta(days=old_days + 1), m.today
    assert await refresh(pool, settings, wait=True)  # a round the same day: recent days only
    after_round = 2 if state.mode == "timescale" else 1
    assert (await _totals(pool, settings, m, first, last, state.upto))["fills"] == after_round
    assert await _refusals(pool, settings, m, first, last, state.upto) == 0
    # the next day's first round (the split moves) refreshes the history too
    moved_split = state.split + dt.timedelta(days=1)
    assert await pool.fetchval(
        "SELECT cyl_rollups_refresh($1, $2, true, $3, false)",
        state.upto,
        settings.alerts.timezone,
        moved_split,
    )
    assert (await _totals(pool, settings, m, first, last, state.upto))["fills"] == 2
    assert await _refusals(pool, settings, m, first, last, state.upto) == 1
    await refreshed(pool, settings)


async def _refusals(
    pool: Any, settings: Any, m: Mini, first: dt.date, last: dt.date, upto: dt.date | None
) -> int:
    q = Sql()
    src = rollups.source(rollups.DENIALS, q, settings, first, last, upto)
    n = await pool.fetchval(
        f"SELECT coalesce(sum(r.attempts), 0) FROM {src} r WHERE r.company_id = {q.add(m.company_id)}",
        *q.params,
    )
    return int(n)
