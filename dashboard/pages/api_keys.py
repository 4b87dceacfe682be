"""Work page: API keys of the enterprise data interface (数据接口密钥).

``GET /admin/api-keys`` (docs/ARCHITECTURE.md §8): the caller's keys — name, the first
characters, created, last used, revoked — and, for an admin or a company admin, every key
they manage (``all``, or one user's). A new key is shown once, in a dialog with a copy button
and a plain warning that it will not be shown again (only its hash is kept); revoking asks
first and takes effect at once. The rows and every change go through
``/api/v1/auth/api-keys``, which scopes them in SQL again (docs/API.md "API keys").
"""

from __future__ import annotations

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.kernel.principal import API_KEY_HEADER, Principal

__all__ = ["routes"]

MANAGERS = ("admin", "company_admin")
"""Roles that manage other users' keys too (an admin everyone's, a company admin its staff's)."""


@page("api_keys")
async def api_keys(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    manages = p.role in MANAGERS
    return render(
        request,
        "api_keys.html",
        title=t("nav.api_keys"),
        active="api_keys",
        manages=manages,
        key_header=API_KEY_HEADER,
        page_config={"manages": manages, "key_header": API_KEY_HEADER},
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/api-keys", api_keys)]
