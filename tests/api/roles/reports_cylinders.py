"""Matrix rows of the archive reports built in the report frame (server/api/report_cylinders*.py)
and of the one drill-down route every framed report shares.

``holdings``, ``scrap-due`` (and ``compliance-summary``, ``inspection-due``, whose rows are in
tests/api/test_roles.py) are cylinder reports: open to whoever reads cylinders (agencies call
cylinders in), each caller counting its own scope (tests/api/test_report_frame.py,
test_reports_due.py and test_reports_cylinders.py check which). ``in-use-distribution``,
``abnormal-cylinders`` and ``recovery-rate`` read where cylinders are and their fills: not for
agencies, which read neither (test_reports_circulation.py checks the scope). Station operators get no
reports. The drill-down follows its report's roles. tests/api/test_reports_matrix.py runs
every framed report as every role besides.
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "reports.holdings": Case(
        "GET", "/api/v1/reports/holdings", (200, 200, 200, 200, 200, 200, 403, 200, 401)
    ),
    "reports.scrap_due": Case(
        "GET", "/api/v1/reports/scrap-due", (200, 200, 200, 200, 200, 200, 403, 200, 401)
    ),
    "reports.in_use_distribution": Case(
        "GET",
        "/api/v1/reports/in-use-distribution",
        (200, 200, 200, 200, 200, 200, 403, 403, 401),
    ),
    "reports.abnormal_cylinders": Case(
        "GET",
        "/api/v1/reports/abnormal-cylinders",
        (200, 200, 200, 200, 200, 200, 403, 403, 401),
    ),
    "reports.recovery_rate": Case(
        "GET", "/api/v1/reports/recovery-rate", (200, 200, 200, 200, 200, 200, 403, 403, 401)
    ),
    "reports.drill": Case(
        "GET",
        "/api/v1/reports/holdings/drill?measure=total",
        (200, 200, 200, 200, 200, 200, 403, 200, 401),
        route="/api/v1/reports/{name}/drill",
    ),
}
