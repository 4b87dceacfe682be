"""Matrix rows of the business reports built in the report frame (server/api/report_business.py,
report_business_flow.py, report_business_credit.py) and of their drill-downs.

Deliveries, accounts, circulation: activity reports (admin, regulators, officers, company
admins — inspection agencies read no customers, fills or alerts; station operators get no
reports). Periodic inspections: a cylinder report, open to inspection agencies too (each its
own inspections). Credit: whoever reads credit today (server/api/credit.py READ_ROLES), and it
has no drill-down (400 for every role that may run it). Each caller counts its own scope
(tests/api/test_report_business*.py check which).
"""

from __future__ import annotations

from tests.api.roles import Case

ACTIVITY = (200, 200, 200, 200, 200, 200, 403, 403, 401)
CYLINDER = (200, 200, 200, 200, 200, 200, 403, 200, 401)
DRILL = "/api/v1/reports/{name}/drill"

CASES: dict[str, Case] = {
    #                                        admin reg regJ off coA coB opA insp anon
    "reports.account_opening": Case("GET", "/api/v1/reports/account-opening", ACTIVITY),
    "reports.real_name_progress": Case("GET", "/api/v1/reports/real-name-progress", ACTIVITY),
    "reports.sales": Case("GET", "/api/v1/reports/sales", ACTIVITY),
    "reports.circulation": Case("GET", "/api/v1/reports/circulation", ACTIVITY),
    "reports.periodic_inspections": Case("GET", "/api/v1/reports/periodic-inspections", CYLINDER),
    "reports.credit": Case("GET", "/api/v1/reports/credit", ACTIVITY),
    "reports.drill.account_opening": Case(
        "GET",
        "/api/v1/reports/account-opening/drill?group=month&measure=cumulative",
        ACTIVITY,
        route=DRILL,
    ),
    "reports.drill.real_name_progress": Case(
        "GET",
        "/api/v1/reports/real-name-progress/drill?measure=real_name&company_code=",
        ACTIVITY,
        route=DRILL,
    ),
    "reports.drill.sales": Case(
        "GET", "/api/v1/reports/sales/drill?measure=deliveries", ACTIVITY, route=DRILL
    ),
    "reports.drill.circulation": Case(
        "GET", "/api/v1/reports/circulation/drill?measure=transfers_in", ACTIVITY, route=DRILL
    ),
    "reports.drill.circulation_alerts": Case(
        "GET", "/api/v1/reports/circulation/drill?measure=out_of_region", ACTIVITY, route=DRILL
    ),
    "reports.drill.periodic_inspections": Case(
        "GET",
        "/api/v1/reports/periodic-inspections/drill?measure=passed&agency_code=",
        CYLINDER,
        route=DRILL,
    ),
    "reports.drill.credit": Case(
        "GET",
        "/api/v1/reports/credit/drill?measure=events",
        (400, 400, 400, 400, 400, 400, 403, 403, 401),
        route=DRILL,
    ),
}
