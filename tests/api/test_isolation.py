"""Company A can never read company B's cylinders, customers or fills; a district regulator
sees only its districts. Out-of-scope rows answer 404 (not 403) so existence never leaks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.api.conftest import Fresh, call, unique
from tests.conftest import World

COMPANY_A_USERS = ("t_company_a", "t_operator_a")
JINSHUI_USERS = ("t_regulator_jinshui", "t_officer")


async def _fill(pool: Any, world: World, company: str, **over: Any) -> str:
    tag = over.pop("tag", f"TAG-{company}-OK")
    values = {
        "ts": dt.datetime.now(dt.UTC),
        "msg_id": unique("fill"),
        "gun_id": f"GUN-STA-{company}1",
        "station_id": world.sites[f"STA-{company}1"],
        "company_id": world.companies[company],
        "district_code": "410105" if company == "A" else "410103",
        "cylinder_id": world.cylinders.get(tag),
        "tag": tag,
        "spec": "YSP35.5",
        "net_kg": 14.6,
        "result": "completed",
        "assessment": "ok",
    }
    values.update(over)
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO fills ({cols}) VALUES ({marks})", *values.values())
    return str(values["msg_id"])


@pytest.mark.parametrize("user", COMPANY_A_USERS + JINSHUI_USERS)
async def test_cylinders_of_company_b_are_invisible(client: Any, world: World, user: str) -> None:
    b_tags = {"TAG-B-OK", "TAG-B-SCRAPPED"}
    status, body = await call(client, "GET", "/api/v1/cylinders?page_size=1000", user)
    assert status == 200
    assert not b_tags & {c["tag"] for c in body["items"]}
    assert {"TAG-A-OK", "TAG-A-OVERDUE"} <= {c["tag"] for c in body["items"]}
    for query in (
        "tag=TAG-B-OK",
        "barcode=BC-TAG-B-OK",
        "stamp=ST-TAG-B-OK",
        "q=TAG-B",
        "company=TEST-B",
        f"company={world.companies['B']}",
        "district=410103",
    ):
        status, body = await call(client, "GET", f"/api/v1/cylinders?{query}", user)
        assert status == 200 and body["items"] == [] and body["total"] == 0, query
    b = world.cylinders["TAG-B-OK"]
    for path in (f"/api/v1/cylinders/{b}", f"/api/v1/cylinders/{b}/trajectory"):
        status, body = await call(client, "GET", path, user)
        assert status == 404, path
        assert body["error"]["code"] == "not_found"


async def test_company_a_cannot_write_company_b_cylinder(
    client: Any, world: World, fresh: Fresh
) -> None:
    b = await fresh.cylinder("B")
    status, _ = await call(
        client, "PATCH", f"/api/v1/cylinders/{b}", "t_company_a", {"status": "lost"}
    )
    assert status == 404
    status, body = await call(client, "GET", f"/api/v1/cylinders/{b}", "t_admin")
    assert body["status"] == "in_service"


@pytest.mark.parametrize("user", COMPANY_A_USERS + JINSHUI_USERS)
async def test_customers_of_company_b_are_invisible(client: Any, world: World, user: str) -> None:
    status, body = await call(client, "GET", "/api/v1/customers?page_size=1000", user)
    assert status == 200
    ids = {c["id"] for c in body["items"]}
    assert world.customers["A"] in ids and world.customers["B"] not in ids
    status, _ = await call(client, "GET", f"/api/v1/customers/{world.customers['B']}", user)
    assert status == 404
    status, body = await call(client, "GET", "/api/v1/customers?q=CUST-B", user)
    assert body["items"] == []


@pytest.mark.parametrize("user", COMPANY_A_USERS + JINSHUI_USERS)
async def test_fills_of_company_b_are_invisible(
    client: Any, world: World, pool: Any, user: str
) -> None:
    a_msg = await _fill(pool, world, "A")
    b_msg = await _fill(pool, world, "B")
    # the newest fills first: the two just recorded are on the first page whatever other tests
    # of the session stored (enterprise batches, circulation, ...)
    status, body = await call(client, "GET", "/api/v1/fills?page_size=1000", user)
    assert status == 200
    msgs = {f["msg_id"] for f in body["items"]}
    assert a_msg in msgs and b_msg not in msgs
    assert all(f["company_id"] != world.companies["B"] for f in body["items"])
    if user in COMPANY_A_USERS:
        assert all(f["company_id"] == world.companies["A"] for f in body["items"])
    status, body = await call(client, "GET", "/api/v1/fills?tag=TAG-B-OK", user)
    assert body["items"] == []
    status, body = await call(client, "GET", f"/api/v1/fills?station={world.sites['STA-B1']}", user)
    assert body["items"] == []


async def test_operator_sees_only_its_station_fills(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    # a company A fill recorded at another (hypothetical) station of A is not the operator's
    other = await pool.fetchval(
        "INSERT INTO sites (code, name, kind, company_id, district_code) VALUES ($1, 'A二站', "
        "'filling_station', $2, '410105') RETURNING id",
        unique("STA-A"),
        world.companies["A"],
    )
    msg = await _fill(pool, world, "A", station_id=other, gun_id="GUN-X")
    _, body = await call(client, "GET", "/api/v1/fills?page_size=1000", "t_operator_a")
    assert msg not in {f["msg_id"] for f in body["items"]}
    _status, body = await call(client, "GET", "/api/v1/fills?page_size=1000", "t_company_a")
    assert msg in {f["msg_id"] for f in body["items"]}


@pytest.mark.parametrize("user", JINSHUI_USERS)
async def test_district_regulator_sees_only_its_districts(
    client: Any, world: World, fresh: Fresh, user: str
) -> None:
    for path in (
        "/api/v1/cylinders",
        "/api/v1/customers",
        "/api/v1/fills",
        "/api/v1/alerts",
        "/api/v1/sites",
        "/api/v1/events",
    ):
        status, body = await call(client, "GET", f"{path}?page_size=1000", user)
        assert status == 200, path
        districts = {r.get("district_code", r.get("district")) for r in body["items"]}
        assert districts <= {"410105"}, (path, districts)
    b_alert = await fresh.alert("B")
    status, _ = await call(client, "GET", f"/api/v1/alerts/{b_alert}", user)
    assert status == 404
    status, _ = await call(client, "POST", f"/api/v1/alerts/{b_alert}/ack", user, {})
    assert status == 404


async def test_company_reports_count_only_own_rows(client: Any, world: World) -> None:
    status, body = await call(client, "GET", "/api/v1/reports/compliance-summary", "t_company_a")
    assert status == 200
    assert {c["code"] for c in body["by_company"]} == {"TEST-A"}
    status, body = await call(
        client, "GET", "/api/v1/reports/compliance-summary", "t_regulator_jinshui"
    )
    assert {d["code"] for d in body["by_district"]} <= {"410105"}
