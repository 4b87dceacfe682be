"""Matrix rows of credit evaluation (server/api/credit.py).

Company A is in 金水区 (410105), the district of the district regulator and the officer, so
they read its credit; company B's admin does not (404: another company). Station staff and
inspection agencies have no credit pages (403). Good and bad conduct and the round on demand
are the regulators' (and the admin's); the public searches grades with no login.
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "credit.ranking": Case("GET", "/api/v1/credit", (200, 200, 200, 200, 200, 200, 403, 403, 401)),
    "credit.get": Case(
        "GET",
        "/api/v1/companies/{company_a}/credit",
        (200, 200, 200, 200, 200, 404, 403, 403, 401),
    ),
    "credit.event": Case(
        "POST",
        "/api/v1/companies/{company_a}/credit/events",
        (201, 201, 201, 403, 403, 403, 403, 403, 401),
        lambda w: {"kind": "good_conduct", "points": 0.5, "reason": "role walk"},
    ),
    "credit.recompute": Case(
        "POST", "/api/v1/credit/recompute", (200, 200, 200, 403, 403, 403, 403, 403, 401)
    ),
    "credit.public": Case(
        "GET",
        "/api/v1/public/credit?q=测试",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
        route="/api/v1/public/credit",
    ),
}
