"""Credit evaluation (信用评价): ranking, a company's score and ledger, manual events, the
recomputation round on demand, the public's grade search (docs/API.md "Credit evaluation").

Every number on these answers was computed by the round (``server.db.credit_round``) and is
read from its snapshots (``credit_scores``) and ledger (``credit_events``): a page view never
sums a year of facts (DOMAIN.md "Credit evaluation"). The ledger's kinds, the caps and the
grading are the domain's (``server.domain.credit``), every number a setting (``[credit]``).

Who sees what (``server.db.credit.company_scope``, in SQL): the admin and city-wide
regulators every company; district regulators and officers the companies registered in, or
running a site in, their districts; a company admin its own company (with its rank in the
city). Regulators (and the admin) record good and bad conduct by hand, with a reason, and
ask for a round; both are audited. The public sees a company's grade only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    jsonable,
    plain,
    q_district,
    read_body,
    today,
)
from server.api.public import rate_limit
from server.db import credit as credit_sql
from server.db.credit_round import credit_schedule, last_round, recompute
from server.domain.credit import GRADES, KINDS, window_start
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import bad_field, bad_query, not_found
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.limits import body_limit
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql

__all__ = ["routes", "setup"]

READ_ROLES = ("admin", "regulator", "officer", "company_admin")
WRITE_ROLES = ("admin", "regulator")
POINT_DECIMALS = 2
"""The ledger stores points as numeric(9, 2) (migration 0160): a finer number would be rounded."""
SEARCH_MAX = 50
"""Characters of a search text: a company name is at most a few dozen."""


class CreditEventCreate(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["good_conduct", "bad_conduct"]
    points: Annotated[float, msgspec.Meta(gt=0)]
    """Points added (good conduct) or taken off (bad conduct), at most credit.manual_max_points."""
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    day: dt.date | None = None
    """The day of the conduct (default today; not in the future, not before the window)."""


def _company_row(p: Principal, company_id: int, q: Sql) -> str:
    return (
        f"SELECT co.id, co.code, co.name, co.district_code FROM companies co"
        f" WHERE co.id = {q.add(company_id)} AND {credit_sql.company_scope(p, 'co', q)}"
    )


async def _company(request: web.Request, p: Principal, company_id: int) -> dict[str, Any]:
    q = Sql()
    row = await request.app[POOL].fetchrow(_company_row(p, company_id, q), *q.params)
    if row is None:
        raise not_found(f"company {company_id}")
    return dict(row.items())


def _grading(request: web.Request) -> dict[str, Any]:
    cfg = request.app[SETTINGS].credit
    return {
        "mode": cfg.grading,
        "base": cfg.base,
        "thresholds": {"A": cfg.grade_a, "B": cfg.grade_b, "C": cfg.grade_c},
        "rank_top": cfg.rank_top,
        "rank_bottom": cfg.rank_bottom,
        "window_months": cfg.window_months,
    }


async def _round(request: web.Request) -> dict[str, Any] | None:
    row = await last_round(request.app[POOL])
    if row is None or row["finished_at"] is None:
        return None
    return {"round": row["round"], "finished_at": row["finished_at"], "as_of": row["as_of"]}


RANKING_QUERY = (
    Param("q", description="part of the company's code or name, or a similar name"),
    Param("grade", enum=GRADES),
    Param("district", description="6-digit district code of the company"),
)


@api_doc(
    "Credit ranking",
    tags=["credit"],
    roles=READ_ROLES,
    query=RANKING_QUERY,
    paginated=True,
    description="Companies in scope by their rank in the city (the newest snapshots), with "
    "the number of companies per grade for the same filters (grade aside).",
)
async def ranking(request: web.Request) -> web.Response:
    """The city's ranking as the caller may see it."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in RANKING_QUERY])
    page = q_page(request)
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    q = Sql()
    where = [credit_sql.company_scope(p, "co", q)]
    order = "s.rank NULLS LAST, co.name"
    text = q_str(request, "q", max_len=SEARCH_MAX)
    if text:
        match, _ = credit_sql.name_match(
            "co",
            text,
            q,
            trigram=await credit_sql.has_trigram(pool),
            similarity=settings.credit.search_similarity,
        )
        where.append(match)
    district = q_district(request)
    if district:
        where.append(f"co.district_code = {q.add(district)}")
    source = (
        "companies co LEFT JOIN credit_scores s"
        f" ON s.company_id = co.id AND s.month = {credit_sql.LATEST_MONTH}"
    )
    counts = await pool.fetch(
        f"SELECT s.grade, count(*) AS n FROM {source} WHERE {' AND '.join(where)} GROUP BY s.grade",
        *q.params,
    )
    grade = q_choice(request, "grade", GRADES)
    if grade:
        where.append(f"s.grade = {q.add(grade)}")
    rows, total = await fetch_page(
        pool,
        "co.id AS company_id, co.code, co.name, co.district_code, s.score, s.grade, s.rank,"
        " s.ranked_of, s.month, s.as_of",
        f"{source} WHERE {' AND '.join(where)}",
        order,
        q,
        page,
    )
    grades = dict.fromkeys(GRADES, 0)
    unrated = 0
    for r in counts:
        if r["grade"] is None:
            unrated += int(r["n"])
        else:
            grades[r["grade"]] = int(r["n"])
    out = envelope([plain(r) for r in rows], page, total)
    out.update(
        grades=grades, unrated=unrated, grading=_grading(request), computed=await _round(request)
    )
    return json_response(out)


