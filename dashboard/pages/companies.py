"""Work pages: the register of companies (产权单位 / 燃气企业) and the licences the bureau issues.

``GET /admin/companies`` (docs/ARCHITECTURE.md §8): every company — code, name, district,
contacts, order phone (订气电话), licence no., expiry and status — searchable by code or
name and filterable by district and licence status, each opened in a detail dialog. The admin
registers and edits companies (the bureau keeps the register: ``server.api.companies``);
regulators and officers read it, and act on licences from the licences page.

``GET /admin/licences``: every company licence and station filling licence (充装许可证) in
the caller's scope, with expiry, days left and the state today (``server.domain.licences``).
Regulators and the admin suspend (暂停), revoke (吊销) or reinstate a licence with a reason
(``POST /api/v1/licences/{kind}/{id}/status``, audited); a station's guns are refused at
their next request (``station_not_licensed``). Officers and company admins read.

Rows come from the REST API, which scopes them in SQL; the filter choices here are scoped
the same way (``dashboard.data.filter_options``). District names are public geography, so
the companies page names every district (a district regulator reads the whole register).
"""

from __future__ import annotations

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import page, page_translator, render
from server.domain.licences import LICENCE_HOLDERS, LICENCE_STATES
from server.domain.statuses import LICENCE_STATUSES
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.principal import Principal

__all__ = ["routes"]

REGISTER_ROLES = ("admin",)
"""Who registers and edits companies (server.api.companies: create is admin only)."""
LICENCE_ACT_ROLES = ("admin", "regulator")
"""Who suspends, revokes and reinstates (server.api.licences.WRITE_ROLES)."""


async def _all_districts(request: web.Request) -> list[dict[str, object]]:
    rows = await request.app[POOL].fetch("SELECT code, name, name_en FROM districts ORDER BY code")
    return [dict(r.items()) for r in rows]


@page("companies")
async def companies(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    districts = await _all_districts(request)
    can_edit = p.role in REGISTER_ROLES
    return render(
        request,
        "companies.html",
        title=t("nav.companies"),
        active="companies",
        districts=districts,
        statuses=LICENCE_STATUSES,
        can_edit=can_edit,
        page_config={
            "districts": districts,
            "can_edit": can_edit,
            "may_act_on_licences": p.role in LICENCE_ACT_ROLES,
        },
    )


@page("licences")
async def licences(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    opts = await filter_options(request.app[POOL], p)
    can_act = p.role in LICENCE_ACT_ROLES
    return render(
        request,
        "licences.html",
        title=t("nav.licences"),
        active="licences",
        options=opts,
        holders=LICENCE_HOLDERS,
        states=LICENCE_STATES,
        can_act=can_act,
        page_config={
            "districts": opts.districts,
            "can_act": can_act,
            "expiring_days": request.app[SETTINGS].alerts.licence_expiring_days,
            "today": city_today(request.app[SETTINGS]).isoformat(),
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/companies", companies),
        web.get("/admin/licences", licences),
    ]
