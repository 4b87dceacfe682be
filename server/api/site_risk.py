"""The officer's daily inspection list (docs/API.md "Inspection list"): the filling stations
and stores of the caller's districts ranked by risk, each with the reasons behind its rank.

The facts are one query (``server.db.site_risk``), scoped in SQL to the caller's districts
(docs/ARCHITECTURE.md §7) and ranked there with the domain's arithmetic; the reasons and
their sentences are the domain's (``server.domain.site_risk``), every number a setting
(``[risk]``, docs/CONFIG.md). JSON for the page and the phone, CSV / XLSX of the same rows.

Who: the admin, regulators and officers. A company admin does not get it: the list says
where inspectors will go tomorrow, and a visit announced is a visit wasted; a company reads
its own facts on its alerts, fills and credit pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from server.api.common import API, Param, api_doc, check_query, q_district, q_format, today
from server.db.site_risk import SITE_COLUMNS, Window, facts, ranked
from server.domain.localtime import city_zone
from server.domain.site_risk import (
    FACTORS,
    READ_ROLES,
    Reason,
    list_size,
    reasons,
    window_first_day,
)
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import bad_query
from server.kernel.http import json_response, q_int
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.kernel.settings import Settings
from server.kernel.tabular import stream_table

__all__ = ["routes"]

ROLES = READ_ROLES
FORMATS = ("json", "csv", "xlsx")
EXPORT_NAME = "inspection-list"
REASON_JOIN = "；"
"""Between the reasons of one site in a CSV/XLSX cell (a full-width semicolon reads in both
languages and is not a CSV separator)."""

QUERY = (
    Param("district", description="6-digit district code (within the caller's districts)"),
    Param("limit", "integer", "sites to list (default risk.list_default, at most risk.list_max)"),
)


def _window(settings: Settings) -> Window:
    zone = city_zone(settings.alerts)
    last = today(settings)
    first = window_first_day(last, settings.risk)
    return Window(
        zone=settings.alerts.timezone,
        first=first,
        last=last,
        start=dt.datetime.combine(first, dt.time(), zone),
        end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone),
    )


def _reason(r: Reason) -> dict[str, Any]:
    return {
        "factor": r.factor,
        "count": r.count,
        "counted": r.counted,
        "weight": float(r.weight),
        "points": float(r.points),
        "text": r.text,
        "text_en": r.text_en,
    }


def _item(position: int, row: Any, settings: Settings) -> dict[str, Any]:
    counts = {f: int(row[f]) for f in FACTORS}
    out = {c: row[c] for c in SITE_COLUMNS}
    out.update(
        rank=position,
        score=float(row["score"]),
        counts=counts,
        reasons=[_reason(r) for r in reasons(counts, settings.risk)],
    )
    return out


@api_doc(
    "Inspection list: sites ranked by risk",
    tags=["risk"],
    roles=ROLES,
    query=QUERY,
    formats=FORMATS,
    description="Filling stations and stores in the caller's districts that score above 0 on "
    "the facts of the last risk.window_days days, highest first: per site its counts per "
    "factor, score and reasons (zh-CN `text`, English `text_en`), heaviest first.",
)
async def risk_sites(request: web.Request) -> web.StreamResponse:
    """Today's list for the caller."""
    p = require(request, *ROLES)
    check_query(request, ["district", "limit", "format"])
    fmt = q_format(request, FORMATS)
    settings = request.app[SETTINGS]
    cfg = settings.risk
    try:
        limit = list_size(q_int(request, "limit"), cfg)
    except ValueError:
        raise bad_query("limit", f"from 1 to {cfg.list_max}") from None
    district = q_district(request)
    w = _window(settings)
    q = Sql()
    rows = await request.app[POOL].fetch(ranked(facts(p, w, q, district), cfg, q, limit), *q.params)
    items = [_item(i, r, settings) for i, r in enumerate(rows, start=1)]
    if fmt != "json":
        return await _table(request, fmt, items)
    return json_response(
        {
            "as_of": w.last,
            "from": w.first,
            "to": w.last,
            "window_days": cfg.window_days,
            "district": district,
            "limit": limit,
            "ranked_of": int(rows[0]["ranked_of"]) if rows else 0,
            "factors": [
                {"factor": f, "weight": cfg.weights[f], "cap": cfg.caps.get(f)}  # type: ignore[index, call-overload]
                for f in FACTORS
            ],
            "items": items,
        }
    )


TABLE_HEADER: Sequence[str] = (
    "rank",
    "code",
    "name",
    "kind",
    "district_code",
    "district_name",
    "company_code",
    "company_name",
    "address",
    "score",
    *FACTORS,
    "reasons",
    "reasons_en",
)


async def _table(request: web.Request, fmt: str, items: list[dict[str, Any]]) -> web.StreamResponse:
    async def gen() -> AsyncIterator[Sequence[Any]]:
        for it in items:
            yield [
                *(it[h] for h in TABLE_HEADER[: TABLE_HEADER.index("score") + 1]),
                *(it["counts"][f] for f in FACTORS),
                REASON_JOIN.join(r["text"] for r in it["reasons"]),
                REASON_JOIN.join(r["text_en"] for r in it["reasons"]),
            ]

    return await stream_table(request, fmt, EXPORT_NAME, TABLE_HEADER, gen())


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/risk/sites", risk_sites, allow_head=False)]
