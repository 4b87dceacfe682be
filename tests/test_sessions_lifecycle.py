"""Credentials have a life cycle (docs/SECURITY.md "Sessions and credentials").

What must hold: a password change ends the account's other sessions (the one that made the
change stays when it is the account's own), an admin's reset ends them all, and so does
`cylwatch user passwd`; a deactivation ends every session and revokes the API keys for good
(reactivating does not bring them back); a session dies ``auth.session_max_age_s`` after its
login however busy it is; a logout takes the session out of its user's index.
(Websockets closing with them: tests/realtime/test_ws_limits.py.)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from server.kernel.appkeys import REDIS
from server.kernel.principal import SESSION_PREFIX, session_index
from tests.conftest import PASSWORD

NEW_PASSWORD = "another-horse-43"


def passwd_args(tmp_path: Any, username: str) -> argparse.Namespace:
    """`cylwatch user passwd <username>` with the new password in a file (never in argv)."""
    path = tmp_path / "password"
    path.write_text(NEW_PASSWORD + "\n", encoding="utf-8")
    # password: what the command read before --password-file existed
    return argparse.Namespace(username=username, password_file=str(path), password=NEW_PASSWORD)


async def new_user(pool: Any, settings: Any, world: Any, role: str = "regulator") -> str:
    from server.kernel.passwords import hash_password

    name = f"lc_{role}_{time.monotonic_ns()}"
    company = world.companies["A"] if role == "company_admin" else None
    await pool.execute(
        "INSERT INTO users (username, password_hash, role, company_id) VALUES ($1, $2, $3, $4)",
        name,
        hash_password(settings.auth, PASSWORD),
        role,
        company,
    )
    return name


async def session(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status == 200, await resp.text()
    client.session.cookie_jar.clear()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def alive(client: Any, headers: dict[str, str]) -> bool:
    status = (await client.get("/api/v1/auth/me", headers=headers)).status
    assert status in (200, 401), status
    return status == 200


async def user_id(pool: Any, username: str) -> int:
    return int(await pool.fetchval("SELECT id FROM users WHERE username = $1", username))


async def test_own_password_change_ends_the_other_sessions(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    here, phone, laptop = [await session(client, name) for _ in range(3)]
    uid = await user_id(pool, name)
    resp = await client.patch(
        f"/api/v1/users/{uid}",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=here,
    )
    assert resp.status == 200, await resp.text()
    assert await alive(client, here)  # the session that changed it stays
    assert not await alive(client, phone)
    assert not await alive(client, laptop)
    assert await alive(client, await session(client, name, NEW_PASSWORD))


async def test_admin_password_reset_ends_every_session(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    one, two = await session(client, name), await session(client, name)
    admin = await session(client, "t_admin")
    resp = await client.patch(
        f"/api/v1/users/{await user_id(pool, name)}", json={"password": NEW_PASSWORD}, headers=admin
    )
    assert resp.status == 200, await resp.text()
    assert not await alive(client, one) and not await alive(client, two)
    assert await alive(client, admin)


async def test_a_name_change_ends_nothing(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    one, two = await session(client, name), await session(client, name)
    resp = await client.patch(
        f"/api/v1/users/{await user_id(pool, name)}", json={"display_name": "甲"}, headers=one
    )
    assert resp.status == 200
    assert await alive(client, one) and await alive(client, two)


async def test_deactivation_ends_sessions_and_revokes_api_keys_for_good(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world, role="company_admin")
    mine = await session(client, name)
    resp = await client.post("/api/v1/auth/api-keys", json={"name": "erp"}, headers=mine)
    assert resp.status == 201, await resp.text()
    key = {"X-API-Key": (await resp.json())["key"]}
    assert await alive(client, key)
    admin = await session(client, "t_admin")
    uid = await user_id(pool, name)
    assert (
        await client.patch(f"/api/v1/users/{uid}", json={"active": False}, headers=admin)
    ).status == 200
    assert not await alive(client, mine)
    assert not await alive(client, key)
    revoked = await pool.fetchval(
        "SELECT bool_and(revoked_at IS NOT NULL) FROM api_keys WHERE user_id = $1", uid
    )
    assert revoked is True
    assert await client.app[REDIS].scard(session_index(settings, uid)) == 0
    # reactivated: the password works again, the old key and session do not
    assert (
        await client.patch(f"/api/v1/users/{uid}", json={"active": True}, headers=admin)
    ).status == 200
    assert not await alive(client, key)
    assert not await alive(client, mine)
    assert await alive(client, await session(client, name))


async def test_a_session_has_an_absolute_lifetime(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    headers = await session(client, name)
    sid = headers["Authorization"].split()[1]
    redis = client.app[REDIS]
    a = settings.auth
    assert 0 < await redis.ttl(SESSION_PREFIX + sid) <= min(a.session_ttl_s, a.session_max_age_s)
    assert await alive(client, headers)
    # the same session, busy all along, but logged in longer ago than the max age
    record = orjson.loads(await redis.get(SESSION_PREFIX + sid))
    record["created"] = time.time() - a.session_max_age_s - 1
    record.pop("expires", None)
    await redis.set(SESSION_PREFIX + sid, orjson.dumps(record), ex=a.session_ttl_s)
    assert not await alive(client, headers)
    assert await redis.exists(SESSION_PREFIX + sid) == 0


async def test_logout_leaves_the_users_index(
    client: Any, pool: Any, settings: Any, world: Any
) -> None:
    name = await new_user(pool, settings, world)
    one, two = await session(client, name), await session(client, name)
    uid = await user_id(pool, name)
    redis = client.app[REDIS]
    assert await redis.scard(session_index(settings, uid)) == 2
    assert (await client.post("/api/v1/auth/logout", headers=one)).status == 200
    assert not await alive(client, one) and await alive(client, two)
    assert await redis.smembers(session_index(settings, uid)) == {
        two["Authorization"].split()[1].encode()
    }


async def test_cli_passwd_ends_every_session(
    client: Any, pool: Any, settings: Any, world: Any, capsys: Any, tmp_path: Any
) -> None:
    from server.commands import cmd_user_passwd

    name = await new_user(pool, settings, world)
    one, two = await session(client, name), await session(client, name)
    args = passwd_args(tmp_path, name)
    assert await cmd_user_passwd(args, settings) == 0
    assert "2 session(s) ended" in capsys.readouterr().out
    assert not await alive(client, one) and not await alive(client, two)
    assert await alive(client, await session(client, name, NEW_PASSWORD))
