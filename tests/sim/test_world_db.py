"""Reading the seeded city from PostgreSQL (the shared session `world`, extended inside a
transaction that is rolled back so other tests never see the extra rows)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from device_sim.world import load_city


async def test_load_city_from_world(pool: asyncpg.Pool, world: Any) -> None:
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            a, b = world.companies["A"], world.companies["B"]
            sta_a = world.sites["STA-A1"]
            await conn.execute(
                """INSERT INTO devices (device_id, kind, company_id, site_id) VALUES
                   ('SIMDB-HH-A', 'handheld', $1, $2), ('SIMDB-VEH-A', 'vehicle', $1, $2)""",
                a,
                sta_a,
            )
            await conn.execute(
                """INSERT INTO customers (company_id, account_no, name, lat, lon)
                   VALUES ($1, 'SIMDB-C1', 'x', 34.81, 113.66)""",
                a,
            )
            # cylinders of this test's own (rolled back below): the session's world rows are
            # fair game for the API fuzzer, which may have suspended or re-dated them — and may
            # have entrusted B's cylinders to A, so this test removes every A/B entrustment
            # (rolled back too) and grants one of its own the other way
            t = world.today
            await conn.execute(
                """DELETE FROM entrustments
                    WHERE owner_company_id IN ($1, $2) AND filler_company_id IN ($1, $2)""",
                a,
                b,
            )
            await conn.execute(
                """INSERT INTO entrustments (owner_company_id, filler_company_id, valid_from)
                   VALUES ($1, $2, $3)""",
                a,
                b,
                t,
            )
            for tag, owner, nxt, status in (
                ("SIMDB-A-OK", a, t + dt.timedelta(days=500), "in_service"),
                ("SIMDB-B-OK", b, t + dt.timedelta(days=500), "in_service"),
                ("SIMDB-A-OVERDUE", a, t - dt.timedelta(days=2), "in_service"),
                ("SIMDB-B-SCRAPPED", b, t + dt.timedelta(days=500), "scrapped"),
            ):
                await conn.execute(
                    """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                              next_inspection_date, scrap_date, status,
                                              district_code, location_kind, location_site_id)
                       VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, '410105', 'site', $7)""",
                    tag,
                    owner,
                    t - dt.timedelta(days=700),
                    nxt,
                    t + dt.timedelta(days=2000),
                    status,
                    sta_a,
                )
            # The caps bound a random sample; the session database holds other tests'
            # cylinders and customers too, so caps as large as the tables make the sample
            # whole and the seeded world's rows certain to be in it.
            cyl_cap = await conn.fetchval("SELECT count(*) FROM cylinders")
            cust_cap = await conn.fetchval("SELECT count(*) FROM customers")
            city = await load_city(
                conn,
                today=world.today,
                legal_cap=cyl_cap,
                illegal_cap=cyl_cap,
                customers_cap=cust_cap,
                seed=1,
            )
            codes = {s.code for s in city.stations}
            assert {"STA-A1", "STA-B1"} <= codes
            assert {"GUN-STA-A1", "GUN-STA-B1"} <= {g.device_id for g in city.guns}
            assert all(g.site_code in codes for g in city.guns)
            legal = {c.tag for c in city.legal}
            assert {"SIMDB-A-OK", "SIMDB-B-OK"} <= legal
            assert "SIMDB-A-OVERDUE" in {c.tag for c in city.overdue}
            assert "SIMDB-B-SCRAPPED" in {c.tag for c in city.scrapped}
            assert not legal & {"SIMDB-A-OVERDUE", "SIMDB-B-SCRAPPED"}
            assert "SIMDB-HH-A" in {h.device_id for h in city.handhelds}
            assert "SIMDB-VEH-A" in {v.device_id for v in city.vehicles}
            assert "SIMDB-C1" in {c.account_no for c in city.customers_of(a)}
            assert not city.may_fill(b, a)
            assert city.may_fill(a, b)
            ok = next(c for c in city.legal if c.tag == "SIMDB-A-OK")
            assert ok.lat is not None  # located at its station
            one = await load_city(
                conn,
                today=world.today,
                stations=1,
                legal_cap=100,
                illegal_cap=100,
                customers_cap=100,
                seed=1,
            )
            assert len(one.stations) == 1
        finally:
            await tr.rollback()
