"""``abnormal-behaviour`` (异常经营行为; DESIGN §9 report names; docs/API.md "Reports"): per
company, how often in the period it did each thing DOMAIN.md "Abnormal behaviour" and
"Circulation checks" list — a matrix company × kind a regulator reads to see who to visit.

Each kind is counted from the facts it is about, so a cell drills down to exactly the rows it
counts:
- **refused attempts**, one column per refusal reason (``server.domain.authorization.Reason``:
  a station trying to fill another company's cylinder, an overdue or a scrapped one, an
  unknown tag …) — ``fill_refused`` events, an attempt counted in each reason it carried;
- **overfills and underfills** — fills (overfill: net above the model's maximum, aborted or
  not; underfill: completed below maximum − tolerance), as ``fill-volume`` counts them;
- **alerts of each business kind** raised in the period (repeat fill, overstock, out of
  region, device offline, licence expiring and the circulation checks): alerts, by the day
  they were raised.

All three come from the daily rollups (``server.db.rollups``) plus today live. The company is
the one a row is charged to: the station's for refusals and fills, the alert's company.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from server.api import report_drill
from server.api.report_activity_common import Sources, sources
from server.api.report_business_common import key_condition
from server.api.report_common import ACTIVITY_ROLES
from server.api.report_frame import Chart, Column, DrillQuery, Report, ReportContext, Result
from server.db.rollups import ALERTS, DENIALS, FILLS
from server.domain.authorization import Reason
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = ["ALERT_KINDS", "SPEC"]

_REASON_LABELS: Final = {
    Reason.UNKNOWN_TAG: ("拒充:未建档标签", "Refused: unknown tag"),
    Reason.NOT_OWNER: ("拒充:非自有气瓶", "Refused: not own cylinder"),
    Reason.OVERDUE_INSPECTION: ("拒充:超期未检", "Refused: inspection overdue"),
    Reason.SCRAPPED: ("拒充:已报废", "Refused: scrapped"),
    Reason.NOT_IN_SERVICE: ("拒充:非在用", "Refused: not in service"),
    Reason.STATION_NOT_LICENSED: ("拒充:站点无许可", "Refused: station not licensed"),
    Reason.UNKNOWN_STATION: ("拒充:未知站点", "Refused: unknown station"),
}
ALERT_KINDS: Final = {
    "repeat_fill": ("重复充装", "Repeat fills"),
    "overstock": ("重瓶超量", "Overstock"),
    "out_of_region": ("区域外流", "Out of region"),
    "device_offline": ("设备离线", "Device offline"),
    "licence_expiring": ("许可将到期", "Licence expiring"),
    "circulation_violation": ("违规流通", "Unsafe cylinder circulating"),
    "suspected_illegal_fill": ("黑充装嫌疑", "Suspected illegal fill"),
    "foreign_cylinder": ("串瓶", "Foreign cylinder"),
    "cloned_tag": ("克隆标签嫌疑", "Cloned tag suspected"),
}
"""The alert kinds that are a company's conduct (DOMAIN.md "Abnormal behaviour" and
"Circulation checks"). Left out: a leak (a household's emergency, not a company's conduct),
and ``fill_denied`` / ``overfill`` / ``underfill`` / ``unknown_tag`` alerts, whose facts are
counted directly from the refusals and the fills."""


def _refused(reason: Reason) -> str:
    return f"refused_{reason.value}"


_FILL_KINDS: Final = {
    "overfill": (("超装", "Overfills"), "f.assessment = 'overfill'"),
    "underfill": (("欠装", "Underfills"), "f.assessment = 'underfill' AND f.result = 'completed'"),
}
COUNT_KEYS: Final = (
    *(_refused(r) for r in _REASON_LABELS),
    *_FILL_KINDS,
    *ALERT_KINDS,
)

COLUMNS: Final = (
    Column("company_code", "企业代码", "Company code", "code"),
    Column("company_name", "企业", "Company", "text"),
    *(Column(_refused(r), zh, en, "count", "events") for r, (zh, en) in _REASON_LABELS.items()),
    *(Column(k, zh, en, "count", "fills") for k, ((zh, en), _) in _FILL_KINDS.items()),
    *(Column(k, zh, en, "count", "alerts") for k, (zh, en) in ALERT_KINDS.items()),
    Column("total", "合计", "Total", "count"),
)


async def _counts(
    ctx: ReportContext, src: Sources, previous: bool
) -> dict[int | None, dict[str, int]]:
    """company id → {count key → n} over the period (or the previous one)."""
    out: dict[int | None, dict[str, int]] = {}

    def add(company: int | None, key: str, n: int) -> None:
        if n:
            row = out.setdefault(company, {})
            row[key] = row.get(key, 0) + n

    pick = src.previous if previous else src.period
    q = Sql()
    from_ = pick(DENIALS, q)
    where = src.where("events", q)
    reasons = q.add([r.value for r in _REASON_LABELS])
    for r in await ctx.pool.fetch(
        f"""SELECT r.company_id, r.reason, sum(r.attempts)::bigint AS n FROM {from_} r
             WHERE {" AND ".join(where)} AND r.reason = ANY({reasons}::text[])
             GROUP BY 1, 2""",
        *q.params,
    ):
        add(r["company_id"], f"refused_{r['reason']}", r["n"])
    q = Sql()
    from_ = pick(FILLS, q)
    where = src.where("fills", q)
    for r in await ctx.pool.fetch(
        f"""SELECT r.company_id, sum(r.overfill)::bigint AS overfill,
                   sum(r.underfill)::bigint AS underfill
              FROM {from_} r WHERE {" AND ".join(where)}
               AND (r.overfill > 0 OR r.underfill > 0) GROUP BY 1""",
        *q.params,
    ):
        add(r["company_id"], "overfill", r["overfill"])
        add(r["company_id"], "underfill", r["underfill"])
    q = Sql()
    from_ = pick(ALERTS, q)
    where = src.where("alerts", q)
    kinds = q.add(list(ALERT_KINDS))
    for r in await ctx.pool.fetch(
        f"""SELECT r.company_id, r.kind, sum(r.alerts)::bigint AS n FROM {from_} r
             WHERE {" AND ".join(where)} AND r.kind = ANY({kinds}::text[]) GROUP BY 1, 2""",
        *q.params,
    ):
        add(r["company_id"], r["kind"], r["n"])
    return out


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(r[k] for r in rows) for k in (*COUNT_KEYS, "total")}


def _row(company: Mapping[str, Any] | None, counts: Mapping[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "company_code": company["code"] if company else None,
        "company_name": company["name"] if company else None,
    }
    for k in COUNT_KEYS:
        row[k] = counts.get(k, 0)
    row["total"] = sum(row[k] for k in COUNT_KEYS)
    return row


async def abnormal_behaviour(ctx: ReportContext) -> Result:
    src = await sources(ctx)
    now = await _counts(ctx, src, previous=False)
    before = await _counts(ctx, src, previous=True)
    ids = [i for i in now if i is not None]
    companies = {
        r["id"]: r
        for r in await ctx.pool.fetch(
            "SELECT id, code, name FROM companies WHERE id = ANY($1::bigint[])", ids
        )
    }
    rows = [_row(companies.get(cid) if cid is not None else None, c) for cid, c in now.items()]
    rows.sort(key=lambda r: (-r["total"], r["company_code"] or ""))
    prev_rows = [_row(None, c) for c in before.values()]
    return Result(rows, _totals(rows), _totals(prev_rows))


def abnormal_drill(ctx: ReportContext, measure: str, keys: Mapping[str, str]) -> DrillQuery:
    """The refusals, fills or alerts behind one cell (the company by its code; sent empty,
    the rows charged to no company)."""
    q = Sql()
    f = ctx.f
    if measure.startswith("refused_") and measure[len("refused_") :] in set(Reason):
        where = ctx.where("events", "e", q, "e.district_code", "e.company_id", "e.site_id")
        where += [
            "e.kind = 'fill_refused'",
            f"e.ts >= {q.add(f.start)}",
            f"e.ts < {q.add(f.end)}",
            "jsonb_typeof(e.details -> 'reasons') = 'array'",
            f"(e.details -> 'reasons') ? {q.add(measure[len('refused_') :])}::text",
        ]
        build = report_drill.events
    elif measure in _FILL_KINDS:
        where = ctx.where("fills", "f", q, "f.district_code", "f.company_id", "f.station_id")
        where += [f"f.ts >= {q.add(f.start)}", f"f.ts < {q.add(f.end)}", _FILL_KINDS[measure][1]]
        build = report_drill.fills
    elif measure in ALERT_KINDS:
        where = ctx.where("alerts", "a", q, "a.district_code", "a.company_id", "a.site_id")
        where += [
            f"a.kind = {q.add(measure)}",
            f"a.first_at >= {q.add(f.start)}",
            f"a.first_at < {q.add(f.end)}",
        ]
        build = report_drill.alerts
    else:
        raise bad_query("measure", "not a count of this report")
    cond = key_condition(ctx, keys, "company_code", "co.code", q)
    if cond:
        where.append(cond)
    return build(ctx, q, where)


SPEC: Final = Report(
    name="abnormal-behaviour",
    title="异常经营行为",
    title_en="Abnormal business behaviour",
    roles=ACTIVITY_ROLES,
    filters=frozenset({"period", "district", "company", "station"}),
    columns=COLUMNS,
    compute=abnormal_behaviour,
    keys=("company_code",),
    chart=Chart("stacked_bar", "company_name", COUNT_KEYS),
    drill=abnormal_drill,
    description="Per company in the period: refused fill attempts per reason (an attempt in "
    "each reason it carried), overfills and underfills, and the alerts raised of each business "
    "kind (repeat fill, overstock, out of region, device offline, licence expiring, the "
    "circulation checks). Companies with the most first; previous: the totals of the period "
    "before. Each count drills down to its refusals, fills or alerts.",
)
