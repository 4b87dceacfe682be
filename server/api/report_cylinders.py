"""Reports on the cylinder archive as it stands today (DESIGN §9 report names; docs/API.md
"Reports"): what each company holds, by status and by age.

- ``holdings`` (企业钢瓶保有量): per owner company, cylinders by status (in service, at
  inspection, lost, suspended, not activated, scrapped) and the ones not scrapped by age
  band (years since manufacture, the bands of DOMAIN.md's design life: under 4, 4–8, 8–12,
  12 and more, where only an extended life may still be in service).

Counted on today; the period does not apply (a holding is a stock, not a flow). A count
drills down to its cylinders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from server.api import report_drill
from server.api.report_common import CYL_REPORT_ROLES
from server.api.report_frame import (
    Chart,
    Column,
    DrillQuery,
    Report,
    ReportContext,
    Result,
)
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = ["SPECS"]

STATUSES: Final = ("in_service", "in_inspection", "lost", "suspended", "not_activated", "scrapped")
AGE_BANDS: Final = ((0, 4), (4, 8), (8, 12), (12, None))
"""Years since manufacture: the design life of DOMAIN.md is 8 years for the household
models, extended to at most 12 by inspection — the bands show where a fleet stands."""
_STATUS_LABELS: Final = {
    "in_service": ("在用", "In service"),
    "in_inspection": ("检验中", "At inspection"),
    "lost": ("丢失", "Lost"),
    "suspended": ("停用", "Suspended"),
    "not_activated": ("未启用", "Not activated"),
    "scrapped": ("已报废", "Scrapped"),
}


def _band_key(lo: int, hi: int | None) -> str:
    return f"age_{lo}_{hi}" if hi is not None else f"age_{lo}_plus"


def _band_sql(lo: int, hi: int | None, q: Sql, today: Any) -> str:
    age = f"age({q.add(today)}::date, c.manufacture_date)"
    cond = f"{age} >= make_interval(years => {lo})"
    if hi is not None:
        cond += f" AND {age} < make_interval(years => {hi})"
    return f"c.status <> 'scrapped' AND {cond}"


HOLDINGS_COLUMNS = (
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
    Column("total", "合计", "Total", "count", "cylinders"),
    *(Column(s, zh, en, "count", "cylinders") for s, (zh, en) in _STATUS_LABELS.items()),
    *(
        Column(
            _band_key(lo, hi),
            f"{lo}-{hi}年" if hi else f"{lo}年以上",
            f"{lo}–{hi} y" if hi else f"{lo}+ y",
            "count",
            "cylinders",
        )
        for lo, hi in AGE_BANDS
    ),
)
_COUNTS: Final = tuple(c.key for c in HOLDINGS_COLUMNS if c.type == "count")


def _holdings_where(ctx: ReportContext, q: Sql) -> list[str]:
    return ctx.where("cylinders", "c", q, "c.district_code", "c.owner_company_id")


async def holdings(ctx: ReportContext) -> Result:
    q = Sql()
    where = _holdings_where(ctx, q)
    status_counts = ", ".join(f"count(*) FILTER (WHERE c.status = '{s}') AS {s}" for s in STATUSES)
    band_counts = ", ".join(
        f"count(*) FILTER (WHERE {_band_sql(lo, hi, q, ctx.f.today)}) AS {_band_key(lo, hi)}"
        for lo, hi in AGE_BANDS
    )
    rows = await ctx.pool.fetch(
        f"""SELECT o.code AS company_code, o.name AS company_name, count(*) AS total,
                   {status_counts}, {band_counts}
              FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
             WHERE {" AND ".join(where)}
             GROUP BY o.code, o.name ORDER BY count(*) DESC, o.code""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    totals = {k: sum(r[k] for r in out) for k in _COUNTS}
    return Result(out, totals)


def holdings_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    q = Sql()
    where = _holdings_where(ctx, q)
    if "company_code" in keys:
        where.append(f"o.code = {q.add(keys['company_code'])}")
    if measure in STATUSES:
        where.append(f"c.status = {q.add(measure)}")
    elif measure != "total":
        band = next(((lo, hi) for lo, hi in AGE_BANDS if _band_key(lo, hi) == measure), None)
        if band is None:
            raise bad_query("measure", "not a count of this report")
        where.append(_band_sql(band[0], band[1], q, ctx.f.today))
    return report_drill.cylinders(ctx, q, where)


SPECS: tuple[Report, ...] = (
    Report(
        name="holdings",
        title="企业钢瓶保有量",
        title_en="Cylinders held per company",
        roles=CYL_REPORT_ROLES,
        filters=frozenset({"district", "company"}),
        columns=HOLDINGS_COLUMNS,
        compute=holdings,
        keys=("company_code",),
        chart=Chart("stacked_bar", "company_name", STATUSES),
        drill=holdings_drill,
        description="Per owner company, today: cylinders by status and, not scrapped, by "
        "years since manufacture. Every count drills down to its cylinders.",
    ),
)
