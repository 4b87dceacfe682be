"""Page rendering: one Jinja2 environment for every page of this package (the regulator
pages and the officer PWA's shell), navigation by role, language, security headers.

Why server-rendered shells: each page is an HTML document that works and reads well before
any script runs (title, navigation, filters, empty states), and a small native ES module then
calls the REST API for the rows (no build step; the shared modules are under
``static/js/lib``, see dashboard/README.md). Everything a page script needs to know —
language strings, the CSRF cookie name, the tile layer, the websocket's close codes —
travels in one JSON block (``server.kernel.pages``), so scripts never hard-code a setting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from dashboard.i18n import strings, translator
from server.kernel.appkeys import SETTINGS
from server.kernel.i18n import LANGUAGES, Translator, remember_language, request_language
from server.kernel.pages import CONFIG_ELEMENT_ID, json_for_html, live_config, secure_page
from server.kernel.principal import Principal, principal_of
from server.kernel.tiles import tile_spec

__all__ = [
    "NAV",
    "STATIC_DIR",
    "NavGroup",
    "NavItem",
    "allowed",
    "environment",
    "login_redirect",
    "nav_for",
    "nav_groups",
    "page",
    "page_translator",
    "render",
    "render_forbidden",
    "revalidate_own_static",
    "static_url",
    "static_version",
]

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

PageHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALL_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator", "inspector")


@dataclass(frozen=True)
class NavItem:
    """A page in the top navigation and the roles that may open it (docs/ARCHITECTURE.md §7).

    ``group`` puts the page in a drop-down menu of the top bar (``nav.group.<group>``); pages
    without one stand in the bar itself. ``menu`` False keeps a page out of the navigation
    (reached from another page) while its roles still decide who may open it.
    """

    key: str
    path: str
    roles: tuple[str, ...]
    group: str | None = None
    menu: bool = True


_NOT_INSPECTOR = tuple(r for r in ALL_ROLES if r != "inspector")

NAV: tuple[NavItem, ...] = (
    NavItem("dashboard", "/", ALL_ROLES),
    NavItem("cylinders", "/cylinders", ALL_ROLES),
    # inspection agencies may not read fills or alerts (server.kernel.scope._DENIED)
    NavItem("fills", "/fills", _NOT_INSPECTOR),
    NavItem("alerts", "/alerts", _NOT_INSPECTOR),
    NavItem("exports", "/exports", ALL_ROLES),
    # the reports on screen (dashboard.pages.reports): whoever may run at least one report
    NavItem(
        "reports",
        "/reports",
        ("admin", "regulator", "officer", "company_admin", "inspector"),
        "work",
    ),
    # the work of registration and periodic inspection (建档, 定期检验与报废)
    NavItem("registration", "/registration", ("admin", "company_admin", "inspector"), "work"),
    NavItem("imports", "/registration/import", ("admin", "company_admin", "inspector"), "work"),
    NavItem("inspections", "/inspections", ("admin", "regulator", "inspector"), "work"),
    # the officer's daily round, sites ranked by risk (server.domain.site_risk.READ_ROLES)
    NavItem("inspection_list", "/inspection-list", ("admin", "regulator", "officer"), "work"),
    NavItem(
        "report_schedules",
        "/reports/schedules",
        ("admin", "regulator", "officer", "company_admin", "inspector"),
        "work",
    ),
    # 入户安检: records for whoever reads them (server.domain.safety.READ_ROLES); the catalogue
    # is the admin's to publish, regulators read it
    NavItem(
        "safety",
        "/safety-inspections",
        ("admin", "regulator", "officer", "company_admin", "station_operator"),
        "work",
    ),
    NavItem("safety_items", "/admin/safety-items", ("admin", "regulator"), "work"),
    # management of the regulated parties and of the platform's own users
    # a company admin sees (and keeps the contacts and QR notice of) its own company only
    NavItem(
        "companies",
        "/admin/companies",
        ("admin", "regulator", "officer", "company_admin"),
        "manage",
    ),
    NavItem(
        "licences", "/admin/licences", ("admin", "regulator", "officer", "company_admin"), "manage"
    ),
    NavItem("stations", "/admin/stations", _NOT_INSPECTOR, "manage"),
    NavItem("customers", "/admin/customers", _NOT_INSPECTOR, "manage"),
    NavItem("devices", "/admin/devices", _NOT_INSPECTOR, "manage"),
    NavItem(
        "entrustments",
        "/admin/entrustments",
        ("admin", "regulator", "officer", "company_admin"),
        "manage",
    ),
    NavItem("users", "/admin/users", ("admin", "company_admin"), "manage"),
    NavItem("api_keys", "/admin/api-keys", ("admin", "company_admin", "inspector"), "manage"),
    # communication with the public and the companies (投诉举报 …)
    NavItem(
        "complaints", "/complaints", ("admin", "regulator", "officer", "company_admin"), "comms"
    ),
    # 系统消息 and 通知: everyone has an inbox; admins and regulators write (server.domain.messages)
    NavItem("messages", "/messages", ALL_ROLES, "comms"),
    NavItem("notices", "/notices", ALL_ROLES, "comms"),
    NavItem("credit", "/credit", ("admin", "regulator", "officer", "company_admin"), "comms"),
    # 公益宣传: the bureau (admins, regulators) writes and publishes; the public reads on /portal
    NavItem("articles", "/admin/articles", ("admin", "regulator"), "comms"),
    NavItem("audit", "/admin/audit", ("admin", "regulator"), "system"),
    # the command-centre wall's layouts: admins edit, regulators switch (server.domain.wall)
    NavItem("wall_layouts", "/wall-layouts", ("admin", "regulator"), "system"),
    NavItem("dead_letters", "/admin/dead-letters", ("admin",), "system"),
)
_NAV_BY_KEY = {n.key: n for n in NAV}


@dataclass(frozen=True)
class NavGroup:
    """One entry of the top bar: a page, or a named menu of pages."""

    key: str
    item: NavItem | None
    items: tuple[NavItem, ...] = ()


def nav_for(p: Principal | None) -> list[NavItem]:
    if p is None:
        return []
    return [n for n in NAV if p.role in n.roles and n.menu]


def nav_groups(p: Principal | None) -> list[NavGroup]:
    """The top bar of *p*: pages in NAV order, those of one group gathered into its menu at
    the place of the group's first page."""
    out: list[NavGroup] = []
    seen: dict[str, int] = {}
    for item in nav_for(p):
        if item.group is None:
            out.append(NavGroup(item.key, item))
        elif item.group in seen:
            g = out[seen[item.group]]
            out[seen[item.group]] = NavGroup(g.key, None, (*g.items, item))
        else:
            seen[item.group] = len(out)
            out.append(NavGroup(item.group, None, (item,)))
    return out


