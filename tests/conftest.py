"""Shared fixtures: real PostgreSQL and Redis, a fresh database for each test session.

The session database is created, migrated, and dropped at the end. `world` inserts a small
city with two companies and a user of every role, which API and scope tests build on.

Tests say what they need (docs/ARCHITECTURE.md §12): every test in ``tests/unit`` (and any
test marked ``no_services``) is pure and runs with no service up; every other test is
marked ``services``. Only when the collected tests include one that needs the services are
they checked, once, before any test runs: a service that is down ends the run with one line
naming it and the command that starts it, instead of 300 connection errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

ADMIN_DSN = os.environ.get("CYL_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CYL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MQTT_URL = os.environ.get("CYL_MQTT_URL", "mqtt://127.0.0.1:1883")
PASSWORD = "correct-horse-42"


SERVICES = (
    ("PostgreSQL", ADMIN_DSN, 5432),
    ("Redis", REDIS_URL, 6379),
    ("Mosquitto", MQTT_URL, 1883),
)
"""What the tests outside ``tests/unit`` talk to: name, URL, the protocol's default port."""
START_SERVICES = "bash scripts/services.sh"
IDLE_IN_TRANSACTION_S = 60
"""The session database ends a connection idle inside a transaction this long (`database`)."""
SERVICES_DOWN_EXIT = 3
"""Exit status of a run stopped because a service it needs is down."""
UNIT_DIR = Path(__file__).resolve().parent / "unit"


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _reachable(url: str, default_port: int) -> bool:
    try:
        with socket.create_connection(_address(url, default_port), 2):
            return True
    except OSError:
        return False


def services_down() -> list[str]:
    """``"PostgreSQL at 127.0.0.1:5432"`` for each service that refuses a connection."""
    down = []
    for name, url, port in SERVICES:
        if not _reachable(url, port):
            host, real_port = _address(url, port)
            down.append(f"{name} at {host}:{real_port}")
    return down


