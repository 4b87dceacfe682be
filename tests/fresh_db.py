"""Fresh migrated databases for the tests that need one of their own (the ingest modules,
the first-start defaults, the audit chain, the API fuzzer).

Why a template: running the ~100 migrations into an empty database took 4.5–5 s, and the
suite made about thirty such databases (two and a half minutes of a CI run that must stay
well inside 30 minutes). The first database of a session is migrated for real and kept as
a template; each later one is a copy of it (``CREATE DATABASE … TEMPLATE``, 1.5 s), then
migrated again — a no-op that checks every migration's checksum against the files, so a
copy never hides a migration changed since. The migrations' own path from an empty database
is still the session database's (``tests/conftest.py``) and the template's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from tests.conftest import ADMIN_DSN


def dsn_of(name: str) -> str:
    return urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class FreshDatabases:
    """Migrated databases on demand, copies of one migrated template per session."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.template = f"cylwatch_test_{os.getpid()}_{secrets.token_hex(3)}_template"
        self._ready = False
        self._lock = asyncio.Lock()

    async def create(self, name: str) -> str:
        """Database *name*, migrated; its DSN."""
        from server.db.migrate import migrate

        async with self._lock:
            if not self._ready:
                await migrate(self.settings, dsn_of(self.template))
                self._ready = True
            conn = await asyncpg.connect(ADMIN_DSN)
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            finally:
                await conn.close()
        dsn = dsn_of(name)
        await migrate(self.settings, dsn)
        return dsn

    async def close(self) -> None:
        if self._ready:
            await drop_database(self.template)
