"""The dashboard's page-data endpoints: counts per site, compact cylinder positions,
vehicles — each scoped by role in SQL, with the filters of the map."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dashboard.data import COMPLIANCE_CODES
from server.domain.dates import compliance_status
from tests.conftest import World, login


@pytest.fixture
async def placed(pool: asyncpg.Pool, world: World) -> AsyncIterator[dict[str, Any]]:
    """Cylinders of A and B at customers and on site (full), and a vehicle of each company.

    Unique tags; removed afterwards (the session database is shared by other suites).
    """
    tag = secrets.token_hex(3).upper()
    today = world.today
    rows: list[tuple[Any, ...]] = []
    # (owner, where, fill_state, next_inspection offset days, status, lat)
    plan = [
        ("A", "customer", "full", 500, "in_service", 34.801),
        ("A", "customer", "full", -3, "in_service", 34.802),
        ("A", "customer", "full", 10, "in_service", 34.803),
        ("A", "site", "full", 500, "in_service", None),
        ("A", "site", "full", 500, "in_service", None),
        ("B", "customer", "full", 500, "scrapped", 34.701),
        ("B", "site", "full", 500, "in_service", None),
    ]
    for i, (owner, where, fill, nxt, status, lat) in enumerate(plan):
        rows.append(
            (
                f"DD-{tag}-{i}",
                world.companies[owner],
                today - dt.timedelta(days=365),
                today + dt.timedelta(days=nxt),
                today + dt.timedelta(days=2000),
                status,
                "410105" if owner == "A" else "410103",
                where,
                fill,
                world.sites[f"STA-{owner}1"] if where == "site" else None,
                world.customers[owner] if where == "customer" else None,
                lat,
                113.65 if lat else None,
            )
        )
    ids = [
        await pool.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, status, district_code, location_kind,
                   fill_state, location_site_id, location_customer_id, lat, lon)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               RETURNING id""",
            *r,
        )
        for r in rows
    ]
    vehicles = [
        await pool.fetchval(
            """INSERT INTO devices (device_id, kind, company_id, plate_no, lat, lon, last_seen_at)
               VALUES ($1, 'vehicle', $2, $3, 34.78, 113.66, now()) RETURNING id""",
            f"VEH-{tag}-{owner}",
            world.companies[owner],
            f"豫A{owner}{tag}",
        )
        for owner in ("A", "B")
    ]
    yield {"tag": tag, "ids": ids, "vehicles": [f"VEH-{tag}-A", f"VEH-{tag}-B"]}
    await pool.execute("DELETE FROM cylinders WHERE id = ANY($1)", ids)
    await pool.execute("DELETE FROM devices WHERE id = ANY($1)", vehicles)


async def get(client: Any, user: str, path: str) -> tuple[int, Any]:
    client.session.cookie_jar.clear()  # bearer only: a cookie would make login need CSRF
    headers = await login(client, user)
    client.session.cookie_jar.clear()
    resp = await client.get(path, headers=headers)
    return resp.status, (await resp.json() if resp.content_type == "application/json" else None)


async def test_sites_with_counts_and_scope(
    client: Any, world: World, placed: dict[str, Any]
) -> None:
    status, body = await get(client, "t_admin", "/dashboard/data/sites")
    assert status == 200
    by_code = {s["code"]: s for s in body["items"]}
    assert {"STA-A1", "STA-B1"} <= set(by_code)
    assert "INS-1" not in by_code  # inspection agencies hold no stock
    a1 = by_code["STA-A1"]
    assert a1["full"] >= 2 and a1["empty"] >= 2  # 2 placed full + the world's 2 empty
    assert a1["permitted_full_storage"] == 1000  # the filling-station default of settings
    assert {"lat", "lon", "open_alerts", "company_name", "district"} <= set(a1)

    status, body = await get(client, "t_company_a", "/dashboard/data/sites")
    assert {s["code"] for s in body["items"]} >= {"STA-A1"}
    assert all(s["company_id"] == world.companies["A"] for s in body["items"])

    status, body = await get(client, "t_regulator_jinshui", "/dashboard/data/sites")
    assert all(s["district"] == "410105" for s in body["items"])

    status, body = await get(client, "t_admin", "/dashboard/data/sites?district=410103")
    assert {s["code"] for s in body["items"]} >= {"STA-B1"}
    assert "STA-A1" not in {s["code"] for s in body["items"]}


