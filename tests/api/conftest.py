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
        status, body = await call(client, "POST", "/api/v1/cylinders", user, cylinder_body(world, owner, **over))
        assert status == 201, body
        return dict(body)

    return make
