"""The routes of the report frame (``server.api.report_frame``; docs/API.md "Reports"): a
report's ``GET /api/v1/reports/{name}`` in JSON, CSV or XLSX, and the one drill-down route
``GET /api/v1/reports/{name}/drill`` for every report of the catalogue.

Apart from the frame because the frame is also what a scheduled run computes with
(``server.api.report_scheduler``), which needs no request; these are the request's side:
the caller's role, the format, the language of the file's header, the replica that may
answer a pure read (server/db/replica.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aiohttp import web

from server.api.doc import Param, api_doc
from server.api.report_frame import (
    FORMATS,
    GROUPS,
    Report,
    build_context,
    compute_report,
    label_header,
)
from server.api.rows import envelope, fetch_page, iter_rows, plain
from server.db.replica import reads
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import ApiError, bad_query
from server.kernel.http import json_response, q_page
from server.kernel.i18n import request_language
from server.kernel.principal import require
from server.kernel.tabular import stream_table

__all__ = ["drill_route", "report_routes"]


async def _rows_of(rows: list[dict[str, Any]], keys: Sequence[str]) -> AsyncIterator[Sequence[Any]]:
    for r in rows:
        yield [r.get(k) for k in keys]


def _params(spec: Report) -> tuple[Param, ...]:
    out: list[Param] = []
    if "period" in spec.filters:
        out += [
            Param(
                "from", "date", "first day (city time; default: [reports] default_range_days ago)"
            ),
            Param("to", "date", "last day, inclusive (default: today)"),
        ]
    if "group" in spec.filters:
        out.append(Param("group", description="period bucket", enum=GROUPS))
    if "district" in spec.filters:
        out.append(Param("district", description="6-digit district code"))
    if "company" in spec.filters:
        out.append(Param("company", description="company code or id"))
    if "station" in spec.filters:
        out.append(Param("station", description="site code or id"))
    return (*out, *spec.params)


def report_route(spec: Report) -> web.RouteDef:
    """``GET /api/v1/reports/{spec.name}``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        p = require(request, *spec.roles)
        fmt = request.query.get("format") or "json"
        if fmt not in FORMATS:
            raise bad_query("format", f"must be one of {', '.join(FORMATS)}")
        settings = request.app[SETTINGS]
        # a pure read: the replica when it is up and close enough (server/db/replica.py)
        body = await reads(request.app).run(
            lambda pool: compute_report(build_context(pool, settings, p, spec, request.query), spec)
        )
        if fmt == "json":
            return json_response(body)
        lang, _ = request_language(request)
        keys = [c.key for c in spec.columns]
        return await stream_table(
            request, fmt, spec.name, label_header(spec.columns, lang), _rows_of(body["rows"], keys)
        )

    handler.__name__ = "report_" + spec.name.replace("-", "_")
    handler.__doc__ = spec.description or spec.title_en
    decorated = api_doc(
        f"Report: {spec.title_en} ({spec.title})",
        tags=["reports"],
        roles=spec.roles,
        query=_params(spec),
        formats=FORMATS,
        description=spec.description,
    )(handler)
    return web.get(f"/api/v1/reports/{spec.name}", decorated, allow_head=False)


def drill_route(specs: Mapping[str, Report], roles: Sequence[str]) -> web.RouteDef:
    """``GET /api/v1/reports/{name}/drill``: the rows behind one count of a report."""

    @api_doc(
        "Report drill-down: the rows behind one count",
        tags=["reports"],
        roles=roles,
        query=(
            Param("measure", description="the clicked column", required=True),
            Param("format", description="json (paginated), csv or xlsx", enum=FORMATS),
        ),
        paginated=True,
        formats=FORMATS,
        description="Takes the report's own filters and its key columns' values (the "
        "catalogue's `keys`); answers the cylinders, fills, alerts, customers or events "
        "counted in that cell. CSV/XLSX stream every row.",
    )
    async def report_drill(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        spec = specs.get(name)
        if spec is None:
            raise ApiError(404, "not_found", f"no report {name!r}", {"report": name})
        p = require(request, *spec.roles)
        if spec.drill is None:
            raise bad_query("measure", "this report has no drill-down")
        measure = request.query.get("measure") or ""
        col = next((c for c in spec.columns if c.key == measure), None)
        if col is None or col.drill is None:
            drillable = [c.key for c in spec.columns if c.drill]
            raise bad_query("measure", f"must be one of {', '.join(drillable)}")
        fmt = request.query.get("format") or "json"
        if fmt not in FORMATS:
            raise bad_query("format", f"must be one of {', '.join(FORMATS)}")
        ctx = build_context(request.app[POOL], request.app[SETTINGS], p, spec, request.query)
        keys = {k: request.query[k] for k in spec.keys if request.query.get(k)}
        dq = spec.drill(ctx, measure, keys)
        header = [c.key for c in dq.columns]
        if fmt == "json":
            page = q_page(request)
            cap = ctx.settings.reports.drill_page_size_max
            if page.page_size > cap:
                raise bad_query("page_size", f"at most {cap}")
            rows, total = await reads(request.app).run(
                lambda pool: fetch_page(pool, dq.select, dq.from_where, dq.order, dq.q, page)
            )
            body = envelope([plain(r) for r in rows], page, total)
            body["columns"] = [c.as_json() for c in dq.columns]
            body["target"] = col.drill
            return json_response(body)
        lang, _ = request_language(request)
        sql = f"SELECT {dq.select} FROM {dq.from_where} ORDER BY {dq.order}"
        return await stream_table(
            request,
            fmt,
            f"{spec.name}-{measure}",
            label_header(dq.columns, lang),
            reads(request.app).iterate(lambda pool: iter_rows(pool, sql, dq.q.params, header)),
        )

    return web.get("/api/v1/reports/{name}/drill", report_drill, allow_head=False)


def report_routes(specs: Sequence[Report]) -> list[web.RouteDef]:
    """One route per spec; the drill-down route is added by the catalogue."""
    return [report_route(s) for s in specs]
