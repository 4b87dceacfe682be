"""``credit`` (信用评价) on the regulator's menu (DESIGN §9 report names; docs/API.md "Reports";
docs/ARCHITECTURE.md §9), built in ``server.api.report_frame``.

Per company: the score, grade and rank of its newest monthly snapshot up to the period's last
month (``credit_scores``, written by the recomputation round ``server.db.credit_round``), and
the ledger's events dated in the period (``credit_events``: ``count`` is how many events an
entry stands for), in all and by kind, with their signed points. A report never recomputes a
score: it reads what the credit pages read (DOMAIN.md "Credit evaluation").

Who sees which company is the credit pages' rule (``server.db.credit.company_scope``: district
regulators and officers the companies registered in, or running a site in, their districts)
on top of the report's role scope. The ledger's events are a volume (``previous``: the period
before); there is no drill-down, as a ledger entry is none of the rows a report drills into —
the company's credit page (``GET /api/v1/companies/{id}/credit``) lists them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Final

from server.api.credit import READ_ROLES
from server.api.report_business_common import sums
from server.api.report_frame import Chart, Column, Report, ReportContext, Result
from server.db import credit as credit_sql
from server.domain.credit import KINDS, CreditKind
from server.kernel.scope import Sql

__all__ = ["SPECS"]

KIND_LABELS: Final[dict[str, tuple[str, str]]] = {
    CreditKind.denied_attempt: ("违规充装尝试", "Denied attempts"),
    CreditKind.overfill: ("超装", "Overfills"),
    CreditKind.overstock_day: ("重瓶超量天数", "Overstock days"),
    CreditKind.suspected_illegal_fill: ("黑充装嫌疑", "Suspected illegal fills"),
    CreditKind.complaint_upheld: ("投诉属实", "Complaints upheld"),
    CreditKind.rectification_overdue: ("整改逾期", "Rectifications overdue"),
    CreditKind.licence_lapsed: ("许可失效", "Licence lapses"),
    CreditKind.good_conduct: ("良好行为", "Good conduct"),
    CreditKind.bad_conduct: ("不良行为", "Bad conduct"),
}
EVENT_COUNTS: Final = ("events", *KINDS)
CREDIT_COLUMNS: Final = (
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
    Column("score", "信用分", "Score", "number"),
    Column("grade", "信用等级", "Grade", "code"),
    Column("rank", "排名", "Rank", "number"),
    Column("ranked_of", "参评企业数", "Ranked of", "number"),
    Column("as_of", "评价日期", "As of", "date"),
    Column("events", "期间信用事件", "Events in the period", "count"),
    Column("points", "期间分值", "Points in the period", "number"),
    *(Column(k, *KIND_LABELS[k], "count") for k in KINDS),
)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _events_sql(q: Sql, first: dt.date, last: dt.date) -> str:
    kinds = ", ".join(
        f"coalesce(sum(ce.count) FILTER (WHERE ce.kind = '{k}'), 0)::bigint AS {k}" for k in KINDS
    )
    return f"""SELECT ce.company_id, sum(ce.count)::bigint AS events, sum(ce.points) AS points,
                      {kinds}
                 FROM credit_events ce
                WHERE ce.day BETWEEN {q.add(first)} AND {q.add(last)}
                GROUP BY ce.company_id"""


def _scope(ctx: ReportContext, q: Sql) -> str:
    where = ctx.where("companies", "co", q, "co.district_code", "co.id")
    return " AND ".join([*where, credit_sql.company_scope(ctx.principal, "co", q)])


async def credit(ctx: ReportContext) -> Result:
    f = ctx.f
    q = Sql()
    events = _events_sql(q, f.first, f.last)
    month = q.add(f.last.replace(day=1))
    rows = await ctx.pool.fetch(
        f"""SELECT co.code AS company_code, co.name AS company_name, s.score, s.grade, s.rank,
                   s.ranked_of, s.as_of, coalesce(ev.events, 0) AS events,
                   coalesce(ev.points, 0) AS points,
                   {", ".join(f"coalesce(ev.{k}, 0) AS {k}" for k in KINDS)}
              FROM companies co
              LEFT JOIN LATERAL (
                   SELECT cs.score, cs.grade, cs.rank, cs.ranked_of, cs.as_of
                     FROM credit_scores cs
                    WHERE cs.company_id = co.id AND cs.month <= {month}::date
                    ORDER BY cs.month DESC LIMIT 1) s ON true
              LEFT JOIN ({events}) ev ON ev.company_id = co.id
             WHERE {_scope(ctx, q)} AND (s.score IS NOT NULL OR ev.company_id IS NOT NULL)
             ORDER BY s.rank NULLS LAST, co.code""",
        *q.params,
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        row = dict(r)
        row["score"] = _float(row["score"])
        row["points"] = _float(row["points"])
        out.append(row)
    q = Sql()
    events = _events_sql(q, f.prev_first, f.prev_last)
    prev = await ctx.pool.fetch(
        f"""SELECT ev.* FROM companies co JOIN ({events}) ev ON ev.company_id = co.id
             WHERE {_scope(ctx, q)}""",
        *q.params,
    )
    return Result(out, _totals(out), _totals([dict(r) for r in prev]))


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    t = sums(rows, EVENT_COUNTS)
    t["points"] = round(sum(float(r["points"] or 0) for r in rows), 2)
    return t


SPECS: tuple[Report, ...] = (
    Report(
        name="credit",
        title="信用评价",
        title_en="Credit evaluation",
        roles=READ_ROLES,
        filters=frozenset({"period", "district", "company"}),
        columns=CREDIT_COLUMNS,
        compute=credit,
        keys=("company_code",),
        chart=Chart("bar", "company_name", ("score",)),
        drill=None,
        description="Per company: score, grade and rank of the newest monthly snapshot up to "
        "the period's last month, and the credit ledger's events dated in the period, in all "
        "and by kind, with their points. No drill-down: the company's credit page lists its "
        "ledger.",
    ),
)
