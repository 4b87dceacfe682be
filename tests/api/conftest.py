"""Helpers for the REST API tests: cached bearer tokens, JSON calls, rows of one's own.

The `world` fixture is session-scoped and shared; tests that change data create their own
rows through `make_cylinder` (unique tags), never touching the world's.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from typing import Any

import pytest

from tests.conftest import ROLE_USERS, World, login

ANON = "anonymous"
ALL_USERS = (*ROLE_USERS, ANON)
_tokens: dict[str, dict[str, str]] = {}
_seq = itertools.count(1)


async def headers_for(client: Any, username: str) -> dict[str, str]:
    """Bearer headers, logging in once per test session (sessions live in Redis)."""
    if username == ANON:
        return {}
    if username not in _tokens:
        _tokens[username] = await login(client, username)
        # login also sets a session cookie; drop it so later writes are bearer-only (no CSRF)
        client.session.cookie_jar.clear()
    return dict(_tokens[username])


async def call(
    client: Any, method: str, path: str, user: str = "t_admin", body: Any = None, **kw: Any
) -> tuple[int, Any]:
    """(status, parsed JSON or raw bytes) of one request as *user*."""
    headers = await headers_for(client, user)
    headers.update(kw.pop("headers", {}))
    if body is not None:
        kw["json"] = body
    resp = await client.request(method, path, headers=headers, **kw)
    raw = await resp.read()
    client.session.cookie_jar.clear()  # a login answer sets cookies; tests speak bearer only
    if resp.content_type == "application/json":
        import orjson

        return resp.status, orjson.loads(raw) if raw else None
    return resp.status, raw


def unique(prefix: str = "T") -> str:
    return f"{prefix}-{next(_seq)}-{secrets.token_hex(3)}".upper()


def cylinder_body(world: World, owner: str = "A", **over: Any) -> dict[str, Any]:
    today = world.today
    body: dict[str, Any] = {
        "tag": unique("TAG"),
        "spec": "YSP35.5",
        "owner_company_id": world.companies[owner],
        "manufacture_date": (today - dt.timedelta(days=400)).isoformat(),
        "stamp": unique("ST"),
        "barcode": unique("BC"),
        "manufacturer": "测试压力容器厂",
        "location_site_id": world.sites[f"STA-{owner}1"],
    }
    body.update(over)
    return body


@pytest.fixture
def make_cylinder(client: Any, world: World) -> Any:
    async def make(owner: str = "A", user: str = "t_admin", **over: Any) -> dict[str, Any]:
        status, body = await call(
            client, "POST", "/api/v1/cylinders", user, cylinder_body(world, owner, **over)
        )
        assert status == 201, body
        return dict(body)

    return make


@pytest.fixture(autouse=True)
async def _reset_public_rate_limit(client: Any) -> None:
    """The public rate limit counts per address; tests all come from 127.0.0.1."""
    from server.api.public import RATE_PREFIX
    from server.kernel.appkeys import REDIS

    redis = client.server.app[REDIS]
    keys = [k async for k in redis.scan_iter(match=RATE_PREFIX + "*")]
    if keys:
        await redis.delete(*keys)


class Fresh:
    """Rows made for one test (via SQL, fast), so tests never change the shared world."""

    def __init__(self, pool: Any, world: World) -> None:
        self.pool = pool
        self.world = world

    async def cylinder(self, owner: str = "A", **over: Any) -> int:
        w = self.world
        district = "410105" if owner == "A" else "410103"
        values: dict[str, Any] = {
            "tag": unique("FT"),
            "barcode": unique("FB"),
            "stamp": unique("FS"),
            "owner_company_id": w.companies[owner],
            "spec": "YSP35.5",
            "manufacture_date": w.today - dt.timedelta(days=700),
            "next_inspection_date": w.today + dt.timedelta(days=600),
            "scrap_date": w.today + dt.timedelta(days=2000),
            "status": "in_service",
            "district_code": district,
            "location_site_id": w.sites[f"STA-{owner}1"],
        }
        values.update(over)
        cols = ", ".join(values)
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        return int(
            await self.pool.fetchval(
                f"INSERT INTO cylinders ({cols}) VALUES ({marks}) RETURNING id", *values.values()
            )
        )

    async def alert(self, company: str = "A", kind: str = "overfill", **over: Any) -> int:
        w = self.world
        values: dict[str, Any] = {
            "kind": kind,
            "severity": "critical",
            "subject_type": "cylinder",
            "subject_id": unique("SUBJ"),
            "company_id": w.companies[company],
            "site_id": w.sites[f"STA-{company}1"],
            "district_code": "410105" if company == "A" else "410103",
            "first_at": dt.datetime.now(dt.UTC),
            "last_at": dt.datetime.now(dt.UTC),
        }
        values.update(over)
        cols = ", ".join(values)
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        return int(
            await self.pool.fetchval(
                f"INSERT INTO alerts ({cols}) VALUES ({marks}) RETURNING id", *values.values()
            )
        )


@pytest.fixture
def fresh(pool: Any, world: World) -> Fresh:
    return Fresh(pool, world)
