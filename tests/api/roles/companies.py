"""Matrix rows of the licences (server/api/licences.py); the company rows themselves are
test_roles.py's ``companies.*``.

The licence a call suspends is a new station of company A in 金水区 (410105) per call: the
bureau (admin, both regulators) suspends it, an officer or a company may not (403).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.api.conftest import unique
from tests.api.roles import Case, Maker


async def _station_of_company_a(fresh: Any) -> int:
    return int(
        await fresh.pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, licence_no,
                                  licence_expiry)
               VALUES ($1, '矩阵测试充装站', 'filling_station', $2, '410105', $3, $4)
               RETURNING id""",
            unique("RWSTA"),
            fresh.world.companies["A"],
            unique("RWFL"),
            fresh.world.today + dt.timedelta(days=200),
        )
    )


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "licences.list": Case("GET", "/api/v1/licences", (200, 200, 200, 200, 200, 200, 403, 403, 401)),
    "licences.status": Case(
        "POST",
        "/api/v1/licences/site/{fresh:licensed_station}/status",
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
        lambda w: {"status": "suspended", "reason": "role walk"},
        route="/api/v1/licences/{kind}/{id}/status",
    ),
}

FRESH: dict[str, Maker] = {"licensed_station": _station_of_company_a}
