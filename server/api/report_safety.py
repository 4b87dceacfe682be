"""The ``safety-inspections`` report (安检: DESIGN §9 report names; docs/API.md "Reports"):
pass rates per catalogue item and per company over a period, and the rectifications open and
overdue today — one set of rows served as JSON, CSV or XLSX like every report
(``server.api.report_frame``; the JSON keeps its ``by_item``, ``by_company`` and ``totals``,
the files their machine-readable header), scoped in SQL by ``server.kernel.scope`` "safety_inspections"
(docs/ARCHITECTURE.md §7: a company admin counts its customers' records, a district regulator
or officer its districts).

What is counted, and why:
- **The period's current records.** Records inspected in the period's city days; a record
  corrected by a later one is left out (the correction is the truth about the visit and is
  counted on its own day), so a correction never counts one visit twice.
- **An item's pass rate** is passed / (passed + failed) of the records answering it: "not
  applicable" says nothing about the household's safety. Items are grouped by ``code`` across
  catalogue versions and customer kinds (a new version keeps its codes); the name is the
  newest version's text.
- **A company's pass rate** is records passed / records (a record fails when any item fails).
- **Rectifications open and overdue are today's**, whatever day their inspection was: an old
  rectification still open is the one a report must not hide. Overdue: open and past its
  deadline (the overdue round marks the same rows, a round later at most).

How the period is read: the safety rollup (migration 0231, ``server.db.rollup_safety``) for
the days before its watermark — per city day, company and district the records passed and
failed, and per item code the answers with the newest item answered — and its defining
functions over the raw records from the watermark on (``server.db.rollups.source``), so a
year reads the rollup's rows instead of joining a year of answers to their records (4.8 s at
the bench city; docs/BENCHMARKS.md "Reports"). The scope and the filters go on the rollup
rows' columns, the records' own. A closed day counts as of the last refresh: a record
uploaded late for it, or a correction of one of its records, from the next refresh of that
day. Today's rectifications are read from their table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import asyncpg

from server.api.report_activity_common import keyed
from server.api.report_common import ACTIVITY_ROLES
from server.api.report_frame import Report, ReportContext, Result
from server.db import rollup_safety, rollups
from server.domain.safety import fill_text
from server.kernel.scope import Sql

__all__ = ["HEADER", "SPECS", "pass_rate", "safety_inspections"]

HEADER = [
    "dimension",
    "code",
    "name",
    "name_en",
    "records",
    "passed",
    "failed",
    "na",
    "pass_rate",
    "open_rectifications",
    "overdue_rectifications",
]
RATE_DIGITS = 4
"""A rate as a fraction to four places: a hundredth of a percent, finer than any target."""


def pass_rate(passed: int, failed: int) -> float | None:
    """passed / (passed + failed); None when nothing was judged."""
    judged = passed + failed
    return round(passed / judged, RATE_DIGITS) if judged else None


def _row(dimension: str, code: Any, name: Any, name_en: Any) -> dict[str, Any]:
    return {
        "dimension": dimension,
        "code": code,
        "name": name,
        "name_en": name_en,
        "records": 0,
        "passed": 0,
        "failed": 0,
        "na": 0 if dimension == "item" else None,
        "pass_rate": None,
        "open_rectifications": 0,
        "overdue_rectifications": 0,
    }


def _source(ctx: ReportContext, rollup: rollups.Rollup, q: Sql, upto: dt.date | None) -> str:
    """*rollup*'s rows of the period, scoped: the FROM item and its WHERE clause."""
    src = rollups.source(rollup, q, ctx.settings, ctx.f.first, ctx.f.last, upto)
    where = ctx.where("safety_inspections", "r", q, "r.district_code", "r.company_id")
    return f"{src} r WHERE {' AND '.join(where)}"


async def _items(ctx: ReportContext, upto: dt.date | None) -> list[asyncpg.Record]:
    """Per item code: the answers of the period's current records and the newest item
    answered's texts (the highest id: a newer catalogue version's item has a higher one)."""
    q = Sql()
    rows: list[asyncpg.Record] = await ctx.pool.fetch(
        f"""SELECT x.code, i.text_zh, i.text_en, x.records, x.passed, x.failed, x.na
              FROM (SELECT r.code, max(r.newest_item) AS newest,
                           sum(r.records) AS records, sum(r.passed) AS passed,
                           sum(r.failed) AS failed, sum(r.na) AS na
                      FROM {_source(ctx, rollup_safety.ITEMS, q, upto)}
                     GROUP BY r.code) x
              JOIN safety_items i ON i.id = x.newest""",
        *q.params,
    )
    return rows


