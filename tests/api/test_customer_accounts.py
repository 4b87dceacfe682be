"""Real-name accounts as the customers page uses them: closing and reopening (migration 0113),
the open/closed filter, and one search box over name, phone, account and the masked ID
number — never the number itself (server/api/customers.py)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from tests.api.conftest import call, unique
from tests.api.test_resources import make_id_number
from tests.conftest import World


async def _customer(client: Any, user: str = "t_company_a", **over: Any) -> dict[str, Any]:
    body = {"account_no": unique("AC"), "name": "王五", **over}
    status, cust = await call(client, "POST", "/api/v1/customers", user, body)
    assert status == 201, cust
    return dict(cust)


async def test_an_account_is_closed_and_reopened(client: Any, world: World, pool: Any) -> None:
    opened = world.today - dt.timedelta(days=30)
    cust = await _customer(client, opened_on=opened.isoformat())
    assert cust["closed_on"] is None
    url = f"/api/v1/customers/{cust['id']}"
    for day, why in (
        (world.today + dt.timedelta(days=1), "future"),
        (opened - dt.timedelta(days=1), "before it was opened"),
    ):
        status, err = await call(
            client, "PATCH", url, "t_company_a", {"closed_on": day.isoformat()}
        )
        assert status == 400, why
        assert err["error"]["details"]["field"] == "closed_on", (why, err)
    assert await pool.fetchval("SELECT closed_on FROM customers WHERE id = $1", cust["id"]) is None
    status, closed = await call(
        client, "PATCH", url, "t_company_a", {"closed_on": world.today.isoformat()}
    )
    assert status == 200 and closed["closed_on"] == world.today.isoformat()
    audit = await pool.fetchval(
        "SELECT details FROM audit_log WHERE action = 'customer.update' AND entity_id = $1"
        " ORDER BY id DESC LIMIT 1",
        str(cust["id"]),
    )
    assert audit == {"before": {"closed_on": None}, "after": {"closed_on": world.today.isoformat()}}
    account = cust["account_no"]
    status, shut = await call(client, "GET", f"/api/v1/customers?q={account}&state=closed")
    assert [c["id"] for c in shut["items"]] == [cust["id"]]
    status, live = await call(client, "GET", f"/api/v1/customers?q={account}&state=open")
    assert live["items"] == []
    status, back = await call(client, "PATCH", url, "t_company_a", {"closed_on": None})
    assert status == 200 and back["closed_on"] is None
    status, err = await call(client, "GET", "/api/v1/customers?state=gone")
    assert status == 400 and err["error"]["details"]["field"] == "state"


async def test_one_search_box_finds_name_phone_and_masked_id(
    client: Any, world: World, pool: Any
) -> None:
    number = make_id_number("41010519850101771")
    phone = "139" + str(secrets.randbelow(10**8)).zfill(8)
    cust = await _customer(client, name=unique("赵"), phone=phone, id_number=number)
    masked = number[:6] + "********" + number[-4:]
    assert cust["id_number_masked"] == masked
    for needle in (cust["name"], phone, masked, cust["account_no"]):
        status, page = await call(
            client, "GET", "/api/v1/customers", "t_company_a", params={"q": needle}
        )
        assert status == 200
        assert cust["id"] in [c["id"] for c in page["items"]], needle
        status, other = await call(
            client, "GET", "/api/v1/customers", "t_company_b", params={"q": needle}
        )
        assert cust["id"] not in [c["id"] for c in other["items"]], needle
    # the search box never sees the full number: the page sends its masked form; the number
    # itself is in no row, no answer and no audit detail
    stored = await pool.fetchrow("SELECT * FROM customers WHERE id = $1", cust["id"])
    assert number not in json.dumps({k: str(v) for k, v in stored.items()})
    details = await pool.fetch("SELECT details::text AS d FROM audit_log WHERE entity = 'customer'")
    assert all(number not in r["d"] for r in details)


async def test_a_regulator_reads_but_does_not_write(client: Any, world: World) -> None:
    cust = await _customer(client)
    status, page = await call(
        client, "GET", f"/api/v1/customers?q={cust['account_no']}", "t_regulator"
    )
    assert status == 200 and [c["id"] for c in page["items"]] == [cust["id"]]
    status, _ = await call(
        client, "PATCH", f"/api/v1/customers/{cust['id']}", "t_regulator", {"closed_on": None}
    )
    assert status == 403
