"""Work pages: credit evaluation (信用评价) — the city's ranking, one company's credit, and the
public's grade search.

``GET /credit`` (docs/ARCHITECTURE.md §8): companies by rank with their score and grade, a
bar chart of companies per grade, a search by name (fuzzy) and filters by grade and district;
``GET /credit/{company_id}``: the score, grade and rank, the breakdown by kind with the caps
applied, the monthly history as a line chart and the ledger; regulators (and the admin)
record good or bad conduct there and ask for a recomputation. Both read the REST API
(``server.api.credit``), which scopes rows in SQL and serves only the round's snapshots, so
a page view never sums a year of facts (DOMAIN.md "Credit evaluation").

``GET /credit/search`` needs no login: a company's name in, its grade out — never the score
or its breakdown (``GET /api/v1/public/credit``, rate-limited like the QR page's API).
"""

from __future__ import annotations

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain.credit import GRADES, KINDS, MANUAL_KINDS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.principal import Principal

__all__ = ["routes"]

WRITE_ROLES = ("admin", "regulator")
"""Who records good and bad conduct and asks for a round (server.api.credit.WRITE_ROLES)."""


def _grading(request: web.Request) -> dict[str, object]:
    cfg = request.app[SETTINGS].credit
    return {
        "mode": cfg.grading,
        "thresholds": {"A": cfg.grade_a, "B": cfg.grade_b, "C": cfg.grade_c},
        "rank_top": cfg.rank_top,
        "rank_bottom": cfg.rank_bottom,
        "window_months": cfg.window_months,
        "base": cfg.base,
    }


@page("credit")
async def ranking(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    rows = await request.app[POOL].fetch("SELECT code, name, name_en FROM districts ORDER BY code")
    districts = [dict(r.items()) for r in rows]
    may_act = p.role in WRITE_ROLES
    return render(
        request,
        "credit.html",
        title=t("nav.credit"),
        active="credit",
        grades=GRADES,
        districts=districts,
        show_district=p.role != "company_admin",
        may_act=may_act,
        page_config={
            "districts": districts,
            "grades": list(GRADES),
            "grading": _grading(request),
            "may_act": may_act,
        },
    )


@page("credit")
async def detail(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    company_id = int(request.match_info["id"])
    cfg = request.app[SETTINGS].credit
    may_act = p.role in WRITE_ROLES
    return render(
        request,
        "credit_detail.html",
        title=t("credit.detail_title"),
        active="credit",
        kinds=KINDS,
        manual_kinds=MANUAL_KINDS,
        may_act=may_act,
        max_points=cfg.manual_max_points,
        page_config={
            "company_id": company_id,
            "kinds": list(KINDS),
            "grades": list(GRADES),
            "grading": _grading(request),
            "may_act": may_act,
        },
    )


async def public_search(request: web.Request) -> web.StreamResponse:
    """No login: the grade of a company found by name (docs/ARCHITECTURE.md §8)."""
    t = page_translator(request)
    return render(
        request,
        "credit_search.html",
        title=t("credit.public.title"),
        grades=GRADES,
        page_config={"grading": _grading(request)},
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/credit", ranking),
        web.get("/credit/search", public_search),
        web.get(r"/credit/{id:\d{1,18}}", detail),
    ]
