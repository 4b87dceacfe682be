"""Matrix rows of the activity reports built in the report frame (server/api/report_activity.py,
server/api/report_activity_abnormal.py): the activity reports' roles — admin, regulators,
officers and company admins, each counting their scope; station operators and inspection
agencies 403 (agencies read no fills or alerts). The earlier fills-daily, denials and
anomalies-by-company keep their rows in tests/api/test_roles.py; the numbers per scope are
tests/api/test_report_activity.py's."""

from __future__ import annotations

from tests.api.roles import Case

ACTIVITY = (200, 200, 200, 200, 200, 200, 403, 403, 401)
#           admin reg regJ off coA coB opA insp anon

CASES: dict[str, Case] = {
    "reports.fill_volume": Case("GET", "/api/v1/reports/fill-volume", ACTIVITY),
    "reports.fill_volume_by_station": Case(
        "GET",
        "/api/v1/reports/fill-volume?by=station&group=month&format=csv",
        ACTIVITY,
        route="/api/v1/reports/fill-volume",
    ),
    "reports.overstock": Case("GET", "/api/v1/reports/overstock", ACTIVITY),
    "reports.abnormal_behaviour": Case("GET", "/api/v1/reports/abnormal-behaviour", ACTIVITY),
    "reports.abnormal_behaviour_drill": Case(
        "GET",
        "/api/v1/reports/abnormal-behaviour/drill?measure=refused_not_owner",
        ACTIVITY,
        route="/api/v1/reports/{name}/drill",
    ),
}
