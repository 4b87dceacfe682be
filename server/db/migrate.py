"""Versioned SQL migrations (`cylwatch migrate`), and where the time series are kept.

Files in `server/db/migrations/` named `NNNN_name.sql` run once each, in order, each in its
own transaction, under an advisory lock so two processes starting together cannot race.
What ran is recorded in `schema_migrations` with a checksum; a migration edited after it
ran is reported, never silently re-run. Creating the database itself is part of migrating,
so a fresh machine needs nothing but a running PostgreSQL.

Time series (events, fills, telemetry, positions, dead letters) are TimescaleDB hypertables
or native monthly range partitions (README "Storage"). The SQL helpers in 0001 build one or
the other by asking `cyl_has_timescale()`, i.e. whether the extension exists in the database,
so the choice is really "is the extension created before 0001 builds the tables". This
module makes that choice, once, when a database gets its first migration, and says it in
one log line on every run:

- hypertables when `[storage] timescaledb = "auto"`, the extension is installed on the
  server AND the server preloads it (`shared_preload_libraries`). This module creates the
  extension itself before 0001, so a refusal (e.g. a role that may not create it) is
  reported and ends in native partitions instead of being swallowed by 0001.
- native partitions otherwise: `"off"`, the extension not installed, or installed but not
  preloaded. The last case matters: the extension's "must be preloaded" error is FATAL, it
  ends the session, so 0001's own EXCEPTION handler never runs and migrating used to die
  with "connection was closed in the middle of operation".

0001 is checksummed and cannot change, and it creates the extension by itself whenever
`pg_available_extensions` lists it. On the native path this module therefore hides the
extension from the migrations' connection with a temporary view of that name listing every
other extension: PostgreSQL looks up an unqualified table or view name in the session's
temporary schema before `pg_catalog` (PostgreSQL manual, "search_path"), so 0001 sees no
timescaledb and never tries to create it. The view lives only in this connection and is
dropped when the migrations end.

A database keeps the storage it was created with: one with native partitions stays native
when the server gains TimescaleDB later, and one with hypertables stays so under `"off"`
(a warning says so). A database with hypertables on a server that no
longer preloads the extension is refused before anything runs: its DDL would end the
session and its inserts would land in the hypertables' parent tables, out of TimescaleDB's
sight.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server.db.pool import connect
from server.kernel.services import ServiceUnavailable, redact
from server.kernel.settings import ConfigError, Settings

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x0C71_7A7C  # advisory lock id for migrations
PARTITION_MONTHS_AHEAD = 3
TIMESCALEDB = "timescaledb"
# Shadows pg_catalog.pg_available_extensions in this session only (see the module docstring).
_HIDE_TIMESCALEDB = (
    "CREATE TEMP VIEW pg_available_extensions AS SELECT * FROM"
    f" pg_catalog.pg_available_extensions WHERE name <> '{TIMESCALEDB}'"
)
_UNHIDE_TIMESCALEDB = "DROP VIEW IF EXISTS pg_temp.pg_available_extensions"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class StorageChoice:
    """How a database keeps its time series, and the sentence that says why."""

    hypertables: bool
    reason: str
    level: int = logging.INFO

    def __str__(self) -> str:
        kind = "TimescaleDB hypertables" if self.hypertables else "native monthly partitions"
        return f"{kind} ({self.reason})"


@dataclass
class MigrateResult:
    applied: list[str]
    already: list[str]
    changed: list[str]
    partitions_created: int
    storage: StorageChoice


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    out = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        out.append(Migration(version, name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {directory}")
    return out


def migrate_url(settings: Settings) -> str:
    """Who migrates: the tables' owner, ``[services] database_owner_url``, else the one role
    of ``database_url`` (docs/SECURITY.md "Database roles")."""
    return settings.services.database_owner_url or settings.services.database_url


def _admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path="/postgres")), dbname


async def ensure_database(settings: Settings, dsn: str | None = None) -> bool:
    """Create the database named in the URL if it does not exist. Returns True if created."""
    url = dsn or migrate_url(settings)
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
    """Migrate as the tables' owner (``[services] database_owner_url``, else
    ``database_url``), then grant the application's role its privileges."""
    url = dsn or migrate_url(settings)
    await ensure_database(settings, url)
    conn = await connect(settings, url)
    try:
        return await _migrate(
            conn, settings.storage.timescaledb, redact(url), settings.services.app_role
        )
    finally:
        await conn.close()


