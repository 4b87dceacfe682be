"""Versioned SQL migrations (`cylwatch migrate`).

Files in `server/db/migrations/` named `NNNN_name.sql` run once each, in order, each in its
own transaction, under an advisory lock so two processes starting together cannot race.
What ran is recorded in `schema_migrations` with a checksum; a migration edited after it
ran is reported, never silently re-run. Creating the database itself is part of migrating,
so a fresh machine needs nothing but a running PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server.db.pool import connect
from server.kernel.services import ServiceUnavailable
from server.kernel.settings import Settings

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x0C71_7A7C  # advisory lock id for migrations
PARTITION_MONTHS_AHEAD = 3


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass
class MigrateResult:
    applied: list[str]
    already: list[str]
    changed: list[str]
    partitions_created: int


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    out = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        out.append(Migration(version, name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {directory}")
    return out


def _admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path="/postgres")), dbname


async def ensure_database(settings: Settings, dsn: str | None = None) -> bool:
    """Create the database named in the URL if it does not exist. Returns True if created."""
    url = dsn or settings.services.database_url
    admin, dbname = _admin_url(url)
    try:
        conn = await connect(settings, url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    conn = await connect(settings, admin)
    try:
        await conn.execute(f'CREATE DATABASE "{dbname}"')
    except asyncpg.DuplicateDatabaseError:
        return False
    finally:
        await conn.close()
    log.info("created database %s", dbname)
    return True


async def migrate(settings: Settings, dsn: str | None = None) -> MigrateResult:
    await ensure_database(settings, dsn)
    conn = await connect(settings, dsn)
    try:
        return await _migrate(conn)
    finally:
        await conn.close()


async def _migrate(conn: asyncpg.Connection) -> MigrateResult:
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        result = MigrateResult([], [], [], 0)
        for m in discover():
            if m.version in done:
                result.already.append(m.version)
                if done[m.version] != m.checksum:
                    result.changed.append(m.version)
                    log.warning("migration %s_%s changed after it was applied", m.version, m.name)
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            result.applied.append(m.version)
            log.info("applied migration %s_%s", m.version, m.name)
        result.partitions_created = await ensure_partitions(conn)
        return result
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def ensure_partitions(conn: asyncpg.Connection) -> int:
    """Create the coming months' partitions of every natively partitioned time-series table."""
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
    )
    created = 0
    for row in tables:
        created += await conn.fetchval(
            "SELECT cyl_ensure_partitions($1, date_trunc('month', now())::date,"
            " (now() + make_interval(months => $2))::date)",
            row["relname"],
            PARTITION_MONTHS_AHEAD,
        )
    return created


async def check_current(conn: asyncpg.Connection) -> list[str]:
    """Migrations not yet applied (the server refuses to start on an old schema)."""
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations")
    except asyncpg.UndefinedTableError:
        return [m.version for m in discover()]
    have = {r["version"] for r in rows}
    return [m.version for m in discover() if m.version not in have]


__all__ = ["MigrateResult", "ServiceUnavailable", "check_current", "discover", "migrate"]
