"""Kiosk tokens have a life cycle (docs/API.md "Kiosk tokens").

What must hold: never issued for an admin account (nor working for one promoted later);
shown once, listed without the secret; expired or revoked tokens trade for nothing and the
kiosk sessions traded from a revoked token end with it; a kiosk session never outlives its
token; deactivating the wall account revokes its tokens.
"""

from __future__ import annotations

import time
from typing import Any

from server.kernel import kiosk_tokens
from server.kernel.appkeys import REDIS
from server.kernel.principal import SESSION_PREFIX
from tests.conftest import login as _login
from tests.test_sessions_lifecycle import new_user


async def login(client: Any, username: str) -> dict[str, str]:
    headers = await _login(client, username)
    client.session.cookie_jar.clear()
    return headers


async def trade(client: Any, token: str) -> str | None:
    """The kiosk session a token trades for, or None (401)."""
    resp = await client.post("/big-screen/session", json={"kiosk": token})
    assert resp.status in (200, 401), await resp.text()
    return str((await resp.json())["token"]) if resp.status == 200 else None


async def alive(client: Any, sid: str) -> bool:
    resp = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {sid}"})
    return bool(resp.status == 200)


async def test_never_for_an_admin_account(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    admin = await login(client, "t_admin")
    for username, status in (("t_admin", 400), ("t_officer", 400), ("nobody", 404)):
        resp = await client.post("/api/v1/kiosk-tokens", json={"username": username}, headers=admin)
        assert resp.status == status, (username, await resp.text())
    # a regulator's token stops working when the account becomes an admin
    name = await new_user(pool, settings, world)
    uid = await pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    issued = await kiosk_tokens.issue(pool, uid, 600)
    assert await trade(client, issued.token) is not None
    await pool.execute("UPDATE users SET role = 'admin' WHERE id = $1", uid)
    assert await trade(client, issued.token) is None


async def test_issue_list_revoke(client: Any, pool: Any, settings: Any, world: Any) -> None:
    admin = await login(client, "t_admin")
    name = await new_user(pool, settings, world)
    resp = await client.post(
        "/api/v1/kiosk-tokens", json={"username": name, "note": "2号屏"}, headers=admin
    )
    assert resp.status == 201, await resp.text()
    issued = await resp.json()
    assert issued["url"].endswith(f"/big-screen?kiosk={issued['token']}")
    second = await (
        await client.post("/api/v1/kiosk-tokens", json={"username": name}, headers=admin)
    ).json()
    assert second["token"] != issued["token"]  # one per wall, not one per account
    sessions = [await trade(client, issued["token"]), await trade(client, second["token"])]
    assert all(sessions)

    listed = await (await client.get(f"/api/v1/kiosk-tokens?user={name}", headers=admin)).json()
    assert [t["id"] for t in listed["items"]] == [second["id"], issued["id"]]
    assert all(t["active"] and t["last_used_at"] for t in listed["items"])
    assert listed["items"][1]["note"] == "2号屏" and listed["items"][1]["issued_by"] == "t_admin"
    assert (
        issued["token"]
        not in await (await client.get("/api/v1/kiosk-tokens", headers=admin)).text()
    )

    resp = await client.delete(f"/api/v1/kiosk-tokens/{issued['id']}", headers=admin)
    assert resp.status == 200 and (await resp.json())["active"] is False
    assert await trade(client, issued["token"]) is None
    assert not await alive(client, str(sessions[0]))  # its wall's session ended
    assert await alive(client, str(sessions[1]))  # the other wall's did not
    again = await client.delete(f"/api/v1/kiosk-tokens/{issued['id']}", headers=admin)
    assert again.status == 200
    assert (await client.delete("/api/v1/kiosk-tokens/999999999", headers=admin)).status == 404
    active = await (
        await client.get(f"/api/v1/kiosk-tokens?user={name}&active=true", headers=admin)
    ).json()
    assert [t["id"] for t in active["items"]] == [second["id"]]


async def test_tokens_expire_and_sessions_do_not_outlive_them(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    uid = await pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    short = await kiosk_tokens.issue(pool, uid, 30)
    sid = await trade(client, short.token)
    assert sid is not None
    ttl = await client.app[REDIS].ttl(SESSION_PREFIX + sid)
    assert 0 < ttl <= 31  # not session_ttl_s: the token ends in 30 s
    expired = await kiosk_tokens.issue(pool, uid, 30)
    await pool.execute(
        "UPDATE kiosk_tokens SET created_at = now() - interval '2 days',"
        " expires_at = now() - interval '1 second' WHERE id = $1",
        expired.id,
    )
    assert await trade(client, expired.token) is None
    page = await client.get(f"/big-screen?kiosk={expired.token}", allow_redirects=False)
    assert page.status == 401
    assert time.time() < short.expires_at.timestamp()


async def test_deactivation_revokes_every_token(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    uid = await pool.fetchval("SELECT id FROM users WHERE username = $1", name)
    tokens = [await kiosk_tokens.issue(pool, uid, 600) for _ in range(2)]
    sid = await trade(client, tokens[0].token)
    assert sid is not None
    admin = await login(client, "t_admin")
    for active in (False, True):
        resp = await client.patch(f"/api/v1/users/{uid}", json={"active": active}, headers=admin)
        assert resp.status == 200
    assert not await alive(client, sid)
    for t in tokens:
        assert await trade(client, t.token) is None  # reactivated, still revoked
