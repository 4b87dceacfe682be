"""The abnormal circulation rollup (migration 0227; server/db/rollup_abnormal.py): a year of
``abnormal-cylinders`` answers from it (a closed day's fill removed from the raw table still
counts until the next refresh, the drill-down with it), a late inspection changes an old day's
answer at the next refresh, and the rollup's scan kinds are the report's."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from server.domain.circulation import VIOLATION_ACTIONS
from tests.api.conftest import call
from tests.api.report_activity_city import refreshed
from tests.api.test_reports_circulation import Y, _at, _company, _cylinder, _fill
from tests.conftest import World

YEAR_ANSWER_S = 10
"""Far above what a year from the rollup takes on a test database (well under a second) and
far below what a scan of the raw tables would on the benchmark's (a statement timeout)."""


async def _totals(client: Any, code: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    status, body = await call(
        client, "GET", f"/api/v1/reports/abnormal-cylinders?company={code}&from={first}&to={last}"
    )
    assert status == 200, body
    totals: dict[str, Any] = body["totals"]
    return totals


async def _drill(client: Any, code: str, first: dt.date, last: dt.date, measure: str) -> int:
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/abnormal-cylinders/drill?company={code}&from={first}&to={last}"
        f"&measure={measure}",
    )
    assert status == 200, body
    return int(body["total"])


async def test_a_year_answers_from_the_rollup(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    code, cid = await _company(pool)
    tag = f"{code}-late"
    cyl = await _cylinder(pool, world, cid, tag, "in_service", 5 * Y, -30, 900, "site")
    await _fill(pool, world, cyl, tag, 5)
    await refreshed(pool, settings)
    # the fill leaves the raw table: a closed day is read from the rollup, not the fills
    await pool.execute("DELETE FROM fills WHERE cylinder_id = $1", cyl)
    first = world.today - dt.timedelta(days=settings.reports.range_max_days - 1)
    started = time.perf_counter()
    totals = await _totals(client, code, first, world.today)
    assert time.perf_counter() - started < YEAR_ANSWER_S
    assert totals["filled_overdue"] == 1 and totals["cylinders"] == 1
    assert await _drill(client, code, first, world.today, "filled_overdue") == 1
    # and today's fill counts at once (the live half), the removed one gone after a refresh
    await _fill(pool, world, cyl, tag, 0)
    await refreshed(pool, settings)
    await pool.execute("DELETE FROM fills WHERE cylinder_id = $1 AND ts < $2", cyl, _at(world, 1))
    assert (await _totals(client, code, first, world.today))["filled_overdue"] == 1
    await pool.execute("DELETE FROM fills WHERE cylinder_id = $1", cyl)
    await refreshed(pool, settings)
    assert (await _totals(client, code, first, world.today))["cylinders"] == 0


async def test_a_late_inspection_counts_at_the_next_refresh(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    """Filled 10 days ago with the record in date (no inspection after it): not abnormal. An
    inspection dated 5 days ago is recorded later: the date in force 10 days ago becomes
    manufacture + the interval (none recorded before), a year gone — filled while overdue,
    from the next refresh on."""
    code, cid = await _company(pool)
    tag = f"{code}-insp"
    cyl = await _cylinder(pool, world, cid, tag, "in_service", 5 * Y, 4 * Y, 2000, "site")
    await _fill(pool, world, cyl, tag, 10)
    await refreshed(pool, settings)
    first = world.today - dt.timedelta(days=20)
    assert (await _totals(client, code, first, world.today))["filled_overdue"] == 0
    inspected = world.today - dt.timedelta(days=5)
    await pool.execute(
        """INSERT INTO inspections (cylinder_id, inspected_on, result, next_inspection_date)
           VALUES ($1, $2, 'pass', $3)""",
        cyl,
        inspected,
        world.today + dt.timedelta(days=4 * Y),
    )
    await pool.execute(
        "UPDATE cylinders SET last_inspection_date = $2 WHERE id = $1", cyl, inspected
    )
    # the day is closed: as of the last refresh until the next one
    assert (await _totals(client, code, first, world.today))["filled_overdue"] == 0
    await refreshed(pool, settings)
    assert (await _totals(client, code, first, world.today))["filled_overdue"] == 1
    assert await _drill(client, code, first, world.today, "filled_overdue") == 1


async def test_the_rollup_counts_the_reports_scan_kinds(pool: Any) -> None:
    body = await pool.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'cyl_abnormal_daily'")
    listed = re.search(r"ev\.kind IN \(([^)]*)\)", body)
    assert listed is not None
    assert set(re.findall(r"'(\w+)'", listed.group(1))) == set(VIOLATION_ACTIONS)
