"""Work pages: the reports on screen (DESIGN §8; docs/ARCHITECTURE.md §8).

``GET /reports`` is the catalogue — every report of ``GET /api/v1/reports`` the caller's role
may run, each opening its page; ``GET /reports/{name}`` draws one: the filter bar built from
the catalogue's ``filters``, the chart a person would rather look at, the table with
sorting and paging, the previous period beside the current one, drill-down from a count to
its rows, CSV/XLSX of what is on screen, a print layout and a link to schedule it. The rows
come from the REST API (``/api/v1/reports/...``), which scopes them again in SQL; this module
renders the shell and the filter choices of the caller's scope.

Why the report's roles are read from the mounted API route (its ``api_doc`` metadata, as the
OpenAPI document is): the pages may not import ``server.api`` (import-linter contract), and
the route is the one place that says who may run a report — a second list here would drift.
A report the role may not run answers the 403 page, an unknown one the 404 page, before any
script runs.

``GET /reports/data/districts`` hands the district boundaries to the choropleth charts
(public geography, the same for every role, like the live map's outlines).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from dashboard import data
from dashboard.render import page, page_translator, render, render_forbidden
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.http import json_response
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]

REPORTS_API: Final = "/api/v1/reports"
SCHEDULES_PATH: Final = "/reports/schedules"
"""The schedules page (its own module); a report is never named like it."""


def _report_doc(app: web.Application, name: str) -> Any | None:
    """The OpenAPI metadata of ``GET /api/v1/reports/{name}`` as mounted, or None."""
    path = f"{REPORTS_API}/{name}"
    for route in app.router.routes():
        resource = route.resource
        if route.method == "GET" and resource is not None and resource.canonical == path:
            return getattr(route.handler, "__api_doc__", None)
    return None


async def _stations(request: web.Request, p: Principal) -> list[dict[str, Any]]:
    """Filling stations in the caller's scope, with their company (the station select
    follows the company select)."""
    q = Sql()
    rows = await request.app[POOL].fetch(
        f"""SELECT s.id, s.code, s.name, s.company_id FROM sites s
             WHERE s.kind = 'filling_station' AND {scope_where(p, "sites", "s", q)}
             ORDER BY s.code""",
        *q.params,
    )
    return [dict(r.items()) for r in rows]


@page("reports")
async def catalogue(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    return render(
        request,
        "reports.html",
        title=t("nav.reports"),
        active="reports",
        page_config={"schedules_path": SCHEDULES_PATH},
    )


@page("reports")
async def report(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    name = request.match_info["name"]
    doc = _report_doc(request.app, name)
    if doc is None:
        return render(
            request,
            "message.html",
            title=t("error.not_found.title"),
            status=404,
            heading=t("error.not_found.title"),
            message=t("reports.unknown", name=name),
            active="reports",
        )
    if p.role not in doc.roles:
        return render_forbidden(request, "reports")
    opts = await data.filter_options(request.app[POOL], p)
    settings = request.app[SETTINGS]
    return render(
        request,
        "report.html",
        title=t("nav.reports"),
        active="reports",
        name=name,
        page_config={
            "report": name,
            # the legacy reports' own query parameters (their catalogue entry has no filters)
            "params": [q.name for q in doc.query],
            "districts": opts.districts,
            "companies": [
                {"id": c["id"], "code": c["code"], "name": c["name"]} for c in opts.companies
            ],
            "stations": await _stations(request, p),
            "today": city_today(settings).isoformat(),
            "drill_page_size": min(
                settings.http.page_size_default, settings.reports.drill_page_size_max
            ),
            "schedules_path": SCHEDULES_PATH,
            "districts_url": "/reports/data/districts",
        },
    )


@page(None)
async def districts(request: web.Request, p: Principal) -> web.StreamResponse:
    """District boundaries as a GeoJSON FeatureCollection (properties: code, name, name_en)."""
    rows = await data.district_boundaries(request.app[POOL])
    return json_response(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": r["boundary"],
                    "properties": {"code": r["code"], "name": r["name"], "name_en": r["name_en"]},
                }
                for r in rows
            ],
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/reports", catalogue),
        web.get("/reports/data/districts", districts),
        # any name but the schedules page's (whichever module is mounted first)
        web.get(r"/reports/{name:(?!schedules$)[a-z0-9][a-z0-9-]{0,63}}", report),
    ]
