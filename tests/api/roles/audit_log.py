"""Matrix rows of the audit log (server/api/audit_log.py): admins and regulators read it
(a district regulator within its districts), every other role is refused."""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                        admin reg regJ off coA coB opA insp anon
    "audit.list": Case("GET", "/api/v1/audit", (200, 200, 200, 403, 403, 403, 403, 403, 401)),
    "audit.export": Case(
        "GET",
        "/api/v1/audit?format=csv&action=user.*",
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
        route="/api/v1/audit",
    ),
}
