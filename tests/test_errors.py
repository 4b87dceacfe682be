"""Errors that no endpoint handles itself: unknown routes, wrong methods, health."""

from __future__ import annotations

from typing import Any


async def test_unknown_api_route_is_json_404(client: Any) -> None:
    r = await client.get("/api/v1/no-such-thing")
    assert r.status == 404
    body = await r.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "not_found"


async def test_wrong_method_is_405_with_allow(client: Any) -> None:
    r = await client.delete("/api/v1/auth/login")
    assert r.status == 405
    assert (await r.json())["error"]["code"] == "method_not_allowed"
    assert "POST" in r.headers.get("Allow", "")


async def test_unknown_page_is_html_404(client: Any) -> None:
    r = await client.get("/no-such-page", headers={"Accept": "text/html"})
    assert r.status == 404
    assert "text/html" in r.headers["Content-Type"]
    assert "Traceback" not in await r.text()


async def test_readyz_reports_services(client: Any) -> None:
    """/healthz is liveness only; the services are checked by /readyz (tests/deploy)."""
    r = await client.get("/readyz")
    assert r.status == 200
    assert (await r.json())["checks"] == {"postgresql": "ok", "redis": "ok", "migrations": "ok"}


async def test_metrics_are_prometheus_text_with_registered_sources(client: Any, app: Any) -> None:
    from server.kernel.appkeys import add_metrics_source

    add_metrics_source(app, lambda: "cylwatch_test_source 1\n")
    r = await client.get("/metrics")
    assert r.status == 200
    text = await r.text()
    assert "# TYPE cylwatch_bus_published_total counter" in text
    assert "cylwatch_test_source 1" in text


async def test_database_gone_mid_request_is_503_not_500(client: Any, app: Any) -> None:
    """A PostgreSQL restart under a request: retry later, not an internal error."""
    from server.kernel.appkeys import POOL
    from tests.conftest import login

    headers = await login(client, "t_admin")
    await app[POOL].close()  # what a server restart does to every pooled connection
    r = await client.get("/api/v1/cylinders?tag=TAG-A-OK", headers=headers)
    assert r.status == 503
    body = await r.json()
    assert body["error"]["code"] == "service_unavailable"
    assert r.headers["Retry-After"]


async def test_programming_error_in_a_query_is_500_with_reference_not_503(
    aiohttp_client: Any, pool: Any, caplog: Any
) -> None:
    """Issue 11: a query given the wrong number of arguments (asyncpg raises InterfaceError,
    the class it also uses for a closing pool) is our bug: a 500 whose reference is in the
    log, never a 503 "briefly unavailable" that invites the user to retry it."""
    import logging

    from aiohttp import web

    from server.kernel.errors import error_middleware, service_down

    async def buggy(request: web.Request) -> web.Response:
        await pool.fetch("SELECT $1::int + $2::int", 1, 2, 3, 4, 5)
        return web.json_response({})

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/buggy", buggy)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        r = await client.get("/buggy", headers={"Accept": "application/json"})
    assert r.status == 500
    body = await r.json()
    assert body["error"]["code"] == "internal_error"
    ref = body["error"]["details"]["reference"]
    assert any(ref in rec.getMessage() for rec in caplog.records)
    assert "Retry-After" not in r.headers

    import asyncpg

    assert service_down(asyncpg.InterfaceError("pool is closing"))
    assert not service_down(asyncpg.InterfaceError("the server expects 2 arguments"))
    assert not service_down(asyncpg.DataError("invalid input for query argument $1"))
