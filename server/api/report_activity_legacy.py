"""The earlier activity reports, kept working in the report frame (DESIGN §9: "the earlier
fills-daily, denials, anomalies-by-company keep working"; docs/API.md "Reports"):

- ``fills-daily``: fills, completed, aborted and net kg per city day, station and company;
- ``denials``: refused fill attempts per day, station and reason (an attempt counts once per
  reason it carried: DOMAIN.md "Abnormal behaviour");
- ``anomalies-by-company``: alerts, their occurrences and the unresolved ones per company and
  kind — alerts raised in the period (their ``first_at``, which a repeat does not move).

They answer what they always did — JSON ``rows``, ``from``, ``to`` with the same keys, CSV and
XLSX with the same machine-readable header — now read from the daily rollups plus today's
live rows (``server.db.rollups``), so a year of them is as fast as a week. The frame adds
``columns``, ``totals`` and the one parameter parsing of every report.
"""

from __future__ import annotations

from typing import Any, Final

from server.api.report_activity_common import keyed, sources
from server.api.report_common import ACTIVITY_ROLES
from server.api.report_frame import Report, ReportContext, Result
from server.db.rollups import ALERTS, DENIALS, FILLS
from server.kernel.scope import Sql

__all__ = ["SPECS"]

FILTERS: Final = frozenset({"period", "district", "company"})

FILLS_DAILY_COLUMNS: Final = (
    keyed("day", "date"),
    keyed("station_id", "code"),
    keyed("station_code", "code"),
    keyed("station_name"),
    keyed("company_id", "code"),
    keyed("company_name"),
    keyed("fills", "count"),
    keyed("completed", "count"),
    keyed("aborted", "count"),
    keyed("net_kg", "kg"),
)


def _totals(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: sum((r[k] or 0) for r in rows) for k in keys}


async def fills_daily(ctx: ReportContext) -> Result:
    src = await sources(ctx)
    q = Sql()
    from_ = src.period(FILLS, q)
    where = src.where("fills", q)
    # summed on the ids first, named after: a year city-wide is ~36k rows of ~200k
    rows = await ctx.pool.fetch(
        f"""SELECT x.day, x.station_id, s.code AS station_code, s.name AS station_name,
                   x.company_id, co.name AS company_name, x.fills, x.completed, x.aborted,
                   x.net_kg
              FROM (SELECT r.day, r.station_id, r.company_id, sum(r.fills)::bigint AS fills,
                           sum(r.completed)::bigint AS completed,
                           sum(r.aborted)::bigint AS aborted, sum(r.net_kg) AS net_kg
                      FROM {from_} r
                     WHERE {" AND ".join(where)}
                     GROUP BY 1, 2, 3) x
              LEFT JOIN sites s ON s.id = x.station_id
              LEFT JOIN companies co ON co.id = x.company_id
             ORDER BY 1, 3, 5""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    return Result(out, _totals(out, ("fills", "completed", "aborted", "net_kg")))


DENIALS_COLUMNS: Final = (
    keyed("day", "date"),
    keyed("station_id", "code"),
    keyed("station_code", "code"),
    keyed("station_name"),
    keyed("company_id", "code"),
    keyed("company_name"),
    keyed("reason", "code"),
    keyed("attempts", "count"),
)


async def denials(ctx: ReportContext) -> Result:
    src = await sources(ctx)
    q = Sql()
    from_ = src.period(DENIALS, q)
    where = src.where("events", q)
    rows = await ctx.pool.fetch(
        f"""SELECT x.day, x.site_id AS station_id, s.code AS station_code,
                   s.name AS station_name, x.company_id, co.name AS company_name, x.reason,
                   x.attempts
              FROM (SELECT r.day, r.site_id, r.company_id, r.reason,
                           sum(r.attempts)::bigint AS attempts
                      FROM {from_} r
                     WHERE {" AND ".join(where)}
                     GROUP BY 1, 2, 3, 4) x
              LEFT JOIN sites s ON s.id = x.site_id
              LEFT JOIN companies co ON co.id = x.company_id
             ORDER BY 1, 3, 7""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    return Result(out, _totals(out, ("attempts",)))


ANOMALIES_COLUMNS: Final = (
    keyed("company_id", "code"),
    keyed("company_code", "code"),
    keyed("company_name"),
    keyed("kind", "code"),
    keyed("alerts", "count"),
    keyed("occurrences", "count"),
    keyed("unresolved", "count"),
)


async def anomalies_by_company(ctx: ReportContext) -> Result:
    src = await sources(ctx)
    q = Sql()
    from_ = src.period(ALERTS, q)
    where = src.where("alerts", q)
    rows = await ctx.pool.fetch(
        f"""SELECT r.company_id, co.code AS company_code, co.name AS company_name, r.kind,
                   sum(r.alerts)::bigint AS alerts, sum(r.occurrences)::bigint AS occurrences,
                   sum(r.unresolved)::bigint AS unresolved
              FROM {from_} r LEFT JOIN companies co ON co.id = r.company_id
             WHERE {" AND ".join(where)}
             GROUP BY 1, 2, 3, 4
             ORDER BY sum(sum(r.alerts)) OVER (PARTITION BY r.company_id) DESC, 2, 4""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    return Result(out, _totals(out, ("alerts", "occurrences", "unresolved")))


SPECS: tuple[Report, ...] = (
    Report(
        name="fills-daily",
        title="每日充装",
        title_en="Fills per day per station",
        roles=ACTIVITY_ROLES,
        filters=FILTERS,
        columns=FILLS_DAILY_COLUMNS,
        compute=fills_daily,
        description="Fills, completed, aborted (every result but completed) and net kg of the "
        "completed ones per city day, station and company. Closed days from the daily rollup, "
        "today live.",
    ),
    Report(
        name="denials",
        title="拒绝充装",
        title_en="Refused fill attempts per station per day per reason",
        roles=ACTIVITY_ROLES,
        filters=FILTERS,
        columns=DENIALS_COLUMNS,
        compute=denials,
        description="From the trajectory's fill_refused events; an attempt counts once per "
        "reason it carried. Closed days from the daily rollup, today live.",
    ),
    Report(
        name="anomalies-by-company",
        title="企业告警统计",
        title_en="Alerts per company per kind",
        roles=ACTIVITY_ROLES,
        filters=FILTERS,
        columns=ANOMALIES_COLUMNS,
        compute=anomalies_by_company,
        description="Alerts raised in the period (first_at); `alerts` counts alerts, "
        "`occurrences` their de-duplicated repeats, `unresolved` those not resolved — for closed "
        "days as of the last rollup refresh. Companies with the most alerts first.",
    ),
)
