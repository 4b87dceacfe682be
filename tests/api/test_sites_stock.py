"""Sites as the stations page reads them: live stock against the storage limit the overstock
rule applies, the licence-status filter, and a position given whole (server/api/sites.py)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Fresh, call, unique
from tests.conftest import World


async def _site(client: Any, user: str = "t_admin", **over: Any) -> dict[str, Any]:
    body = {"code": unique("SS"), "name": "库存测试站", "kind": "store", **over}
    status, site = await call(client, "POST", "/api/v1/sites", user, body)
    assert status == 201, site
    return dict(site)


async def test_rows_carry_live_stock_and_the_limit_the_rule_applies(
    client: Any, world: World, fresh: Fresh, settings: Any
) -> None:
    limited = await _site(client, permitted_full_storage=2, company_id=world.companies["A"])
    default = await _site(client, user="t_company_a")
    for fill_state in ("full", "full", "full", "empty"):
        await fresh.cylinder("A", location_site_id=limited["id"], fill_state=fill_state)
    # a cylinder on its way to a customer is not held by the site any more
    await fresh.cylinder(
        "A", location_site_id=limited["id"], fill_state="full", location_kind="vehicle"
    )
    status, page = await call(client, "GET", f"/api/v1/sites?q={limited['code']}", "t_company_a")
    assert status == 200
    (row,) = page["items"]
    assert (row["stock_full"], row["stock_empty"], row["storage_limit"]) == (3, 1, 2)
    assert row["company_name"] == "测试燃气A公司"
    status, one = await call(client, "GET", f"/api/v1/sites/{default['id']}", "t_company_a")
    assert status == 200
    assert (one["stock_full"], one["stock_empty"]) == (0, 0)
    assert one["storage_limit"] == settings.alerts.default_storage_store  # no number of its own
    assert one["permitted_full_storage"] is None


async def test_licence_status_filter(client: Any, world: World) -> None:
    suspended = await _site(
        client, kind="filling_station", licence_no=unique("FL"), licence_status="suspended"
    )
    status, page = await call(client, "GET", "/api/v1/sites?licence_status=suspended&page_size=200")
    assert status == 200
    assert suspended["id"] in [s["id"] for s in page["items"]]
    assert {s["licence_status"] for s in page["items"]} == {"suspended"}
    status, err = await call(client, "GET", "/api/v1/sites?licence_status=lapsed")
    assert status == 400 and err["error"]["details"]["field"] == "licence_status"


async def test_a_position_is_both_coordinates_or_none(client: Any, pool: Any) -> None:
    status, err = await call(
        client,
        "POST",
        "/api/v1/sites",
        "t_company_a",
        {"code": unique("SS"), "name": "x", "kind": "store", "lat": 34.8},
    )
    assert status == 400 and err["error"]["details"]["field"] == "lon", err
    site = await _site(client, user="t_company_a", lat=34.8, lon=113.65)
    status, moved = await call(
        client, "PATCH", f"/api/v1/sites/{site['id']}", "t_company_a", {"lat": 34.81}
    )
    assert status == 200 and (moved["lat"], moved["lon"]) == (34.81, 113.65)
    status, err = await call(
        client, "PATCH", f"/api/v1/sites/{site['id']}", "t_company_a", {"lon": None}
    )
    assert status == 400 and err["error"]["details"]["field"] == "lon"
    assert await pool.fetchval("SELECT lon FROM sites WHERE id = $1", site["id"]) == 113.65
    status, cleared = await call(
        client, "PATCH", f"/api/v1/sites/{site['id']}", "t_company_a", {"lat": None, "lon": None}
    )
    assert status == 200 and cleared["lat"] is None and cleared["lon"] is None


async def test_company_b_never_reads_or_changes_a_site_of_a(client: Any, world: World) -> None:
    site = await _site(client, user="t_company_a")
    status, page = await call(client, "GET", f"/api/v1/sites?q={site['code']}", "t_company_b")
    assert status == 200 and page["items"] == []
    status, _ = await call(client, "GET", f"/api/v1/sites/{site['id']}", "t_company_b")
    assert status == 404
    status, _ = await call(
        client, "PATCH", f"/api/v1/sites/{site['id']}", "t_company_b", {"name": "夺取"}
    )
    assert status == 404
