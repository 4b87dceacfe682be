"""Matrix rows of periodic inspection and scrapping (server/api/inspections.py).

Recording a result is in tests/api/test_roles.py (``cylinders.inspect``). Reading a cylinder's
history follows the cylinder (company B: 404, scoped out); scrapping is the agency's act and
the admin's (a company may not scrap, a regulator watches); the list of records is open to
every role, each seeing its own scope (tests/api/test_inspection_workflow.py checks which).
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "inspections.history": Case(
        "GET",
        "/api/v1/cylinders/{cyl_a}/inspections",
        (200, 200, 200, 200, 200, 404, 200, 200, 401),
    ),
    "inspections.scrap": Case(
        "POST",
        "/api/v1/cylinders/{fresh:cylinder}/scrap",
        (201, 403, 403, 403, 403, 403, 403, 201, 401),
        lambda w: {"reason": "damage", "note": "role walk"},
    ),
    "inspections.list": Case(
        "GET", "/api/v1/inspections", (200, 200, 200, 200, 200, 200, 200, 200, 401)
    ),
}
