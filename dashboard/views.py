"""The regulator pages (docs/ARCHITECTURE.md §8): login and logout, dashboard map, cylinders, fills,
alerts, exports, user administration, dead letters, and the public QR page.

Each page handler checks who is asking (redirect to ``/login`` when nobody is; a clear 403
page for a role the page is not for), renders the shell with the filter choices of the
caller's scope, and leaves the rows to the page script and the REST API, which scope them
again in SQL. The login form posts to this module (no script needed) and is protected
against login CSRF by a double-submit token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from dashboard import data
from dashboard.maps import RenderedMap, build_dashboard_map
from dashboard.render import allowed, page, page_translator, render
from server.domain.filling import FillAssessment
from server.domain.statuses import (
    ALERT_KINDS,
    ALERT_STATES,
    CYLINDER_STATUSES,
    POST_CHECK_ITEMS,
    PRE_CHECK_ITEMS,
    ROLES,
)
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import ApiError
from server.kernel.i18n import request_language
from server.kernel.limits import body_limit
from server.kernel.principal import (
    Principal,
    login_user,
    logout_session,
    principal_of,
    set_session_cookies,
    start_session,
)
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]

LOGIN_CSRF_COOKIE = "cylwatch_login_csrf"
"""Double-submit token of the login form: a cross-site page cannot read it, so it cannot
log a victim's browser into an attacker's account (login CSRF)."""

SEVERITIES = ("critical", "warning", "info")


def _t(request: web.Request) -> Callable[..., str]:
    return page_translator(request)


def _safe_next(raw: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://…``: no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return "/"
    return raw


# ------------------------------------------------------------------ login / logout


def _login_page(
    request: web.Request,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    next_path: str | None = None,
) -> web.Response:
    t = _t(request)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    resp = render(
        request,
        "login.html",
        title=t("login.title"),
        status=status,
        error=error,
        username=username,
        login_csrf=token,
        next=_safe_next(next_path or request.query.get("next")),
    )
    settings = request.app[SETTINGS].auth
    resp.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        path="/login",
        max_age=3600,
    )
    return resp


async def login_get(request: web.Request) -> web.StreamResponse:
    if principal_of(request) is not None:
        raise web.HTTPFound(location=_safe_next(request.query.get("next")))
    return _login_page(request)


@body_limit("small")
async def login_post(request: web.Request) -> web.StreamResponse:
    """The login form: checks the double-submit token, then the password (argon2)."""
    form = await request.post()
    t = _t(request)
    username = str(form.get("username") or "")
    sent = str(form.get("_csrf") or "")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        return _login_page(
            request,
            error=t("login.error.expired"),
            username=username,
            status=403,
            next_path=str(form.get("next") or ""),
        )
    try:
        principal = await login_user(request, username, str(form.get("password") or ""))
    except ApiError as exc:
        message = t("login.error.rate_limited") if exc.status == 429 else t("login.error.bad")
        return _login_page(
            request,
            error=message,
            username=username,
            status=exc.status,
            next_path=str(form.get("next") or ""),
        )
    sid, csrf = await start_session(request, principal)
    resp = web.HTTPFound(location=_safe_next(str(form.get("next") or "/")))
    set_session_cookies(resp, request, sid, csrf)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise resp


async def logout_post(request: web.Request) -> web.StreamResponse:
    """End the session (the auth middleware has checked the form's CSRF token)."""
    resp = web.HTTPFound(location="/login")
    await logout_session(request, resp)
    raise resp


# ------------------------------------------------------------------ pages


def _options_config(opts: data.FilterOptions) -> dict[str, Any]:
    return {
        "districts": opts.districts,
        "companies": [
            {"id": c["id"], "name": c["name"], "code": c["code"]} for c in opts.companies
        ],
        "stations": opts.stations,
    }


async def _dashboard_map(request: web.Request, p: Principal) -> RenderedMap:
    """The folium map of the caller: their language, focused on the districts they
    answer for (a district regulator or officer starts on them)."""
    lang, _ = request_language(request)
    boundaries = await data.district_boundaries(request.app[POOL])
    focus = list(p.districts) if p.role in ("regulator", "officer") else []
    return build_dashboard_map(request.app[SETTINGS].map, boundaries, lang, focus)


@page("dashboard")
async def dashboard(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    opts = await data.filter_options(request.app[POOL], p)
    rendered = await _dashboard_map(request, p)
    return render(
        request,
        "dashboard.html",
        title=t("nav.dashboard"),
        active="dashboard",
        map=rendered,
        options=opts,
        compliance_codes=data.COMPLIANCE_CODES,
        page_config={
            "compliance_codes": list(data.COMPLIANCE_CODES),
            "can_alerts": allowed(p, "alerts"),
            "can_act": p.role
            in ("admin", "regulator", "officer", "company_admin", "station_operator"),
            **_options_config(opts),
        },
    )


@page("dashboard")
async def dashboard_map_script(request: web.Request, p: Principal) -> web.StreamResponse:
    """GET /dashboard/map.js: the folium map's script, as a file the page loads — the
    Content-Security-Policy allows no inline script (``server.kernel.pages``)."""
    rendered = await _dashboard_map(request, p)
    return web.Response(
        text=rendered.script,
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@page("cylinders")
async def cylinders(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    opts = await data.filter_options(request.app[POOL], p)
    return render(
        request,
        "cylinders.html",
        title=t("nav.cylinders"),
        active="cylinders",
        options=opts,
        statuses=CYLINDER_STATUSES,
        compliance_codes=data.COMPLIANCE_CODES,
        page_config=_options_config(opts),
    )


@page("cylinders")
async def cylinder_detail(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    raw = request.match_info["id"]
    # isascii: str.isdigit() admits "²" and other digits int() refuses (a 500, issue 9)
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
        return render(
            request,
            "message.html",
            title=t("error.not_found.title"),
            status=404,
            heading=t("error.not_found.title"),
            message=t("error.not_found.body"),
            active="cylinders",
        )
    return render(
        request,
        "cylinder.html",
        title=t("cylinder.title"),
        active="cylinders",
        cylinder_id=int(raw),
        page_config={"cylinder_id": int(raw)},
    )


@page("fills")
async def fills(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    opts = await data.filter_options(request.app[POOL], p, with_stations=True)
    return render(
        request,
        "fills.html",
        title=t("nav.fills"),
        active="fills",
        options=opts,
        assessments=[a.value for a in FillAssessment],
        # the failed-check filter: pre:<item> / post:<item> (server.api.fills)
        checks=[f"pre:{i}" for i in PRE_CHECK_ITEMS] + [f"post:{i}" for i in POST_CHECK_ITEMS],
        page_config=_options_config(opts),
    )


@page("alerts")
async def alerts(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    opts = await data.filter_options(request.app[POOL], p)
    return render(
        request,
        "alerts.html",
        title=t("nav.alerts"),
        active="alerts",
        options=opts,
        kinds=ALERT_KINDS,
        severities=SEVERITIES,
        states=ALERT_STATES,
        page_config=_options_config(opts),
    )


@page("exports")
async def exports(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    opts = await data.filter_options(request.app[POOL], p)
    return render(
        request,
        "exports.html",
        title=t("nav.exports"),
        active="exports",
        options=opts,
        compliance_codes=data.COMPLIANCE_CODES,
        page_config=_options_config(opts),
    )


def _creatable_roles(p: Principal) -> tuple[str, ...]:
    """Roles a user administrator may hand out: a company admin only its station staff
    (server.api.users: a company cannot widen its own powers)."""
    if p.role == "admin":
        return ROLES
    return ("station_operator",)


@page("users")
async def users(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    pool = request.app[POOL]
    opts = await data.filter_options(pool, p)
    q = Sql()
    sites = await pool.fetch(
        f"""SELECT id, code, name, kind FROM sites s WHERE {scope_where(p, "sites", "s", q)}
             ORDER BY kind, code""",
        *q.params,
    )
    return render(
        request,
        "users.html",
        title=t("nav.users"),
        active="users",
        options=opts,
        roles=_creatable_roles(p),
        all_roles=ROLES,
        sites=[dict(r.items()) for r in sites],
        page_config={**_options_config(opts), "roles": list(_creatable_roles(p))},
    )


@page("dead_letters")
async def dead_letters(request: web.Request, p: Principal) -> web.StreamResponse:
    t = _t(request)
    return render(request, "dead_letters.html", title=t("nav.dead_letters"), active="dead_letters")


async def public_cylinder(request: web.Request) -> web.StreamResponse:
    """The public QR page: no login, no personal data, phone-sized (docs/ARCHITECTURE.md §8)."""
    t = _t(request)
    code = request.match_info["code"]
    settings = request.app[SETTINGS].public
    photo_max_mb = request.app[SETTINGS].uploads.image_max_mb
    return render(
        request,
        "public.html",
        title=t("public.title"),
        code=code,
        complaint_max=settings.complaint_max_chars,
        photo_max_mb=photo_max_mb,
        page_config={
            "code": code,
            "complaint_max": settings.complaint_max_chars,
            # a photo over the limit is refused in the page, before minutes of upload on a
            # phone's network end in a 413 (server.kernel.uploads)
            "photo_max_mb": photo_max_mb,
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/login", login_get),
        web.post("/login", login_post),
        web.post("/logout", logout_post),
        web.get("/", dashboard),
        web.get("/dashboard/map.js", dashboard_map_script),
        web.get("/cylinders", cylinders),
        web.get("/cylinders/{id}", cylinder_detail),
        web.get("/fills", fills),
        web.get("/alerts", alerts),
        web.get("/exports", exports),
        web.get("/admin/users", users),
        web.get("/admin/dead-letters", dead_letters),
        web.get("/q/{code}", public_cylinder),
    ]
