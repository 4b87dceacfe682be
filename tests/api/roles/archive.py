"""Matrix rows of the archive import's own routes beyond the upload (server.api.archive).

The empty archive to start an import from is for the roles that import
(server.archive.IMPORT_ROLES); the upload itself is the `cylinders.import` row of
tests/api/test_roles.py.
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "cylinders.import_template": Case(
        "GET",
        "/api/v1/cylinders/import/template?format=xlsx",
        (200, 403, 403, 403, 200, 200, 403, 200, 401),
        route="/api/v1/cylinders/import/template",
    ),
}
