"""Circulation and periodic inspections on the regulator's menu (DESIGN §9 report names;
docs/API.md "Reports"; docs/ARCHITECTURE.md §9), built in ``server.api.report_frame``.

- ``circulation`` (流转): per company, cylinders transferred out to another company's site,
  transferred in from another company's site, and out-of-region alerts raised in the period.
  A handheld scans ``transfer`` where a cylinder leaves a site and ``receive`` where it
  arrives (``ingest.store.custody``), so a transfer between companies is a ``receive`` at a
  site of one company whose cylinder's last movement scan before it (transfer or receive,
  within `PAIR_WINDOW_DAYS`) was a ``transfer`` at a site of another — counted once, on
  arrival, as "out" for the departing site's company and "in" for the arriving one's. A
  transfer never received is not counted: where it went is not known. Out-of-region
  sightings are the ``out_of_region`` alerts first raised in the period (one per cylinder
  while open; ``server.kernel.districts``). Counts drill down to the receive events and to
  the alerts.
- ``periodic-inspections`` (年检): inspections per bucket per owner company and inspection
  agency with their results pass / fail / scrap (``inspections``, GB/T 8334-2022); each count
  drills down to its inspections with their cylinders.

Both are volumes: ``previous`` holds the totals of the period of the same length just
before. Credit (信用评价) is ``server.api.report_business_credit``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from server.api import report_business_credit, report_drill
from server.api.report_business_common import PERIOD, key_condition, period_condition, sums
from server.api.report_common import ACTIVITY_ROLES, CYL_REPORT_ROLES
from server.api.report_frame import Chart, Column, DrillQuery, Report, ReportContext, Result
from server.db.census import CENSUS, LIVE, census
from server.domain.events import EventKind
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = ["SPECS"]

PAIR_WINDOW_DAYS: Final = 7
"""Longest a transfer (调拨) between sites of one city may take to be received and still be
paired with its departure: trucks cross the city within a day, and a week covers a weekend
and a late scan without pairing a receive with a months-old transfer."""

TRANSFER: Final = EventKind.transfer.value
RECEIVE: Final = EventKind.receive.value
OUT_OF_REGION: Final = "out_of_region"

# ---------------------------------------------------------------- circulation


def _departure(alias: str, q: Sql, since: dt.datetime) -> str:
    """The company of the site a received cylinder was transferred from: its last movement
    scan before the receive *alias*, if that was a transfer at a site; else NULL."""
    return f"""(SELECT ds.company_id FROM (
                   SELECT t.kind, t.site_id FROM events t
                    WHERE t.cylinder_id = {alias}.cylinder_id
                      AND t.kind IN ('{TRANSFER}', '{RECEIVE}')
                      AND t.ts >= {q.add(since)}
                      AND t.ts >= {alias}.ts - make_interval(days => {q.add(PAIR_WINDOW_DAYS)})
                      AND (t.ts, t.msg_id) < ({alias}.ts, {alias}.msg_id)
                    ORDER BY t.ts DESC, t.msg_id DESC LIMIT 1) p
                JOIN sites ds ON ds.id = p.site_id WHERE p.kind = '{TRANSFER}')"""


def _arrival(alias: str) -> str:
    """The company of the site the receive *alias* was scanned at."""
    return f"(SELECT rs.company_id FROM sites rs WHERE rs.id = {alias}.site_id)"


def _receives_where(
    ctx: ReportContext, alias: str, q: Sql, start: dt.datetime, end: dt.datetime
) -> list[str]:
    where = ctx.where("events", alias, q, f"{alias}.district_code", None)
    return [
        *where,
        f"{alias}.kind = '{RECEIVE}'",
        f"{alias}.ts >= {q.add(start)}",
        f"{alias}.ts < {q.add(end)}",
        f"{alias}.cylinder_id IS NOT NULL",
    ]


def _alerts_where(ctx: ReportContext, q: Sql, start: dt.datetime, end: dt.datetime) -> list[str]:
    where = ctx.where("alerts", "a", q, "a.district_code", None)
    return [
        *where,
        f"a.kind = '{OUT_OF_REGION}'",
        f"a.first_at >= {q.add(start)}",
        f"a.first_at < {q.add(end)}",
    ]


CIRCULATION_COUNTS: Final = ("transfers_out", "transfers_in", "out_of_region")
CIRCULATION_COLUMNS: Final = (
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
    Column("transfers_out", "调出(跨企业)", "Transferred out", "count", "events"),
    Column("transfers_in", "调入(跨企业)", "Transferred in", "count", "events"),
    Column("out_of_region", "区域外流", "Out-of-region sightings", "count", "alerts"),
)


async def _circulation(
    ctx: ReportContext, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    q = Sql()
    since = start - dt.timedelta(days=PAIR_WINDOW_DAYS)
    receives = " AND ".join(_receives_where(ctx, "r", q, start, end))
    alerts = " AND ".join(_alerts_where(ctx, q, start, end))
    companies = " AND ".join(ctx.where("companies", "co", q, None, "co.id"))
    # The departure of each receive as `_departure` defines it (the drill-down's form), found
    # in one pass: every transfer and receive scan from the pairing window's start, each with
    # the cylinder's scan before it. A probe per receive into every partition of the
    # trajectory took seconds for a month of a 1M-cylinder city (docs/BENCHMARKS.md "Reports").
    rows = await ctx.pool.fetch(
        f"""WITH scans AS (
                SELECT t.*, lag(t.kind) OVER w AS prev_kind, lag(t.site_id) OVER w AS prev_site,
                       lag(t.ts) OVER w AS prev_ts
                  FROM events t
                 WHERE t.kind IN ('{TRANSFER}', '{RECEIVE}') AND t.cylinder_id IS NOT NULL
                   AND t.ts >= {q.add(since)} AND t.ts < {q.add(end)}
                WINDOW w AS (PARTITION BY t.cylinder_id ORDER BY t.ts, t.msg_id)),
            moves AS (
                SELECT (SELECT ds.company_id FROM sites ds
                         WHERE ds.id = r.prev_site AND r.prev_kind = '{TRANSFER}'
                           AND r.prev_ts >= r.ts - make_interval(days => {q.add(PAIR_WINDOW_DAYS)})
                       ) AS from_co,
                       {_arrival("r")} AS to_co
                  FROM scans r WHERE {receives}),
            counts (company_id, transfers_out, transfers_in, out_of_region) AS (
                SELECT from_co, 1, 0, 0 FROM moves WHERE from_co <> to_co
                UNION ALL
                SELECT to_co, 0, 1, 0 FROM moves WHERE from_co <> to_co
                UNION ALL
                SELECT a.company_id, 0, 0, 1 FROM alerts a WHERE {alerts})
            SELECT co.code AS company_code, co.name AS company_name,
                   sum(c.transfers_out)::bigint AS transfers_out,
                   sum(c.transfers_in)::bigint AS transfers_in,
                   sum(c.out_of_region)::bigint AS out_of_region
              FROM counts c JOIN companies co ON co.id = c.company_id
             WHERE {companies}
             GROUP BY co.code, co.name
             ORDER BY sum(c.transfers_out + c.transfers_in + c.out_of_region) DESC, co.code""",
        *q.params,
    )
    return [dict(r) for r in rows]


async def circulation(ctx: ReportContext) -> Result:
    rows = await _circulation(ctx, ctx.f.start, ctx.f.end)
    prev = await _circulation(ctx, ctx.f.prev_start, ctx.f.prev_end)
    return Result(rows, sums(rows, CIRCULATION_COUNTS), sums(prev, CIRCULATION_COUNTS))


def circulation_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    f = ctx.f
    q = Sql()
    if measure == "out_of_region":
        where = _alerts_where(ctx, q, f.start, f.end)
        where += [*ctx.where("companies", "co", q, None, "co.id"), "co.id IS NOT NULL"]
        if "company_code" in keys:
            where.append(f"co.code = {q.add(keys['company_code'])}")
        return report_drill.alerts(ctx, q, where)
    since = f.start - dt.timedelta(days=PAIR_WINDOW_DAYS)
    where = _receives_where(ctx, "e", q, f.start, f.end)
    dep, arr = _departure("e", q, since), _arrival("e")
    this, other = (dep, arr) if measure == "transfers_out" else (arr, dep)
    company = [*ctx.where("companies", "cx", q, None, "cx.id")]
    if "company_code" in keys:
        company.append(f"cx.code = {q.add(keys['company_code'])}")
    where.append(
        f"""EXISTS (SELECT 1 FROM companies cx WHERE cx.id = {this} AND {other} <> cx.id
                  AND {" AND ".join(company)})"""
    )
    return report_drill.events(ctx, q, where)


# ---------------------------------------------------------------- periodic inspections

RESULTS: Final = {"passed": "pass", "failed": "fail", "scrapped": "scrap"}
"""Column → ``inspections.result``: pass (new dates), fail, scrap (DESIGN §9 workflows)."""
INSPECTION_COUNTS: Final = ("inspections", *RESULTS)
INSPECTION_COLUMNS: Final = (
    PERIOD,
    Column("company_code", "产权单位代码", "Owner code", "code"),
    Column("company_name", "产权单位", "Owner", "text"),
    Column("agency_code", "检验机构代码", "Agency code", "code"),
    Column("agency_name", "检验机构", "Inspection agency", "text"),
    Column("inspections", "检验数", "Inspections", "count", "cylinders"),
    Column("passed", "合格", "Passed", "count", "cylinders"),
    Column("failed", "不合格", "Failed", "count", "cylinders"),
    Column("scrapped", "判废", "Scrapped", "count", "cylinders"),
)

INSPECTION_FROM: Final = """inspections i JOIN cylinders c ON c.id = i.cylinder_id
    JOIN companies o ON o.id = c.owner_company_id
    LEFT JOIN sites ag ON ag.id = i.agency_site_id"""


def _inspections_where(ctx: ReportContext, q: Sql, first: dt.date, last: dt.date) -> list[str]:
    """The caller's scope over the inspections *i* of the cylinders *c* joined to them, the
    filters, the period. The scope: an inspection agency's own inspections; for every other
    role the cylinder's (``server.kernel.scope``: an inspection is seen with its cylinder) on
    the joined row — scope.py's form for inspections, a sub-select of the live ``cylinders``,
    read the wide table a second time."""
    entity = "inspections" if ctx.principal.role == "inspector" else "cylinders"
    alias = "i" if entity == "inspections" else "c"
    where = ctx.where(entity, alias, q, "c.district_code", "c.owner_company_id", "i.agency_site_id")
    return [*where, f"i.inspected_on BETWEEN {q.add(first)} AND {q.add(last)}"]


async def _inspections(
    ctx: ReportContext, relation: str, first: dt.date, last: dt.date
) -> list[dict[str, Any]]:
    """Per bucket, owner and agency: counted per ids over *relation* (the cylinder census:
    the owner and district as of its snapshot), then named — the names' join and wide
    grouping keys on the groups instead of every inspection."""
    q = Sql()
    where = _inspections_where(ctx, q, first, last)
    results = ", ".join(
        f"count(*) FILTER (WHERE i.result = '{v}') AS {k}" for k, v in RESULTS.items()
    )
    rows = await ctx.pool.fetch(
        f"""SELECT g.period, o.code AS company_code, o.name AS company_name,
                   ag.code AS agency_code, ag.name AS agency_name, g.inspections,
                   {", ".join(f"g.{k}" for k in RESULTS)}
              FROM (SELECT {ctx.day_bucket("i.inspected_on", q)} AS period,
                           c.owner_company_id, i.agency_site_id, count(*) AS inspections,
                           {results}
                      FROM inspections i JOIN {relation} c ON c.id = i.cylinder_id
                     WHERE {" AND ".join(where)}
                     GROUP BY 1, 2, 3) g
              JOIN companies o ON o.id = g.owner_company_id
              LEFT JOIN sites ag ON ag.id = g.agency_site_id
             ORDER BY 1, 2, 4""",
        *q.params,
    )
    return [dict(r) for r in rows]


async def periodic_inspections(ctx: ReportContext) -> Result:
    """Over the cylinder census (``server.db.census``; ``cylinders`` before its first
    refresh): a narrow snapshot joined to a year of inspections instead of the wide live
    table (0.07 → 0.04 s a year at 100k cylinders, the table's heap 4× the census's); a
    cylinder's owner and district are as of ``as_of``, the drill-down reads ``cylinders``
    (exact now)."""
    f = ctx.f
    src = await census(ctx.pool)
    relation = src.relation
    if relation == CENSUS:
        # and the cylinders registered since its snapshot, from the archive (a serial id: those
        # after the census's last, found through the primary key), so that an inspection of a
        # new cylinder counts at once rather than from the next refresh. The last id is written
        # into the statement: as a sub-select or a parameter (a generic plan) the planner
        # guessed a third of the archive new and hashed a year's groups in partitions
        last = int(await ctx.pool.fetchval(f"SELECT coalesce(max(id), 0) FROM {CENSUS}"))
        relation = f"""(SELECT id, owner_company_id, district_code FROM {CENSUS}
                        UNION ALL
                        SELECT id, owner_company_id, district_code FROM {LIVE}
                         WHERE id > {last})"""
    rows = await _inspections(ctx, relation, f.first, f.last)
    prev = await _inspections(ctx, relation, f.prev_first, f.prev_last)
    return Result(
        rows,
        sums(rows, INSPECTION_COUNTS),
        sums(prev, INSPECTION_COUNTS),
        extra={"as_of": src.as_of},
    )


INSPECTED_COLUMNS: Final = (
    Column("inspected_on", "检验日期", "Inspected", "date"),
    Column("result", "检验结论", "Result", "code"),
    Column("agency_code", "检验机构代码", "Agency code", "code"),
    Column("agency_name", "检验机构", "Inspection agency", "text"),
    Column("report_no", "报告编号", "Report no.", "code"),
    Column("cylinder_id", "档案号", "ID", "code"),
    Column("tag", "电子标签", "Tag", "code"),
    Column("stamp", "钢印号", "Stamp no.", "code"),
    Column("owner_code", "产权单位代码", "Owner code", "code"),
    Column("owner_name", "产权单位", "Owner", "text"),
    Column("spec", "型号", "Model", "code"),
    Column("district_code", "所在区县", "District", "code"),
    Column("status", "状态", "Status", "code"),
    Column("next_inspection_date", "下次检验日期", "Next inspection", "date"),
    Column("scrap_date", "报废日期", "Scrap date", "date"),
)


def inspections_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    """The inspections behind a count, one row each with its cylinder (a cylinder inspected
    twice in a bucket is two rows, as it is two in the count)."""
    q = Sql()
    where = _inspections_where(ctx, q, ctx.f.first, ctx.f.last)
    for cond in (
        period_condition(keys, lambda: ctx.day_bucket("i.inspected_on", q), q),
        key_condition(ctx, keys, "company_code", "o.code", q),
        key_condition(ctx, keys, "agency_code", "ag.code", q),
    ):
        if cond:
            where.append(cond)
    if measure in RESULTS:
        where.append(f"i.result = {q.add(RESULTS[measure])}")
    elif measure != "inspections":
        raise bad_query("measure", "not a count of this report")
    return DrillQuery(
        select="""i.inspected_on, i.result, ag.code AS agency_code, ag.name AS agency_name,
            i.report_no, c.id AS cylinder_id, c.tag, c.stamp, o.code AS owner_code,
            o.name AS owner_name, c.spec, c.district_code, c.status,
            c.next_inspection_date, c.scrap_date""",
        from_where=f"{INSPECTION_FROM} WHERE {' AND '.join(where)}",
        order="i.inspected_on, i.id",
        q=q,
        columns=INSPECTED_COLUMNS,
    )


# ---------------------------------------------------------------- specs

SPECS: tuple[Report, ...] = (
    Report(
        name="circulation",
        title="流转",
        title_en="Circulation",
        roles=ACTIVITY_ROLES,
        filters=frozenset({"period", "district", "company"}),
        columns=CIRCULATION_COLUMNS,
        compute=circulation,
        keys=("company_code",),
        chart=Chart("stacked_bar", "company_name", CIRCULATION_COUNTS),
        drill=circulation_drill,
        description="Per company: cylinders received at another company's site after a "
        f"transfer from this one's (within {PAIR_WINDOW_DAYS} days), received at this one's "
        "from another's, and out-of-region alerts first raised in the period; transfers "
        "drill down to the receive events, sightings to the alerts.",
    ),
    Report(
        name="periodic-inspections",
        title="年检",
        title_en="Periodic inspections",
        roles=CYL_REPORT_ROLES,
        filters=frozenset({"period", "group", "district", "company", "station"}),
        columns=INSPECTION_COLUMNS,
        compute=periodic_inspections,
        keys=("period", "company_code", "agency_code"),
        chart=Chart("stacked_bar", "company_name", tuple(RESULTS)),
        drill=inspections_drill,
        description="Periodic inspections per bucket per owner company and inspection agency "
        "(`station`: the agency's site), by result; each count drills down to the "
        "inspections with their cylinders.",
    ),
    *report_business_credit.SPECS,
)
