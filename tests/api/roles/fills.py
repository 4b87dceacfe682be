"""Matrix rows of the fills' files and check summary (server.api.fills, server.api.fill_checks)
and of a cylinder's trajectory as a file (server.api.trajectory_export).

Fills are read by everyone but inspection agencies (server.kernel.scope), in their scope: a
file or a summary holds only the caller's rows, so company B's admin gets 200 with none of
A's. A trajectory file is the trajectory's: a cylinder out of scope is a 404.
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "fills.export_csv": Case(
        "GET",
        "/api/v1/fills?format=csv&failed_check=any",
        (200, 200, 200, 200, 200, 200, 200, 403, 401),
        route="/api/v1/fills",
    ),
    "fills.export_xlsx": Case(
        "GET",
        "/api/v1/fills?format=xlsx&company={company_a}",
        (200, 200, 200, 200, 200, 200, 200, 403, 401),
        route="/api/v1/fills",
    ),
    "fills.check_summary": Case(
        "GET",
        "/api/v1/fills/check-summary",
        (200, 200, 200, 200, 200, 200, 200, 403, 401),
    ),
    "fills.check_summary_csv": Case(
        "GET",
        "/api/v1/fills/check-summary?format=csv&company={company_a}",
        (200, 200, 200, 200, 200, 200, 200, 403, 401),
        route="/api/v1/fills/check-summary",
    ),
    "cylinders.trajectory_csv": Case(
        "GET",
        "/api/v1/cylinders/{cyl_a}/trajectory?format=csv",
        (200, 200, 200, 200, 200, 404, 200, 200, 401),
        route="/api/v1/cylinders/{cyl_a}/trajectory",
    ),
}
