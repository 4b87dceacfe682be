"""The work pages (docs/ARCHITECTURE.md §8): one module per job a person does in a browser.

Each module contributes ``routes()`` — its page handlers (guarded by :func:`dashboard.render.page`
with its key in :data:`dashboard.render.NAV`) — and keeps its template under
``templates/<module>.html``, its script under ``static/js/<module>.js`` and its strings under
``i18n/<lang>/<module>.json``. The rows come from the REST API, which scopes them again in SQL.
"""

from __future__ import annotations

import importlib

from aiohttp import web

PAGE_MODULES = (
    "dashboard.pages.report_schedules",  # before /reports/{name} (dashboard.pages.reports)
    "dashboard.pages.registration",
    "dashboard.pages.imports",
    "dashboard.pages.inspections",
    "dashboard.pages.inspection_list",
    "dashboard.pages.companies",
    "dashboard.pages.stations",
    "dashboard.pages.customers",
    "dashboard.pages.devices",
    "dashboard.pages.entrustments",
    "dashboard.pages.api_keys",
    "dashboard.pages.audit",
    "dashboard.pages.complaints",
    "dashboard.pages.credit",
    "dashboard.pages.articles",
    "dashboard.pages.messages",
    "dashboard.pages.safety",
    "dashboard.pages.wall_layouts",
    "dashboard.pages.reports",
)


def routes() -> list[web.RouteDef]:
    out: list[web.RouteDef] = []
    for name in PAGE_MODULES:
        out.extend(importlib.import_module(name).routes())
    return out
