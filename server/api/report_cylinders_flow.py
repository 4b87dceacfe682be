"""Reports on cylinders in circulation over a period (DESIGN §9 report names; docs/API.md
"Reports"; docs/ARCHITECTURE.md §4 and §9):

- ``abnormal-cylinders`` (异常钢瓶): per owner company, overdue or scrapped cylinders still
  circulating — filled, or dispatched / delivered / transferred / received (the scans that
  move a cylinder on towards use, ``server.domain.circulation.VIOLATION_ACTIONS``; a return
  is what should happen to an unsafe cylinder) in the period while overdue or scrapped at
  that moment, or at a customer's or on a vehicle today while overdue or scrapped;
- ``recovery-rate`` (回收率): per owner company, the cylinders in circulation in the period
  filled at least once in it vs never (the never-filled list is the drill-down), the rate,
  and those left at a closed account's longer than ``[reports] unreturned_days`` after
  delivery (DOMAIN.md "Circulation checks": listed in the recovery report, not alerted).

"At that moment" is the record as it stood on the event's city day: the scrap date (scrapping
moves it to the scrapping day, ``server.domain.transitions``), and the next inspection date
in force that day — the record's own unless an inspection came later, then the one the
latest passed inspection on or before that day set, or, with none recorded, manufacture +
``[dates] inspection_interval_years`` (DOMAIN.md "Dates"). So a cylinder filled while
overdue and inspected since still counts. Those cylinder-days come from the abnormal
circulation rollup (migration 0227, ``server.db.rollup_abnormal``) for the days before its
watermark and from the fills and events of the days after it, so a year answers without
reading a year of them; the role scope is the cylinders' (the owner's report). The counts
(``server.api.report_cylinders_abnormal``) fold those rows per cylinder and look the
cylinders up by id, today's held ones through their date indexes, in one statement; counts
drill down to the cylinders; the previous period's totals stand beside the flows.

Recovery-rate's fleet is counted over the cylinder census (``server.db.census``, migration
0226, with the registration instant since 0230: as of the last rollup refresh, said in the
answer's ``as_of``), and "filled in the period" comes from the fill-day rollup (migration
0230, ``server.db.rollup_fill_days``: per cylinder and year, the days it was filled) before
its watermark and from the raw fills after it, so a year reads one row per cylinder instead
of a year of fills. Since migration 0233 both are read in one: the recovery census
(``server.db.rollup_recovery``), the census's activated cylinders with their fill days of
three city years as one bit string, made at each refresh — a request scans one narrow row per
cylinder instead of joining the census to the fill-day rows per view and year (0.24 → 0.05 s
at 100k cylinders); a period before its first year reads the census and the fill days as
before. ``unreturned`` is today's position, read live through the closed
accounts. The drill-downs read ``cylinders`` and the fills (exact, as of now).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from server.api import report_drill
from server.api.report_cylinders_abnormal import abnormal_cylinders
from server.api.report_cylinders_common import (
    CIRCULATION_ROLES,
    cylinder_where,
    key_condition,
    share,
    sums,
)
from server.api.report_frame import Chart, Column, DrillQuery, Report, ReportContext, Result
from server.db import rollup_abnormal, rollup_fill_days, rollup_recovery
from server.db.census import census
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = ["SPECS"]

_COMPANY: Final = (
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
)

# ---------------------------------------------------------------- abnormal-cylinders

KINDS: Final = (
    "filled_overdue",
    "filled_scrapped",
    "moved_overdue",
    "moved_scrapped",
    "held_overdue",
    "held_scrapped",
)
"""How an unsafe cylinder circulated: filled or moved on in the period, held by a customer or
a vehicle today; each while overdue for inspection or scrapped (scrapped first, as the
compliance precedence has it: a cylinder both is counted scrapped)."""
FLOWS: Final = KINDS[:4]
_HOW: Final = {"filled": "fill", "moved": "move", "held": "held"}
"""A kind's first word → the ``how`` of the rows it is found in."""
_KIND_LABELS: Final = {
    "filled_overdue": ("超期充装", "Filled while overdue"),
    "filled_scrapped": ("报废后充装", "Filled while scrapped"),
    "moved_overdue": ("超期流转", "Moved on while overdue"),
    "moved_scrapped": ("报废后流转", "Moved on while scrapped"),
    "held_overdue": ("超期在用户/车辆处", "Overdue at a customer or vehicle"),
    "held_scrapped": ("已报废在用户/车辆处", "Scrapped at a customer or vehicle"),
}
ABNORMAL_COLUMNS = (
    *_COMPANY,
    Column("cylinders", "异常钢瓶", "Abnormal cylinders", "count", "cylinders"),
    *(Column(k, *_KIND_LABELS[k], "count", "cylinders") for k in KINDS),
)


