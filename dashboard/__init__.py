"""Regulator pages: live map, cylinder search and detail, fills, alerts, reports, admin.

Mounted by ``server.app.create_app`` through :func:`setup`. Static files (the platform's own
CSS/JS and the vendored libraries built by ``dashboard/build_assets.py``) are served under
``/static/``; the big screen and the officer PWA reuse them (paths in ``dashboard/README.md``).
"""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Mount the regulator pages, their page-data endpoints and the static assets."""
    from dashboard import data, pages, views
    from dashboard.render import STATIC_DIR, revalidate_own_static

    app.on_response_prepare.append(revalidate_own_static)
    app.router.add_routes(views.routes())
    app.router.add_routes(data.routes())
    app.router.add_routes(pages.routes())
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    from dashboard import mobile

    mobile.setup(app)  # the officer PWA (/m); idempotent