async def grant_app_role(conn: asyncpg.Connection, role: str) -> None:
    """Create the application's role if needed and grant it what the server uses, no more
    (migration 0072; docs/SECURITY.md "Database roles")."""
    try:
        await conn.execute("SELECT cyl_grant_app_role($1)", role)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise ConfigError(
            f"services.app_role: cannot create or grant role {role!r} ({exc}): create it"
            f" (CREATE ROLE {role} NOLOGIN) or migrate as the tables' owner"
            " ([services] database_owner_url)"
        ) from None


async def _migrate(
    conn: asyncpg.Connection, timescaledb: str, where: str, app_role: str = ""
) -> MigrateResult:
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        # Storage first: in a database with the extension but a server without its preload,
        # any DDL (even the CREATE TABLE below) fires the extension's hooks and ends the session.
        done = await _applied(conn)
        storage = await choose_storage(conn, timescaledb, new_database=not done, where=where)
        log.log(storage.level, "time series of %s: %s", where, storage)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        result = MigrateResult([], [], [], 0, storage)
        if not storage.hypertables:
            await conn.execute(_HIDE_TIMESCALEDB)
        try:
            for m in discover():
                if m.version in done:
                    result.already.append(m.version)
                    if done[m.version] != m.checksum:
                        result.changed.append(m.version)
                        log.warning(
                            "migration %s_%s changed after it was applied", m.version, m.name
                        )
                    continue
                await _apply(conn, m)
                result.applied.append(m.version)
                log.info("applied migration %s_%s", m.version, m.name)
        finally:
            await conn.execute(_UNHIDE_TIMESCALEDB)
        result.partitions_created = await ensure_partitions(conn)
        if app_role:
            await grant_app_role(conn, app_role)
        return result
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def _applied(conn: asyncpg.Connection) -> dict[str, str]:
    """Version → checksum of the migrations already run (none in a new database)."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def _apply(conn: asyncpg.Connection, m: Migration) -> None:
    async with conn.transaction():
        await conn.execute(m.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            m.version,
            m.name,
            m.checksum,
        )


async def server_preloads_timescaledb(conn: asyncpg.Connection) -> bool:
    """Whether `shared_preload_libraries` names the extension (TimescaleDB refuses to work,
    fatally, without it). Only superusers may read that list; for another role, the
    extension's loader defining its `timescaledb.*` settings says the same thing."""
    try:
        libraries = await conn.fetchval("SHOW shared_preload_libraries")
    except asyncpg.InsufficientPrivilegeError:
        loader = await conn.fetchval(
            "SELECT current_setting('timescaledb.max_background_workers', true)"
        )
        return loader is not None
    names = (Path(lib.strip().strip('"')).name for lib in libraries.split(","))
    return any(name.removesuffix(".so") == TIMESCALEDB for name in names)


async def choose_storage(
    conn: asyncpg.Connection, timescaledb: str, *, new_database: bool, where: str
) -> StorageChoice:
    """Decide hypertables or native partitions (module docstring); on the hypertable path
    of a new database, create the extension."""
    created = await conn.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = $1", TIMESCALEDB
    )
    preloaded = await server_preloads_timescaledb(conn)
    if created:
        if not preloaded:
            raise ConfigError(
                f"database {where} keeps its time series in TimescaleDB hypertables but the"
                f" server does not preload {TIMESCALEDB}: add it to shared_preload_libraries"
                " and restart PostgreSQL"
            )
        if timescaledb == "off":
            return StorageChoice(
                True,
                f'[storage] timescaledb = "off" applies to a new database; this one was'
                f" created with TimescaleDB {created}",
                logging.WARNING,
            )
        return StorageChoice(True, f"extension {created}")
    if not new_database:
        return StorageChoice(False, "the database was created without TimescaleDB")
    if timescaledb == "off":
        return StorageChoice(False, '[storage] timescaledb = "off"')
    available = await conn.fetchval(
        "SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = $1",
        TIMESCALEDB,
    )
    if not available:
        return StorageChoice(False, f"the {TIMESCALEDB} extension is not installed on the server")
    if not preloaded:
        return StorageChoice(
            False,
            f"{TIMESCALEDB} {available} is installed but not in shared_preload_libraries;"
            " add it there and restart PostgreSQL before creating a database to get hypertables",
            logging.WARNING,
        )
    try:
        await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {TIMESCALEDB}")
    except asyncpg.PostgresError as exc:
        return StorageChoice(
            False, f"CREATE EXTENSION {TIMESCALEDB} failed: {exc}", logging.WARNING
        )
    return StorageChoice(True, f"extension {available}")


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


__all__ = [
    "MigrateResult",
    "ServiceUnavailable",
    "StorageChoice",
    "check_current",
    "choose_storage",
    "discover",
    "grant_app_role",
    "migrate",
    "migrate_url",
]