DETAIL_QUERY = (Param("kind", enum=KINDS, description="only ledger entries of this kind"),)


@api_doc(
    "A company's credit",
    tags=["credit"],
    roles=READ_ROLES,
    query=DETAIL_QUERY,
    paginated=True,
    page_key="ledger",
    description="Score, grade, rank, breakdown by kind (caps applied), the monthly history and "
    "the ledger's entries, newest first (paged; in_window: counted by the current score).",
)
async def company_credit(request: web.Request) -> web.Response:
    """One company's credit: the newest snapshot, its history and its ledger."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in DETAIL_QUERY])
    company_id = path_int(request)
    page = q_page(request)
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    company = await _company(request, p, company_id)
    history = await pool.fetch(
        """SELECT month, as_of, score, grade, rank, ranked_of, breakdown, computed_at
             FROM credit_scores WHERE company_id = $1 ORDER BY month DESC LIMIT $2""",
        company_id,
        settings.credit.history_months,
    )
    current = history[0] if history else None
    counted_from = window_start(current["as_of"], settings.credit) if current else None
    q = Sql(company_id)
    where = ["e.company_id = $1"]
    kind = q_choice(request, "kind", KINDS)
    if kind:
        where.append(f"e.kind = {q.add(kind)}")
    rows, total = await fetch_page(
        pool,
        "e.id, e.day, e.kind, e.points, e.count, e.source_type, e.source_id, e.site_id,"
        " s.code AS site_code, s.name AS site_name, e.note, u.username AS created_by,"
        " e.created_at, e.updated_at",
        "credit_events e LEFT JOIN sites s ON s.id = e.site_id"
        f" LEFT JOIN users u ON u.id = e.created_by WHERE {' AND '.join(where)}",
        "e.day DESC, e.id DESC",
        q,
        page,
    )
    ledger = []
    for r in rows:
        item = plain(r)
        item["in_window"] = bool(
            current and counted_from is not None and counted_from <= r["day"] <= current["as_of"]
        )
        ledger.append(item)
    return json_response(
        {
            "company": company,
            "score": float(current["score"]) if current else None,
            "grade": current["grade"] if current else None,
            "rank": current["rank"] if current else None,
            "ranked_of": current["ranked_of"] if current else None,
            "as_of": current["as_of"] if current else None,
            "counted_from": counted_from,
            "computed_at": current["computed_at"] if current else None,
            "breakdown": current["breakdown"] if current else [],
            "history": [
                {
                    "month": h["month"],
                    "as_of": h["as_of"],
                    "score": float(h["score"]),
                    "grade": h["grade"],
                    "rank": h["rank"],
                    "ranked_of": h["ranked_of"],
                }
                for h in reversed(history)
            ],
            "ledger": envelope(ledger, page, total),
            "grading": _grading(request),
            "may_add_events": p.role in WRITE_ROLES,
        }
    )


@api_doc(
    "Record good or bad conduct",
    tags=["credit"],
    roles=WRITE_ROLES,
    body=CreditEventCreate,
    responses={201: "recorded; the score counts it from the next round"},
    description="A manual ledger entry (the only source of good conduct), with its reason; "
    "audited credit.event. Points at most credit.manual_max_points.",
)
@body_limit("small")
async def add_event(request: web.Request) -> web.Response:
    """A regulator's good or bad conduct event for a company in scope."""
    p = require(request, *WRITE_ROLES)
    company_id = path_int(request)
    body = await read_body(request, CreditEventCreate)
    settings = request.app[SETTINGS]
    cfg = settings.credit
    if body.points > cfg.manual_max_points:
        raise bad_field("points", f"at most {cfg.manual_max_points:g}")
    if round(body.points, POINT_DECIMALS) != body.points:
        raise bad_field("points", f"at most {POINT_DECIMALS} decimals")
    reason = body.reason.strip()
    if not reason:
        raise bad_field("reason", "must not be blank")
    day_now = today(settings)
    day = body.day or day_now
    if day > day_now:
        raise bad_field("day", "must not be in the future")
    if day < window_start(day_now, cfg):
        raise bad_field("day", f"must be within the last {cfg.window_months} months")
    await _company(request, p, company_id)
    points = body.points if body.kind == "good_conduct" else -body.points
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO credit_events (company_id, day, kind, points, count, source_type,
                                          source_id, note, created_by)
               VALUES ($1, $2, $3, $4, 1, 'manual', $5, $6, $7)
               RETURNING id, company_id, day, kind, points, count, source_type, source_id,
                         note, created_at""",
            company_id,
            day,
            body.kind,
            points,
            str(uuid.uuid4()),
            reason,
            p.user_id,
        )
        assert row is not None
        await audit(
            conn,
            p,
            "credit.event",
            "company",
            company_id,
            jsonable(
                {
                    "event_id": row["id"],
                    "kind": body.kind,
                    "points": points,
                    "day": day,
                    "reason": reason,
                }
            ),
            request.remote,
        )
    out = plain(row)
    out["created_by"] = p.username
    return json_response(out, 201)


@api_doc(
    "Recompute credit now",
    tags=["credit"],
    roles=WRITE_ROLES,
    description="Runs the recomputation round at once (after a running one, if any): ledger "
    "from the facts, then every snapshot; audited credit.recompute.",
)
async def recompute_now(request: web.Request) -> web.Response:
    """The round on demand; answers what it did."""
    p = require(request, *WRITE_ROLES)
    check_query(request, [])
    pool = request.app[POOL]
    result = await recompute(pool, request.app[SETTINGS], trigger=f"user:{p.user_id}")
    assert result is not None  # an on-demand round waits for the lock
    await audit(
        pool,
        p,
        "credit.recompute",
        "credit",
        result.round,
        jsonable(result.as_dict()),
        request.remote,
    )
    return json_response(result.as_dict())


PUBLIC_QUERY = (
    Param("q", required=True, description="part of the company's name, or a similar name"),
)


@api_doc(
    "Public: a company's credit grade",
    tags=["public"],
    roles=["public"],
    query=PUBLIC_QUERY,
    description="Companies whose name contains or resembles q, closest first: name and "
    "grade only (never the score or its breakdown). Rate-limited.",
)
async def public_search(request: web.Request) -> web.Response:
    """The public's search of grades by company name."""
    await rate_limit(request)
    check_query(request, ["q"])
    text = (q_str(request, "q", max_len=SEARCH_MAX) or "").strip()
    if not text:
        raise bad_query("q", "a part of the company's name is required")
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    q = Sql()
    match, order = credit_sql.name_match(
        "co",
        text,
        q,
        trigram=await credit_sql.has_trigram(pool),
        similarity=settings.credit.search_similarity,
    )
    rows = await pool.fetch(
        f"""SELECT co.name, s.grade, s.as_of
              FROM companies co
              JOIN credit_scores s ON s.company_id = co.id AND s.month = {credit_sql.LATEST_MONTH}
             WHERE {match} ORDER BY {order} LIMIT {q.add(settings.credit.public_results_max)}""",
        *q.params,
    )
    return json_response({"items": [plain(r) for r in rows]})


def setup(app: web.Application) -> None:
    """Run the recomputation round on its schedule in this server process (one process at a
    time does a round: ``server.db.credit_round``)."""

    async def schedule(app: web.Application) -> AsyncIterator[None]:
        async for _ in credit_schedule(app[POOL], app[SETTINGS]):
            yield

    app.cleanup_ctx.append(schedule)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/credit", ranking, allow_head=False),
        web.post(f"{API}/credit/recompute", recompute_now),
        web.get(API + r"/companies/{id:\d+}/credit", company_credit, allow_head=False),
        web.post(API + r"/companies/{id:\d+}/credit/events", add_event),
        web.get(f"{API}/public/credit", public_search, allow_head=False),
    ]
