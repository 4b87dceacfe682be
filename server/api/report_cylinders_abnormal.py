"""The counts of ``abnormal-cylinders`` (异常钢瓶; ``server.api.report_cylinders_flow`` holds
its spec, columns and drill-down; docs/API.md "Reports"; DESIGN §10): per owner company, the
cylinders filled or moved on while overdue or scrapped in the period (and in the previous
one, for its totals) and those held at a customer's or on a vehicle today while overdue or
scrapped, each cylinder once.

One statement. The period's and the previous period's flows come folded per cylinder from
the abnormal circulation rollup and the raw rows after its watermark
(``server.db.rollup_abnormal.flows``: ~28k cylinders for a year of a 1M city). The cylinders
held unsafe today are found through the indexes on their dates (a few per cent of the
archive) with their flows looked up, and the cylinders that only circulated are looked up one
by one by id — so no request reads the whole archive. The report joined its flows to the
whole of ``cylinders``, hashed, for each of two statements: two 1M-row hashes past
``work_mem`` per request, most of its 1–3 s at 1M (docs/BENCHMARKS.md "Reports"). A census
(migration 0226) was tried as the owner's source: a scan of its 1M rows for the held ones
cost more than the date indexes on ``cylinders`` (a 10x copy of the 100k city: the
regulator's page 255 vs 163 ms), and ``cylinders`` is exact as of now, as the drill-downs.
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


def _counts() -> str:
    """The count columns over the rows of both branches (alias ``x``)."""
    return ", ".join(
        (
            "count(*) FILTER (WHERE x.held OR x.flowed) AS cylinders",
            *(f"count(*) FILTER (WHERE x.{k}) AS {k}" for k in FLOWS),
            "count(*) FILTER (WHERE x.held AND NOT x.scrapped AND x.overdue) AS held_overdue",
            "count(*) FILTER (WHERE x.held AND x.scrapped) AS held_scrapped",
            *(f"count(*) FILTER (WHERE x.prev_{k}) AS prev_{k}" for k in FLOWS),
        )
    )


async def abnormal_cylinders(ctx: ReportContext) -> Result:
    f, q = ctx.f, Sql()
    now = rollup_abnormal.flows(q, ctx.settings, f.start, f.end)
    before = rollup_abnormal.flows(q, ctx.settings, f.prev_start, f.prev_end)
    t = q.add(f.today)
    scrapped = f"(c.status = 'scrapped' OR c.scrap_date <= {t})"
    overdue = f"(c.next_inspection_date IS NULL OR c.next_inspection_date < {t})"
    held = f"(c.location_kind IN ('customer', 'vehicle') AND ({scrapped} OR {overdue}))"
    flow_cols = ", ".join((*(f"n.{k}" for k in FLOWS), *(f"p.{k} AS prev_{k}" for k in FLOWS)))
    rows = await ctx.pool.fetch(
        f"""WITH n AS ({now}), p AS ({before})
            SELECT o.code AS company_code, o.name AS company_name, g.*
              FROM (SELECT x.owner_company_id, {_counts()}
                      FROM (SELECT c.owner_company_id, true AS held, {scrapped} AS scrapped,
                                   {overdue} AS overdue, n.cylinder_id IS NOT NULL AS flowed,
                                   {flow_cols}
                              FROM cylinders c
                              LEFT JOIN n ON n.cylinder_id = c.id
                              LEFT JOIN p ON p.cylinder_id = c.id
                             WHERE {" AND ".join(cylinder_where(ctx, q))} AND {held}
                            UNION ALL
                            SELECT c.owner_company_id, false, false, false,
                                   n.cylinder_id IS NOT NULL, {flow_cols}
                              FROM n FULL JOIN p ON p.cylinder_id = n.cylinder_id
                              JOIN cylinders c ON c.id = coalesce(n.cylinder_id, p.cylinder_id)
                             WHERE {" AND ".join(cylinder_where(ctx, q))}
                               AND {held} IS NOT TRUE) x
                     GROUP BY x.owner_company_id) g
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
    return Result(current, sums(current, kinds), sums(previous, FLOWS))
