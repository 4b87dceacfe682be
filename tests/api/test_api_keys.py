"""API keys: created once, listed without the secret, revoked for good at once
(server/api/api_keys.py, docs/API.md "API keys")."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import pytest

from realtime import protocol as proto
from server.kernel.principal import API_KEY_PREFIX, hash_api_key
from tests.api.conftest import call
from tests.conftest import World
from tests.realtime.conftest import WS, realtime_settings
from tests.realtime.test_ws_limits import closed_with, still_open

KEYS = "/api/v1/auth/api-keys"


async def _insert_key(pool: Any, user_id: int, name: str = "sql key") -> tuple[int, str]:
    key = API_KEY_PREFIX + secrets.token_urlsafe(16)
    kid = await pool.fetchval(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        user_id,
        name,
        key[:10],
        hash_api_key(key),
    )
    return int(kid), key


async def test_create_list_use_revoke(client: Any, pool: Any) -> None:
    status, made = await call(client, "POST", KEYS, "t_company_a", {"name": "  ERP 对接  "})
    assert status == 201, made
    key = made["key"]
    assert key.startswith(API_KEY_PREFIX) and made["prefix"] == key[:10]
    assert made["name"] == "ERP 对接"
    # stored hashed: the key appears nowhere in the table
    stored = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", made["id"])
    assert key not in {str(v) for v in stored.values()}

    status, listed = await call(client, "GET", KEYS, "t_company_a")
    assert status == 200
    mine = next(k for k in listed["items"] if k["id"] == made["id"])
    assert "key" not in mine and "key_hash" not in mine
    assert mine["prefix"] == key[:10] and mine["active"] is True and mine["last_used_at"] is None
    assert mine["username"] == "t_company_a"

    resp = await client.get("/api/v1/cylinders", headers={"X-API-Key": key})
    assert resp.status == 200
    status, listed = await call(client, "GET", KEYS, "t_company_a")
    assert next(k for k in listed["items"] if k["id"] == made["id"])["last_used_at"]

    status, revoked = await call(client, "DELETE", f"{KEYS}/{made['id']}", "t_company_a")
    assert status == 200 and revoked["active"] is False and revoked["revoked_at"]
    resp = await client.get("/api/v1/cylinders", headers={"X-API-Key": key})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"

    # again: no change, no second audit row
    status, again = await call(client, "DELETE", f"{KEYS}/{made['id']}", "t_company_a")
    assert status == 200 and again["revoked_at"] == revoked["revoked_at"]
    rows = await pool.fetch(
        "SELECT action, username, details FROM audit_log WHERE entity = 'api_key'"
        " AND entity_id = $1 ORDER BY id",
        str(made["id"]),
    )
    assert [r["action"] for r in rows] == ["api_key.create", "api_key.revoke"]
    assert rows[1]["username"] == "t_company_a"
    assert rows[1]["details"]["before"] == {"revoked_at": None}
    assert rows[1]["details"]["after"]["revoked_at"]

    status, active = await call(client, "GET", KEYS + "?active=false", "t_company_a")
    assert made["id"] in {k["id"] for k in active["items"]}
    status, active = await call(client, "GET", KEYS + "?active=true", "t_company_a")
    assert made["id"] not in {k["id"] for k in active["items"]}


async def test_scope_of_lists_and_revocations(client: Any, pool: Any, world: World) -> None:
    op_key, _ = await _insert_key(pool, world.users["t_operator_a"], "operator's")
    co_key, _ = await _insert_key(pool, world.users["t_company_a"], "company A's")

    async def ids(user: str, query: str = "") -> set[int]:
        status, body = await call(client, "GET", KEYS + query, user)
        assert status == 200, body
        return {k["id"] for k in body["items"]}

    # own keys by default; all=true: the company's users' keys; never another company's
    assert co_key in await ids("t_company_a") and op_key not in await ids("t_company_a")
    assert {co_key, op_key} <= await ids("t_company_a", "?all=true")
    assert not {co_key, op_key} & await ids("t_company_b", "?all=true")
    assert not {co_key, op_key} & await ids("t_inspector", "?all=true")
    assert not {co_key, op_key} & await ids("t_inspector", "?user=t_company_a")
    # an admin: every key, or one user's
    assert {co_key, op_key} <= await ids("t_admin", "?all=true&page_size=200")
    assert await ids("t_admin", "?user=t_operator_a") >= {op_key}
    assert co_key not in await ids("t_admin", "?user=t_operator_a")

    for user in ("t_company_b", "t_inspector"):
        status, body = await call(client, "DELETE", f"{KEYS}/{op_key}", user)
        assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await call(client, "DELETE", f"{KEYS}/{op_key}", "t_operator_a")
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert await pool.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", op_key) is None
    status, body = await call(client, "DELETE", f"{KEYS}/{op_key}", "t_company_a")
    assert status == 200 and body["active"] is False
    status, body = await call(client, "DELETE", f"{KEYS}/{co_key}", "t_admin")
    assert status == 200 and body["username"] == "t_company_a"


async def test_bad_input_is_one_error_shape(client: Any, pool: Any) -> None:
    before = await pool.fetchval("SELECT count(*) FROM api_keys")
    for body, field in (
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 7}, "name"),
        ({"name": "erp", "user_id": 1}, None),
        ({}, None),
    ):
        status, answer = await call(client, "POST", KEYS, "t_company_a", body)
        assert status == 400, (body, answer)
        assert set(answer) == {"error"} and answer["error"]["code"] == "invalid_field"
        if field:
            assert answer["error"]["details"]["field"] == field
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == before
    for query, field in (("?active=maybe", "active"), ("?owner=x", "owner"), ("?all=2", "all")):
        status, answer = await call(client, "GET", KEYS + query, "t_company_a")
        assert status == 400 and answer["error"]["code"] == "invalid_query", answer
        assert answer["error"]["details"]["field"] == field
    for path in (f"{KEYS}/0", f"{KEYS}/99999999999", f"{KEYS}/{2**63}"):
        status, answer = await call(client, "DELETE", path, "t_admin")
        assert status == 404 and answer["error"]["code"] == "not_found", (path, answer)


async def test_revocation_closes_the_owners_api_key_sockets(
    aiohttp_client: Any, settings: Any, pool: Any, world: World
) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(realtime_settings(settings), with_pages=False))
    uid = world.users["t_inspector"]
    kid, key = await _insert_key(pool, uid, "socket")
    by_key = WS(await client.ws_connect("/ws", headers={"X-API-Key": key}))
    await still_open(by_key)
    status, _ = await call(client, "DELETE", f"{KEYS}/{kid}", "t_inspector")
    assert status == 200
    await closed_with(by_key, proto.CLOSE_SESSION_ENDED, proto.SESSION_ENDED)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"X-API-Key": key})
    assert refused.value.status == 401
