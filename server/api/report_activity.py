"""Activity reports of the regulator's menu (DESIGN §9 report names; docs/API.md "Reports";
docs/ARCHITECTURE.md §9), each built in ``server.api.report_frame`` and read from the daily
rollups (``server.db.rollups``: closed days from the rollup, today live), so a year of a
1M-cylinder city answers in well under a second:

- ``fill-volume`` (充装量): fills, completed, aborted, overfills, underfills and net kg per
  bucket of the period per company, station or district (``by=``), beside the previous
  period's totals; a line per company over time; every count drills down to its fills.
- ``overstock`` (重瓶超量): per site and bucket, the city days it held more full cylinders than
  permitted (the days its ``overstock`` alerts cover, as the credit ledger and the inspection
  list count them), the peak count and the permit; a heat table site × day; the days drill
  down to the alerts that cover them.
- ``abnormal-behaviour`` (异常经营行为): per company, each kind of DOMAIN.md "Abnormal
  behaviour" in the period — refused attempts per reason, overfills and underfills, and the
  alerts raised of each business kind — drilled down to the refusals, fills or alerts.

The earlier ``fills-daily``, ``denials``, ``anomalies-by-company``
(``server.api.report_activity_legacy``) and ``safety-inspections``
(``server.api.report_safety``) are listed here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from server.api import (
    report_activity_abnormal,
    report_activity_legacy,
    report_drill,
    report_safety,
)
from server.api.doc import Param
from server.api.report_activity_common import Sources, bucket_range, sources
from server.api.report_business_common import PERIOD, key_condition, period_condition, sums
from server.api.report_common import ACTIVITY_ROLES
from server.api.report_frame import Chart, Column, DrillQuery, Report, ReportContext, Result
from server.db.rollups import FILLS, OVERSTOCK
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = ["SPECS"]

# ---------------------------------------------------------------- fill-volume

BY: Final = ("company", "station", "district")
"""What a ``fill-volume`` row is per: the filling company, the station, or the district."""
_DIMENSION: Final = {
    # by: (the rollup's key, its code and name joined on x.k) — and the code's column in a
    # fills drill-down
    "company": (
        "r.company_id",
        "co.code",
        "co.name",
        "LEFT JOIN companies co ON co.id = x.k",
        "co.code",
    ),
    "station": ("r.station_id", "s.code", "s.name", "LEFT JOIN sites s ON s.id = x.k", "s.code"),
    "district": (
        "r.district_code",
        "x.k",
        "d.name",
        "LEFT JOIN districts d ON d.code = x.k",
        "f.district_code",
    ),
}
FILL_MEASURES: Final = ("fills", "completed", "aborted", "overfill", "underfill")
_FILL_CONDITION: Final = {
    "fills": None,
    "completed": "f.result = 'completed'",
    "aborted": "f.result <> 'completed'",
    "overfill": "f.assessment = 'overfill'",
    "underfill": "f.assessment = 'underfill' AND f.result = 'completed'",
}
"""Which fills each count counts: the rollup's own definitions (migration 0220)."""

VOLUME_COLUMNS: Final = (
    PERIOD,
    Column("code", "编码", "Code", "code"),
    Column("name", "名称", "Name", "text"),
    Column("fills", "充装瓶次", "Fills", "count", "fills"),
    Column("completed", "完成", "Completed", "count", "fills"),
    Column("aborted", "中止", "Aborted", "count", "fills"),
    Column("overfill", "超装", "Overfilled", "count", "fills"),
    Column("underfill", "欠装", "Underfilled", "count", "fills"),
    Column("net_kg", "充装量(kg)", "Net filled (kg)", "kg"),
)
_VOLUME_SUMS: Final = (*FILL_MEASURES, "net_kg")
BY_PARAM: Final = Param(
    "by", description="rows per company (default), station or district", enum=BY
)


def _by(ctx: ReportContext) -> str:
    by = ctx.f.extra.get("by") or "company"
    if by not in BY:
        raise bad_query("by", f"must be one of {', '.join(BY)}")
    return by


def _fill_sums() -> str:
    return ", ".join(f"sum(r.{m})::bigint AS {m}" for m in FILL_MEASURES) + (
        ", coalesce(sum(r.net_kg), 0) AS net_kg"
    )


async def _volume_totals(ctx: ReportContext, src: Sources) -> dict[str, Any]:
    q = Sql()
    from_ = src.previous(FILLS, q)
    row = await ctx.pool.fetchrow(
        f"SELECT {_fill_sums()} FROM {from_} r WHERE {' AND '.join(src.where('fills', q))}",
        *q.params,
    )
    return {k: (row[k] or 0) for k in _VOLUME_SUMS} if row else dict.fromkeys(_VOLUME_SUMS, 0)


