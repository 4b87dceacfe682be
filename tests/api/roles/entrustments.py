"""Matrix rows of the entrustments (server/api/entrustments.py).

Made entrustments are company A's cylinders entrusted to company B for one day each, years
ahead and never the same day twice: every call is a new, non-overlapping entrustment (the
API refuses an overlap with 409), and none is in force today, so nothing the other suites
check about who may fill changes. The one ended is a new one per call: the admin and either
company's admin end it, nobody else may (403).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from tests.api.roles import Case, Maker
from tests.conftest import World

_DAYS = itertools.count(3650, 2)
"""Days ahead of today of the next made entrustment (one day each, never overlapping)."""


def _one_day_ahead(w: World) -> dict[str, Any]:
    day = (w.today + dt.timedelta(days=next(_DAYS))).isoformat()
    return {
        "owner_company_id": w.companies["A"],
        "filler_company_id": w.companies["B"],
        "valid_from": day,
        "valid_to": day,
    }


async def _entrustment_a_to_b(fresh: Any) -> int:
    body = _one_day_ahead(fresh.world)
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO entrustments (owner_company_id, filler_company_id, valid_from, valid_to)
               VALUES ($1, $2, $3::text::date, $4::text::date) RETURNING id""",
            body["owner_company_id"],
            body["filler_company_id"],
            body["valid_from"],
            body["valid_to"],
        )
    )


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "entrustments.list": Case(
        "GET", "/api/v1/entrustments", (200, 200, 200, 200, 200, 200, 200, 403, 401)
    ),
    "entrustments.create": Case(
        "POST",
        "/api/v1/entrustments",
        (201, 403, 403, 403, 201, 403, 403, 403, 401),
        _one_day_ahead,
    ),
    "entrustments.end": Case(
        "POST",
        "/api/v1/entrustments/{fresh:entrustment}/end",
        (200, 403, 403, 403, 200, 200, 403, 403, 401),
        lambda w: {"reason": "role walk"},
    ),
}

FRESH: dict[str, Maker] = {"entrustment": _entrustment_a_to_b}
