"""Page-data endpoints of the dashboard map, scoped by role in SQL (docs/ARCHITECTURE.md §7).

Why endpoints of its own instead of the REST list endpoints: the map needs aggregate and
bulk shapes no list endpoint gives — counts of full and empty cylinders and open alerts per
site, and up to hundreds of thousands of cylinder positions at customers. Those are
computed in one SQL statement each, and positions travel as a compact array
(``[[lat, lon, status_code], …]``, gzip'd), about 25 bytes per cylinder before compression
instead of a JSON object per row. Every query adds ``server.kernel.scope.scope_where`` for the
caller, so rows outside the scope are never read.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

import asyncpg
from aiohttp import web

from server.db.compliance import (
    COMPLIANCE_VALUES,
    ComplianceBounds,
    compliance_case,
    compliance_where,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_query, error_response
from server.kernel.http import json_response
from server.kernel.principal import Principal, principal_of
from server.kernel.scope import Sql, can_read, scope_where

__all__ = [
    "COMPLIANCE_CODES",
    "FilterOptions",
    "MapFilter",
    "filter_options",
    "routes",
]

COMPLIANCE_CODES: tuple[str, ...] = tuple(reversed(COMPLIANCE_VALUES))
"""Position ``i`` of this tuple is status code ``i`` in the compact cylinder array: the
domain's precedence reversed, least severe first (``ok`` … ``scrapped``). The map's colours
(``STATUS_COLORS`` in static/js/map-clusters.js) are listed in this order."""

_DISTRICT_RE = re.compile(r"^[0-9]{6}$")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_errors(handler: Handler) -> Handler:
    """Answer errors in the API's JSON shape whatever the Accept header (these are data
    endpoints: the server's error middleware picks HTML outside ``/api/``)."""

    @wraps(handler)
    async def inner(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    return inner


def _caller(request: web.Request) -> Principal:
    p = principal_of(request)
    if p is None:
        raise ApiError(401, errors.UNAUTHORIZED, "log in first")
    return p


@dataclass(frozen=True)
class MapFilter:
    """The dashboard's filters: district, company, compliance status (all optional)."""

    district: str | None = None
    company: int | None = None
    compliance: str | None = None

    @classmethod
    def parse(cls, request: web.Request) -> MapFilter:
        district = request.query.get("district") or None
        if district is not None and not _DISTRICT_RE.match(district):
            raise bad_query("district", "expected a 6-digit administrative division code")
        raw_company = request.query.get("company") or None
        company: int | None = None
        if raw_company is not None:
            try:
                company = int(raw_company)
            except ValueError:
                raise bad_query("company", f"expected a company id, got {raw_company!r}") from None
            if not 1 <= company <= 2**63 - 1:
                raise bad_query("company", "out of range")
        compliance = request.query.get("compliance") or None
        if compliance is not None and compliance not in COMPLIANCE_CODES:
            raise bad_query("compliance", f"must be one of {', '.join(COMPLIANCE_CODES)}")
        return cls(district, company, compliance)


def _bounds(request: web.Request) -> ComplianceBounds:
    settings = request.app[SETTINGS]
    return ComplianceBounds.of(city_today(settings), settings.dates)


async def sites(request: web.Request) -> web.Response:
    """Sites with live counts: full and empty cylinders on site, open alerts.

    Counts only cylinders and alerts the caller may see (both scopes apply, not only the
    site's), so a company admin looking at a shared store counts only its own cylinders.
    """
    p = _caller(request)
    f = MapFilter.parse(request)
    q = Sql()
    where = [scope_where(p, "sites", "s", q), "s.kind <> 'inspection_agency'", "s.lat IS NOT NULL"]
    if f.district:
        where.append(f"s.district_code = {q.add(f.district)}")
    if f.company:
        where.append(f"s.company_id = {q.add(f.company)}")
    cyl_scope = scope_where(p, "cylinders", "c", q)
    alert_scope = scope_where(p, "alerts", "a", q)
    cyl_filter = ""
    if f.compliance:
        cyl_filter = " AND " + compliance_where(f.compliance, "c", q, _bounds(request))
    sql = f"""
        SELECT s.id, s.code, s.name, s.kind, s.company_id, co.name AS company_name,
               s.district_code AS district, s.lat, s.lon, s.permitted_full_storage,
               coalesce(cc.full, 0) AS full, coalesce(cc.empty, 0) AS empty,
               coalesce(al.open, 0) AS open_alerts
          FROM sites s
          LEFT JOIN companies co ON co.id = s.company_id
          LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE c.fill_state = 'full') AS full,
                       count(*) FILTER (WHERE c.fill_state = 'empty') AS empty
                  FROM cylinders c
                 WHERE c.location_site_id = s.id AND c.location_kind = 'site'
                   AND {cyl_scope}{cyl_filter}) cc ON TRUE
          LEFT JOIN LATERAL (
                SELECT count(*) AS open FROM alerts a
                 WHERE a.site_id = s.id AND a.state <> 'resolved' AND {alert_scope}) al ON TRUE
         WHERE {" AND ".join(where)}
         ORDER BY s.code"""
    rows = await request.app[POOL].fetch(sql, *q.params)
    settings = request.app[SETTINGS].alerts
    default_storage = {
        "store": settings.default_storage_store,
        "filling_station": settings.default_storage_filling_station,
        "warehouse": settings.default_storage_warehouse,
    }
    items = []
    for r in rows:
        item = dict(r.items())
        if item["permitted_full_storage"] is None:
            item["permitted_full_storage"] = default_storage.get(item["kind"])
        items.append(item)
    return json_response({"items": items})


def _at_customers(p: Principal, f: MapFilter, q: Sql, b: ComplianceBounds) -> list[str]:
    """Cylinders at customers with a position, in scope and filtered: the points of the
    compact array and the ones a click on a point looks up again."""
    where = [
        scope_where(p, "cylinders", "c", q),
        "c.location_kind = 'customer'",
        "coalesce(c.lat, cu.lat) IS NOT NULL",
    ]
    if f.district:
        where.append(f"c.district_code = {q.add(f.district)}")
    if f.company:
        where.append(f"c.owner_company_id = {q.add(f.company)}")
    if f.compliance:
        where.append(compliance_where(f.compliance, "c", q, b))
    return where


async def cylinders(request: web.Request) -> web.StreamResponse:
    """Positions of cylinders at customers as one compact, compressed array.

    ``{"statuses": [...], "rows": [[lat, lon, status_code], ...], "count": n}``. The array
    is built by PostgreSQL (``json_agg``) and passed through as text, so the server never
    holds a Python object per cylinder; coordinates are rounded to 1e-5° (about a metre).
    """
    p = _caller(request)
    f = MapFilter.parse(request)
    q = Sql()
    b = _bounds(request)
    where = _at_customers(p, f, q, b)
    case = compliance_case("c", q, b)
    codes = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(COMPLIANCE_CODES))
    sql = f"""
        SELECT count(*) AS n, coalesce(json_agg(json_build_array(
                   round(coalesce(c.lat, cu.lat)::numeric, 5),
                   round(coalesce(c.lon, cu.lon)::numeric, 5),
                   CASE {case} {codes} END))::text, '[]') AS rows
          FROM cylinders c
          LEFT JOIN customers cu ON cu.id = c.location_customer_id
         WHERE {" AND ".join(where)}"""
    row = await request.app[POOL].fetchrow(sql, *q.params)
    assert row is not None
    statuses = ",".join(f'"{c}"' for c in COMPLIANCE_CODES)
    body = f'{{"statuses":[{statuses}],"count":{int(row["n"])},"rows":{row["rows"]}}}'
    resp = web.Response(text=body, content_type="application/json")
    resp.headers["Cache-Control"] = "private, max-age=30"
    resp.enable_compression()
    return resp


