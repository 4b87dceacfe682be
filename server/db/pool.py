"""The asyncpg pool: JSON codecs, start-up checks, and a clear message when PostgreSQL is down."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from server.kernel.services import ServiceUnavailable, redact
from server.kernel.settings import ConfigError, Settings

Pool = asyncpg.Pool

# Connection failures that mean "the server is not (yet) there", not "you asked wrongly":
# refused or timed out, still starting up or shutting down, or out of connection slots.
_DOWN_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def _refused(url: str, exc: Exception) -> ConfigError:
    """PostgreSQL is up but refuses the URL's user or password: a setting to fix, in one
    line that never shows the password (docs/CONFIG.md "[services]")."""
    return ConfigError(f"PostgreSQL at {redact(url)} refused the login: {exc}")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb/json columns come and go as Python objects, serialized by orjson."""
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(typ, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def create_pool(settings: Settings, *, dsn: str | None = None, **kwargs: Any) -> asyncpg.Pool:
    url = dsn or settings.services.database_url
    params: dict[str, Any] = {
        "min_size": settings.services.db_pool_min,
        "max_size": settings.services.db_pool_max,
        "init": init_connection,
        "timeout": settings.services.connect_timeout_s,
        "command_timeout": settings.services.db_command_timeout_s,
    }
    if not settings.services.database_jit:
        params["server_settings"] = {"jit": "off"}
    params.update(kwargs)
    try:
        pool = await asyncpg.create_pool(url, **params)
    except (TimeoutError, OSError) as exc:
        raise ServiceUnavailable("PostgreSQL", url, str(exc) or type(exc).__name__) from None
    except asyncpg.InvalidCatalogNameError:
        raise ServiceUnavailable(
            "PostgreSQL", url, "database does not exist: run `cylwatch migrate`"
        ) from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise _refused(url, exc) from None
    assert pool is not None
    return pool


async def connect(settings: Settings, dsn: str | None = None) -> asyncpg.Connection:
    """One connection (CLI commands, migrations)."""
    url = dsn or settings.services.database_url
    try:
        conn = await asyncpg.connect(url, timeout=settings.services.connect_timeout_s)
    except (TimeoutError, OSError) as exc:
        raise ServiceUnavailable("PostgreSQL", url, str(exc) or type(exc).__name__) from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise _refused(url, exc) from None
    await init_connection(conn)
    return conn