def _flags(ctx: ReportContext, q: Sql, start: dt.datetime, end: dt.datetime, held: bool) -> str:
    """One row per abnormal cylinder in scope: ``cylinder_id`` and a boolean per kind (the
    held kinds only when *held*: they are today's, whatever the period)."""
    # The cylinder-days filled or moved on while unsafe at that moment: the abnormal rollup
    # before its watermark, its defining function over the raw fills and scans from there on
    # (server.db.rollup_abnormal; migration 0227 states the rule).
    src = rollup_abnormal.source(q, ctx.settings, start, end)
    seen = f"""SELECT m.cylinder_id, m.how, m.scrapped, m.overdue
                 FROM {src} m JOIN cylinders c ON c.id = m.cylinder_id
                WHERE {" AND ".join(cylinder_where(ctx, q))}"""
    parts = [seen]
    if held:
        t = q.add(ctx.f.today)
        scrapped = f"(c.status = 'scrapped' OR c.scrap_date <= {t})"
        overdue = f"(c.next_inspection_date IS NULL OR c.next_inspection_date < {t})"
        parts.append(
            f"""SELECT c.id, 'held', {scrapped}, {overdue}
                  FROM cylinders c
                 WHERE {" AND ".join(cylinder_where(ctx, q))}
                   AND c.location_kind IN ('customer', 'vehicle') AND ({scrapped} OR {overdue})"""
        )
    flags = ", ".join(
        f"bool_or(x.how = '{_HOW[how]}' AND "
        + ("x.scrapped" if state == "scrapped" else "NOT x.scrapped AND x.overdue")
        + f") AS {how}_{state}"
        for how, state in (k.split("_") for k in (KINDS if held else FLOWS))
    )
    return f"""SELECT x.cylinder_id, {flags}
                 FROM ({" UNION ALL ".join(parts)}) x
                GROUP BY x.cylinder_id HAVING bool_or(x.scrapped OR x.overdue)"""


def abnormal_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    if measure != "cylinders" and measure not in KINDS:
        raise bad_query("measure", "not a count of this report")
    q = Sql()
    flags = _flags(ctx, q, ctx.f.start, ctx.f.end, held=True)
    where = cylinder_where(ctx, q)
    only = "" if measure == "cylinders" else f" WHERE x.{measure}"
    where.append(f"c.id IN (SELECT x.cylinder_id FROM ({flags}) x{only})")
    company = key_condition(ctx, keys, "company_code", "o.code", q)
    if company:
        where.append(company)
    return report_drill.cylinders(ctx, q, where)


# ---------------------------------------------------------------- recovery-rate

RECOVERY_COLUMNS = (
    *_COMPANY,
    Column("cylinders", "在册钢瓶", "Cylinders in circulation", "count", "cylinders"),
    Column("filled", "期内充装过", "Filled in the period", "count", "cylinders"),
    Column("never_filled", "期内未充装", "Never filled in the period", "count", "cylinders"),
    Column("rate", "回收率", "Recovery rate", "rate"),
    Column("unreturned", "销户未回收", "Not returned from closed accounts", "count", "cylinders"),
)
_RECOVERY_COUNTS: Final = ("cylinders", "filled", "never_filled")


def _fleet(ctx: ReportContext, q: Sql, first: dt.date, end: dt.datetime) -> list[str]:
    """Cylinders in circulation in a period: registered before its end, their scrap date
    not come when it began (one scrapped during it was in circulation part of it), not
    ``not_activated``."""
    where = cylinder_where(ctx, q)
    where.append(_in_fleet(q, first, end))
    return where


