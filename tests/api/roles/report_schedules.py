"""Matrix rows of scheduled reports (server/api/report_schedules.py).

Everyone who runs reports schedules them; a schedule is its owner's (here the city-wide
regulator's, a new one per call): the owner and an admin change, run, read and delete it,
anyone else gets 404 (not theirs to know of), station operators 403. A run with no file
answers 404 to all (tests/api/test_report_schedules.py downloads real files).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.api.roles import Case, Maker


async def _schedule_of_regulator(fresh: Any) -> int:
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO report_schedules (owner_id, report, params, frequency, format)
               VALUES ($1, 'holdings', '{}', 'monthly', 'csv') RETURNING id""",
            fresh.world.users["t_regulator"],
        )
    )


async def _run_without_file(fresh: Any) -> int:
    sid = await _schedule_of_regulator(fresh)
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO report_runs (schedule_id, period_first, period_last, state)
               VALUES ($1, $2, $2, 'failed') RETURNING id""",
            sid,
            dt.date(2020, 1, 1),
        )
    )


OWNED = (200, 200, 404, 404, 404, 404, 403, 404, 401)

CASES: dict[str, Case] = {
    #                                                        admin reg regJ off coA coB opA insp anon
    "report_schedules.list": Case(
        "GET", "/api/v1/report-schedules", (200, 200, 200, 200, 200, 200, 403, 200, 401)
    ),
    "report_schedules.create": Case(
        "POST",
        "/api/v1/report-schedules",
        (201, 201, 201, 201, 201, 201, 403, 201, 401),
        lambda w: {"report": "holdings", "frequency": "weekly", "format": "csv"},
    ),
    "report_schedules.update": Case(
        "PATCH",
        "/api/v1/report-schedules/{fresh:report_schedule}",
        OWNED,
        lambda w: {"active": False},
    ),
    "report_schedules.delete": Case(
        "DELETE",
        "/api/v1/report-schedules/{fresh:report_schedule}",
        (204, 204, 404, 404, 404, 404, 403, 404, 401),
    ),
    "report_schedules.runs": Case(
        "GET", "/api/v1/report-schedules/{fresh:report_schedule}/runs", OWNED
    ),
    "report_schedules.run_now": Case(
        "POST",
        "/api/v1/report-schedules/{fresh:report_schedule}/run",
        OWNED,
        lambda w: {},
    ),
    "report_schedules.file": Case(
        "GET",
        "/api/v1/report-runs/{fresh:report_run}/file",
        (404, 404, 404, 404, 404, 404, 403, 404, 401),
    ),
}

FRESH: dict[str, Maker] = {
    "report_schedule": _schedule_of_regulator,
    "report_run": _run_without_file,
}
