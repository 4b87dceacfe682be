"""City KPIs for the ``kpis`` channel, computed once per tick for every scope at once.

Every ``kpi_interval_s`` (only while someone subscribes) four aggregate queries read the
city grouped by its scope keys — cylinders by (district, owner company), today's fills by
(district, company, station), today's refusals (``events.kind = 'fill_refused'``) and the
unresolved alerts by (district, company, site). The result is a few hundred "cells". A
subscriber's KPIs are the sum of the cells its scope and filter admit, decided by the
same predicates as live rows (`realtime.scope`), so a company admin's tiles and its live
rows can never disagree, and 1,000 screens in 30 scopes cost four queries per tick, not
30 or 1,000.

Compliance is counted with the one SQL builder, ``server.db.compliance`` (a CASE generated
from the domain's precedence, thresholds from ``[dates]``), so these tiles, the REST lists
and the wall count the same cylinders the same way. Days and "today" are the city's
(``[alerts] timezone``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from realtime.hub import GroupKey, Hub, KpiGroup
from realtime.scope import NONE, LiveFilter, Rule, compile_predicate, rule_for
from server.db.compliance import COMPLIANCE_VALUES, ComplianceBounds, compliance_case
from server.domain.localtime import city_zone
from server.domain.statuses import IN_SERVICE
from server.kernel.events import Event
from server.kernel.principal import Principal
from server.kernel.scope import Sql
from server.kernel.settings import Alerts, Settings

log = logging.getLogger(__name__)

CYLINDER_FIELDS: Final = (
    "registered",
    "in_service",
    "scrapped",
    "overdue",
    "scrap_due",
    "inspection_due",
)
# Entities whose scope decides each group of KPIs, in GroupKey.extra order.
KPI_ENTITIES: Final = ("cylinders", "fills", "events", "alerts")


def cylinders_sql(bounds: ComplianceBounds) -> tuple[str, list[Any]]:
    """Cylinders by (district, owner company): registered, in service, and by compliance.

    One CASE per row, counted by value (the table is read once). Each compliance status
    named in :data:`CYLINDER_FIELDS` is a column; ``ok`` is what remains.
    """
    q = Sql()
    case = compliance_case("", q, bounds)
    by_status = ",\n       ".join(
        f"count(*) FILTER (WHERE st = '{s}') AS {s}"
        for s in COMPLIANCE_VALUES
        if s in CYLINDER_FIELDS
    )
    sql = f"""
SELECT district_code, owner_company_id,
       count(*) AS registered,
       count(*) FILTER (WHERE status = '{IN_SERVICE}') AS in_service,
       {by_status}
  FROM (SELECT district_code, owner_company_id, status, {case} AS st FROM cylinders) c
 GROUP BY district_code, owner_company_id
"""
    return sql, q.params


FILLS_SQL: Final = """
SELECT district_code, company_id, station_id AS site_id, count(*) AS n
  FROM fills WHERE ts >= $1 GROUP BY 1, 2, 3
"""
DENIALS_SQL: Final = """
SELECT district_code, company_id, site_id, count(*) AS n
  FROM events WHERE ts >= $1 AND kind = 'fill_refused' GROUP BY 1, 2, 3
"""
ALERTS_SQL: Final = """
SELECT district_code, company_id, site_id, count(*) AS n,
       count(*) FILTER (WHERE severity = 'critical') AS critical
  FROM alerts WHERE state <> 'resolved' GROUP BY 1, 2, 3
"""


@dataclass(frozen=True, slots=True)
class Cells:
    """The city's counts by scope keys at one moment; cells are Events for the predicates."""

    cylinders: Sequence[Event]
    fills: Sequence[Event]
    denials: Sequence[Event]
    alerts: Sequence[Event]
    as_of: str
    computed_at: float
    query_ms: float


def _cell(row: Mapping[str, Any], company: str, site: str | None = None) -> Event:
    return Event(
        "kpis",
        dict(row),
        district=row["district_code"],
        company_id=row[company],
        site_id=row[site] if site else None,
    )


