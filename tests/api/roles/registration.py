"""Matrix rows of the registration form's questions (server.api.cylinders: preview, tag-check).

The preview reads no data, so every logged-in role may ask it; the tag check answers only the
roles that register (server.domain.registration.REGISTRANT_ROLES), and only "taken" about a
cylinder outside the caller's scope (tests/api/test_registration.py checks that).
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "cylinders.preview": Case(
        "GET",
        "/api/v1/cylinders/preview?manufacture_date=2024-03-01&spec=YSP35.5",
        (200, 200, 200, 200, 200, 200, 200, 200, 401),
        route="/api/v1/cylinders/preview",
    ),
    "cylinders.tag_check": Case(
        "GET",
        "/api/v1/cylinders/tag-check?tag=TAG-A-OK",
        (200, 403, 403, 403, 200, 200, 403, 200, 401),
        route="/api/v1/cylinders/tag-check",
    ),
}
