"""Work page: imports (being built; see dashboard/pages/__init__.py)."""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
