"""What a gun would be told: the real fill authorization (``ingest.auth``) against the test
database, and stations with guns made for one test (the licence and entrustment tests).

Why the authorizer itself and not an MQTT round trip here: the question these API tests ask
is whether a licence or entrustment change is seen by the next decision, and the decision is
one SQL query plus the domain rule; the browser test goes through the broker.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from ingest.auth import AuthOutcome, FillAuthorizer
from server.kernel.clock import city_today
from tests.api.conftest import unique


async def fill_outcome(settings: Any, pool: Any, gun_id: str, tag: str) -> AuthOutcome:
    """What the platform decides on a gun's request for *tag* today."""
    auth = FillAuthorizer(settings, pool)
    try:
        return await auth.decide(
            gun_id, tag, city_today(settings), dt.datetime.now(dt.UTC), time.perf_counter()
        )
    finally:
        await auth.close()


async def reasons(settings: Any, pool: Any, gun_id: str, tag: str) -> list[str]:
    """The reasons a gun's request for *tag* is refused today ([] = allowed)."""
    return list((await fill_outcome(settings, pool, gun_id, tag)).decision.reason_codes)


async def station_with_gun(
    pool: Any, company_id: int, district: str = "410105", **licence: Any
) -> tuple[int, str]:
    """A licensed filling station of *company_id* with one gun: (site id, gun id)."""
    values = {
        "licence_no": unique("FL"),
        "licence_expiry": dt.date.today() + dt.timedelta(days=200),
        "licence_status": "valid",
    }
    values.update(licence)
    site = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon,
                              licence_no, licence_expiry, licence_status)
           VALUES ($1, '测试充装站', 'filling_station', $2, $3, 34.80, 113.65, $4, $5, $6)
           RETURNING id""",
        unique("STA"),
        company_id,
        district,
        values["licence_no"],
        values["licence_expiry"],
        values["licence_status"],
    )
    gun = unique("GUN")
    await pool.execute(
        "INSERT INTO devices (device_id, kind, company_id, site_id) VALUES ($1, 'gun', $2, $3)",
        gun,
        company_id,
        site,
    )
    return int(site), gun
