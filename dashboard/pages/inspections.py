"""Work page: periodic inspection and scrapping (定期检验与报废) for inspection agencies.

``GET /inspections`` (docs/ARCHITECTURE.md §1, §8): an agency's inspector scans cylinders one
after another — a handheld scanner types the code and Enter into a box that keeps the focus —
sees each cylinder's archive and compliance, and records a pass (the new next-inspection date
shown before it is confirmed, from the API's dry run: one rule, in the domain), a fail (the
cylinder is scrapped, with a reason) or a scrap; a batch mode applies one result to every scan.
Results are never edited or undone (a mistake is corrected by a new record; a scrap is final),
and the session's list says so. Below, the day's work of the agency, with counts and a CSV.

The admin acts too (naming an agency if it wants); a regulator reads the day's work of its
scope and cannot act; other roles get the 403 page (``dashboard.render.NAV``). Rows come from
the REST API (``server.api.inspections``), scoped again in SQL.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain.statuses import INSPECTION_RESULTS, SCRAP_REASON_NEEDS_NOTE, SCRAP_REASONS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]

ACT_ROLES = ("admin", "inspector")
"""Who records results and scraps (server.api.inspections.INSPECT_ROLES; the API refuses
anyone else whatever a page shows)."""


@page("inspections")
async def inspections(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    q = Sql()
    rows = await request.app[POOL].fetch(
        f"""SELECT id, code, name FROM sites s
             WHERE s.kind = 'inspection_agency' AND {scope_where(p, "sites", "s", q)}
             ORDER BY s.code""",
        *q.params,
    )
    agencies = [dict(r.items()) for r in rows]
    own = next((a for a in agencies if a["id"] == p.site_id), None) if p.site_id else None
    can_act = p.role in ACT_ROLES
    today = city_today(request.app[SETTINGS]).isoformat()
    return render(
        request,
        "inspections.html",
        title=t("nav.inspections"),
        active="inspections",
        can_act=can_act,
        agencies=agencies,
        own_agency=own,
        results=INSPECTION_RESULTS,
        scrap_reasons=SCRAP_REASONS,
        today=today,
        page_config={
            "can_act": can_act,
            "today": today,
            "reasons_need_note": sorted(SCRAP_REASON_NEEDS_NOTE),
            "show_agency": p.role != "inspector",
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/inspections", inspections)]
