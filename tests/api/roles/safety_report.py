"""Matrix rows of the ``safety-inspections`` report (server/api/report_safety.py): the
activity reports' roles — admin, regulators, officers and company admins, each counting their
scope; delivery staff and inspection agencies 403 (tests/api/test_safety_report.py checks the
numbers per scope)."""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                        admin reg regJ off coA coB opA insp anon
    "reports.safety_inspections": Case(
        "GET",
        "/api/v1/reports/safety-inspections",
        (200, 200, 200, 200, 200, 200, 403, 403, 401),
    ),
    "reports.safety_inspections_csv": Case(
        "GET",
        "/api/v1/reports/safety-inspections?format=csv&from=2020-01-01&to=2020-12-31",
        (200, 200, 200, 200, 200, 200, 403, 403, 401),
        route="/api/v1/reports/safety-inspections",
    ),
}
