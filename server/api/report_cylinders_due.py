"""What falls due on the cylinder archive, month by month ahead (DESIGN §9 report names;
docs/API.md "Reports"; docs/ARCHITECTURE.md §4 and §9):

- ``inspection-due`` (待检): per owner company, cylinders not scrapped whose periodic
  inspection is past (``overdue``) or falls in each of the next ``months`` calendar months;
- ``scrap-due`` (待报废): per owner company, cylinders not recorded scrapped whose scrap date
  has come (``overdue``: to be scrapped now) or falls in each of the next ``months`` months.

A row is one bucket × one company: ``month`` is ``overdue`` or ``YYYY-MM`` (the current
calendar month first, from today on), with the cylinders and, of them, those at a customer's
(to be called back from the households). Counted on today; the period does not apply (what
falls due is a stock, not a flow). Every count drills down to its cylinders.

The counts are taken over the cylinder census (``server.db.census``, migration 0226): as of
the last rollup refresh, said in the answer's ``as_of``; the drill-downs read ``cylinders``
itself (exact now).

``inspection-due`` also answers its earlier shape beside the frame's keys, for the callers
that read it: ``items`` (a page of the cylinders whose inspection is due within ``[dates]
inspection_due_days`` or past, most urgent first), ``page``, ``page_size`` and ``total``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from server.api import report_drill
from server.api.doc import Param
from server.api.report_cylinders_common import (
    ARCHIVE_ROLES,
    cylinder_where,
    key_condition,
    sums,
)
from server.api.report_frame import Chart, Column, DrillQuery, Report, ReportContext, Result
from server.api.rows import fetch_page, plain
from server.db.census import census
from server.db.compliance import ComplianceBounds, compliance_case
from server.kernel.errors import bad_query
from server.kernel.http import Page, paged
from server.kernel.scope import Sql

__all__ = ["MONTHS_DEFAULT", "MONTHS_MAX", "SPECS"]

MONTHS_DEFAULT: Final = 12
"""Months ahead a due report shows when ``months`` is omitted: a year, the span a company
plans its inspection contracts and replacement purchases over."""
MONTHS_MAX: Final = 60
"""The most months ahead one request may ask for: five years covers a whole periodic
inspection interval (DOMAIN.md: 4 years) and the design life's last stretch."""
OVERDUE: Final = "overdue"
"""The ``month`` of the bucket already past: inspection overdue, or scrap date come."""
_MONTH_RE: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

MONTHS_PARAM: Final = Param(
    "months",
    "integer",
    f"calendar months ahead, this one first (1–{MONTHS_MAX}; default {MONTHS_DEFAULT})",
)
DUE_COLUMNS: Final = (
    Column("month", "月份", "Month", "code"),
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
    Column("cylinders", "钢瓶数", "Cylinders", "count", "cylinders"),
    Column("at_customers", "其中在用户处", "Of which at customers", "count", "cylinders"),
)
_COUNTS: Final = ("cylinders", "at_customers")
_CHART: Final = Chart("stacked_bar", "month", ("cylinders",), "company_name")


@dataclass(frozen=True)
class _Due:
    """One due report: the date column that falls due, the population it is counted in, and
    the test that puts a cylinder in the ``overdue`` bucket (``{d}``: the column; ``{t}``:
    today's parameter)."""

    date_col: str
    population: str
    overdue: str


_INSPECTION: Final = _Due(
    "c.next_inspection_date",
    "c.status <> 'scrapped' AND c.scrap_date > {t}",
    "({d} IS NULL OR {d} < {t})",
)
"""Not scrapped by the compliance rule (server.db.compliance: status or scrap date); a
missing next-inspection date counts as overdue, as it does there."""
_SCRAP: Final = _Due("c.scrap_date", "c.status <> 'scrapped'", "{d} <= {t}")
"""Not recorded scrapped; a scrap date that has come is the compliance rule's ``scrapped``
without the record saying so — to be scrapped now."""


def _months(ctx: ReportContext) -> int:
    raw = ctx.f.extra.get("months")
    if raw is None:
        return MONTHS_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise bad_query("months", f"expected an integer, got {raw!r}") from None
    if not 1 <= value <= MONTHS_MAX:
        raise bad_query("months", f"must be from 1 to {MONTHS_MAX}")
    return value


def _horizon(today: dt.date, months: int) -> dt.date:
    """The first day after the last month shown."""
    index = today.year * 12 + today.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _where(ctx: ReportContext, due: _Due, q: Sql) -> tuple[list[str], str]:
    """(the scope, filters and population up to the horizon; the bucket expression)."""
    where = cylinder_where(ctx, q)
    t = q.add(ctx.f.today)
    overdue = due.overdue.format(d=due.date_col, t=t)
    horizon = q.add(_horizon(ctx.f.today, _months(ctx)))
    where.append(due.population.format(t=t))
    where.append(f"({overdue} OR {due.date_col} < {horizon})")
    bucket = f"CASE WHEN {overdue} THEN '{OVERDUE}' ELSE to_char({due.date_col}, 'YYYY-MM') END"
    return where, bucket


