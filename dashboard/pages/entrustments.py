"""Work page: entrustments between companies (委托充装).

``GET /admin/entrustments`` (docs/ARCHITECTURE.md §8): the entrustments a company gives
(its cylinders filled at another company's stations) and receives, with their period and
state; a district regulator or officer sees those touching their districts. A company admin
entrusts its cylinders to a filler company and either party ends an entrustment, with a
reason; the admin does both for any two companies (``server.api.entrustments``, audited).
The gun sees the change at its next request (``not_owner`` lifted or restored).

The filler choices: every company that runs a filling station. A company admin's scope of
the register is its own company only, but whom to entrust is exactly the question, and a
licensed filling company is a public fact (its name and code, nothing else). The rows come
from ``GET /api/v1/entrustments``, scoped in SQL.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import page, page_translator, render
from server.domain.entrustments import ENTRUSTMENT_STATES
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.principal import Principal

__all__ = ["routes"]

WRITE_ROLES = ("admin", "company_admin")
"""Who makes and ends entrustments (server.api.entrustments.WRITE_ROLES)."""


async def _fillers(request: web.Request, p: Principal) -> list[dict[str, object]]:
    """Companies running a filling station (not the caller's own)."""
    rows = await request.app[POOL].fetch(
        """SELECT c.id, c.code, c.name FROM companies c
            WHERE EXISTS (SELECT 1 FROM sites s
                           WHERE s.company_id = c.id AND s.kind = 'filling_station')
              AND c.id IS DISTINCT FROM $1
            ORDER BY c.name""",
        p.company_id,
    )
    return [dict(r.items()) for r in rows]


@page("entrustments")
async def entrustments(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    pool = request.app[POOL]
    opts = await filter_options(pool, p)
    can_edit = p.role in WRITE_ROLES
    fillers = await _fillers(request, p) if can_edit else []
    owners = opts.companies if p.role == "admin" else []
    return render(
        request,
        "entrustments.html",
        title=t("nav.entrustments"),
        active="entrustments",
        options=opts,
        states=ENTRUSTMENT_STATES,
        can_edit=can_edit,
        fillers=fillers,
        owners=owners,
        own_company=p.company_id if p.role == "company_admin" else None,
        page_config={
            "can_edit": can_edit,
            "own_company": p.company_id
            if p.role in ("company_admin", "station_operator")
            else None,
            "today": city_today(request.app[SETTINGS]).isoformat(),
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/entrustments", entrustments)]
