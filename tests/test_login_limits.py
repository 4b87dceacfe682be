"""Logins cannot freeze the server or lock a stranger out; bodies have per-route limits; the
client address behind a trusted proxy is the real one (docs/SECURITY.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from server.kernel import passwords
from server.kernel.appkeys import POOL, REDIS
from server.kernel.principal import FAIL_PREFIX
from tests.conftest import PASSWORD

PROXY = {"trusted_proxies": ["127.0.0.1/32"]}


def _with(settings: Any, **sections: dict[str, Any]) -> Any:
    """Settings with some keys of some sections replaced (settings are frozen)."""
    changes = {
        name: msgspec.structs.replace(getattr(settings, name), **values)
        for name, values in sections.items()
    }
    return msgspec.structs.replace(settings, **changes)


@pytest.fixture
async def proxied(aiohttp_client: Any, settings: Any, database: str, world: Any) -> Any:
    """A server behind a reverse proxy on 127.0.0.1 (X-Forwarded-For believed from it)."""
    from server.app import create_app

    app = create_app(_with(settings, http=PROXY), with_pages=False)
    client = await aiohttp_client(app)
    yield client
    async for key in app[REDIS].scan_iter(f"{FAIL_PREFIX}*"):
        await app[REDIS].delete(key)


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every password check that really ran argon2, by stored hash."""
    calls: list[str] = []
    real = passwords.verify_password

    def counting(rules: Any, stored: str, password: str) -> bool:
        calls.append(stored)
        return real(rules, stored, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    yield calls


def _login(client: Any, username: str, password: str, client_ip: str) -> Any:
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": client_ip},
    )


async def test_parallel_guesses_verify_at_most_the_limit(proxied: Any, verified: list[str]) -> None:
    limit = _settings(proxied).auth.login_max_failures
    answers = await asyncio.gather(
        *(_login(proxied, "t_admin", f"guess-{i}", "203.0.113.7") for i in range(50))
    )
    statuses = sorted(r.status for r in answers)
    assert statuses.count(401) == limit
    assert statuses.count(429) == 50 - limit
    assert len(verified) == limit
    retry = [int(r.headers["Retry-After"]) for r in answers if r.status == 429]
    assert max(retry) > min(retry), "back-off grows with every further attempt"


def _settings(client: Any) -> Any:
    from server.kernel.appkeys import SETTINGS

    return client.app[SETTINGS]


async def test_a_stranger_cannot_lock_the_admin_out(proxied: Any) -> None:
    limit = _settings(proxied).auth.login_max_failures
    for i in range(limit + 3):
        r = await _login(proxied, "t_admin", f"wrong-{i}", "198.51.100.9")
        assert r.status in (401, 429)
    assert r.status == 429
    mine = await _login(proxied, "t_admin", PASSWORD, "192.0.2.44")
    assert mine.status == 200, await mine.text()


async def test_unknown_user_is_checked_against_a_decoy(proxied: Any, verified: list[str]) -> None:
    r = await _login(proxied, "nobody-by-this-name", "whatever-1", "192.0.2.50")
    assert r.status == 401
    assert len(verified) == 1, "an unknown user costs a real argon2 check, like a known one"


async def test_failed_login_is_audited(proxied: Any) -> None:
    pool = proxied.app[POOL]
    before = await pool.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    r = await _login(proxied, "t_regulator", "not-the-password", "192.0.2.60")
    assert r.status == 401
    row = await pool.fetchrow(
        "SELECT * FROM audit_log WHERE id > $1 AND action = 'auth.login_failed'", before
    )
    assert row is not None
    assert row["details"]["username"] == "t_regulator"
    assert row["remote"] == "192.0.2.60", "the client behind the proxy, not the proxy"


async def test_logins_at_full_cost_do_not_stall_other_requests(
    aiohttp_client: Any, settings: Any, database: str, world: Any
) -> None:
    """argon2 at production cost runs off the event loop: while 20 logins hash, a health
    check still answers promptly (it used to wait behind every hash, ~100-300 ms each)."""
    from server.app import create_app

    costly = _with(
        settings,
        http=PROXY,
        auth={"argon2_time_cost": 3, "argon2_memory_kib": 65536, "argon2_max_concurrent": 1},
    )
    client = await aiohttp_client(create_app(costly, with_pages=False))
    # t_officer's stored hash is cheap (the suite's cost): a full-cost check runs on the
    # decoy of an unknown user, which is exactly as expensive as a real user's
    logins = [
        asyncio.ensure_future(_login(client, f"nobody-{i}", f"wrong-{i}", f"192.0.2.{i + 1}"))
        for i in range(20)
    ]
    await asyncio.sleep(0.05)
    slowest = 0.0
    for _ in range(10):
        t0 = time.perf_counter()
        assert (await client.get("/healthz")).status == 200
        slowest = max(slowest, time.perf_counter() - t0)
        await asyncio.sleep(0.02)
    results = await asyncio.gather(*logins)
    assert {r.status for r in results} == {401}
    # on the loop, 20 hashes would hold a health check for seconds; a loaded CI box gets slack
    assert slowest < 1.0, f"a health check waited {slowest * 1000:.0f} ms behind logins"


async def test_body_limits_per_route(proxied: Any) -> None:
    http = _settings(proxied).http
    big_login = b'{"username": "' + b"a" * (http.max_small_body_kb * 1024) + b'", "password": "x"}'
    r = await proxied.post(
        "/api/v1/auth/login", data=big_login, headers={"Content-Type": "application/json"}
    )
    assert r.status == 413
    body = await r.json()
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"]["limit_bytes"] == http.max_small_body_kb * 1024

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(http.max_small_body_kb + 8):
            yield b" " * 1024

    r = await proxied.post(
        "/api/v1/auth/login", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status == 413
    assert (await r.json())["error"]["code"] == "payload_too_large"
