"""``/healthz`` and ``/readyz``: what a load balancer or an orchestrator asks a server process.

Two questions with two different answers (docs/DEPLOY.md §6):

- ``/healthz`` — *liveness*: is this process's event loop answering? It touches no service.
  A PostgreSQL or Redis outage must not make every server process "dead": a supervisor
  that restarts dead processes would then restart the whole fleet in a loop, dropping every
  websocket, while a restart cannot bring the database back. A process whose loop is stuck
  does not answer at all, which is what a liveness probe is for.
- ``/readyz`` — *readiness*: may this process take traffic now? PostgreSQL answers a trivial
  query, Redis a PING, and the schema holds every migration this code was shipped with (a
  new process started before ``cylwatch migrate`` ran is not ready; docs/DEPLOY.md
  "Upgrades"). Each check runs within `READY_TIMEOUT_S`. Anything else is 503 with a JSON
  body naming what failed; the load balancer routes around the process until it recovers
  (the pool and the Redis client reconnect by themselves), and no process is restarted.

Neither route is under ``/api/v1``: they carry no data, need no login and are not in the role
matrix (docs/ARCHITECTURE.md §9). The app root mounts them with `setup`.
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from server.db.migrate import discover
from server.kernel.appkeys import POOL, REDIS
from server.kernel.http import json_response

__all__ = ["EXPECTED_MIGRATIONS", "READY_TIMEOUT_S", "setup"]

READY_TIMEOUT_S: Final = 2.0
"""How long each readiness check may take before it counts as failed. Load balancers give a
probe a few seconds (nginx's upstream checks, Docker's healthcheck and Kubernetes default to
1-5 s); answering 503 within 2 s means the prober hears *why* instead of timing out, and a
database slower than that to answer ``SELECT 1`` is not one to send users to."""

RETRY_AFTER_S: Final = 5
"""Retry-After of a 503: about one probe interval of docs/DEPLOY.md's set-ups."""

EXPECTED_MIGRATIONS: web.AppKey[tuple[str, ...]] = web.AppKey("expected_migrations", tuple)
"""The migration versions this code was shipped with (``server/db/migrations``), read once."""

_NO_STORE: Final = {"Cache-Control": "no-store"}

_MISSING_SQL: Final = """
SELECT v FROM unnest($1::text[]) AS v
WHERE NOT EXISTS (SELECT 1 FROM schema_migrations m WHERE m.version = v)
ORDER BY v
"""


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers. No service is touched."""
    return json_response({"status": "ok"}, headers=_NO_STORE)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"down: no answer within {READY_TIMEOUT_S:g} s"
    return f"down: {type(exc).__name__}"


async def _database(app: web.Application) -> tuple[str, str]:
    """(postgresql, migrations): the server answers, and the schema is current."""
    pool = app[POOL]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
                missing = [r["v"] for r in await conn.fetch(_MISSING_SQL, app[EXPECTED_MIGRATIONS])]
    except Exception as exc:
        return _failure(exc), "unknown: PostgreSQL did not answer"
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        return "ok", f"{len(missing)} pending ({shown}): run `cylwatch migrate`"
    return "ok", "ok"


async def _redis(app: web.Application) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await app[REDIS].ping()
    except Exception as exc:
        return _failure(exc)
    return "ok"


async def readyz(request: web.Request) -> web.Response:
    """Readiness: PostgreSQL, Redis and the schema, checked at once; 503 names what failed."""
    (postgresql, migrations), redis = await asyncio.gather(
        _database(request.app), _redis(request.app)
    )
    checks = {"postgresql": postgresql, "redis": redis, "migrations": migrations}
    if all(state == "ok" for state in checks.values()):
        return json_response({"status": "ready", "checks": checks}, headers=_NO_STORE)
    # what failed, not what could not be checked because of it
    failed = [n for n, state in checks.items() if state != "ok" and not state.startswith("unknown")]
    return json_response(
        {"status": "not_ready", "failed": failed, "checks": checks},
        503,
        headers={**_NO_STORE, "Retry-After": str(RETRY_AFTER_S)},
    )


def setup(app: web.Application) -> None:
    """Mount ``/healthz`` and ``/readyz`` (GET and HEAD)."""
    app[EXPECTED_MIGRATIONS] = tuple(m.version for m in discover())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
