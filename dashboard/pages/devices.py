"""Work page: devices — filling guns, handhelds, vehicles, smart valves (设备管理).

``GET /admin/devices`` (docs/ARCHITECTURE.md §5, §8): the devices of the caller's scope per
site and company, when each was last heard and whether it is online, and whether it is
active. The admin and a company admin register devices (the MQTT password generated for a
new device is shown once, in the answer of ``POST /api/v1/devices``, and never again),
change them and deactivate them; deactivating cuts the device off the broker and ingest
refuses its messages and fill requests from then on (``server.api.devices``,
docs/SECURITY.md "Broker"). Rows come from ``GET /api/v1/devices``, scoped in SQL; the
site and company choices here are scoped the same way (§7).
"""

from __future__ import annotations

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import page, page_translator, render
from server.domain.statuses import DEVICE_KINDS
from server.kernel.appkeys import POOL
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]

WRITE_ROLES = ("admin", "company_admin")
"""Who registers, changes and deactivates devices (server.api.devices.WRITE_ROLES)."""


@page("devices")
async def devices(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    pool = request.app[POOL]
    opts = await filter_options(pool, p)
    q = Sql()
    # devices live at a company's sites: inspection agencies hold none
    sites = await pool.fetch(
        f"""SELECT id, code, name, kind, company_id FROM sites s
             WHERE s.kind <> 'inspection_agency' AND {scope_where(p, "sites", "s", q)}
             ORDER BY s.code""",
        *q.params,
    )
    site_rows = [dict(r.items()) for r in sites]
    can_edit = p.role in WRITE_ROLES
    return render(
        request,
        "devices.html",
        title=t("nav.devices"),
        active="devices",
        options=opts,
        kinds=DEVICE_KINDS,
        sites=site_rows,
        can_edit=can_edit,
        page_config={
            "companies": [{"id": c["id"], "name": c["name"]} for c in opts.companies],
            "sites": site_rows,
            "can_edit": can_edit,
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/devices", devices)]
