"""The aiohttp application factory (`cylwatch serve` runs it; tests build it per test).

Long-lived resources (PostgreSQL pool, Redis client, the in-process bus) are opened in a
`cleanup_ctx` so they close in reverse order however the app stops. Features mount
themselves with `setup(app)`: the REST API, the websocket hub, the pages, and — when asked
— an in-process ingest worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime.bus import EventBus
from server.api import health
from server.db.migrate import check_current
from server.db.pool import create_pool
from server.db.queue_gauges import queue_gauges_ctx
from server.db.replica import replica_ctx
from server.db.rollup_refresh import rollups_ctx
from server.kernel import principal
from server.kernel.appkeys import BUS, METRICS_SOURCES, POOL, REDIS, SETTINGS
from server.kernel.errors import error_middleware
from server.kernel.limits import body_limit_middleware
from server.kernel.proxies import client_address_middleware
from server.kernel.request_ids import (
    request_id_middleware,
    setup_http_metrics,
    setup_request_ids,
)
from server.kernel.services import ServiceUnavailable, redact
from server.kernel.settings import ConfigError, Settings
from server.kernel.tasks import close_pool
from server.outbound.service import outbound_ctx

log = logging.getLogger(__name__)


async def connect_redis(settings: Settings) -> Redis:
    url = settings.services.redis_url
    timeout = settings.services.connect_timeout_s
    # A blocking pool: a burst of requests past ``redis_pool_max`` waits for a connection
    # (up to the connect timeout) instead of failing at once — redis-py's default pool raises
    # "Too many connections" past 100, which refused websockets when 200 dashboards
    # reconnected together (docs/BENCHMARKS.md "End to end").
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.services.redis_pool_max,
        timeout=timeout,
        socket_connect_timeout=timeout,
    )
    client: Redis = Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    try:
        await client.ping()
    except RedisAuthenticationError as exc:  # up, but not for this user/password
        await client.aclose()
        raise ConfigError(f"Redis at {redact(url)} refused the login: {exc}") from None
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        raise ServiceUnavailable("Redis", url, str(exc)) from None
    return client


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            pending = await check_current(conn)
        if pending:
            raise ServiceUnavailable(
                "PostgreSQL",
                settings.services.database_url,
                f"schema is not current ({len(pending)} migrations pending): run `cylwatch migrate`",
            )
        redis = await connect_redis(settings)
    except BaseException:
        await pool.close()
        raise
    app[POOL] = pool
    app[REDIS] = redis
    try:
        yield
    finally:
        await redis.aclose()
        await close_pool(pool, settings.services.shutdown_grace_s)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: the bus's own counters and every registered source.

    Open to scrapers on the machine itself (loopback) and to admins; the counters say
    nothing personal, but how busy each station is is not for the public.
    """
    remote = request.remote or ""
    if not (remote.startswith("127.") or remote == "::1"):
        principal.require(request, "admin")
    bus = request.app[BUS]
    lines = [
        "# HELP cylwatch_bus_published_total Events published on this process's bus.",
        "# TYPE cylwatch_bus_published_total counter",
        f"cylwatch_bus_published_total {bus.published}",
        "# HELP cylwatch_bus_listener_errors_total Listener failures isolated by the bus.",
        "# TYPE cylwatch_bus_listener_errors_total counter",
        f"cylwatch_bus_listener_errors_total {bus.listener_errors}",
        "# HELP cylwatch_bus_listeners Listeners registered on the bus.",
        "# TYPE cylwatch_bus_listeners gauge",
        f"cylwatch_bus_listeners {bus.listener_count()}",
    ]
    text = "\n".join(lines) + "\n"
    for source in request.app[METRICS_SOURCES]:
        text += source()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def strict_transport_security(request: web.Request, response: web.StreamResponse) -> None:
    """HSTS on every response when the platform is served over HTTPS (``[auth]
    secure_cookies``): a browser that has seen it never again sends a session cookie, or a
    password, over plain http to this host (RFC 6797)."""
    max_age = request.app[SETTINGS].auth.hsts_max_age_s
    response.headers["Strict-Transport-Security"] = f"max-age={max_age}"


def create_app(
    settings: Settings, *, with_ingest: bool = False, with_pages: bool = True
) -> web.Application:
    app = web.Application(
        middlewares=[
            request_id_middleware,  # outermost: the id is set before a 500 is logged
            error_middleware,
            client_address_middleware,
            body_limit_middleware,
            principal.auth_middleware,
        ],
        client_max_size=settings.http.max_upload_mb * 1024 * 1024,
    )
    app[SETTINGS] = settings
    if settings.auth.secure_cookies:
        app.on_response_prepare.append(strict_transport_security)
    app[BUS] = EventBus()
    app[METRICS_SOURCES] = []
    setup_request_ids(app)  # X-Request-Id on every response, in every log line
    setup_http_metrics(app)
    app.cleanup_ctx.append(_services_ctx)
    # reports, exports and the wall's feeds read from a replica when one is set and close
    # enough, from the primary otherwise (server/db/replica.py, docs/DEPLOY.md "Read replica")
    app.cleanup_ctx.append(replica_ctx)
    # after the pool opens, before it closes: SMS and upload senders (docs/OUTBOUND.md)
    app.cleanup_ctx.append(outbound_ctx)
    app.cleanup_ctx.append(rollups_ctx)  # report rollups' refresh (server/db/rollup_refresh.py)
    # queue depths and ages, scheduled reports' runs for /metrics (server/db/queue_gauges.py)
    app.cleanup_ctx.append(queue_gauges_ctx)
    health.setup(app)  # /healthz (liveness) and /readyz (readiness): server/api/health.py
    app.router.add_get("/metrics", metrics)

    from server import api

    api.setup(app)

    import realtime

    realtime.setup(app)
    if with_pages:
        import big_screen
        import dashboard

        dashboard.setup(app)
        big_screen.setup(app)
    if with_ingest:
        import ingest

        ingest.setup(app)
    return app