def needs_services(item: pytest.Item) -> bool:
    """A test needs the services unless it is in ``tests/unit`` or marked ``no_services``."""
    if item.get_closest_marker("no_services") is not None:
        return False
    return UNIT_DIR not in item.path.parents


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "services: needs PostgreSQL, Redis and Mosquitto (set by tests/conftest.py)"
    )
    config.addinivalue_line(
        "markers", "no_services: pure, runs with no service up (as every test in tests/unit)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need the services (first, so ``-m "not services"`` selects)."""
    for item in items:
        if needs_services(item):
            item.add_marker(pytest.mark.services)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check the services once, and only if a selected test needs them."""
    if session.config.option.collectonly:
        return
    needing = sum(1 for item in session.items if needs_services(item))
    if not needing:
        return
    down = services_down()
    if down:
        pytest.exit(
            f"services down: {', '.join(down)} — {needing} selected tests need them; start them"
            f" with `{START_SERVICES}` (the pure tests run without: pytest tests/unit)",
            returncode=SERVICES_DOWN_EXIT,
        )


@pytest.fixture(scope="session")
def test_db_name() -> str:
    return f"cylwatch_test_{os.getpid()}_{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def settings(test_db_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from server.kernel.settings import load_settings

    base = urlsplit(ADMIN_DSN)
    dsn = base._replace(path=f"/{test_db_name}").geturl()
    env = dict(os.environ)
    env.update({"CYL_DATABASE_URL": dsn, "CYL_REDIS_URL": REDIS_URL, "CYL_MQTT_URL": MQTT_URL})
    # the ID-number hash key lives in a file outside the database (docs/SECURITY.md "Privacy")
    id_key = tmp_path_factory.mktemp("secrets") / "id_hash.key"
    id_key.write_bytes(secrets.token_bytes(32))
    env.pop("CYL_ID_HASH_KEY", None)
    # the test client speaks plain http: cookies marked Secure would never be sent back
    env.update({"CYL_PRIVACY__ID_HASH_KEY_FILE": str(id_key), "CYL_AUTH__SECURE_COOKIES": "false"})
    # argon2 at full cost makes a 300-login suite slow; the cost is a setting, so lower it here
    env.update({"CYL_AUTH__ARGON2_TIME_COST": "1", "CYL_AUTH__ARGON2_MEMORY_KIB": "1024"})
    # uploaded files of the session's tests go to a temporary directory, not the project's state/
    env["CYL_UPLOADS__DIR"] = str(tmp_path_factory.mktemp("uploads"))
    yield load_settings(environ=env)


@pytest.fixture(scope="session")
async def database(settings: Any, test_db_name: str) -> AsyncIterator[str]:
    from server.db.migrate import migrate

    dsn = settings.services.database_url
    await migrate(settings, dsn)
    # A connection left idle inside a transaction (a task of a test's app cancelled between
    # its statements) would hold its row locks for the rest of the session, and the next test
    # touching those rows would wait for ever: PostgreSQL ends such a session after a minute
    # instead, so a leak fails a test rather than hanging the run.
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(
            f'ALTER DATABASE "{test_db_name}" SET idle_in_transaction_session_timeout = '
            f"'{IDLE_IN_TRANSACTION_S}s'"
        )
    finally:
        await admin.close()
    yield dsn
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            test_db_name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{test_db_name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def fresh_databases(settings: Any) -> AsyncIterator[Any]:
    """Migrated databases of a test's own, copies of a session template (tests/fresh_db.py)."""
    from tests.fresh_db import FreshDatabases

    factory = FreshDatabases(settings)
    yield factory
    await factory.close()


@pytest.fixture(scope="session")
async def pool(settings: Any, database: str) -> AsyncIterator[asyncpg.Pool]:
    from server.db.pool import create_pool

    p = await create_pool(settings)
    yield p
    await p.close()


@dataclass
class World:
    """A small city: ids and codes tests refer to."""

    districts: list[str]
    companies: dict[str, int]
    sites: dict[str, int]
    users: dict[str, int]
    cylinders: dict[str, int]
    customers: dict[str, int]
    devices: dict[str, int]
    today: dt.date
    extra: dict[str, Any] = field(default_factory=dict)


SQUARE = {  # two adjacent districts as simple squares
    "410105": (
        "金水区",
        [[113.60, 34.75], [113.70, 34.75], [113.70, 34.85], [113.60, 34.85], [113.60, 34.75]],
    ),
    "410103": (
        "二七区",
        [[113.60, 34.65], [113.70, 34.65], [113.70, 34.75], [113.60, 34.75], [113.60, 34.65]],
    ),
}

ROLE_USERS = {
    # username: (role, company, site, districts)
    "t_admin": ("admin", None, None, []),
    "t_regulator": ("regulator", None, None, []),
    "t_regulator_jinshui": ("regulator", None, None, ["410105"]),
    "t_officer": ("officer", None, None, ["410105"]),
    "t_company_a": ("company_admin", "A", None, []),
    "t_company_b": ("company_admin", "B", None, []),
    "t_operator_a": ("station_operator", "A", "STA-A1", []),
    "t_inspector": ("inspector", None, "INS-1", []),
}


@pytest.fixture(scope="session")
async def world(pool: asyncpg.Pool, settings: Any) -> World:
    """Company A (金水区) and company B (二七区), each with a station, a customer, cylinders."""
    return await build_world(pool, settings)


async def build_world(pool: asyncpg.Pool, settings: Any) -> World:
    """The rows of `world` in the database of *pool* (the session's, or the API fuzzer's own:
    tests/fuzz/conftest.py)."""
    from server.kernel.clock import city_today
    from server.kernel.passwords import hash_password

    # the platform's day is the city's ([alerts] timezone): from 16:00 UTC Zhengzhou is a day
    # ahead of the machine, and "future", "overdue" and "yesterday" are judged on its day
    today = city_today(settings)
    w = World([], {}, {}, {}, {}, {}, {}, today)
    async with pool.acquire() as conn, conn.transaction():
        for code, (name, ring) in SQUARE.items():
            await conn.execute(
                "INSERT INTO districts (code, name, boundary) VALUES ($1, $2, $3)",
                code,
                name,
                {"type": "Polygon", "coordinates": [ring]},
            )
            w.districts.append(code)
        for key, district in (("A", "410105"), ("B", "410103")):
            w.companies[key] = await conn.fetchval(
                """INSERT INTO companies (code, name, district_code, licence_no, licence_expiry)
                   VALUES ($1, $2, $3, $4, $5) RETURNING id""",
                f"TEST-{key}",
                f"测试燃气{key}公司",
                district,
                f"LIC-{key}",
                today + dt.timedelta(days=400),
            )
        for code, kind, comp, district, lat in (
            ("STA-A1", "filling_station", "A", "410105", 34.80),
            ("STA-B1", "filling_station", "B", "410103", 34.70),
            ("INS-1", "inspection_agency", None, "410105", 34.78),
        ):
            w.sites[code] = await conn.fetchval(
                """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon,
                                      licence_no, licence_expiry)
                   VALUES ($1, $2, $3, $4, $5, $6, 113.65, $7, $8) RETURNING id""",
                code,
                f"站点{code}",
                kind,
                w.companies.get(comp or ""),
                district,
                lat,
                f"FL-{code}",
                today + dt.timedelta(days=300),
            )
        for key, district in (("A", "410105"), ("B", "410103")):
            w.customers[key] = await conn.fetchval(
                """INSERT INTO customers (company_id, account_no, name, id_number_masked, phone,
                                          address, district_code, kind)
                   VALUES ($1, $2, $3, '410105********1234', '13800000000', '测试路1号', $4, 'resident')
                   RETURNING id""",
                w.companies[key],
                f"CUST-{key}",
                f"客户{key}",
                district,
            )
        for key in ("A", "B"):
            w.devices[f"GUN-{key}"] = await conn.fetchval(
                "INSERT INTO devices (device_id, kind, company_id, site_id) VALUES ($1, 'gun', $2, $3) RETURNING id",
                f"GUN-STA-{key}1",
                w.companies[key],
                w.sites[f"STA-{key}1"],
            )
        for tag, comp, district, next_insp, status in (
            ("TAG-A-OK", "A", "410105", today + dt.timedelta(days=500), "in_service"),
            ("TAG-A-OVERDUE", "A", "410105", today - dt.timedelta(days=1), "in_service"),
            ("TAG-B-OK", "B", "410103", today + dt.timedelta(days=500), "in_service"),
            ("TAG-B-SCRAPPED", "B", "410103", today + dt.timedelta(days=500), "scrapped"),
        ):
            w.cylinders[tag] = await conn.fetchval(
                """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l, tare_kg,
                       manufacturer, manufacture_date, next_inspection_date, scrap_date, status,
                       district_code, location_site_id, registered_by_site_id)
                   VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, '测试压力容器厂', $5, $6, $7, $8, $9, $10, $11)
                   RETURNING id""",
                tag,
                f"ST-{tag}",
                f"BC-{tag}",
                w.companies[comp],
                today - dt.timedelta(days=3 * 365),
                next_insp,
                today + dt.timedelta(days=5 * 365),
                status,
                district,
                w.sites[f"STA-{comp}1"],
                w.sites["INS-1"],
            )
        pw = hash_password(settings.auth, PASSWORD)
        for username, (role, comp, site, districts) in ROLE_USERS.items():
            w.users[username] = await conn.fetchval(
                """INSERT INTO users (username, password_hash, role, company_id, site_id, districts)
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
                username,
                pw,
                role,
                w.companies.get(comp or ""),
                w.sites.get(site or ""),
                districts,
            )
    return w


@pytest.fixture
async def app(settings: Any, database: str, world: World) -> Any:
    from server.app import create_app

    return create_app(settings, with_pages=True)


@pytest.fixture
async def client(aiohttp_client: Any, app: Any) -> Any:
    return await aiohttp_client(app)


_token_cache: dict[tuple[int, str], str] = {}


async def login(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Bearer headers for *username* (logging in through the real endpoint)."""
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return {"Authorization": f"Bearer {body['token']}"}


@pytest.fixture
def loop_time() -> float:
    return asyncio.get_event_loop().time()
