"""The wall's data feeds: chart aggregates, KPI snapshot, latest alerts, districts, vehicles.

Why these exist beside ``/ws``: charts are aggregates over a day or a month, not streams,
and a wall needs something on screen the moment it (re)starts — before the first ``kpis``
frame or the next vehicle position arrives. Every query adds the caller's scope in SQL
(``server.kernel.scope.scope_where``), so a district-scoped wall account counts only its districts.

Why the cache: a city runs several walls (and regulators leave the wall open in tabs); each
asks every ``chart_refresh_s``. Answers are shared per *scope* (not per user) for
``feed_cache_s``, and concurrent misses for the same scope wait on one query
(single flight), so N walls cost one set of aggregates per period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from big_screen.kiosk import WALL_ROLES
from server.db.alerts import alert_json
from server.db.compliance import ComplianceBounds, compliance_case
from server.db.replica import reads
from server.kernel.appkeys import SETTINGS
from server.kernel.http import json_response
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Settings

FEED_CACHE: web.AppKey[FeedCache] = web.AppKey("big_screen_feed_cache")


class FeedCache:
    """Time-bounded answers per key with single flight; expired entries are dropped on write."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self.computed = 0

    def reset(self, ttl_s: float | None = None) -> None:
        """Forget every answer (and optionally change the period): for tests and reloads."""
        self._entries.clear()
        self.computed = 0
        if ttl_s is not None:
            self.ttl_s = ttl_s

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fill(key, compute))
            self._inflight[key] = pending
        # shield: one caller going away (a wall closing its tab) must not cancel the others'
        return await asyncio.shield(pending)

    async def _fill(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await compute()
            self.computed += 1
            now = time.monotonic()
            for stale in [k for k, (exp, _) in self._entries.items() if exp <= now]:
                del self._entries[stale]
            self._entries[key] = (now + self.ttl_s, value)
            return value
        finally:
            self._inflight.pop(key, None)


def scope_key(p: Principal) -> Hashable:
    """Principals that see the same rows share cache entries (city-wide ones all share one)."""
    if p.city_wide:
        return ("city",)
    return (p.role, tuple(sorted(p.districts)), p.company_id, p.site_id)


def _wall_principal(request: web.Request) -> Principal:
    return require(request, *WALL_ROLES)


def _day_bounds(tz_name: str) -> tuple[dt.date, dt.datetime]:
    tz = ZoneInfo(tz_name)
    now = dt.datetime.now(tz)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.date(), start


async def _kpis(
    db: asyncpg.Connection, p: Principal, bounds: ComplianceBounds, day: dt.date, start: dt.datetime
) -> dict[str, int]:
    q = Sql()
    # one CASE per row (the API's definition of compliance), counted by value: every
    # parameter is used, and the table is read once
    row = await db.fetchrow(
        f"""SELECT count(*) AS registered,
                   count(*) FILTER (WHERE x.status = 'in_service') AS in_service,
                   count(*) FILTER (WHERE x.st = 'inspection_due') AS inspection_due,
                   count(*) FILTER (WHERE x.st = 'overdue') AS overdue,
                   count(*) FILTER (WHERE x.st = 'scrapped') AS scrapped
            FROM (SELECT c.status, {compliance_case("c", q, bounds)} AS st
                  FROM cylinders c WHERE {scope_where(p, "cylinders", "c", q)}) x""",
        *q.params,
    )
    assert row is not None
    out = {k: int(v) for k, v in row.items()}
    q = Sql()
    out["fills_today"] = int(
        await db.fetchval(
            f"""SELECT count(*) FROM fills f
            WHERE f.ts >= {q.add(start)} AND {scope_where(p, "fills", "f", q)}""",
            *q.params,
        )
        or 0
    )
    q = Sql()
    out["denials_today"] = int(
        await db.fetchval(
            f"""SELECT coalesce(sum(d.count), 0) FROM fill_denials_daily d
            JOIN sites s ON s.id = d.station_id
            WHERE d.day = {q.add(day)} AND {scope_where(p, "sites", "s", q)}""",
            *q.params,
        )
        or 0
    )
    q = Sql()
    out["open_alerts"] = int(
        await db.fetchval(
            f"""SELECT count(*) FROM alerts a
            WHERE a.state <> 'resolved' AND {scope_where(p, "alerts", "a", q)}""",
            *q.params,
        )
        or 0
    )
    return out


async def compute_charts(pool: asyncpg.Pool, p: Principal, settings: Settings) -> dict[str, Any]:
    """Every aggregate the wall draws, in one answer (one round of queries per period)."""
    cfg = settings.big_screen
    tz_name = settings.alerts.timezone
    day, start = _day_bounds(tz_name)
    bounds = ComplianceBounds.of(day, settings.dates)
    async with pool.acquire() as db:
        kpis = await _kpis(db, p, bounds, day, start)

        q = Sql()
        rows = await db.fetch(
            f"""SELECT extract(hour FROM f.ts AT TIME ZONE {q.add(tz_name)})::int AS h,
                       count(*) AS n
                FROM fills f WHERE f.ts >= {q.add(start)} AND {scope_where(p, "fills", "f", q)}
                GROUP BY 1""",
            *q.params,
        )
        per_hour = [0] * 24
        for r in rows:
            per_hour[r["h"]] = int(r["n"])

        q = Sql()
        denials = [
            {"reason": r["reason"], "count": int(r["n"])}
            for r in await db.fetch(
                f"""SELECT d.reason, sum(d.count) AS n FROM fill_denials_daily d
                    JOIN sites s ON s.id = d.station_id
                    WHERE d.day = {q.add(day)} AND {scope_where(p, "sites", "s", q)}
                    GROUP BY d.reason ORDER BY n DESC""",
                *q.params,
            )
        ]

        q = Sql()
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=cfg.ranking_days)
        ranking = [
            {"company_id": r["company_id"], "name": r["name"], "count": int(r["n"])}
            for r in await db.fetch(
                f"""SELECT a.company_id, co.name, sum(a.count) AS n FROM alerts a
                    JOIN companies co ON co.id = a.company_id
                    WHERE a.last_at >= {q.add(since)} AND {scope_where(p, "alerts", "a", q)}
                    GROUP BY a.company_id, co.name ORDER BY n DESC, co.name
                    LIMIT {q.add(cfg.ranking_top)}""",
                *q.params,
            )
        ]

        q = Sql()
        by_district = [
            {
                "district": r["code"],
                "name": r["name"],
                "name_en": r["name_en"],
                "inspection_due": int(r["due"]),
                "overdue": int(r["overdue"]),
            }
            for r in await db.fetch(
                f"""SELECT x.code, d.name, d.name_en,
                           count(*) FILTER (WHERE x.st = 'inspection_due') AS due,
                           count(*) FILTER (WHERE x.st = 'overdue') AS overdue
                    FROM (SELECT c.district_code AS code, {compliance_case("c", q, bounds)} AS st
                          FROM cylinders c
                          WHERE c.district_code IS NOT NULL
                            AND {scope_where(p, "cylinders", "c", q)}) x
                    LEFT JOIN districts d ON d.code = x.code
                    GROUP BY x.code, d.name, d.name_en
                    ORDER BY x.code""",
                *q.params,
            )
        ]
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "day": day.isoformat(),
        "kpis": kpis,
        "fills_per_hour": per_hour,
        "denials_by_reason": denials,
        "companies_by_anomalies": ranking,
        "ranking_days": cfg.ranking_days,
        "inspection_by_district": by_district,
    }