def _coordinate(request: web.Request, name: str, limit: int) -> Decimal:
    """A point of the compact array: the degrees as it printed them (5 decimals)."""
    raw = request.query.get(name, "")
    try:
        value = Decimal(raw).quantize(Decimal("0.00001"))
    except (InvalidOperation, ValueError):
        raise bad_query(name, "expected degrees, e.g. 34.81234") from None
    if not value.is_finite() or abs(value) > limit:
        raise bad_query(name, f"must be within ±{limit}")
    return value


async def cylinders_at(request: web.Request) -> web.Response:
    """The cylinders drawn at one point of :func:`cylinders` (a click on the map), so the
    dashboard can open a cylinder's card (GET /api/v1/cylinders/{id}).

    ``?lat=&lon=`` as the compact array printed them, plus the map's filters; the same
    rounding, scope and filters find the point again. A point is a customer's door, so only a
    role that may read positions gets an answer (``server.kernel.scope``); the others get an
    empty list. At most ``[http] page_size_default`` rows: a door holds a few cylinders.
    """
    p = _caller(request)
    f = MapFilter.parse(request)
    lat, lon = _coordinate(request, "lat", 90), _coordinate(request, "lon", 180)
    if not can_read(p, "positions"):
        return json_response({"items": []})
    q = Sql()
    b = _bounds(request)
    where = _at_customers(p, f, q, b)
    where.append(f"round(coalesce(c.lat, cu.lat)::numeric, 5) = {q.add(lat)}")
    where.append(f"round(coalesce(c.lon, cu.lon)::numeric, 5) = {q.add(lon)}")
    case = compliance_case("c", q, b)
    limit = request.app[SETTINGS].http.page_size_default
    rows = await request.app[POOL].fetch(
        f"""SELECT c.id, c.tag, {case} AS compliance
              FROM cylinders c LEFT JOIN customers cu ON cu.id = c.location_customer_id
             WHERE {" AND ".join(where)} ORDER BY c.tag LIMIT {int(limit)}""",
        *q.params,
    )
    return json_response({"items": [dict(r.items()) for r in rows]})