def _filled(q: Sql, start: dt.datetime, end: dt.datetime) -> str:
    return f"""EXISTS (SELECT 1 FROM fills f WHERE f.cylinder_id = c.id
                        AND f.ts >= {q.add(start)} AND f.ts < {q.add(end)}
                        AND f.result = 'completed')"""


def _unreturned(ctx: ReportContext, q: Sql) -> str:
    """At a customer's whose account is closed, delivered more than ``[reports]
    unreturned_days`` ago (the delivery: the scan that last set the cylinder's place). The
    closed accounts are few: their cylinders are found through them, not the other way."""
    days = q.add(ctx.settings.reports.unreturned_days)
    return f"""(c.location_kind = 'customer' AND c.state_at < now() - make_interval(days => {days})
                AND c.location_customer_id IN (SELECT cu.id FROM customers cu
                                                WHERE cu.closed_on IS NOT NULL))"""


def _in_fleet(q: Sql, first: dt.date, end: dt.datetime, activated: bool = True) -> str:
    """In circulation in a period (as :func:`_fleet`, without the scope); without the status
    test when *activated* is false (the recovery census holds only activated cylinders)."""
    status = " AND c.status <> 'not_activated'" if activated else ""
    return f"(c.registered_at < {q.add(end)} AND c.scrap_date > {q.add(first)}{status})"


def _periods(ctx: ReportContext) -> tuple[tuple[dt.date, dt.date], ...]:
    """The period and the previous one, as city days."""
    return ((ctx.f.first, ctx.f.last), (ctx.f.prev_first, ctx.f.prev_last))