async def charts(request: web.Request) -> web.Response:
    """GET /big-screen/data/charts: KPI snapshot and every chart's series."""
    p = _wall_principal(request)
    app = request.app
    data = await app[FEED_CACHE].get(
        ("charts", scope_key(p)),
        lambda: reads(app).run(lambda pool: compute_charts(pool, p, app[SETTINGS])),
    )
    return json_response(data)


async def alerts(request: web.Request) -> web.Response:
    """GET /big-screen/data/alerts: the latest unresolved alerts (ticker and markers at start)."""
    p = _wall_principal(request)
    app = request.app
    limit = app[SETTINGS].big_screen.alerts_snapshot

    async def compute() -> list[dict[str, Any]]:
        q = Sql()
        sql = f"""SELECT a.*, co.name AS company_name FROM alerts a
                LEFT JOIN companies co ON co.id = a.company_id
                WHERE a.state <> 'resolved' AND {scope_where(p, "alerts", "a", q)}
                ORDER BY a.last_at DESC LIMIT {q.add(limit)}"""
        rows = await reads(app).run(lambda pool: pool.fetch(sql, *q.params))
        return [{**alert_json(r), "company_name": r["company_name"]} for r in rows]

    return json_response({"items": await app[FEED_CACHE].get(("alerts", scope_key(p)), compute)})


async def districts(request: web.Request) -> web.Response:
    """GET /big-screen/data/districts: boundaries as GeoJSON (the same for every wall)."""
    _wall_principal(request)
    app = request.app

    async def compute() -> dict[str, Any]:
        sql = "SELECT code, name, name_en, boundary FROM districts ORDER BY code"
        rows = await reads(app).run(lambda pool: pool.fetch(sql))
        return {
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

    return json_response(await app[FEED_CACHE].get(("districts",), compute))


async def vehicles(request: web.Request) -> web.Response:
    """GET /big-screen/data/vehicles: vehicles with a recent position (the map at start)."""
    p = _wall_principal(request)
    app = request.app
    minutes = app[SETTINGS].big_screen.vehicles_snapshot_min

    async def compute() -> list[dict[str, Any]]:
        q = Sql()
        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
        sql = f"""SELECT d.device_id, d.lat, d.lon, d.plate_no,
                       coalesce(d.position_at, d.last_seen_at) AS at FROM devices d
                WHERE d.kind = 'vehicle' AND d.lat IS NOT NULL AND d.lon IS NOT NULL
                  AND coalesce(d.position_at, d.last_seen_at) >= {q.add(since)}
                  AND {scope_where(p, "devices", "d", q)}"""
        rows = await reads(app).run(lambda pool: pool.fetch(sql, *q.params))
        return [
            {
                "kind": "vehicle",
                "id": r["device_id"],
                "lat": r["lat"],
                "lon": r["lon"],
                "plate_no": r["plate_no"],
                "ts": int(r["at"].timestamp() * 1000),
            }
            for r in rows
        ]

    return json_response({"items": await app[FEED_CACHE].get(("vehicles", scope_key(p)), compute)})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/big-screen/data/charts", charts),
        web.get("/big-screen/data/alerts", alerts),
        web.get("/big-screen/data/districts", districts),
        web.get("/big-screen/data/vehicles", vehicles),
    ]
