"""Business reports of the regulator's menu (DESIGN §9 report names; docs/API.md "Reports";
docs/ARCHITECTURE.md §9): customers and deliveries here, circulation, periodic inspections
and credit in ``server.api.report_business_flow``; all built in ``server.api.report_frame``.

- ``account-opening`` (开户进度): real-name accounts opened per bucket of the period per
  company and district (``customers.opened_on``), with the cumulative number opened up to
  the bucket's end; drills down to the customers.
- ``real-name-progress`` (实名制进度): deliveries per bucket per company, those to a
  real-name customer (the scan named an account that exists: ``events.customer_id`` of a
  ``customers`` row) and their share; drills down to the delivery events.
- ``sales`` (销售): deliveries per bucket per company; drills down to the events.

Deliveries are the trajectory's ``deliver`` events (``server.domain.events.EventKind``), the
company is the one the event is charged to (the cylinder's owner, ``ingest.store.custody``),
the day is the city's. Every count is a volume: ``previous`` holds the totals of the period
of the same length just before. The counts come from the deliveries rollup (migration 0229,
``server.db.rollup_deliveries``) for the days before its watermark — a closed day as of the
last refresh — and from the raw events after it; the drill-downs read the raw events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from server.api import report_business_flow, report_drill
from server.api.report_business_common import (
    PERIOD,
    key_condition,
    period_condition,
    share,
    sums,
)
from server.api.report_common import ACTIVITY_ROLES
from server.api.report_frame import Chart, Column, DrillQuery, Report, ReportContext, Result
from server.db import rollup_deliveries, rollups
from server.domain.events import EventKind
from server.kernel.scope import Sql

__all__ = ["SPECS"]

DELIVER: Final = EventKind.deliver.value
REAL_NAME: Final = "EXISTS (SELECT 1 FROM customers rc WHERE rc.id = e.customer_id)"
"""A delivery to a real-name customer: the scan named an account of the owner's company that
exists (``ingest.store.lookups.scan_customer``); an unknown account leaves it null. The
counts join ``customers`` once instead (``cyl_deliveries_daily``, migration 0229:
``customers.id`` is unique, so the same test); the drill-down's rows are checked against them
(tests/api/test_report_business)."""

COMPANY_COLUMNS: Final = (
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
)

# ---------------------------------------------------------------- deliveries


def _deliveries_where(
    ctx: ReportContext, q: Sql, start: dt.datetime, end: dt.datetime
) -> list[str]:
    where = ctx.where("events", "e", q, "e.district_code", "e.company_id", "e.site_id")
    return [*where, f"e.kind = '{DELIVER}'", f"e.ts >= {q.add(start)}", f"e.ts < {q.add(end)}"]


async def _deliveries(
    ctx: ReportContext, first: dt.date, last: dt.date, upto: dt.date | None
) -> list[dict[str, Any]]:
    """Deliveries and those to a real-name customer per bucket and company over the city days
    [*first*, *last*]: the deliveries rollup for the days before *upto* (its watermark; None:
    none), ``cyl_deliveries_daily`` over the raw events from it on (``server.db.rollups.source``;
    migration 0229) — a year reads ~365 rows per company, district and site instead of a
    year of delivery scans (docs/BENCHMARKS.md "Reports"). The role scope and the filters go
    on the rollup rows' columns, the events' own, so they scope a row as its events."""
    q = Sql()
    src = rollups.source(rollup_deliveries.DELIVERIES, q, ctx.settings, first, last, upto)
    where = ctx.where("events", "r", q, "r.district_code", "r.company_id", "r.site_id")
    rows = await ctx.pool.fetch(
        f"""SELECT {ctx.day_bucket("r.day", q)} AS period, co.code AS company_code,
                   co.name AS company_name, sum(r.deliveries)::bigint AS deliveries,
                   sum(r.real_name)::bigint AS real_name
              FROM {src} r
              LEFT JOIN companies co ON co.id = r.company_id
             WHERE {" AND ".join(where)}
             GROUP BY 1, 2, 3 ORDER BY 1, 2""",
        *q.params,
    )
    return [dict(r) for r in rows]


async def _periods(ctx: ReportContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The period's rows and the previous period's, split at one reading of the watermark."""
    upto = await rollup_deliveries.watermark(ctx.pool, ctx.settings)
    f = ctx.f
    return (
        await _deliveries(ctx, f.first, f.last, upto),
        await _deliveries(ctx, f.prev_first, f.prev_last, upto),
    )


