"""Matrix rows of the customer's share link to a notice (server/api/safety_share.py).

Making a link is for whoever may see the record (company B's admin does not: 404; inspection
agencies never: 403). The public notice needs no login: a token that is not genuine is 404
for every role and for nobody alike — the happy path, expiry and tampering are
tests/api/test_safety_share.py.
"""

from __future__ import annotations

from tests.api.roles import Case

CASES: dict[str, Case] = {
    "safety_share.link": Case(
        "GET",
        "/api/v1/safety-inspections/{fresh:safety_inspection}/notice-link",
        (200, 200, 200, 200, 200, 404, 200, 403, 401),
    ),
    "safety_share.public_notice": Case(
        "GET",
        "/api/v1/public/safety-notices/1.1.AAAAAAAAAAAAAAAAAAAAAA",
        (404, 404, 404, 404, 404, 404, 404, 404, 404),
        route="/api/v1/public/safety-notices/{token}",
    ),
}
