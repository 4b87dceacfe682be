"""Reports on the cylinder archive as it stands today (DESIGN §9 report names; docs/API.md
"Reports"; docs/ARCHITECTURE.md §4 and §9): what each company holds, how compliant it is,
where the cylinders in use are.

- ``holdings`` (企业钢瓶保有量): per owner company, cylinders by status (in service, at
  inspection, lost, suspended, not activated, scrapped) and the ones not scrapped by age
  band (years since manufacture, the bands of DOMAIN.md's design life: under 4, 4–8, 8–12,
  12 and more, where only an extended life may still be in service);
- ``compliance-summary`` (合规状态): cylinders by compliance status (server.db.compliance),
  one row per district and one per owner company — also answered in its earlier JSON shape
  (``by_district``, ``by_company``) for the callers that read it;
- ``in-use-distribution`` (在用钢瓶分布): per district, cylinders at a customer's that are in
  service (status ``in_service`` and the scrap date not come: a scrapped cylinder a household
  still holds is abnormal, not in use — ``abnormal-cylinders`` lists it), of them the ones
  overdue for inspection, and the customers holding them.

Counted on today; the period does not apply (a holding is a stock, not a flow). A count
drills down to its cylinders (or, for customers, to the customers).

The counts are taken over the cylinder census (``server.db.census``, migration 0226): as of
the last rollup refresh, said in the answer's ``as_of``; the drill-downs read ``cylinders``
itself (exact now). ``in-use-distribution`` reads the counts the refresh made of the census
for today (migration 0234: a few hundred rows per district and owner instead of a scan of the
census and a sort of its cylinders in use for the distinct customers; 0.12 → 0.01 s at 100k
cylinders), the census when they are not today's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from server.api import report_drill
from server.api.report_common import CYL_REPORT_ROLES
from server.api.report_cylinders_common import (
    CIRCULATION_ROLES,
    cylinder_where,
    key_condition,
    sums,
)
from server.api.report_frame import (
    Chart,
    Column,
    DrillQuery,
    Report,
    ReportContext,
    Result,
)
from server.db.census import IN_USE, census, in_use_day
from server.db.compliance import (
    COMPLIANCE_VALUES,
    ComplianceBounds,
    compliance_case,
    compliance_where,
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


def _years_before(today: dt.date, years: int) -> dt.date:
    """*today* less whole *years*, as PostgreSQL's ``date - make_interval(years => n)``
    (29 February to the 28th in a common year)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def _band_sql(lo: int, hi: int | None, q: Sql, today: dt.date) -> str:
    """Not scrapped and ``age(today, manufacture_date)`` in [lo, hi) years, as bounds on the
    date: one comparison a row instead of an ``age()`` (holdings counts every cylinder)."""
    cond = f"c.manufacture_date <= {q.add(_years_before(today, lo))}"
    if hi is not None:
        cond += f" AND c.manufacture_date > {q.add(_years_before(today, hi))}"
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
    src = await census(ctx.pool)
    q = Sql()
    where = _holdings_where(ctx, q)
    status_counts = ", ".join(f"count(*) FILTER (WHERE c.status = '{s}') AS {s}" for s in STATUSES)
    band_counts = ", ".join(
        f"count(*) FILTER (WHERE {_band_sql(lo, hi, q, ctx.f.today)}) AS {_band_key(lo, hi)}"
        for lo, hi in AGE_BANDS
    )
    rows = await ctx.pool.fetch(
        # counted per owner id, then named (as compliance_summary)
        f"""SELECT o.code AS company_code, o.name AS company_name, g.*
              FROM (SELECT c.owner_company_id, count(*) AS total, {status_counts},
                           {band_counts}
                      FROM {src.relation} c
                     WHERE {" AND ".join(where)} GROUP BY 1) g
              JOIN companies o ON o.id = g.owner_company_id
             ORDER BY g.total DESC, o.code""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    for r in out:
        del r["owner_company_id"]
    totals = {k: sum(r[k] for r in out) for k in _COUNTS}
    return Result(out, totals, extra={"as_of": src.as_of})


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


# ---------------------------------------------------------------- compliance-summary

_COMPLIANCE_LABELS: Final = {
    "scrapped": ("已报废", "Scrapped"),
    "overdue": ("超期未检", "Overdue"),
    "scrap_due": ("临近报废", "Scrap due"),
    "inspection_due": ("临近检验", "Inspection due"),
    "ok": ("正常", "OK"),
}
if set(_COMPLIANCE_LABELS) != set(COMPLIANCE_VALUES):  # pragma: no cover - a programming error
    raise RuntimeError("report_cylinders: a label per compliance status")
DIMENSIONS: Final = ("district", "company")
COMPLIANCE_COLUMNS = (
    Column("dimension", "维度", "Dimension", "code"),
    Column("code", "代码", "Code", "code"),
    Column("name", "名称", "Name", "text"),
    *(Column(v, *_COMPLIANCE_LABELS[v], "count", "cylinders") for v in COMPLIANCE_VALUES),
    Column("total", "合计", "Total", "count", "cylinders"),
)
_COMPLIANCE_COUNTS: Final = (*COMPLIANCE_VALUES, "total")


async def compliance_summary(ctx: ReportContext) -> Result:
    """Counts per compliance status on today, per district and per owner company: each
    cylinder once in each dimension, so either dimension's rows sum to the totals."""
    src = await census(ctx.pool)
    q = Sql()
    where = cylinder_where(ctx, q)
    case = compliance_case("c", q, ComplianceBounds.of(ctx.f.today, ctx.settings.dates))
    counts = ", ".join(
        f"count(*) FILTER (WHERE x.compliance = '{v}') AS {v}" for v in COMPLIANCE_VALUES
    )
    rows = await ctx.pool.fetch(
        # counted per district × owner id first, then named: the names' join and wide
        # grouping keys on a few hundred groups instead of every cylinder (half the time).
        # A column per status, not a group: the planner cannot estimate the groups of the
        # CASE and, expecting 100,000 of them, sorted 1M census rows on disk (1.1 s at 1M
        # cylinders; hashed on district × owner, 0.6–0.7 s; docs/BENCHMARKS.md "Reports")
        f"""SELECT g.*, d.name AS district_name, o.code AS company_code, o.name AS company_name
              FROM (SELECT x.district_code, x.owner_company_id, {counts}
                      FROM (SELECT c.district_code, c.owner_company_id, {case} AS compliance
                              FROM {src.relation} c WHERE {" AND ".join(where)}) x
                     GROUP BY 1, 2) g
              JOIN companies o ON o.id = g.owner_company_id
              LEFT JOIN districts d ON d.code = g.district_code""",
        *q.params,
    )
    by: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in rows:
        for dim, code, label in (
            ("district", r["district_code"], r["district_name"]),
            ("company", r["company_code"], r["company_name"]),
        ):
            entry = by.setdefault(
                (dim, code),
                {"dimension": dim, "code": code, "name": label}
                | dict.fromkeys(_COMPLIANCE_COUNTS, 0),
            )
            for v in COMPLIANCE_VALUES:
                entry[v] += r[v]
                entry["total"] += r[v]
    out = sorted(by.values(), key=lambda e: (e["dimension"], str(e["code"])))
    districts = [e for e in out if e["dimension"] == "district"]
    return Result(
        out,
        sums(districts, _COMPLIANCE_COUNTS),
        extra={
            "by_district": districts,
            "by_company": [e for e in out if e["dimension"] == "company"],
            "as_of": src.as_of,
        },
    )


def compliance_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    q = Sql()
    where = cylinder_where(ctx, q)
    dimension = keys.get("dimension")
    if dimension is not None and dimension not in DIMENSIONS:
        raise bad_query("dimension", f"must be one of {', '.join(DIMENSIONS)}")
    if dimension is not None:
        col = "c.district_code" if dimension == "district" else "o.code"
        cond = key_condition(ctx, keys, "code", col, q)
        if cond:
            where.append(cond)
    if measure in COMPLIANCE_VALUES:
        bounds = ComplianceBounds.of(ctx.f.today, ctx.settings.dates)
        where.append(compliance_where(measure, "c", q, bounds))
    elif measure != "total":
        raise bad_query("measure", "not a count of this report")
    return report_drill.cylinders(ctx, q, where)


# ---------------------------------------------------------------- in-use-distribution

IN_USE_COLUMNS = (
    Column("district_code", "区县代码", "District code", "code"),
    Column("district_name", "区县", "District", "text"),
    Column("in_use", "在用钢瓶", "Cylinders in use", "count", "cylinders"),
    Column("overdue", "其中超期未检", "Of which overdue", "count", "cylinders"),
    Column("customers", "用户数", "Customers", "count", "customers"),
)


def _in_use_where(ctx: ReportContext, q: Sql) -> list[str]:
    """Cylinders at a customer's and in service: status in_service, scrap date not come."""
    where = cylinder_where(ctx, q)
    where.append("c.location_kind = 'customer' AND c.status = 'in_service'")
    where.append(f"c.scrap_date > {q.add(ctx.f.today)}")
    return where


def _overdue(q: Sql, today: Any) -> str:
    # server.db.compliance: a missing next-inspection date counts as overdue
    return f"(c.next_inspection_date IS NULL OR c.next_inspection_date < {q.add(today)})"


async def in_use_distribution(ctx: ReportContext) -> Result:
    """Per district (the cylinder's: ingest moves it to the customer's on delivery); the
    totals row is grouped in SQL, so a customer counted in two districts is counted once.
    From the counts made at the last refresh for today (migration 0234) when there are,
    else over the census."""
    made = await in_use_day(ctx.pool, ctx.settings.alerts.timezone, ctx.f.today)
    q = Sql()
    if made is not None:
        as_of: dt.datetime | None = made
        # customers: those within one (district, owner) pair add up; the others are listed
        # by id and counted once (server.db.census.in_use_day)
        where = cylinder_where(ctx, q)
        # (coalesce: the totals row over no rows is 0, as a count's)
        counts = """coalesce(sum(c.in_use), 0)::bigint AS in_use,
                    coalesce(sum(c.overdue), 0)::bigint AS overdue,
                    (coalesce(sum(c.customers), 0) + count(DISTINCT c.customer_id))::bigint
                        AS customers"""
        relation = IN_USE
    else:
        src = await census(ctx.pool)
        as_of = src.as_of
        where = _in_use_where(ctx, q)
        counts = f"""count(*) AS in_use, count(*) FILTER (WHERE {_overdue(q, ctx.f.today)})
                     AS overdue, count(DISTINCT c.location_customer_id) AS customers"""
        relation = src.relation
    rows = await ctx.pool.fetch(
        f"""SELECT c.district_code, d.name AS district_name, {counts},
                   GROUPING(c.district_code) = 1 AS is_total
              FROM {relation} c LEFT JOIN districts d ON d.code = c.district_code
             WHERE {" AND ".join(where)}
             GROUP BY GROUPING SETS ((c.district_code, d.name), ())
             ORDER BY c.district_code NULLS LAST""",
        *q.params,
    )
    out = [dict(r) for r in rows]
    total = next(r for r in out if r.pop("is_total"))
    out = [r for r in out if r is not total]
    for r in out:
        r.pop("is_total", None)
    totals = {k: total[k] for k in ("in_use", "overdue", "customers")}
    return Result(out, totals, extra={"as_of": as_of})


def in_use_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    q = Sql()
    where = _in_use_where(ctx, q)
    district = key_condition(ctx, keys, "district_code", "c.district_code", q)
    if district:
        where.append(district)
    if measure == "overdue":
        where.append(_overdue(q, ctx.f.today))
    elif measure == "customers":
        outer = ctx.where("customers", "cu", q, None, None)
        outer.append(
            f"cu.id IN (SELECT c.location_customer_id FROM cylinders c WHERE {' AND '.join(where)})"
        )
        return report_drill.customers(ctx, q, outer)
    elif measure != "in_use":
        raise bad_query("measure", "not a count of this report")
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
    Report(
        name="compliance-summary",
        title="钢瓶合规状态",
        title_en="Cylinders by compliance status",
        roles=CYL_REPORT_ROLES,
        filters=frozenset({"district", "company"}),
        columns=COMPLIANCE_COLUMNS,
        compute=compliance_summary,
        keys=("dimension", "code"),
        chart=Chart("stacked_bar", "name", COMPLIANCE_VALUES),
        drill=compliance_drill,
        description="Today: cylinders per compliance status (scrapped, overdue, scrap_due, "
        "inspection_due, ok) and in total, one row per district and one per owner company "
        "(`dimension`); also `by_district` and `by_company` (the earlier answer). Every "
        "count drills down to its cylinders.",
    ),
    Report(
        name="in-use-distribution",
        title="在用钢瓶分布",
        title_en="Cylinders in use by district",
        roles=CIRCULATION_ROLES,
        filters=frozenset({"district", "company"}),
        columns=IN_USE_COLUMNS,
        compute=in_use_distribution,
        keys=("district_code",),
        chart=Chart("choropleth", "district_code", ("in_use",)),
        drill=in_use_drill,
        description="Today, per district: cylinders at a customer's that are in service "
        "(status in_service, scrap date not come), of them the ones overdue for inspection, "
        "and the customers holding them. Counts drill down to the cylinders or customers.",
    ),
)