def local_midnight(rules: Alerts, now: dt.datetime | None = None) -> dt.datetime:
    local = (now or dt.datetime.now(dt.UTC)).astimezone(city_zone(rules))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def read_cells(pool: asyncpg.Pool, settings: Settings) -> Cells:
    started = time.perf_counter()
    midnight = local_midnight(settings.alerts)
    cyl_sql, cyl_params = cylinders_sql(ComplianceBounds.of(midnight.date(), settings.dates))
    async with pool.acquire() as conn:
        cyl = await conn.fetch(cyl_sql, *cyl_params)
        fills = await conn.fetch(FILLS_SQL, midnight)
        denials = await conn.fetch(DENIALS_SQL, midnight)
        alerts = await conn.fetch(ALERTS_SQL)
    elapsed = (time.perf_counter() - started) * 1000
    return Cells(
        cylinders=[_cell(r, "owner_company_id") for r in cyl],
        fills=[_cell(r, "company_id", "site_id") for r in fills],
        denials=[_cell(r, "company_id", "site_id") for r in denials],
        alerts=[_cell(r, "company_id", "site_id") for r in alerts],
        as_of=dt.datetime.now(dt.UTC).isoformat(),
        computed_at=time.monotonic(),
        query_ms=elapsed,
    )


def kpi_rules(p: Principal) -> tuple[Rule, ...]:
    return tuple(rule_for(p, entity) for entity in KPI_ENTITIES)


def _sum(
    cells: Sequence[Event], rule: Rule, flt: LiveFilter, fields: Sequence[str]
) -> dict[str, int | None]:
    if rule == NONE:
        return dict.fromkeys(fields)
    test = compile_predicate(rule, flt)
    totals = dict.fromkeys(fields, 0)
    for cell in cells:
        if test is None or test(cell):
            for f in fields:
                totals[f] = (totals[f] or 0) + int(cell.data[f])
    return dict(totals)


def kpi_row(cells: Cells, rules: tuple[Rule, ...], flt: LiveFilter) -> dict[str, Any]:
    """One subscriber's KPIs: the cells its scope and filter admit, summed."""
    cyl_rule, fills_rule, events_rule, alerts_rule = rules
    row: dict[str, Any] = {"as_of": cells.as_of}
    row.update(_sum(cells.cylinders, cyl_rule, flt, CYLINDER_FIELDS))
    row["fills_today"] = _sum(cells.fills, fills_rule, flt, ("n",))["n"]
    row["denials_today"] = _sum(cells.denials, events_rule, flt, ("n",))["n"]
    open_alerts = _sum(cells.alerts, alerts_rule, flt, ("n", "critical"))
    row["open_alerts"] = open_alerts["n"]
    row["critical_alerts"] = open_alerts["critical"]
    return row


class KpiService:
    """Computes the cells at most once per interval and feeds every KPI group."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, hub: Hub) -> None:
        self.pool = pool
        self.settings = settings
        self.hub = hub
        self.interval = settings.realtime.kpi_interval_s
        self.cells: Cells | None = None
        self.ticks = 0
        self._lock = asyncio.Lock()

    async def current(self) -> Cells:
        """Cells no older than one interval (shared by concurrent callers)."""
        async with self._lock:
            cells = self.cells
            if cells is None or time.monotonic() - cells.computed_at >= self.interval:
                cells = self.cells = await read_cells(self.pool, self.settings)
            return cells

    async def snapshot(self, p: Principal, flt: LiveFilter) -> list[Mapping[str, Any]]:
        return [kpi_row(await self.current(), kpi_rules(p), flt)]

    def group_key(self, p: Principal, flt: LiveFilter) -> GroupKey:
        rules = kpi_rules(p)
        return GroupKey("kpis", rules[0], flt, rules)

    async def tick(self) -> None:
        groups = self.hub.kpi_groups()
        if not groups:
            return
        async with self._lock:
            cells = self.cells = await read_cells(self.pool, self.settings)
        self.ticks += 1
        for group in groups:
            group.deliver(kpi_row(cells, group.key.extra, group.key.filter))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("kpis: cannot read the database (%s); retrying next tick", exc)


__all__ = ["Cells", "KpiGroup", "KpiService", "kpi_row", "read_cells"]
