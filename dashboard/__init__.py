"""Regulator pages: live map, cylinder search and detail, fills, alerts, reports, admin."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Mount the regulator pages and the static assets."""
