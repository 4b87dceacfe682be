"""What a subscription starts with: the current state, read from PostgreSQL in scope.

- ``alerts``: alerts not yet resolved (open or acknowledged), newest first, in the caller's
  scope (`server.kernel.scope.scope_where`) and filter, at most ``snapshot_alerts_max``.
- ``positions``: every vehicle's latest stored position (``devices.lat/lon``) and, when a
  bbox is given, the cylinders last seen inside it, newest first; together at most
  ``snapshot_positions_max`` rows. Rows have the live shape (``kind, id, lat, lon, ts``).
- ``kpis``: the current KPI row (`realtime.kpis`).
- ``wall``: the layout the subscriber's wall shows now (`realtime.wall`).
- ``inbox``: the subscriber's counts, ``{kind: "counts", messages, notices}`` (unread
  messages, notices awaiting their signature: `server.db.messages.unread_counts`).
- ``fills``, ``events``, ``devices``: streams, no snapshot.

Rows are shaped exactly like the live rows (ISO times, ``district`` not
``district_code``) so that a client handles both alike and the hub can recognise a live
row the snapshot already holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from realtime import protocol as proto
from realtime import wall
from realtime.scope import LiveFilter, Rule
from server.db.messages import unread_counts
from server.domain.messages import CHANNEL_INBOX
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Realtime

Row = Mapping[str, Any]
KpiSnapshot = Callable[[Principal, LiveFilter], Awaitable[list[Row]]]

ALERT_COLUMNS = (
    "id",
    "kind",
    "severity",
    "subject_type",
    "subject_id",
    "company_id",
    "site_id",
    "district_code",
    "cylinder_id",
    "state",
    "count",
    "first_at",
    "last_at",
    "lat",
    "lon",
    "details",
)


def alert_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """An alerts row as live alert events carry it."""
    out: dict[str, Any] = {}
    for name in ALERT_COLUMNS:
        value = record[name]
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        out["district" if name == "district_code" else name] = value
    if out["details"] is None:
        out["details"] = {}
    return out


def _filter_sql(
    flt: LiveFilter,
    q: Sql,
    *,
    alias: str,
    district: str | None,
    company: str,
    lat: str = "lat",
    lon: str = "lon",
) -> list[str]:
    where: list[str] = []
    if flt.district is not None and district is not None:
        where.append(f"{alias}.{district} = {q.add(flt.district)}")
    if flt.company_id is not None:
        where.append(f"{alias}.{company} = {q.add(flt.company_id)}")
    if flt.bbox is not None:
        w, s, e, n = flt.bbox
        where.append(f"{alias}.{lat} BETWEEN {q.add(s)} AND {q.add(n)}")
        where.append(f"{alias}.{lon} BETWEEN {q.add(w)} AND {q.add(e)}")
    return where


async def alerts_snapshot(
    pool: asyncpg.Pool, p: Principal, flt: LiveFilter, limit: int
) -> list[Row]:
    q = Sql()
    where = ["a.state <> 'resolved'", scope_where(p, "alerts", "a", q)]
    where += _filter_sql(flt, q, alias="a", district="district_code", company="company_id")
    sql = (
        f"SELECT {', '.join('a.' + c for c in ALERT_COLUMNS)} FROM alerts a"
        f" WHERE {' AND '.join(where)} ORDER BY a.last_at DESC LIMIT {q.add(limit)}"
    )
    return [alert_row(r) for r in await pool.fetch(sql, *q.params)]


def _vehicle_scope(rule: Rule, q: Sql) -> str:
    """Vehicles follow the positions rule; a vehicle's district is its home site's."""
    if rule.kind == "all":
        return "TRUE"
    if rule.kind == "district":
        return (
            f"d.site_id IN (SELECT id FROM sites WHERE district_code = ANY("
            f"{q.add(sorted(map(str, rule.values)))}))"
        )
    if rule.kind == "company":
        return f"d.company_id = ANY({q.add(sorted(int(v) for v in rule.values))})"
    return "FALSE"


def _epoch_ms(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


async def positions_snapshot(
    pool: asyncpg.Pool, p: Principal, rule: Rule, flt: LiveFilter, limit: int
) -> list[Row]:
    q = Sql()
    where = [
        "d.kind = 'vehicle'",
        "d.active",
        "d.lat IS NOT NULL",
        "d.lon IS NOT NULL",
        _vehicle_scope(rule, q),
    ]
    if flt.district is not None:
        where.append(
            f"d.site_id IN (SELECT id FROM sites WHERE district_code = {q.add(flt.district)})"
        )
    where += _filter_sql(flt, q, alias="d", district=None, company="company_id")
    rows: list[Row] = [
        {
            "kind": "vehicle",
            "id": r["device_id"],
            "lat": r["lat"],
            "lon": r["lon"],
            "ts": _epoch_ms(r["last_seen_at"]),
            "speed_kmh": None,
            "heading": None,
        }
        for r in await pool.fetch(
            f"SELECT d.device_id, d.lat, d.lon, d.last_seen_at FROM devices d"
            f" WHERE {' AND '.join(where)} ORDER BY d.last_seen_at DESC NULLS LAST"
            f" LIMIT {q.add(limit)}",
            *q.params,
        )
    ]
    room = limit - len(rows)
    if flt.bbox is None or room <= 0:
        return rows
    q = Sql()
    where = ["c.last_seen_at IS NOT NULL", scope_where(p, "cylinders", "c", q)]
    where += _filter_sql(flt, q, alias="c", district="district_code", company="owner_company_id")
    rows += [
        {
            "kind": "cylinder",
            "id": r["tag"],
            "lat": r["lat"],
            "lon": r["lon"],
            "ts": _epoch_ms(r["last_seen_at"]),
            "speed_kmh": None,
            "heading": None,
        }
        for r in await pool.fetch(
            f"SELECT c.tag, c.lat, c.lon, c.last_seen_at FROM cylinders c"
            f" WHERE {' AND '.join(where)} ORDER BY c.last_seen_at DESC LIMIT {q.add(room)}",
            *q.params,
        )
    ]
    return rows


def make_snapshot(
    pool: asyncpg.Pool, settings: Realtime, kpis: KpiSnapshot
) -> Callable[[Principal, str, Rule, LiveFilter], Awaitable[list[Row] | None]]:
    """The hub's snapshot function for this app."""

    async def snapshot(p: Principal, channel: str, rule: Rule, flt: LiveFilter) -> list[Row] | None:
        if channel == proto.ALERTS:
            return await alerts_snapshot(pool, p, flt, settings.snapshot_alerts_max)
        if channel == proto.POSITIONS:
            return await positions_snapshot(pool, p, rule, flt, settings.snapshot_positions_max)
        if channel == proto.KPIS:
            return await kpis(p, flt)
        if channel == CHANNEL_INBOX:
            return [{"kind": "counts", **await unread_counts(pool, p.user_id)}]
        if channel == wall.CHANNEL_WALL:
            return await wall.snapshot(pool, rule)
        return None

    return snapshot