def _deliveries_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    q = Sql()
    where = _deliveries_where(ctx, q, ctx.f.start, ctx.f.end)
    for cond in (
        period_condition(keys, lambda: ctx.bucket("e.ts", q), q),
        key_condition(ctx, keys, "company_code", "co.code", q),
    ):
        if cond:
            where.append(cond)
    if measure == "real_name":
        where.append(REAL_NAME)
    elif measure == "not_real_name":
        where.append(f"NOT {REAL_NAME}")
    return report_drill.events(ctx, q, where)


SALES_COLUMNS: Final = (
    PERIOD,
    *COMPANY_COLUMNS,
    Column("deliveries", "销售(配送)瓶次", "Deliveries", "count", "events"),
)


async def sales(ctx: ReportContext) -> Result:
    rows, prev = await _periods(ctx)
    out = [
        {k: r[k] for k in ("period", "company_code", "company_name", "deliveries")} for r in rows
    ]
    return Result(out, sums(out, ["deliveries"]), sums(prev, ["deliveries"]))


REAL_NAME_COLUMNS: Final = (
    PERIOD,
    *COMPANY_COLUMNS,
    Column("deliveries", "配送瓶次", "Deliveries", "count", "events"),
    Column("real_name", "实名配送", "To a real-name customer", "count", "events"),
    Column("not_real_name", "非实名配送", "Not to a real-name customer", "count", "events"),
    Column("share", "实名率", "Real-name share", "rate"),
)


def _real_name_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    t = sums(rows, ["deliveries", "real_name"])
    t["not_real_name"] = t["deliveries"] - t["real_name"]
    t["share"] = share(t["real_name"], t["deliveries"])
    return t


async def real_name_progress(ctx: ReportContext) -> Result:
    rows, prev = await _periods(ctx)
    for r in rows:
        r["not_real_name"] = r["deliveries"] - r["real_name"]
        r["share"] = share(r["real_name"], r["deliveries"])
    return Result(rows, _real_name_totals(rows), _real_name_totals(prev))


# ---------------------------------------------------------------- account opening

OPENING_COLUMNS: Final = (
    PERIOD,
    *COMPANY_COLUMNS,
    Column("district_code", "区县代码", "District code", "code"),
    Column("district_name", "区县", "District", "text"),
    Column("opened", "新开户数", "Accounts opened", "count", "customers"),
    Column("cumulative", "累计开户数", "Opened to date", "count", "customers"),
)


def _customers_where(ctx: ReportContext, q: Sql) -> list[str]:
    return ctx.where("customers", "cu", q, "cu.district_code", "cu.company_id")


