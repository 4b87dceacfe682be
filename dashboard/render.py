"""Page rendering: one Jinja2 layout, navigation by role, language, security headers.

Why server-rendered shells: each page is an HTML document that works and reads well before
any script runs (title, navigation, filters, empty states), and a small vanilla script then
calls the REST API for the rows (no build step). Everything a page script needs to know —
language strings, the CSRF cookie name, the tile layer — travels in one JSON block, so
scripts never hard-code a setting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from dashboard.i18n import LANGUAGES, remember_language, request_language, strings, translator
from dashboard.maps import tile_spec
from server.kernel.appkeys import SETTINGS
from server.kernel.principal import Principal, principal_of

__all__ = [
    "NAV",
    "STATIC_DIR",
    "NavItem",
    "allowed",
    "json_for_html",
    "login_redirect",
    "nav_for",
    "render",
    "render_forbidden",
    "static_version",
]

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

ALL_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator", "inspector")


@dataclass(frozen=True)
class NavItem:
    """A page in the top navigation and the roles that may open it (DESIGN §7)."""

    key: str
    path: str
    roles: tuple[str, ...]


NAV: tuple[NavItem, ...] = (
    NavItem("dashboard", "/", ALL_ROLES),
    NavItem("cylinders", "/cylinders", ALL_ROLES),
    # inspection agencies may not read fills or alerts (server.kernel.scope._DENIED)
    NavItem("fills", "/fills", tuple(r for r in ALL_ROLES if r != "inspector")),
    NavItem("alerts", "/alerts", tuple(r for r in ALL_ROLES if r != "inspector")),
    NavItem("exports", "/exports", ALL_ROLES),
    NavItem("users", "/admin/users", ("admin", "company_admin")),
    NavItem("dead_letters", "/admin/dead-letters", ("admin",)),
)
_NAV_BY_KEY = {n.key: n for n in NAV}


def nav_for(p: Principal | None) -> list[NavItem]:
    if p is None:
        return []
    return [n for n in NAV if p.role in n.roles]


def allowed(p: Principal, key: str) -> bool:
    return p.role in _NAV_BY_KEY[key].roles


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _compute_static_version() -> str:
    """A short hash of the platform's own static files, appended to their URLs.

    Browsers may then cache them aggressively, and a deployment with changed files gets new
    URLs. Vendor files are excluded: their URLs are a contract for other pages.
    """
    h = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and "vendor" not in path.relative_to(STATIC_DIR).parts:
            st = path.stat()
            h.update(f"{path.relative_to(STATIC_DIR)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:10]


_STATIC_VERSION = _compute_static_version()


def static_version() -> str:
    return _STATIC_VERSION


def static_url(path: str) -> str:
    """URL of a file under ``dashboard/static`` (cache-busted unless it is vendored)."""
    path = path.lstrip("/")
    if path.startswith("vendor/"):
        return f"/static/{path}"
    return f"/static/{path}?v={_STATIC_VERSION}"


def json_for_html(data: Any) -> str:
    """JSON safe to place inside a ``<script type=application/json>`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csp(tile_hosts: Sequence[str]) -> str:
    """Content-Security-Policy: everything from this server, tiles from the configured host.

    folium emits inline scripts and styles, hence ``'unsafe-inline'``; what matters here is
    that nothing else can be *fetched* from elsewhere (an offline network, and no data
    leaving the platform).
    """
    img = " ".join(["'self'", "data:", "blob:", *tile_hosts])
    return (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        f"img-src {img}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _tile_hosts(tiles_url: str | None, overlay: str | None) -> list[str]:
    hosts: list[str] = []
    for url in (tiles_url, overlay):
        if not url:
            continue
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0]
        # {s} subdomain placeholders become a wildcard of the parent domain
        if "{s}" in host:
            host = "*." + host.split(".", 1)[1]
        hosts.append(f"{scheme}://{host}")
    return hosts


def login_redirect(request: web.Request) -> web.HTTPFound:
    """A redirect to the login page that comes back here afterwards."""
    return web.HTTPFound(location=f"/login?next={_quote(request.path_qs)}")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def render(
    request: web.Request,
    template: str,
    *,
    title: str,
    active: str | None = None,
    status: int = 200,
    page_config: Mapping[str, Any] | None = None,
    **context: Any,
) -> web.Response:
    """Render *template* inside the layout, with the language, user and page config."""
    lang, chosen = request_language(request)
    t = translator(lang)
    p = principal_of(request)
    settings = request.app[SETTINGS]
    tiles = tile_spec(settings.map)
    config: dict[str, Any] = {
        "lang": lang,
        "strings": dict(strings(lang)),
        "csrf_cookie": settings.auth.csrf_cookie,
        "user": p.public_dict() if p else None,
        "tiles": tiles.public() if tiles else None,
        "map": {
            "center": [settings.map.center_lat, settings.map.center_lon],
            "zoom": settings.map.zoom,
        },
        "page_size": settings.http.page_size_default,
        **(page_config or {}),
    }
    body = _env.get_template(template).render(
        t=t,
        lang=lang,
        languages=LANGUAGES,
        user=p,
        csrf=p.csrf if p else None,
        nav=nav_for(p),
        active=active,
        title=title,
        static=static_url,
        config_json=json_for_html(config),
        path=request.path,
        **context,
    )
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    hosts = _tile_hosts(tiles.url if tiles else None, tiles.overlay_url if tiles else None)
    resp.headers["Content-Security-Policy"] = _csp(hosts)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Cache-Control"] = "no-store"
    if chosen:
        remember_language(resp, lang)
    return resp


def render_forbidden(request: web.Request, key: str) -> web.Response:
    lang, _ = request_language(request)
    t = translator(lang)
    return render(
        request,
        "message.html",
        title=t("error.forbidden.title"),
        status=403,
        heading=t("error.forbidden.title"),
        message=t("error.forbidden.body"),
        active=key,
    )
