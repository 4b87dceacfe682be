"""The counts of ``abnormal-cylinders`` (异常钢瓶; ``server.api.report_cylinders_flow`` holds
its spec, columns and drill-down; docs/API.md "Reports"; DESIGN §10): per owner company, the
cylinders filled or moved on while overdue or scrapped in the period (and in the previous
one, for its totals) and those held at a customer's or on a vehicle today while overdue or
scrapped, each cylinder once.

One statement, one pass over the cylinders: the period's and the previous period's flows
come folded per cylinder from the abnormal circulation rollup and the raw rows after its
watermark (``server.db.rollup_abnormal.flows``, a few tens of thousands of rows for a year of
a 1M city) and are hashed; the census (``rollup_abnormal.cylinders_relation``: migration 0226,
refreshed every round, or ``cylinders`` before its first refresh) is read once for the owner,
the role scope and what is held today, a census row kept when it is held or one hashed
look-up finds it among the flows (two look-ups, one per period, cost a 1M census scan 0.1 s
more). Hashing the whole of ``cylinders`` for each of two statements, as the report did, was
most of its 1–3 s at 1M (docs/BENCHMARKS.md "Reports").
The census is a snapshot: the answer says ``as_of`` its moment, as the other census reports
do; the drill-downs read ``cylinders`` (exact, as of now).
"""

from __future__ import annotations

from typing import Any, Final

from server.api.report_cylinders_common import cylinder_where, sums
from server.api.report_frame import ReportContext, Result
from server.db import rollup_abnormal
from server.kernel.scope import Sql

__all__ = ["FLOWS", "HELD", "abnormal_cylinders"]

FLOWS: Final = tuple(rollup_abnormal.FLOW_FLAGS)
"""The kinds counted over a period (the previous period has these only)."""
HELD: Final = ("held_overdue", "held_scrapped")
"""Today's kinds: at a customer's or on a vehicle, overdue (not scrapped) or scrapped."""


def _counts(q: Sql, ctx: ReportContext) -> tuple[str, str]:
    """The count columns and the condition of a cylinder held unsafe today (alias ``c``;
    the flows ``n`` of the period, ``p`` of the previous one)."""
    t = q.add(ctx.f.today)
    scrapped = f"(c.status = 'scrapped' OR c.scrap_date <= {t})"
    overdue = f"(c.next_inspection_date IS NULL OR c.next_inspection_date < {t})"
    held = f"(c.location_kind IN ('customer', 'vehicle') AND ({scrapped} OR {overdue}))"
    counts = (
        f"count(*) FILTER (WHERE n.cylinder_id IS NOT NULL OR {held}) AS cylinders",
        *(f"count(*) FILTER (WHERE n.{k}) AS {k}" for k in FLOWS),
        f"count(*) FILTER (WHERE {held} AND NOT {scrapped} AND {overdue}) AS held_overdue",
        f"count(*) FILTER (WHERE {held} AND {scrapped}) AS held_scrapped",
        *(f"count(*) FILTER (WHERE p.{k}) AS prev_{k}" for k in FLOWS),
    )
    return ", ".join(counts), held


async def abnormal_cylinders(ctx: ReportContext) -> Result:
    rel = await rollup_abnormal.cylinders_relation(ctx.pool)
    f, q = ctx.f, Sql()
    now = rollup_abnormal.flows(q, ctx.settings, f.start, f.end)
    before = rollup_abnormal.flows(q, ctx.settings, f.prev_start, f.prev_end)
    counts, held = _counts(q, ctx)
    rows = await ctx.pool.fetch(
        f"""WITH n AS ({now}), p AS ({before})
            SELECT o.code AS company_code, o.name AS company_name, g.*
              FROM (SELECT c.owner_company_id, {counts}
                      FROM {rel.relation} c
                      LEFT JOIN n ON n.cylinder_id = c.id
                      LEFT JOIN p ON p.cylinder_id = c.id
                     WHERE {" AND ".join(cylinder_where(ctx, q))}
                       AND ({held} OR c.id IN (SELECT n.cylinder_id FROM n
                                                UNION ALL SELECT p.cylinder_id FROM p))
                     GROUP BY c.owner_company_id) g
              JOIN companies o ON o.id = g.owner_company_id
             ORDER BY g.cylinders DESC, o.code""",
        *q.params,
    )
    kinds = ("cylinders", *FLOWS, *HELD)
    current: list[dict[str, Any]] = [
        {"company_code": r["company_code"], "company_name": r["company_name"]}
        | {k: r[k] for k in kinds}
        for r in rows
        if r["cylinders"]
    ]
    previous = [{k: r[f"prev_{k}"] for k in FLOWS} for r in rows]
    return Result(current, sums(current, kinds), sums(previous, FLOWS), extra={"as_of": rel.as_of})