async def account_opening(ctx: ReportContext) -> Result:
    """Opened per bucket, company and district; the cumulative count adds every account of
    the same company and district opened before the period."""
    f = ctx.f
    q = Sql()
    where = " AND ".join(_customers_where(ctx, q))
    first, last = q.add(f.first), q.add(f.last)
    rows = await ctx.pool.fetch(
        f"""WITH opened AS (
                SELECT {ctx.day_bucket("cu.opened_on", q)} AS period, cu.company_id,
                       cu.district_code, count(*) AS opened
                  FROM customers cu
                 WHERE {where} AND cu.opened_on BETWEEN {first} AND {last}
                 GROUP BY 1, 2, 3),
            before AS (
                SELECT cu.company_id, cu.district_code, count(*) AS n
                  FROM customers cu
                 WHERE {where} AND cu.opened_on < {first}
                 GROUP BY 1, 2)
            SELECT o.period, co.code AS company_code, co.name AS company_name,
                   o.district_code, d.name AS district_name, o.opened,
                   coalesce(b.n, 0) + sum(o.opened) OVER (
                       PARTITION BY o.company_id, o.district_code ORDER BY o.period
                   ) AS cumulative
              FROM opened o JOIN companies co ON co.id = o.company_id
              LEFT JOIN before b ON b.company_id = o.company_id
                   AND b.district_code IS NOT DISTINCT FROM o.district_code
              LEFT JOIN districts d ON d.code = o.district_code
             ORDER BY 1, 2, 4""",
        *q.params,
    )
    q = Sql()
    where = " AND ".join(_customers_where(ctx, q))
    t = await ctx.pool.fetchrow(
        f"""SELECT count(*) FILTER (WHERE cu.opened_on BETWEEN {q.add(f.first)} AND {q.add(f.last)})
                       AS opened,
                   count(*) FILTER (WHERE cu.opened_on <= {q.add(f.last)}) AS cumulative,
                   count(*) FILTER (WHERE cu.opened_on BETWEEN {q.add(f.prev_first)}
                                                          AND {q.add(f.prev_last)}) AS p_opened,
                   count(*) FILTER (WHERE cu.opened_on <= {q.add(f.prev_last)}) AS p_cumulative
              FROM customers cu WHERE {where}""",
        *q.params,
    )
    assert t is not None
    return Result(
        [{**r, "cumulative": int(r["cumulative"])} for r in map(dict, rows)],
        {"opened": t["opened"], "cumulative": t["cumulative"]},
        {"opened": t["p_opened"], "cumulative": t["p_cumulative"]},
    )


def account_opening_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    q = Sql()
    where = _customers_where(ctx, q)

    def bucket() -> str:
        return ctx.day_bucket("cu.opened_on", q)

    where.append(f"cu.opened_on <= {q.add(ctx.f.last)}")
    if measure == "opened":
        where.append(f"cu.opened_on >= {q.add(ctx.f.first)}")
        cond = period_condition(keys, bucket, q)
    else:  # cumulative: every account opened up to the end of the row's bucket
        cond = period_condition(keys, bucket, q, "<=")
    for c in (
        cond,
        key_condition(ctx, keys, "company_code", "co.code", q),
        key_condition(ctx, keys, "district_code", "cu.district_code", q),
    ):
        if c:
            where.append(c)
    return report_drill.customers(ctx, q, where)


# ---------------------------------------------------------------- specs

_PERIODIC: Final = frozenset({"period", "group", "district", "company"})

SPECS: tuple[Report, ...] = (
    Report(
        name="account-opening",
        title="开户进度",
        title_en="Accounts opened",
        roles=ACTIVITY_ROLES,
        filters=_PERIODIC,
        columns=OPENING_COLUMNS,
        compute=account_opening,
        keys=("period", "company_code", "district_code"),
        chart=Chart("line", "period", ("opened",), "company_name"),
        drill=account_opening_drill,
        description="Real-name customer accounts opened per bucket of the period, per company "
        "and district, with the number opened up to the bucket's end; totals: opened in the "
        "period and to its last day; previous: the same for the period before.",
    ),
    Report(
        name="real-name-progress",
        title="实名制进度",
        title_en="Real-name deliveries",
        roles=ACTIVITY_ROLES,
        filters=_PERIODIC | {"station"},
        columns=REAL_NAME_COLUMNS,
        compute=real_name_progress,
        keys=("period", "company_code"),
        chart=Chart("line", "period", ("share",), "company_name"),
        drill=_deliveries_drill,
        description="Deliveries (deliver scans) per bucket per company, those naming an "
        "existing real-name account, and their share (0–1); each count drills down to its "
        "delivery events.",
    ),
    Report(
        name="sales",
        title="销售",
        title_en="Sales (deliveries)",
        roles=ACTIVITY_ROLES,
        filters=_PERIODIC | {"station"},
        columns=SALES_COLUMNS,
        compute=sales,
        keys=("period", "company_code"),
        chart=Chart("line", "period", ("deliveries",), "company_name"),
        drill=_deliveries_drill,
        description="Deliveries (deliver scans) per bucket per company, against the period "
        "before; each count drills down to its delivery events.",
    ),
    *report_business_flow.SPECS,
)
