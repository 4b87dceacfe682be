"""Work page: stations, stores and warehouses (站点管理) with their permit and live stock.

``GET /admin/stations`` (docs/ARCHITECTURE.md §8): the sites of the caller's scope — kind,
company, district, the permitted full-cylinder storage (重瓶存放) against the stock held now,
the filling licence (number, expiry, status) — and, for the admin and a company admin, the
form that registers or changes one, its position picked on a small map. The licence is the
bureau's act and is changed on the licences page (``/admin/licences``); the storage limit is
the admin's (``server.api.sites``). The rows come from ``GET /api/v1/sites``, which scopes
them in SQL again; the filter choices here are scoped the same way (§7).
"""

from __future__ import annotations

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import allowed, page, page_translator, render
from server.domain.statuses import LICENCE_STATUSES, SITE_KINDS
from server.kernel.appkeys import POOL
from server.kernel.principal import Principal

__all__ = ["routes"]

WRITE_ROLES = ("admin", "company_admin")
"""Who registers and changes sites (server.api.sites.WRITE_ROLES)."""


def creatable_kinds(p: Principal) -> tuple[str, ...]:
    """Kinds the caller may register: inspection agencies are the admin's (server.api.sites)."""
    if p.role == "admin":
        return SITE_KINDS
    return tuple(k for k in SITE_KINDS if k != "inspection_agency")


@page("stations")
async def stations(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    opts = await filter_options(request.app[POOL], p)
    can_edit = p.role in WRITE_ROLES
    licences_page = "/admin/licences" if allowed(p, "licences") else None
    return render(
        request,
        "stations.html",
        title=t("nav.stations"),
        active="stations",
        options=opts,
        kinds=SITE_KINDS,
        creatable=creatable_kinds(p),
        licence_statuses=LICENCE_STATUSES,
        can_edit=can_edit,
        licences_page=licences_page,
        page_config={
            "districts": opts.districts,
            "companies": [{"id": c["id"], "name": c["name"]} for c in opts.companies],
            "can_edit": can_edit,
            "can_set_storage": p.role == "admin",
            "licences_page": licences_page,
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/stations", stations)]
