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


async def test_healthz_reports_services(client: Any) -> None:
    r = await client.get("/healthz")
    assert r.status == 200
    assert (await r.json())["checks"] == {"postgresql": "ok", "redis": "ok"}


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
