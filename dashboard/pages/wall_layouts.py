"""Work page: the command-centre wall's layouts (大屏布局) and which one each wall shows.

``GET /wall-layouts`` (docs/ARCHITECTURE.md §8; DESIGN §8 ``/big-screen``): the walls (the
city's, each district's) with the layout each shows and a switch that goes over the page's
websocket (``wall_switch``: the wall follows within a second, the switch is audited), and the
layouts: a grid editor where an admin adds windows, moves and resizes them by dragging or with
the keyboard (arrows move the selected window, Shift+arrows resize it) or by typing x, y, w,
h, chooses each window's content from the catalogue (the map, KPI tiles, the ticker, the
wall's charts, any report with its filters, a camera stream) and sees the grid as the wall
will draw it. Regulators see the same page read-only and switch the walls of their scope
(``server.domain.wall``). The rows and every change go through ``/api/v1/wall-layouts``.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain import wall
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.principal import Principal

__all__ = ["routes"]


@page("wall_layouts")
async def wall_layouts(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    settings = request.app[SETTINGS].big_screen
    rows = await request.app[POOL].fetch("SELECT code, name, name_en FROM districts ORDER BY code")
    districts = [dict(r) for r in rows]
    if not p.city_wide:
        districts = [d for d in districts if d["code"] in p.districts]
    edits = p.role in wall.EDIT_ROLES
    return render(
        request,
        "wall_layouts.html",
        title=t("nav.wall_layouts"),
        active="wall_layouts",
        edits=edits,
        page_config={
            "edits": edits,
            "city_wide": p.city_wide,
            "mine": wall.scope_of(p.city_wide, p.districts),
            "districts": districts,
            "grid_max": settings.grid_max,
            "windows_max": settings.windows_max,
            "stream_origins": list(settings.stream_origins),
            "kinds": list(wall.WINDOW_KINDS),
            "charts": list(wall.CHARTS),
            "kpi_keys": list(wall.KPI_KEYS),
            "default_layout": {
                "columns": wall.DEFAULT.columns,
                "rows": wall.DEFAULT.rows,
            },
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/wall-layouts", wall_layouts)]
