"""Work pages: safety inspections at the customer (入户安检) on the desktop — the records, one
record, the customer's notice, and the item catalogue.

``GET /safety-inspections`` (docs/ARCHITECTURE.md §8; nav key ``safety``): records in the
caller's scope searched by company, customer, district, inspector, period and result, with
CSV/XLSX links that follow the filters. ``GET /safety-inspections/{id}``: one record — its
items grouped by answer, photos, the customer's signature, the seal's check, rectifications
(re-checked with a photo by the roles the API allows) and corrections.
``GET /safety-inspections/{id}/notice``: the rectification notice (整改通知书) the customer
is handed, print-friendly, with a button that copies a share link for the customer.
``GET /n/{token}`` (no login): the notice the share link opens — only what the customer must
fix — from the rate-limited public endpoint (``server.api.safety_share``), which checks the
token; a forged or expired one shows a clear message, never data.
``GET /admin/safety-items`` (nav key ``safety_items``): the catalogue per customer kind, past
versions, and publishing a new version (admin).

Every row comes from the REST API (``server.api.safety_*``), which scopes it again in SQL; the
handlers here only hand the page its vocabularies and the filters' options.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import allowed, page, page_translator, render
from server.domain.safety import (
    ANSWERS,
    CATALOGUE_WRITE_ROLES,
    CUSTOMER_KINDS,
    RECHECK_ROLES,
)
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]


async def _inspectors(request: web.Request, p: Principal) -> list[dict[str, Any]]:
    """Who inspected a record the caller may see (the inspector filter's choices)."""
    q = Sql()
    rows = await request.app[POOL].fetch(
        f"""SELECT u.id, COALESCE(u.display_name, u.username) AS name, u.role
              FROM users u
             WHERE u.id IN (SELECT s.inspector_id FROM safety_inspections s
                             WHERE {scope_where(p, "safety_inspections", "s", q)})
             ORDER BY name""",
        *q.params,
    )
    return [dict(r.items()) for r in rows]


@page("safety")
async def records(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    opts = await filter_options(request.app[POOL], p)
    return render(
        request,
        "safety.html",
        title=t("nav.safety"),
        active="safety",
        options=opts,
        inspectors=await _inspectors(request, p),
        results=("pass", "fail"),
    )


@page("safety")
async def record(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    rid = int(request.match_info["id"])
    return render(
        request,
        "safety_record.html",
        title=t("safety.record.title", id=rid),
        active="safety",
        record_id=rid,
        page_config={
            "record_id": rid,
            "may_recheck": p.role in RECHECK_ROLES,
            "answers": list(ANSWERS),
        },
    )


@page("safety")
async def notice(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    rid = int(request.match_info["id"])
    return render(
        request,
        "safety_notice.html",
        title=t("safety.notice.title"),
        active="safety",
        record_id=rid,
        page_config={"record_id": rid},
    )


async def shared(request: web.Request) -> web.StreamResponse:
    """The customer's notice by share link: the page is a shell; the data and the token's check
    are the public endpoint's (``GET /api/v1/public/safety-notices/{token}``)."""
    t = page_translator(request)
    return render(
        request,
        "safety_share.html",
        title=t("safety_share.title"),
        page_config={"token": request.match_info["token"]},
    )


@page("safety_items")
async def catalogue(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    may_publish = p.role in CATALOGUE_WRITE_ROLES and allowed(p, "safety_items")
    kind = request.query.get("kind", CUSTOMER_KINDS[0])
    return render(
        request,
        "safety_items.html",
        title=t("nav.safety_items"),
        active="safety_items",
        kinds=CUSTOMER_KINDS,
        kind=kind if kind in CUSTOMER_KINDS else CUSTOMER_KINDS[0],
        may_publish=may_publish,
        page_config={
            "may_publish": may_publish,
            "kinds": list(CUSTOMER_KINDS),
            "answers": list(ANSWERS),
            "default_days": request.app[SETTINGS].safety.rectification_days,
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/safety-inspections", records),
        web.get(r"/safety-inspections/{id:\d+}", record),
        web.get(r"/safety-inspections/{id:\d+}/notice", notice),
        web.get("/admin/safety-items", catalogue),
        web.get("/n/{token}", shared),
    ]
