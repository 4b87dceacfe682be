"""The server connects as a role that owns nothing (docs/SECURITY.md "Database roles").

Migrations run as the tables' owner and grant ``[services] app_role`` what the server
uses: a login role of it cannot disable the audit log's triggers, truncate or rewrite the
audit log, drop a table or forge the migration history — and the whole API still works
through it (a login, a read, a write that leaves an audit row).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
import pytest

from tests.conftest import ADMIN_DSN, World, login

LOGIN_ROLE = "cylwatch_test_login"
"""A login role in the app role, as an operator would make (roles are cluster-wide, so
every test session shares it; creating it tolerates a concurrent session doing the same)."""


async def _login_role(app_role: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(
            f"""DO $$ BEGIN
                    CREATE ROLE {LOGIN_ROLE} LOGIN IN ROLE {app_role};
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$"""
        )
    finally:
        await conn.close()


@pytest.fixture
async def app_dsn(settings: Any, database: str) -> str:
    await _login_role(settings.services.app_role)
    return urlsplit(database)._replace(netloc=f"{LOGIN_ROLE}@127.0.0.1:5432").geturl()


@pytest.fixture
async def app_conn(app_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(app_dsn)
    yield conn
    await conn.close()


def test_migrations_run_as_the_owner_url(settings: Any) -> None:
    from server.db.migrate import migrate_url

    owner = "postgresql://owner:secret@db.example:5432/cylwatch"
    s = msgspec.structs.replace(
        settings, services=msgspec.structs.replace(settings.services, database_owner_url=owner)
    )
    assert migrate_url(s) == owner
    assert migrate_url(settings) == settings.services.database_url  # empty: one role


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "TRUNCATE audit_log",
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "DROP TABLE cylinders",
        "ALTER TABLE cylinders DISABLE TRIGGER cylinders_scrapped_final",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ('9999', 'x', 'x')",
        "DELETE FROM schema_migrations",
        "CREATE TABLE public.cyl_intruder (x int)",
    ],
)
async def test_the_app_role_cannot_alter_what_it_must_not(
    app_conn: asyncpg.Connection, sql: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute(sql)


async def test_the_app_role_is_not_the_owner_nor_a_superuser(
    app_conn: asyncpg.Connection,
) -> None:
    row = await app_conn.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    )
    assert not any(row.values())
    owned = await app_conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'USAGE')"
    )
    assert owned == 0


async def test_the_api_works_as_the_app_role(
    aiohttp_client: Any, settings: Any, world: World, app_dsn: str, app_conn: asyncpg.Connection
) -> None:
    from server.app import create_app

    services = msgspec.structs.replace(settings.services, database_url=app_dsn)
    client = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, services=services), with_pages=False)
    )
    headers = await login(client, "t_admin")
    resp = await client.get("/api/v1/cylinders?page_size=5", headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["total"] >= 4
    before = await app_conn.fetchval("SELECT max(id) FROM audit_log")
    resp = await client.post(
        "/api/v1/customers",
        headers=headers,
        json={"account_no": "APP-ROLE-1", "name": "角色测试", "company_id": world.companies["A"]},
    )
    assert resp.status == 201, await resp.text()
    # the write's audit row was chained by the trigger under the app role
    row = await app_conn.fetchrow(
        "SELECT action, prev_hash, hash FROM audit_log WHERE id > $1 AND action = 'customer.create'",
        before or 0,
    )
    assert row is not None and row["hash"] is not None
    assert await app_conn.fetchval("SELECT current_user") == LOGIN_ROLE
