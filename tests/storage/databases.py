"""A database of its own, migrated with a chosen `[storage] timescaledb`, for the tests that
compare the two storage paths on one server (README "Storage")."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from server.db.migrate import MigrateResult, migrate, server_preloads_timescaledb
from server.db.pool import create_pool
from server.kernel.settings import Settings, load_settings


@dataclass
class Migrated:
    settings: Settings
    dsn: str
    result: MigrateResult
    pool: asyncpg.Pool


def with_storage(dsn: str, timescaledb: str) -> Settings:
    """Settings for *dsn* with the storage choice given (migrating needs nothing else)."""
    env = dict(os.environ)
    env.update({"CYL_DATABASE_URL": dsn, "CYL_STORAGE__TIMESCALEDB": timescaledb})
    return load_settings(environ=env)


@asynccontextmanager
async def migrated(settings: Any, timescaledb: str) -> AsyncIterator[Migrated]:
    """Create, migrate and finally drop a database next to the session's one."""
    base = urlsplit(settings.services.database_url)
    name = f"{base.path.lstrip('/')}_{timescaledb}_{secrets.token_hex(2)}"
    dsn = base._replace(path=f"/{name}").geturl()
    admin = base._replace(path="/postgres").geturl()
    own = with_storage(dsn, timescaledb)
    result = await migrate(own, dsn)
    pool = await create_pool(own, dsn=dsn, min_size=1, max_size=2)
    try:
        yield Migrated(own, dsn, result, pool)
    finally:
        await pool.close()
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def timescaledb_usable(pool: asyncpg.Pool) -> bool:
    """Whether this server can give a new database hypertables: installed and preloaded."""
    async with pool.acquire() as conn:
        available = await conn.fetchval(
            "SELECT true FROM pg_catalog.pg_available_extensions WHERE name = 'timescaledb'"
        )
        return bool(available) and await server_preloads_timescaledb(conn)
