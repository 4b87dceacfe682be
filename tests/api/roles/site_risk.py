"""Matrix rows of the inspection list (server/api/site_risk.py): the admin, regulators and
officers read it, each for their districts (tests/api/test_site_risk.py checks what
each sees); company staff and inspection agencies 403 — the list says where inspectors go."""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                   admin reg regJ off coA coB opA insp anon
    "risk.sites": Case("GET", "/api/v1/risk/sites", (200, 200, 200, 200, 403, 403, 403, 403, 401)),
    "risk.sites_csv": Case(
        "GET",
        "/api/v1/risk/sites?format=csv&limit=5",
        (200, 200, 200, 200, 403, 403, 403, 403, 401),
        route="/api/v1/risk/sites",
    ),
}
