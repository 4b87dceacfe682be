"""Matrix rows of the complaints (server/api/complaints.py, server/api/complaints_public.py).

A made complaint is about company A's cylinder in 金水区 (410105), new: company B's admin does
not see it (404), nor do station operators and inspection agencies (403). A made ticket is
twelve digits of the ticket alphabet (2–9), a valid ticket that is also a number, so that the
matrix's maker (which returns an int) names it in the path.

The photo row's complaint has no photo: every role that may see the complaint gets the same
404 as one that may not (the photo's own scope is tested in tests/api/test_complaints.py,
which stores a real picture through the API).
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.api.roles import Case, Maker
from tests.conftest import World


async def _complaint_a(fresh: Any, ticket: str | None = None) -> int:
    w = fresh.world
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO complaints (code, cylinder_id, company_id, district_code, text,
                                       contact, deadline, ticket)
               VALUES ('BC-TAG-A-OK', $1, $2, '410105', '阀门漏气', '13800138000',
                       $3::date, COALESCE($4, complaint_ticket()))
               RETURNING id""",
            w.cylinders["TAG-A-OK"],
            w.companies["A"],
            w.today,
            ticket,
        )
    )


async def _ticket_a(fresh: Any) -> int:
    """A complaint whose ticket is a number (digits 2–9): the number, for the path."""
    ticket = "".join(secrets.choice("23456789") for _ in range(12))
    await _complaint_a(fresh, ticket)
    return int(ticket)


def _assign_to_a(w: World) -> dict[str, Any]:
    return {"action": "assign", "company_id": w.companies["A"], "note": "role walk"}


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "complaints.create": Case(
        "POST",
        "/api/v1/complaints",
        (201, 201, 201, 201, 403, 403, 403, 403, 401),
        lambda w: {"text": "来电：送气工短斤少两", "code": "BC-TAG-A-OK", "contact": "13900000000"},
    ),
    "complaints.get": Case(
        "GET",
        "/api/v1/complaints/{fresh:complaint}",
        (200, 200, 200, 200, 200, 404, 403, 403, 401),
    ),
    "complaints.act": Case(
        "PATCH",
        "/api/v1/complaints/{fresh:complaint}",
        (200, 200, 200, 403, 403, 404, 403, 403, 401),
        _assign_to_a,
    ),
    "complaints.photo": Case(
        "GET",
        "/api/v1/complaints/{fresh:complaint}/photo",
        (404, 404, 404, 404, 404, 404, 403, 403, 401),
    ),
    "public.complaint_track": Case(
        "GET",
        "/api/v1/public/complaints/{fresh:complaint_ticket}",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
        route="/api/v1/public/complaints/{ticket}",
    ),
}

FRESH: dict[str, Maker] = {"complaint": _complaint_a, "complaint_ticket": _ticket_a}
