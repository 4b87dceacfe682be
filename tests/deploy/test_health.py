"""``/healthz`` and ``/readyz`` as a load balancer sees them (server/api/health.py).

A service that goes away under a running server is a TCP forwarder the test cuts: the app
was pointed at it instead of the real PostgreSQL or Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from server.api.health import EXPECTED_MIGRATIONS, READY_TIMEOUT_S
from tests.deploy.tcp_proxy import TcpProxy

RECOVERY_S = 15.0
"""How long the pool or the Redis client may take to reconnect once the service is back."""


def _via(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()


def _target(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@pytest.fixture
async def pg_proxy(settings: Any) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(*_target(settings.services.database_url, 5432))
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def redis_proxy(settings: Any) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(*_target(settings.services.redis_url, 6379))
    await proxy.start()
    yield proxy
    await proxy.stop()


def _app(settings: Any, **services: str) -> Any:
    from server.app import create_app

    changed = msgspec.structs.replace(settings.services, **services)
    return create_app(msgspec.structs.replace(settings, services=changed), with_pages=False)


async def _ready_again(client: Any) -> dict[str, Any]:
    deadline = time.monotonic() + RECOVERY_S
    while True:
        r = await client.get("/readyz")
        body: dict[str, Any] = await r.json()
        if r.status == 200 or time.monotonic() > deadline:
            assert r.status == 200, body
            return body
        await asyncio.sleep(0.2)


async def test_ready_and_alive_when_every_service_answers(client: Any) -> None:
    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {
        "status": "ready",
        "checks": {"postgresql": "ok", "redis": "ok", "migrations": "ok"},
    }
    assert r.headers["Cache-Control"] == "no-store"
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}
    # load balancers often probe with HEAD; no login is needed for either
    assert (await client.head("/readyz")).status == 200
    assert (await client.head("/healthz")).status == 200


async def test_postgresql_gone_is_503_naming_it_and_alive_still(
    aiohttp_client: Any, settings: Any, database: str, pg_proxy: TcpProxy
) -> None:
    client = await aiohttp_client(
        _app(settings, database_url=_via(settings.services.database_url, pg_proxy))
    )
    assert (await client.get("/readyz")).status == 200

    await pg_proxy.stop()  # the database's port refuses; pooled connections reset
    t0 = time.monotonic()
    r = await client.get("/readyz")
    took = time.monotonic() - t0
    body = await r.json()
    assert r.status == 503, body
    assert body["status"] == "not_ready"
    assert body["failed"] == ["postgresql"]
    assert body["checks"]["postgresql"].startswith("down")
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["migrations"].startswith("unknown")
    assert int(r.headers["Retry-After"]) > 0
    assert took < READY_TIMEOUT_S + 1.0, f"the probe waited {took:.1f} s"
    # liveness does not depend on the database: no supervisor restarts a healthy process
    r = await client.get("/healthz")
    assert r.status == 200 and await r.json() == {"status": "ok"}

    await pg_proxy.start()
    body = await _ready_again(client)
    assert body["checks"]["postgresql"] == "ok"


async def test_redis_gone_is_503_naming_it(
    aiohttp_client: Any, settings: Any, database: str, redis_proxy: TcpProxy
) -> None:
    client = await aiohttp_client(
        _app(settings, redis_url=_via(settings.services.redis_url, redis_proxy))
    )
    assert (await client.get("/readyz")).status == 200

    await redis_proxy.stop()
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 503, body
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"].startswith("down")
    assert body["checks"]["postgresql"] == "ok" and body["checks"]["migrations"] == "ok"
    assert (await client.get("/healthz")).status == 200

    await redis_proxy.start()
    await _ready_again(client)


async def test_a_migration_not_yet_applied_is_not_ready(
    aiohttp_client: Any, settings: Any, database: str
) -> None:
    """A new release started before `cylwatch migrate` ran takes no traffic."""
    app = _app(settings)
    app[EXPECTED_MIGRATIONS] = (*app[EXPECTED_MIGRATIONS], "9999")
    client = await aiohttp_client(app)
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 503, body
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"] == "1 pending (9999): run `cylwatch migrate`"
    assert body["checks"]["postgresql"] == "ok"