async def _recovery_counts(
    ctx: ReportContext,
    relation: str,
    mark: rollup_fill_days.Mark | rollup_recovery.Mark | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per owner company, the fleet in *relation* of the period and of the previous one, and
    those of each filled in it — in one pass. *relation* is the recovery census (migration
    0233: its rows are the activated cylinders and carry their fill days, *mark* its
    :class:`rollup_recovery.Mark`), or the cylinder census or ``cylinders`` with the fill-day
    rollup's *mark* (or None: the raw fills)."""
    f, q = ctx.f, Sql()
    where = cylinder_where(ctx, q)
    rolled = isinstance(mark, rollup_recovery.Mark)
    now = _in_fleet(q, f.first, f.end, activated=not rolled)
    before = _in_fleet(q, f.prev_first, f.prev_end, activated=not rolled)
    # filled in either period: the recovery census's bits, else the fill-day rollup, before
    # their watermark and the raw fills after it (migrations 0233, 0230) rather than the
    # DISTINCT of a period of fills; the drill-downs keep _filled: a page of cylinders
    if isinstance(mark, rollup_recovery.Mark):
        fl = rollup_recovery.filled(q, ctx.settings, _periods(ctx), mark)
    else:
        fl = rollup_fill_days.filled(q, ctx.settings, _periods(ctx), mark)
    filled_now, filled_before = fl.per_period
    rows = await ctx.pool.fetch(
        f"""SELECT o.code AS company_code, o.name AS company_name, g.*
              FROM (SELECT c.owner_company_id,
                           count(*) FILTER (WHERE {now}) AS cylinders,
                           count(*) FILTER (WHERE {now} AND {filled_now}) AS filled,
                           count(*) FILTER (WHERE {before}) AS prev_cylinders,
                           count(*) FILTER (WHERE {before} AND {filled_before}) AS prev_filled
                      FROM {relation} c
                      {fl.joins}
                     WHERE {" AND ".join(where)} AND ({now} OR {before})
                     GROUP BY c.owner_company_id) g
              JOIN companies o ON o.id = g.owner_company_id
             ORDER BY o.code""",
        *q.params,
    )
    current: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    for r in rows:
        for out, pre in ((current, ""), (previous, "prev_")):
            if r[f"{pre}cylinders"]:
                n, done = r[f"{pre}cylinders"], r[f"{pre}filled"]
                out.append(
                    {"company_code": r["company_code"], "company_name": r["company_name"]}
                    | {"cylinders": n, "filled": done, "never_filled": n - done}
                    | {"rate": share(done, n)}
                )
    return current, previous


async def _unreturned_counts(ctx: ReportContext) -> dict[tuple[str, str], int]:
    """Per owner company (code, name), the fleet of the period not returned from closed
    accounts — today's positions, read live from ``cylinders`` (the census holds no
    ``state_at``) through the closed accounts."""
    f, q = ctx.f, Sql()
    where = _fleet(ctx, q, f.first, f.end)
    where.append(_unreturned(ctx, q))
    rows = await ctx.pool.fetch(
        f"""SELECT o.code, o.name, count(*) AS n
              FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
             WHERE {" AND ".join(where)}
             GROUP BY o.code, o.name""",
        *q.params,
    )
    return {(r["code"], r["name"]): r["n"] for r in rows}


def _with_rate(totals: dict[str, Any]) -> dict[str, Any]:
    totals["rate"] = share(totals["filled"], totals["cylinders"])
    return totals


async def recovery_rate(ctx: ReportContext) -> Result:
    # the recovery census (migration 0233) when it holds the periods' days, else the census
    # and the fill-day rollup: the same counts (tests/api/test_report_recovery_census.py)
    rec = await rollup_recovery.usable_mark(ctx.pool, ctx.settings)
    if rec is not None and rollup_recovery.covers(rec, _periods(ctx)):
        as_of: dt.datetime | None = rec.census_at
        rows, previous = await _recovery_counts(ctx, rollup_recovery.RELATION, rec)
    else:
        src = await census(ctx.pool)
        mark = await rollup_fill_days.usable_mark(ctx.pool, ctx.settings)
        as_of = src.as_of
        rows, previous = await _recovery_counts(ctx, src.relation, mark)
    unreturned = await _unreturned_counts(ctx)
    for r in rows:
        r["unreturned"] = unreturned.pop((r["company_code"], r["company_name"]), 0)
    # a company none of whose cylinders the census holds yet (registered since its snapshot)
    for (code, name), n in unreturned.items():
        rows.append(
            {"company_code": code, "company_name": name, **dict.fromkeys(_RECOVERY_COUNTS, 0)}
            | {"rate": share(0, 0), "unreturned": n}
        )
    rows.sort(key=lambda r: str(r["company_code"]))
    return Result(
        rows,
        _with_rate(sums(rows, (*_RECOVERY_COUNTS, "unreturned"))),
        _with_rate(sums(previous, _RECOVERY_COUNTS)),
        extra={"as_of": as_of},
    )


def recovery_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    q = Sql()
    where = _fleet(ctx, q, ctx.f.first, ctx.f.end)
    if measure == "filled":
        where.append(_filled(q, ctx.f.start, ctx.f.end))
    elif measure == "never_filled":
        where.append(f"NOT {_filled(q, ctx.f.start, ctx.f.end)}")
    elif measure == "unreturned":
        where.append(_unreturned(ctx, q))
    elif measure != "cylinders":
        raise bad_query("measure", "not a count of this report")
    company = key_condition(ctx, keys, "company_code", "o.code", q)
    if company:
        where.append(company)
    return report_drill.cylinders(ctx, q, where)


SPECS: tuple[Report, ...] = (
    Report(
        name="abnormal-cylinders",
        title="异常钢瓶",
        title_en="Abnormal cylinders still circulating",
        roles=CIRCULATION_ROLES,
        filters=frozenset({"period", "district", "company"}),
        columns=ABNORMAL_COLUMNS,
        compute=abnormal_cylinders,
        keys=("company_code",),
        chart=Chart("stacked_bar", "company_name", KINDS),
        drill=abnormal_drill,
        description="Per owner company: overdue or scrapped cylinders filled or moved on "
        "(dispatch, deliver, transfer, receive) in the period while overdue/scrapped at that "
        "moment, or at a customer's or on a vehicle today while overdue/scrapped; "
        "`cylinders` counts each once. Counts drill down to the cylinders.",
    ),
    Report(
        name="recovery-rate",
        title="回收率",
        title_en="Recovery rate",
        roles=CIRCULATION_ROLES,
        filters=frozenset({"period", "district", "company"}),
        columns=RECOVERY_COLUMNS,
        compute=recovery_rate,
        keys=("company_code",),
        chart=Chart("bar", "company_name", ("rate",)),
        drill=recovery_drill,
        description="Per owner company: cylinders in circulation in the period, those filled "
        "at least once in it and those never filled (the drill-down lists them), the rate, "
        "and those at a closed account's longer than [reports] unreturned_days after delivery.",
    ),
)
