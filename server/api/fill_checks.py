"""Failed pre/post-fill checks over a period, per company and per item (docs/ARCHITECTURE.md §9).

Why a summary of its own: a fill with a failed check item is aborted (DOMAIN.md "Filling
checks"), so a company whose stations keep failing "valve and accessories intact" or "no
leak at the valve" shows it here long before anyone reads fills one by one. It counts, per
company in the caller's scope (role scope in SQL, docs/ARCHITECTURE.md §7) and per item,
the failed items of the fills of the period, by the rule of ``server.api.fills.failed_items_sql``
(the SQL twin of ``server.domain.filling.checks_failed``: only an explicit ``true`` passes).
Each count leads back to its fills: ``GET /api/v1/fills?company=…&failed_check=pre:<item>``.

Without ``from``, the period is the :data:`DEFAULT_DAYS` days up to ``to`` (or now), said in
the answer: a summary over all history would scan every fill ever recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from aiohttp import web

from server.api.common import API, Param, api_doc, check_query, q_format
from server.api.fills import (
    QUERY,
    READ_ROLES,
    all_passed_sql,
    failed_items_sql,
    fills_where,
    has_failed_sql,
)
from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from server.kernel.appkeys import POOL
from server.kernel.http import json_response, q_datetime
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.kernel.tabular import stream_table

__all__ = ["DEFAULT_DAYS", "KNOWN_CHECKS", "routes"]

DEFAULT_DAYS: Final = 30
"""Days summarised when no ``from`` is given: a month, the period a supervisor reviews
checks over, and a bounded scan of the fills table."""

KNOWN_CHECKS: Final[tuple[str, ...]] = tuple(
    [f"pre:{i}" for i in PRE_CHECK_ITEMS] + [f"post:{i}" for i in POST_CHECK_ITEMS]
)
"""Every item of the domain's check lists, always listed (a zero is news too), in the
domain's order; items a device sent beyond these follow, by name."""

SUMMARY_FILTERS: Final = ("from", "to", "district", "company", "station")
SUMMARY_QUERY: Final = (
    *(x for x in QUERY if x.name in SUMMARY_FILTERS),
    Param(
        "format",
        "string",
        "json (default), csv or xlsx: one row per company",
        ("json", "csv", "xlsx"),
    ),
)
FILE_COLUMNS: Final = (
    "company_code",
    "company_name",
    "fills",
    "checked",
    "failed_fills",
    "failed_items",
)


def _period(request: web.Request, q: Sql) -> tuple[dt.datetime, dt.datetime | None, list[str]]:
    """The period's bounds, and the default ``from`` as a condition when none was given."""
    start = q_datetime(request, "from")
    end = q_datetime(request, "to")
    if start is not None:
        return start, end, []  # fills_where has both conditions already
    start = (end or dt.datetime.now(dt.UTC)) - dt.timedelta(days=DEFAULT_DAYS)
    return start, end, [f"f.ts >= {q.add(start)}"]


async def _summary(request: web.Request) -> dict[str, Any]:
    p = require(request, *READ_ROLES)
    q = Sql()
    where = fills_where(request, p, q)
    start, end, more = _period(request, q)
    cond = " AND ".join(where + more)
    passed = all_passed_sql("f", q)  # its parameters once: both statements use them
    per_company = f"""
        SELECT f.company_id, co.code AS company_code, co.name AS company_name,
               count(*) AS fills,
               count(*) FILTER (WHERE jsonb_typeof(f.pre_check) = 'object'
                                   OR jsonb_typeof(f.post_check) = 'object') AS checked,
               count(*) FILTER (WHERE {has_failed_sql("f", passed)}) AS failed_fills
          FROM fills f LEFT JOIN companies co ON co.id = f.company_id
         WHERE {cond}
         GROUP BY f.company_id, co.code, co.name"""
    per_item = f"""
        SELECT f.company_id, x.stage || ':' || x.item AS check, count(*) AS failed
          FROM fills f CROSS JOIN LATERAL {failed_items_sql("f")} x
         WHERE {cond} AND NOT {passed}
         GROUP BY 1, 2"""
    async with (
        request.app[POOL].acquire() as conn,
        conn.transaction(readonly=True, isolation="repeatable_read"),
    ):
        companies = await conn.fetch(per_company, *q.params)
        items = await conn.fetch(per_item, *q.params)
    by_company: dict[int | None, dict[str, int]] = {}
    item_totals = dict.fromkeys(KNOWN_CHECKS, 0)
    for r in items:
        n = int(r["failed"])
        by_company.setdefault(r["company_id"], {})[r["check"]] = n
        item_totals[r["check"]] = item_totals.get(r["check"], 0) + n
    order = list(KNOWN_CHECKS) + sorted(set(item_totals) - set(KNOWN_CHECKS))
    rows = []
    for r in companies:
        failed = by_company.get(r["company_id"], {})
        rows.append(
            {
                "company_id": r["company_id"],
                "company_code": r["company_code"],
                "company_name": r["company_name"],
                "fills": int(r["fills"]),
                "checked": int(r["checked"]),
                "failed_fills": int(r["failed_fills"]),
                "failed_items": sum(failed.values()),
                "items": {c: failed[c] for c in order if c in failed},
            }
        )
    rows.sort(
        key=lambda c: (-c["failed_fills"], -c["failed_items"], -c["fills"], c["company_code"] or "")
    )
    return {
        "from": start.isoformat(),
        "to": end.isoformat() if end else None,
        "totals": {
            key: sum(c[key] for c in rows)
            for key in ("fills", "checked", "failed_fills", "failed_items")
        },
        "items": [
            {
                "check": c,
                "stage": c.partition(":")[0],
                "item": c.partition(":")[2],
                "known": c in KNOWN_CHECKS,
                "failed": item_totals[c],
            }
            for c in order
        ],
        "companies": rows,
    }


async def _file_rows(body: dict[str, Any], checks: Sequence[str]) -> AsyncIterator[list[Any]]:
    for c in body["companies"]:
        yield [c[k] for k in FILE_COLUMNS] + [c["items"].get(k, 0) for k in checks]


@api_doc(
    "Failed fill checks per company and per item",
    tags=["fills"],
    roles=READ_ROLES,
    query=SUMMARY_QUERY,
    formats=("json", "csv", "xlsx"),
    description="Over the fills of the period in the caller's scope (without `from`: the "
    f"{DEFAULT_DAYS} days up to `to` or now): per company the fills, those with checks "
    "recorded, those with a failed item and the failed items, each item's count; per item "
    "the failed count (every item of the domain's lists, zeros included). An item fails "
    "unless its value is true. csv/xlsx: one row per company, a column per item.",
)
async def check_summary(request: web.Request) -> web.StreamResponse:
    require(request, *READ_ROLES)
    check_query(request, [*SUMMARY_FILTERS, "format"])
    fmt = q_format(request)
    body = await _summary(request)
    if fmt == "json":
        return json_response(body)
    checks = [i["check"] for i in body["items"]]
    header = [*FILE_COLUMNS, *checks]
    return await stream_table(request, fmt, "fill-checks", header, _file_rows(body, checks))


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/fills/check-summary", check_summary, allow_head=False)]
