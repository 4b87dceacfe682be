"""Matrix rows of the archive reports built in the report frame (server/api/report_cylinders.py)
and of the one drill-down route every framed report shares.

``holdings`` is a cylinder report: open to whoever reads cylinders (agencies call cylinders
in), each caller counting its own scope (tests/api/test_report_frame.py checks which). Station
operators get no reports. The drill-down follows its report's roles.
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "reports.holdings": Case(
        "GET", "/api/v1/reports/holdings", (200, 200, 200, 200, 200, 200, 403, 200, 401)
    ),
    "reports.drill": Case(
        "GET",
        "/api/v1/reports/holdings/drill?measure=total",
        (200, 200, 200, 200, 200, 200, 403, 200, 401),
        route="/api/v1/reports/{name}/drill",
    ),
}