async def fill_volume(ctx: ReportContext) -> Result:
    by = _by(ctx)
    key, code, name, join, _ = _DIMENSION[by]
    src = await sources(ctx)
    q = Sql()
    from_ = src.period(FILLS, q)
    where = src.where("fills", q)
    measures = ", ".join(f"x.{m}" for m in _VOLUME_SUMS)
    # summed on the key first, named after (a code is unique: one row per key)
    rows = await ctx.pool.fetch(
        f"""SELECT x.period, {code} AS code, {name} AS name, {measures}
              FROM (SELECT {ctx.day_bucket("r.day", q)} AS period, {key} AS k, {_fill_sums()}
                      FROM {from_} r
                     WHERE {" AND ".join(where)}
                     GROUP BY 1, 2) x {join}
             ORDER BY 1, 2""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    return Result(out, sums(out, _VOLUME_SUMS), await _volume_totals(ctx, src))


def fill_volume_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    by = _by(ctx)
    if measure not in _FILL_CONDITION:
        raise bad_query("measure", "not a count of this report")
    q = Sql()
    where = ctx.where("fills", "f", q, "f.district_code", "f.company_id", "f.station_id")
    where += [f"f.ts >= {q.add(ctx.f.start)}", f"f.ts < {q.add(ctx.f.end)}"]
    for cond in (
        period_condition(keys, lambda: ctx.bucket("f.ts", q), q),
        key_condition(ctx, keys, "code", _DIMENSION[by][4], q),
        _FILL_CONDITION[measure],
    ):
        if cond:
            where.append(cond)
    return report_drill.fills(ctx, q, where)


# ---------------------------------------------------------------- overstock

OVERSTOCK_COLUMNS: Final = (
    PERIOD,
    Column("site_code", "站点代码", "Site code", "code"),
    Column("site_name", "站点", "Site", "text"),
    Column("company_name", "企业", "Company", "text"),
    Column("district_code", "区县", "District", "code"),
    Column("days", "超量天数", "Days over", "count", "alerts"),
    Column("peak_full", "最高重瓶数", "Peak full", "number"),
    Column("permitted", "核定存放量", "Permitted", "number"),
    Column("excess", "超出", "Excess", "number"),
)


async def _overstock_days(ctx: ReportContext, src: Sources) -> int:
    q = Sql()
    from_ = src.previous(OVERSTOCK, q)
    n = await ctx.pool.fetchval(
        f"SELECT count(*) FROM {from_} r WHERE {' AND '.join(src.where('alerts', q))}",
        *q.params,
    )
    return int(n or 0)


async def overstock(ctx: ReportContext) -> Result:
    src = await sources(ctx)
    q = Sql()
    from_ = src.period(OVERSTOCK, q)
    where = src.where("alerts", q)
    rows = await ctx.pool.fetch(
        f"""SELECT {ctx.day_bucket("r.day", q)} AS period, s.code AS site_code,
                   s.name AS site_name, co.name AS company_name,
                   max(r.district_code) AS district_code, count(*) AS days,
                   max(r.peak_full) AS peak_full, max(r.permitted) AS permitted
              FROM {from_} r JOIN sites s ON s.id = r.site_id
              LEFT JOIN companies co ON co.id = r.company_id
             WHERE {" AND ".join(where)}
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2""",
        *q.params,
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        row = dict(r)
        peak, permit = row["peak_full"], row["permitted"]
        row["excess"] = peak - permit if peak is not None and permit is not None else None
        out.append(row)
    excess = [r["excess"] for r in out if r["excess"] is not None]
    peaks = [r["peak_full"] for r in out if r["peak_full"] is not None]
    totals = {
        "days": sum(r["days"] for r in out),
        "peak_full": max(peaks, default=None),
        "excess": max(excess, default=None),
    }
    return Result(out, totals, {"days": await _overstock_days(ctx, src)})


def overstock_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    """The overstock alerts covering the row's days (an alert lasting a week covers 7 of a
    site's days: a cell counts days, its drill-down lists the alerts behind them)."""
    if measure != "days":
        raise bad_query("measure", "not a count of this report")
    q = Sql()
    where = ctx.where("alerts", "a", q, "a.district_code", "a.company_id", "a.site_id")
    start, end = bucket_range(ctx, keys)
    where += [
        "a.kind = 'overstock'",
        f"a.last_at >= {q.add(start)}",
        f"a.first_at < {q.add(end)}",
    ]
    cond = key_condition(ctx, keys, "site_code", "s.code", q)
    if cond:
        where.append(cond)
    return report_drill.alerts(ctx, q, where)


SPECS: tuple[Report, ...] = (
    Report(
        name="fill-volume",
        title="充装量",
        title_en="Fill volume",
        roles=ACTIVITY_ROLES,
        filters=frozenset({"period", "group", "district", "company", "station"}),
        columns=VOLUME_COLUMNS,
        compute=fill_volume,
        keys=("period", "code"),
        chart=Chart("line", "period", ("net_kg",), "name"),
        drill=fill_volume_drill,
        params=(BY_PARAM,),
        description="Per bucket of the period and per filling company (by=company), station "
        "(by=station) or district (by=district): fills, completed, aborted, overfills (net above "
        "the model's maximum, aborted or not), underfills (completed below it) and the net kg "
        "of the completed ones; previous: the totals of the period before. Closed days from the "
        "daily rollup, today live. Every count drills down to its fills.",
    ),
    Report(
        name="overstock",
        title="重瓶超量",
        title_en="Full-cylinder overstock",
        roles=ACTIVITY_ROLES,
        filters=frozenset({"period", "group", "district", "company", "station"}),
        columns=OVERSTOCK_COLUMNS,
        compute=overstock,
        keys=("period", "site_code"),
        chart=Chart("heat", "period", ("peak_full",), "site_code"),
        drill=overstock_drill,
        description="Per site and bucket: the city days its overstock alerts cover (first to "
        "last seen, as the credit ledger counts overstock days), the peak number of full "
        "cylinders held on those days and the permit; previous: the days of the period before. "
        "`days` drills down to the alerts covering them.",
    ),
    report_activity_abnormal.SPEC,
    *report_activity_legacy.SPECS,
    *report_safety.SPECS,
)
"""The activity reports (the catalogue, ``server.api.reports``, lists them)."""
