"""Work page: registration (建档) of one cylinder at a time — ``GET /registration``.

Who (docs/ARCHITECTURE.md §1, ``server.domain.registration``): the inspection agency and the
admin register any company's cylinders; a company admin its own company's, stating no inspection
dates (they are derived). The page is a form over ``POST /api/v1/cylinders``; as it is filled in,
the script asks the API for the dates the registration would derive
(``GET /api/v1/cylinders/preview``: the domain's rules, never recomputed in the browser) and
whether the tag is free, taken or voided (``GET /api/v1/cylinders/tag-check``). The server
renders the choices the caller's scope allows — owners and sites through ``server.kernel.scope``
in SQL, the configured models — so the form offers nothing the API would refuse for scope.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain.registration import refused_at_registration
from server.domain.statuses import SITE_KINDS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]

VALVE_TYPES = ("smart", "ordinary")
"""The values ``POST /api/v1/cylinders`` accepts for ``valve_type`` (smart first: its default)."""

INSPECTION_INPUTS = ("last_inspection_date", "inspection_count")
"""Inspection findings the form asks for, shown only to roles that may state them."""


PLACES = tuple(k for k in SITE_KINDS if k != "inspection_agency")
"""Kinds of site a cylinder may be at when registered (an agency inspects, it keeps none)."""


async def _companies(pool: asyncpg.Pool, p: Principal) -> list[dict[str, Any]]:
    """Owners the caller may register for: its companies scope (a company admin: its own)."""
    q = Sql()
    rows = await pool.fetch(
        f"""SELECT c.id, c.code, c.name FROM companies c
             WHERE {scope_where(p, "companies", "c", q)} ORDER BY c.name""",
        *q.params,
    )
    return [dict(r.items()) for r in rows]


async def _sites(pool: asyncpg.Pool, p: Principal) -> list[dict[str, Any]]:
    """Sites a new cylinder may be placed at: stores, stations, warehouses in the caller's
    sites scope (the script offers those of the chosen owner)."""
    q = Sql()
    kinds = q.add(list(PLACES))
    rows = await pool.fetch(
        f"""SELECT s.id, s.code, s.name, s.company_id FROM sites s
             WHERE s.kind = ANY({kinds}) AND {scope_where(p, "sites", "s", q)}
             ORDER BY s.code""",
        *q.params,
    )
    return [dict(r.items()) for r in rows]


@page("registration")
async def registration(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    pool = request.app[POOL]
    settings = request.app[SETTINGS]
    companies = await _companies(pool, p)
    sites = await _sites(pool, p)
    models = [
        {"spec": m.spec, "volume_l": m.volume_l, "max_fill_kg": m.max_fill_kg}
        for m in settings.models.values()
    ]
    inspection_inputs = refused_at_registration(p.role, INSPECTION_INPUTS) is None
    today = city_today(settings).isoformat()
    return render(
        request,
        "registration.html",
        title=t("nav.registration"),
        active="registration",
        companies=companies,
        sites=sites,
        models=models,
        valve_types=VALVE_TYPES,
        inspection_inputs=inspection_inputs,
        today=today,
        page_config={"sites": sites, "models": models, "today": today},
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/registration", registration)]
