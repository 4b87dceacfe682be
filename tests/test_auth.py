"""Login, sessions, bearer tokens, CSRF and the login failure limit, against real Redis."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD, login


async def test_login_gives_token_and_cookie_and_me_works(client: Any) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "t_admin", "password": PASSWORD}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["role"] == "admin"
    assert "cylwatch_session" in resp.cookies
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert (await me.json())["user"]["username"] == "t_admin"


async def test_wrong_password_is_401_with_error_shape(client: Any) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "t_admin", "password": "nope-nope"}
    )
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["code"] == "bad_credentials"


async def test_unknown_bearer_token_is_rejected(client: Any) -> None:
    resp = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_anonymous_me_is_401(client: Any) -> None:
    resp = await client.get("/api/v1/auth/me")
    assert resp.status == 401


async def test_cookie_session_write_needs_csrf(client: Any) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "t_admin", "password": PASSWORD}
    )
    body = await resp.json()
    # the cookie jar now holds the session: an unsafe request without the CSRF token fails
    bad = await client.post("/api/v1/auth/api-keys", json={"name": "erp"})
    assert bad.status == 403
    assert (await bad.json())["error"]["code"] == "csrf_failed"
    good = await client.post(
        "/api/v1/auth/api-keys", json={"name": "erp"}, headers={"X-CSRF-Token": body["csrf_token"]}
    )
    assert good.status == 201
    key = (await good.json())["key"]
    client.session.cookie_jar.clear()
    me = await client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert (await me.json())["user"]["username"] == "t_admin"


async def test_logout_ends_the_session(client: Any) -> None:
    headers = await login(client, "t_regulator")
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status == 200
    assert (await client.get("/api/v1/auth/me", headers=headers)).status == 401


async def test_repeated_failures_are_rate_limited(client: Any, app: Any) -> None:
    from server.kernel.appkeys import SETTINGS

    limit = app[SETTINGS].auth.login_max_failures
    for _ in range(limit):
        r = await client.post(
            "/api/v1/auth/login", json={"username": "t_inspector", "password": "x" * 9}
        )
        assert r.status == 401
    r = await client.post(
        "/api/v1/auth/login", json={"username": "t_inspector", "password": PASSWORD}
    )
    assert r.status == 429
    assert r.headers.get("Retry-After")
    from server.kernel.appkeys import REDIS
    from server.kernel.principal import FAIL_PREFIX

    async for key in app[REDIS].scan_iter(f"{FAIL_PREFIX}t_inspector:*"):
        await app[REDIS].delete(key)


async def test_login_body_validation_names_the_field(client: Any) -> None:
    r = await client.post("/api/v1/auth/login", json={"username": "x"})
    assert r.status == 400
    err = (await r.json())["error"]
    assert err["code"] == "invalid_field" and err["details"]["field"] == "password"
    r = await client.post(
        "/api/v1/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (await r.json())["error"]["code"] == "invalid_json"
    r = await client.post("/api/v1/auth/login", data=b"username=x")
    assert r.status == 415
