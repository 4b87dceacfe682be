"""Work page: the officer's daily inspection list (``GET /inspection-list``; nav key
``inspection_list``, docs/ARCHITECTURE.md §8).

The filling stations and stores of the caller's districts ranked by risk over the last
``[risk] window_days`` days, each with the reasons behind its rank (the counts per factor
and a sentence), a link to the site on the live map, CSV / XLSX of the same list and a
layout that prints as a sheet to take on the round (a "visited" column to tick by hand).
The rows are the REST API's (``GET /api/v1/risk/sites``, scoped in SQL; the rule is
``server.domain.site_risk``); this module only draws the shell: the district filter (a
district officer or regulator gets theirs only), how the score is made, the factors'
names. The phone's "today's list" in ``/m`` reads the same endpoint.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import page, page_translator, render
from server.domain.site_risk import FACTORS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.principal import Principal

__all__ = ["routes"]


@page("inspection_list")
async def inspection_list(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    cfg = request.app[SETTINGS].risk
    opts = await filter_options(request.app[POOL], p)
    return render(
        request,
        "inspection_list.html",
        title=t("nav.inspection_list"),
        active="inspection_list",
        options=opts,
        factors=FACTORS,
        window_days=cfg.window_days,
        limit_default=cfg.list_default,
        limit_max=cfg.list_max,
        page_config={
            "factors": list(FACTORS),
            "window_days": cfg.window_days,
            "list_default": cfg.list_default,
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/inspection-list", inspection_list)]