async def vehicles(request: web.Request) -> web.Response:
    """Last known position of each delivery vehicle in scope (live moves come from /ws)."""
    p = _caller(request)
    f = MapFilter.parse(request)
    q = Sql()
    where = [
        scope_where(p, "devices", "d", q),
        "d.kind = 'vehicle'",
        "d.lat IS NOT NULL",
        "d.active",
    ]
    if f.company:
        where.append(f"d.company_id = {q.add(f.company)}")
    rows = await request.app[POOL].fetch(
        f"""SELECT d.device_id AS id, d.name, d.plate_no, d.company_id, d.online, d.lat, d.lon,
                   d.last_seen_at AS ts
              FROM devices d WHERE {" AND ".join(where)} ORDER BY d.device_id""",
        *q.params,
    )
    return json_response({"items": [dict(r.items()) for r in rows]})


@dataclass(frozen=True)
class FilterOptions:
    """Choices offered by the pages' filter forms, limited to the caller's scope."""

    districts: list[dict[str, Any]]
    companies: list[dict[str, Any]]
    stations: list[dict[str, Any]]


async def filter_options(
    pool: asyncpg.Pool, p: Principal, *, with_stations: bool = False
) -> FilterOptions:
    """Districts (a district-scoped regulator sees only theirs), companies, stations."""
    q = Sql()
    where = "TRUE"
    if p.role in ("regulator", "officer") and p.districts:
        where = f"code = ANY({q.add(list(p.districts))})"
    districts = await pool.fetch(
        f"SELECT code, name, name_en FROM districts WHERE {where} ORDER BY code", *q.params
    )
    q = Sql()
    companies = await pool.fetch(
        f"SELECT id, code, name FROM companies c WHERE {scope_where(p, 'companies', 'c', q)}"
        " ORDER BY name",
        *q.params,
    )
    stations: Sequence[asyncpg.Record] = []
    if with_stations:
        q = Sql()
        stations = await pool.fetch(
            f"""SELECT id, code, name FROM sites s
                 WHERE s.kind = 'filling_station' AND {scope_where(p, "sites", "s", q)}
                 ORDER BY code""",
            *q.params,
        )
    return FilterOptions(
        [dict(r.items()) for r in districts],
        [dict(r.items()) for r in companies],
        [dict(r.items()) for r in stations],
    )


async def district_boundaries(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every district with its boundary (boundaries are public geography, not scoped data)."""
    rows = await pool.fetch("SELECT code, name, name_en, boundary FROM districts ORDER BY code")
    return [dict(r.items()) for r in rows]


def routes() -> list[web.RouteDef]:
    return [
        web.get("/dashboard/data/sites", json_errors(sites)),
        web.get("/dashboard/data/cylinders", json_errors(cylinders)),
        web.get("/dashboard/data/cylinders/at", json_errors(cylinders_at)),
        web.get("/dashboard/data/vehicles", json_errors(vehicles)),
    ]