async def _companies(ctx: ReportContext, upto: dt.date | None) -> list[asyncpg.Record]:
    """Per company: the period's current records, passed and failed."""
    q = Sql()
    rows: list[asyncpg.Record] = await ctx.pool.fetch(
        f"""SELECT x.company_id, co.code, co.name, x.records, x.passed, x.failed
              FROM (SELECT r.company_id, sum(r.records) AS records,
                           sum(r.passed) AS passed, sum(r.failed) AS failed
                      FROM {_source(ctx, rollup_safety.RECORDS, q, upto)}
                     GROUP BY r.company_id) x
              JOIN companies co ON co.id = x.company_id""",
        *q.params,
    )
    return rows


async def safety_inspections(ctx: ReportContext) -> Result:
    """Pass rates and rectifications of the caller's scope (DOMAIN.md "Safety inspection at
    the customer")."""
    settings = ctx.settings
    day = ctx.f.today
    pool = ctx.pool
    upto = await rollup_safety.watermark(pool, settings)  # one reading for both queries
    items = await _items(ctx, upto)
    companies = await _companies(ctx, upto)
    q2 = Sql()
    where = " AND ".join(
        ctx.where("safety_inspections", "s", q2, "s.district_code", "s.company_id")
    )
    rects = await pool.fetch(
        f"""SELECT i.code, s.company_id, co.code AS company_code, co.name AS company_name,
                   (array_agg(i.text_zh ORDER BY i.id DESC))[1] AS text_zh,
                   (array_agg(i.text_en ORDER BY i.id DESC))[1] AS text_en,
                   count(*) AS open, count(*) FILTER (WHERE r.deadline < {q2.add(day)}) AS overdue
              FROM safety_rectifications r JOIN safety_inspections s ON s.id = r.inspection_id
              JOIN safety_items i ON i.id = r.item_id JOIN companies co ON co.id = s.company_id
             WHERE r.state = 'open' AND {where} GROUP BY 1, 2, 3, 4""",
        *q2.params,
    )
    by_item: dict[str, dict[str, Any]] = {}
    by_company: dict[int, dict[str, Any]] = {}
    for r in items:
        e = by_item.setdefault(r["code"], _row("item", r["code"], r["text_zh"], r["text_en"]))
        e.update(records=r["records"], passed=r["passed"], failed=r["failed"], na=r["na"])
    for r in companies:
        e = by_company.setdefault(r["company_id"], _row("company", r["code"], r["name"], None))
        e.update(records=r["records"], passed=r["passed"], failed=r["failed"])
    for r in rects:
        for e in (
            by_item.setdefault(r["code"], _row("item", r["code"], r["text_zh"], r["text_en"])),
            by_company.setdefault(
                r["company_id"], _row("company", r["company_code"], r["company_name"], None)
            ),
        ):
            e["open_rectifications"] += r["open"]
            e["overdue_rectifications"] += r["overdue"]
    for e in (*by_item.values(), *by_company.values()):
        e["pass_rate"] = pass_rate(e["passed"], e["failed"])
    for e in by_item.values():
        e["name"] = fill_text(e["name"], settings.safety)
        e["name_en"] = fill_text(e["name_en"], settings.safety)
    item_rows = sorted(by_item.values(), key=lambda e: str(e["code"]))
    company_rows = sorted(by_company.values(), key=lambda e: str(e["code"]))
    totals = {
        "records": sum(e["records"] for e in company_rows),
        "passed": sum(e["passed"] for e in company_rows),
        "failed": sum(e["failed"] for e in company_rows),
        "open_rectifications": sum(e["open_rectifications"] for e in company_rows),
        "overdue_rectifications": sum(e["overdue_rectifications"] for e in company_rows),
    }
    totals["pass_rate"] = pass_rate(totals["passed"], totals["failed"])
    return Result(
        [*item_rows, *company_rows],
        totals,
        extra={"by_item": item_rows, "by_company": company_rows},
    )


_TYPES: Final = {
    "dimension": "code",
    "code": "code",
    "records": "count",
    "passed": "count",
    "failed": "count",
    "na": "count",
    "pass_rate": "rate",
    "open_rectifications": "count",
    "overdue_rectifications": "count",
}

SPECS: tuple[Report, ...] = (
    Report(
        name="safety-inspections",
        title="入户安检",
        title_en="Safety inspections: pass rates and rectifications",
        roles=ACTIVITY_ROLES,
        filters=frozenset({"period", "district", "company"}),
        columns=tuple(keyed(k, _TYPES.get(k, "text")) for k in HEADER),
        compute=safety_inspections,
        description="Records inspected in the range (a corrected record is left out: its "
        "correction counts); an item's pass_rate is passed/(passed+failed), a company's records "
        "passed/records; open and overdue rectifications are today's, whatever their inspection "
        "day. JSON: the frame's keys plus by_item and by_company; rows and CSV/XLSX: one row per "
        "item and per company (`dimension`).",
    ),
)