async def _due_rows(ctx: ReportContext, due: _Due) -> Result:
    src = await census(ctx.pool)
    q = Sql()
    where, bucket = _where(ctx, due, q)
    rows = await ctx.pool.fetch(
        # counted per month × owner id, then named: the join on a few hundred groups
        f"""SELECT g.month, o.code AS company_code, o.name AS company_name, g.cylinders,
                   g.at_customers
              FROM (SELECT {bucket} AS month, c.owner_company_id, count(*) AS cylinders,
                           count(*) FILTER (WHERE c.location_kind = 'customer') AS at_customers
                      FROM {src.relation} c
                     WHERE {" AND ".join(where)}
                     GROUP BY 1, 2) g
              JOIN companies o ON o.id = g.owner_company_id""",
        *q.params,
    )
    out = sorted(
        (dict(r) for r in rows),
        key=lambda r: (r["month"] != OVERDUE, r["month"], r["company_code"]),
    )
    return Result(out, sums(out, _COUNTS), extra={"months": _months(ctx), "as_of": src.as_of})


def _due_drill(due: _Due) -> Any:
    def drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
        q = Sql()
        where, bucket = _where(ctx, due, q)
        month = keys.get("month")
        if month is not None:
            if month != OVERDUE and not _MONTH_RE.match(month):
                raise bad_query("month", f"expected {OVERDUE} or YYYY-MM, got {month!r}")
            where.append(f"{bucket} = {q.add(month)}")
        company = key_condition(ctx, keys, "company_code", "o.code", q)
        if company:
            where.append(company)
        if measure == "at_customers":
            where.append("c.location_kind = 'customer'")
        elif measure != "cylinders":
            raise bad_query("measure", "not a count of this report")
        return report_drill.cylinders(ctx, q, where)

    return drill


async def scrap_due(ctx: ReportContext) -> Result:
    return await _due_rows(ctx, _SCRAP)


# ---------------------------------------------------------------- inspection-due's list

_LIST_SELECT: Final = """c.id, c.tag, c.stamp, c.barcode, o.code AS owner_code,
    o.name AS owner_name, c.spec, c.district_code, c.last_inspection_date,
    c.next_inspection_date, c.scrap_date, c.status"""


def _page(ctx: ReportContext) -> Page:
    """``page`` and ``page_size`` of the list, read like every list's (``server.kernel.http
    .q_page``): a bad value, or a page beyond ``[http] page_offset_max``, is a 400."""
    http = ctx.settings.http
    size = _int(ctx.query, "page_size", http.page_size_default, http.page_size_max)
    page = _int(ctx.query, "page", 1, http.page_offset_max // size + 1)
    return Page(page, size)


def _int(query: Mapping[str, str], name: str, default: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_query(name, f"expected an integer, got {raw!r}") from None
    if value < 1:
        raise bad_query(name, "must be ≥ 1")
    if value > hi:
        raise bad_query(name, f"must be ≤ {hi}")
    return value


async def _due_list(ctx: ReportContext) -> dict[str, Any]:
    """The earlier answer: cylinders not scrapped whose inspection is due within ``[dates]
    inspection_due_days`` or past, most urgent first, one page."""
    page = _page(ctx)
    b = ComplianceBounds.of(ctx.f.today, ctx.settings.dates)
    q = Sql()
    where = cylinder_where(ctx, q)
    where.append(f"c.next_inspection_date <= {q.add(b.inspection_due_until)}")
    where.append(f"c.status <> 'scrapped' AND c.scrap_date > {q.add(b.today)}")
    case = compliance_case("c", q, b)
    rows, total = await fetch_page(
        ctx.pool,
        f"{_LIST_SELECT}, {case} AS compliance",
        f"cylinders c JOIN companies o ON o.id = c.owner_company_id WHERE {' AND '.join(where)}",
        "c.next_inspection_date, c.id",
        q,
        page,
    )
    return paged([plain(r) for r in rows], page, total)


async def inspection_due(ctx: ReportContext) -> Result:
    page = await _due_list(ctx)
    result = await _due_rows(ctx, _INSPECTION)
    return Result(result.rows, result.totals, extra={**result.extra, **page})


SPECS: tuple[Report, ...] = (
    Report(
        name="inspection-due",
        title="待检钢瓶",
        title_en="Cylinders due for inspection",
        roles=ARCHIVE_ROLES,
        filters=frozenset({"district", "company"}),
        columns=DUE_COLUMNS,
        compute=inspection_due,
        keys=("month", "company_code"),
        chart=_CHART,
        drill=_due_drill(_INSPECTION),
        params=(MONTHS_PARAM,),
        description="Per owner company, today: cylinders not scrapped whose periodic "
        "inspection is overdue or falls in each of the next `months` calendar months, and of "
        "them those at a customer's. Also `items`/`page`/`page_size`/`total`: a page of the "
        "cylinders due within [dates] inspection_due_days or overdue (the earlier answer; "
        "`page`, `page_size` as every list's).",
    ),
    Report(
        name="scrap-due",
        title="待报废钢瓶",
        title_en="Cylinders due for scrapping",
        roles=ARCHIVE_ROLES,
        filters=frozenset({"district", "company"}),
        columns=DUE_COLUMNS,
        compute=scrap_due,
        keys=("month", "company_code"),
        chart=_CHART,
        drill=_due_drill(_SCRAP),
        params=(MONTHS_PARAM,),
        description="Per owner company, today: cylinders not recorded scrapped whose scrap "
        "date has come (`overdue`) or falls in each of the next `months` calendar months, and "
        "of them those at a customer's. Every count drills down to its cylinders.",
    ),
)