def page(key: str | None) -> Callable[[PageHandler], Handler]:
    """A page for logged-in users whose role may open *key* (see :data:`NAV`): nobody logged
    in → the login page, then back; a role the page is not for → a clear 403 page."""

    def wrap(handler: PageHandler) -> Handler:
        @wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            p = principal_of(request)
            if p is None:
                raise login_redirect(request)
            if key is not None and not allowed(p, key):
                return render_forbidden(request, key)
            return await handler(request, p)

        return inner

    return wrap


def page_translator(request: web.Request) -> Translator:
    """``t(key, **vars)`` in the language of *request*."""
    return translator(request_language(request)[0])


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


async def revalidate_own_static(request: web.Request, response: web.StreamResponse) -> None:
    """Browsers must ask again (a cheap 304) for the platform's own static files.

    A page's entry script carries ``?v=`` (:func:`static_url`), but the modules it imports
    (``/static/js/lib/…``) are named by plain URLs shared by every page, the wall and ``/m``;
    without this a browser could keep a stale module for days after a deploy. Vendored
    libraries never change under a URL and keep the default caching.
    """
    path = request.path
    if path.startswith("/static/") and not path.startswith("/static/vendor/"):
        response.headers.setdefault("Cache-Control", "no-cache")


def environment() -> jinja2.Environment:
    """The package's Jinja2 environment (templates under ``dashboard/templates``)."""
    return _env


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
        "live": live_config(settings),
        **(page_config or {}),
    }
    body = _env.get_template(template).render(
        t=t,
        lang=lang,
        languages=LANGUAGES,
        user=p,
        csrf=p.csrf if p else None,
        nav=nav_for(p),
        nav_groups=nav_groups(p),
        active=active,
        title=title,
        static=static_url,
        config_json=json_for_html(config),
        config_id=CONFIG_ELEMENT_ID,
        path=request.path,
        **context,
    )
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    secure_page(resp, tiles)
    resp.headers["Cache-Control"] = "no-store"
    if chosen:
        remember_language(resp, lang)
    return resp


def render_forbidden(request: web.Request, key: str) -> web.Response:
    t = translator(request_language(request)[0])
    return render(
        request,
        "message.html",
        title=t("error.forbidden.title"),
        status=403,
        heading=t("error.forbidden.title"),
        message=t("error.forbidden.body"),
        active=key,
    )
