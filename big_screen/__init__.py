"""The command-centre wall (/big-screen): unattended live view of the whole city.

- ``page``: the HTML shell, and who may see it (a regulator session or a kiosk token), with
  the layout its scope shows now (``server.domain.wall``; switches arrive over ``/ws``,
  ``realtime.wall``; layouts are edited at ``/wall-layouts``);
- ``kiosk``: kiosk tokens, read-only kiosk sessions and their guard middleware;
- ``feeds``: chart aggregates, KPI snapshot, latest alerts, districts, vehicles — scoped in
  SQL and cached per scope so several walls cost one query per period;
- ``static/``: the wall's scripts (``big-screen.js`` and its ``wall-*.js`` modules: the live
  store, the grid, one module per kind of window) and stylesheet, under ``/static/big-screen/``.
Live data comes from ``/ws`` (realtime); libraries from the dashboard's ``/static/vendor``.
"""

from __future__ import annotations

from aiohttp import web

from big_screen import feeds, kiosk, page
from server.kernel.appkeys import SETTINGS


def setup(app: web.Application) -> None:
    """Mount /big-screen, its data feeds and static files (kiosk sessions are made
    read-only by server.kernel.principal for every process, pages or not).
    """
    app[feeds.FEED_CACHE] = feeds.FeedCache(app[SETTINGS].big_screen.feed_cache_s)
    app.router.add_get("/big-screen", page.page)
    app.router.add_routes(kiosk.routes())
    app.router.add_routes(feeds.routes())
    app.router.add_static(page.STATIC_URL, page.STATIC_DIR, append_version=False)
