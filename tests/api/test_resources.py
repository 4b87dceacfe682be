"""Companies, sites, customers, devices, users: personal data, passwords, who manages whom,
and the append-only audit row behind every write by a person."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from server.api.customers import valid_id_number
from tests.api.conftest import Fresh, call, cylinder_body, unique
from tests.conftest import PASSWORD, World


def make_id_number(prefix17: str = "41010519900307123") -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(prefix17, weights, strict=True))
    return prefix17 + "10X98765432"[total % 11]


async def test_customer_id_number_is_masked_hashed_and_never_returned(
    client: Any, world: World, pool: Any
) -> None:
    number = make_id_number()
    assert valid_id_number(number)
    status, cust = await call(
        client,
        "POST",
        "/api/v1/customers",
        "t_company_a",
        {"account_no": unique("AC"), "name": "李四", "id_number": number, "kind": "restaurant"},
    )
    assert status == 201, cust
    assert cust["id_number_masked"] == number[:6] + "********" + number[-4:]
    assert "id_number_hash" not in cust and "id_number" not in cust
    assert cust["company_id"] == world.companies["A"]
    stored = await pool.fetchrow("SELECT * FROM customers WHERE id = $1", cust["id"])
    assert number not in json.dumps({k: str(v) for k, v in stored.items()})
    assert stored["id_number_hash"] and len(stored["id_number_hash"]) == 64
    audit_rows = await pool.fetch(
        "SELECT details::text AS d FROM audit_log WHERE entity = 'customer'"
    )
    assert all(number not in r["d"] for r in audit_rows)
    status, found = await call(
        client, "GET", f"/api/v1/customers?id_number={number}", "t_company_a"
    )
    assert [c["id"] for c in found["items"]] == [cust["id"]]
    status, found = await call(
        client, "GET", f"/api/v1/customers?id_number={number}", "t_company_b"
    )
    assert found["items"] == []
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")
    status, err = await call(
        client, "PATCH", f"/api/v1/customers/{cust['id']}", "t_company_a", {"id_number": bad}
    )
    assert status == 400 and err["error"]["details"]["field"] == "id_number"
    assert bad not in err["error"]["message"]


async def test_users_never_show_password_hash_and_check_length(
    client: Any, world: World, settings: Any
) -> None:
    status, users = await call(client, "GET", "/api/v1/users?page_size=1000", "t_admin")
    assert users["items"] and all("password_hash" not in u for u in users["items"])
    short = "x" * (settings.auth.min_password_length - 1)
    status, err = await call(
        client,
        "POST",
        "/api/v1/users",
        "t_admin",
        {"username": unique("u").lower(), "password": short, "role": "admin"},
    )
    assert status == 400 and err["error"]["details"]["field"] == "password"


async def test_company_admin_manages_only_its_station_staff(client: Any, world: World) -> None:
    name = unique("op").lower()
    status, user = await call(
        client,
        "POST",
        "/api/v1/users",
        "t_company_a",
        {
            "username": name,
            "password": PASSWORD,
            "role": "station_operator",
            "site_id": world.sites["STA-A1"],
        },
    )
    assert (
        status == 201 and user["company_id"] == world.companies["A"] and "password_hash" not in user
    )
    for body, field in (
        (
            {
                "username": unique("x").lower(),
                "password": PASSWORD,
                "role": "company_admin",
                "company_id": world.companies["A"],
            },
            "role",
        ),
        (
            {
                "username": unique("x").lower(),
                "password": PASSWORD,
                "role": "station_operator",
                "site_id": world.sites["STA-B1"],
            },
            "site_id",
        ),
    ):
        status, err = await call(client, "POST", "/api/v1/users", "t_company_a", body)
        assert status == 403 and err["error"]["details"]["field"] == field
    status, _ = await call(
        client, "PATCH", f"/api/v1/users/{user['id']}", "t_company_a", {"active": False}
    )
    assert status == 200
    status, err = await call(
        client, "PATCH", f"/api/v1/users/{user['id']}", "t_company_a", {"role": "admin"}
    )
    assert status == 403
    status, _ = await call(
        client, "PATCH", f"/api/v1/users/{user['id']}", "t_company_b", {"active": True}
    )
    assert status == 404
    status, _ = await call(
        client,
        "PATCH",
        f"/api/v1/users/{world.users['t_company_a']}",
        "t_company_a",
        {"active": False},
    )
    assert status == 403  # not even itself: only name, language, password


async def test_own_password_change_needs_the_current_one(client: Any, world: World) -> None:
    name = unique("self").lower()
    status, user = await call(
        client,
        "POST",
        "/api/v1/users",
        "t_admin",
        {"username": name, "password": PASSWORD, "role": "regulator"},
    )
    assert status == 201
    status, _ = await call(
        client, "PATCH", f"/api/v1/users/{user['id']}", name, {"password": "new-password-9"}
    )
    assert status == 400
    status, _ = await call(
        client,
        "PATCH",
        f"/api/v1/users/{user['id']}",
        name,
        {"password": "new-password-9", "current_password": PASSWORD},
    )
    assert status == 200
    resp = await client.post(
        "/api/v1/auth/login", json={"username": name, "password": "new-password-9"}
    )
    assert resp.status == 200


async def test_company_admin_sites_and_devices_stay_in_company(client: Any, world: World) -> None:
    status, site = await call(
        client,
        "POST",
        "/api/v1/sites",
        "t_company_a",
        {"code": unique("ST"), "name": "新门店", "kind": "store"},
    )
    assert status == 201 and site["company_id"] == world.companies["A"]
    for body, field in (
        (
            {"code": unique("ST"), "name": "x", "kind": "store", "permitted_full_storage": 9999},
            "permitted_full_storage",
        ),
        ({"code": unique("ST"), "name": "x", "kind": "inspection_agency"}, "kind"),
    ):
        status, err = await call(client, "POST", "/api/v1/sites", "t_company_a", body)
        assert status == 403 and err["error"]["details"]["field"] == field
    status, dev = await call(
        client,
        "POST",
        "/api/v1/devices",
        "t_company_a",
        {"device_id": unique("GUN"), "kind": "gun", "site_id": site["id"]},
    )
    assert (
        status == 201
        and dev["company_id"] == world.companies["A"]
        and "mqtt_password_hash" not in dev
    )
    status, err = await call(
        client,
        "PATCH",
        f"/api/v1/devices/{dev['id']}",
        "t_company_a",
        {"site_id": world.sites["STA-B1"]},
    )
    assert status == 403


# every write endpoint, as (user, method, path, body) — each must leave an audit row
async def _writes(world: World, fresh: Fresh) -> list[tuple[str, str, str, Any, str]]:
    cyl = await fresh.cylinder("A")
    cyl2 = await fresh.cylinder("A")
    alert = await fresh.alert("A")
    alert2 = await fresh.alert("A")
    return [
        ("t_admin", "POST", "/api/v1/cylinders", cylinder_body(world), "cylinder.create"),
        (
            "t_company_a",
            "PATCH",
            f"/api/v1/cylinders/{cyl}",
            {"barcode": unique("B")},
            "cylinder.update",
        ),
        (
            "t_inspector",
            "POST",
            f"/api/v1/cylinders/{cyl2}/inspections",
            {"inspected_on": world.today.isoformat(), "result": "pass"},
            "cylinder.inspect",
        ),
        (
            "t_admin",
            "POST",
            "/api/v1/companies",
            {"code": unique("C"), "name": "审计公司"},
            "company.create",
        ),
        (
            "t_company_a",
            "PATCH",
            f"/api/v1/companies/{world.companies['A']}",
            {"address": "一号路"},
            "company.update",
        ),
        (
            "t_admin",
            "POST",
            "/api/v1/sites",
            {"code": unique("S"), "name": "s", "kind": "warehouse"},
            "site.create",
        ),
        (
            "t_company_a",
            "PATCH",
            f"/api/v1/sites/{world.sites['STA-A1']}",
            {"address": "二号路"},
            "site.update",
        ),
        (
            "t_company_a",
            "POST",
            "/api/v1/customers",
            {"account_no": unique("A"), "name": "赵六"},
            "customer.create",
        ),
        (
            "t_company_a",
            "PATCH",
            f"/api/v1/customers/{world.customers['A']}",
            {"address": "三号路"},
            "customer.update",
        ),
        (
            "t_admin",
            "POST",
            "/api/v1/devices",
            {"device_id": unique("V"), "kind": "valve"},
            "device.create",
        ),
        (
            "t_company_a",
            "PATCH",
            f"/api/v1/devices/{world.devices['GUN-A']}",
            {"name": "枪"},
            "device.update",
        ),
        (
            "t_admin",
            "POST",
            "/api/v1/users",
            {"username": unique("au").lower(), "password": PASSWORD, "role": "regulator"},
            "user.create",
        ),
        (
            "t_operator_a",
            "PATCH",
            f"/api/v1/users/{world.users['t_operator_a']}",
            {"display_name": "甲"},
            "user.update",
        ),
        ("t_officer", "POST", f"/api/v1/alerts/{alert}/ack", {"note": "到场"}, "alert.ack"),
        ("t_officer", "POST", f"/api/v1/alerts/{alert2}/resolve", {}, "alert.resolve"),
        ("anonymous", "POST", "/api/v1/public/complaints", {"text": "投诉"}, "complaint.create"),
    ]


BEFORE_AFTER = {"site.update", "customer.update", "device.update", "user.update", "company.update"}


async def test_every_write_leaves_an_audit_row(
    client: Any, world: World, fresh: Fresh, pool: Any
) -> None:
    for user, method, path, body, action in await _writes(world, fresh):
        before = await pool.fetchval("SELECT max(id) FROM audit_log")
        status, out = await call(client, method, path, user, body)
        assert 200 <= status < 300, (path, out)
        row = await pool.fetchrow(
            "SELECT * FROM audit_log WHERE id > $1 AND action = $2", before or 0, action
        )
        assert row is not None, action
        if action.endswith(".update") and action in BEFORE_AFTER:
            # a change shows what it replaced (issue 12: the audit log's before/after)
            assert set(row["details"]) == {"before", "after"}, (action, row["details"])
            assert row["details"]["after"] == body, action
            assert set(row["details"]["before"]) == set(body), action
        if user != "anonymous":
            assert row["username"] == user and row["user_id"] == world.users[user]


async def test_audit_log_rejects_update_and_delete(pool: Any) -> None:
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute(
            "UPDATE audit_log SET action = 'x' WHERE id = (SELECT max(id) FROM audit_log)"
        )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)")


async def test_alert_transitions(client: Any, fresh: Fresh) -> None:
    aid = await fresh.alert("A")
    status, body = await call(
        client, "POST", f"/api/v1/alerts/{aid}/ack", "t_company_a", {"note": "处理中"}
    )
    assert status == 200 and body["state"] == "acknowledged" and body["note"] == "处理中"
    status, err = await call(client, "POST", f"/api/v1/alerts/{aid}/ack", "t_officer", {})
    assert status == 409 and err["error"]["code"] == "invalid_transition"
    status, body = await call(client, "POST", f"/api/v1/alerts/{aid}/resolve", "t_officer")
    assert status == 200 and body["state"] == "resolved"
    status, body = await call(
        client, "GET", "/api/v1/alerts?state=resolved&kind=overfill", "t_company_a"
    )
    assert aid in {a["id"] for a in body["items"]}