async def test_site_open_alerts_count(client: Any, pool: asyncpg.Pool, world: World) -> None:
    subject = f"DD-ALERT-{secrets.token_hex(3)}"
    aid = await pool.fetchval(
        """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
               district_code, first_at, last_at) VALUES ('overfill', 'critical', 'cylinder', $1,
               $2, $3, '410105', now(), now()) RETURNING id""",
        subject,
        world.companies["A"],
        world.sites["STA-A1"],
    )
    try:
        _, before = await get(client, "t_admin", "/dashboard/data/sites")
        a1 = next(s for s in before["items"] if s["code"] == "STA-A1")
        assert a1["open_alerts"] >= 1
        _, scoped = await get(client, "t_company_b", "/dashboard/data/sites")
        assert "STA-A1" not in {s["code"] for s in scoped["items"]}
    finally:
        await pool.execute("DELETE FROM alerts WHERE id = $1", aid)


async def test_compact_cylinders_are_scoped_and_coded(
    client: Any, settings: Any, world: World, placed: dict[str, Any]
) -> None:
    headers = await login(client, "t_admin")
    client.session.cookie_jar.clear()
    resp = await client.get(
        "/dashboard/data/cylinders", headers={**headers, "Accept-Encoding": "gzip"}
    )
    assert resp.status == 200
    assert resp.headers.get("Content-Encoding") == "gzip"
    body = await resp.json()
    assert body["statuses"] == list(COMPLIANCE_CODES)
    rows = body["rows"]
    assert body["count"] == len(rows)
    mine = [r for r in rows if r[0] in (34.801, 34.802, 34.803, 34.701)]
    assert sorted(r[0] for r in mine) == [34.701, 34.801, 34.802, 34.803]
    codes = {r[0]: COMPLIANCE_CODES[r[2]] for r in mine}
    today = world.today
    assert codes[34.801] == compliance_status(
        "in_service",
        today + dt.timedelta(days=500),
        today + dt.timedelta(days=2000),
        today,
        settings.dates,
    )
    assert codes[34.802] == "overdue"
    assert codes[34.803] == "inspection_due"
    assert codes[34.701] == "scrapped"
    assert all(len(r) == 3 for r in rows)

    _, a_only = await get(client, "t_company_a", "/dashboard/data/cylinders")
    lats = {r[0] for r in a_only["rows"]}
    assert {34.801, 34.802, 34.803} <= lats and 34.701 not in lats

    _, overdue = await get(client, "t_admin", "/dashboard/data/cylinders?compliance=overdue")
    assert {r[0] for r in overdue["rows"]} & {34.801, 34.802, 34.803} == {34.802}

    _, inspector = await get(client, "t_inspector", "/dashboard/data/cylinders")
    assert {34.801, 34.701} <= {r[0] for r in inspector["rows"]}  # agencies see every cylinder


async def test_vehicles_are_scoped(client: Any, placed: dict[str, Any]) -> None:
    a, b = placed["vehicles"]
    _, admin = await get(client, "t_admin", "/dashboard/data/vehicles")
    assert {a, b} <= {v["id"] for v in admin["items"]}
    _, comp_a = await get(client, "t_company_a", "/dashboard/data/vehicles")
    ids = {v["id"] for v in comp_a["items"]}
    assert a in ids and b not in ids
    _, inspector = await get(client, "t_inspector", "/dashboard/data/vehicles")
    assert inspector["items"] == []  # devices are not an inspection agency's business


@pytest.mark.parametrize(
    "query",
    [
        "district=41",
        "district=abcdef",
        "company=x",
        "company=0",
        "compliance=bogus",
        "company=99999999999999999999",
    ],
)
async def test_bad_filters_are_400(client: Any, query: str) -> None:
    for path in ("/dashboard/data/sites", "/dashboard/data/cylinders", "/dashboard/data/vehicles"):
        status, body = await get(client, "t_admin", f"{path}?{query}")
        assert status == 400, (path, query)
        assert body["error"]["code"] == "invalid_query"


async def test_data_endpoints_need_login(client: Any) -> None:
    for path in ("/dashboard/data/sites", "/dashboard/data/cylinders", "/dashboard/data/vehicles"):
        resp = await client.get(path)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
