"""Work page: complaints (投诉举报), and the public page that follows one by its ticket.

``GET /complaints`` (docs/ARCHITECTURE.md §8; nav key ``complaints``): the complaints in the
caller's scope with filters (state, kind, company, district, overdue), a complaint's detail
with its photo and its history (every move, who and when), and the moves the caller may
make — a regulator assigns to a company or an officer and closes (upheld / not upheld), the
assignee answers, a regulator records a complaint taken on the phone. The rows and the
moves are the REST API's (``/api/v1/complaints``, scoped in SQL; the contact is never sent
to a company's admin).

``GET /complaints/track?ticket=`` needs no login: the complainant types the ticket the QR
page gave them and sees its state, dates and the answer. The page is a shell; its data
comes from ``GET /api/v1/public/complaints/{ticket}``, rate-limited like every public
endpoint, and never names a person.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import page, page_translator, render
from server.domain.complaints import (
    ASSIGN_ROLES,
    ASSIGNEE_ROLES,
    COMPLAINT_KINDS,
    COMPLAINT_STATES,
    OUTCOMES,
    format_ticket,
    normalize_ticket,
)
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.principal import Principal

__all__ = ["routes"]


async def _assignees(request: web.Request) -> list[dict[str, Any]]:
    """Users of the bureau a complaint may be assigned to (active officers and regulators)."""
    rows = await request.app[POOL].fetch(
        """SELECT id, COALESCE(display_name, username) AS name, role, districts FROM users
            WHERE active AND role = ANY($1::text[]) ORDER BY role, name""",
        list(ASSIGNEE_ROLES),
    )
    return [dict(r.items()) for r in rows]


@page("complaints")
async def complaints(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    pool = request.app[POOL]
    opts = await filter_options(pool, p)
    manage = p.role in ASSIGN_ROLES
    assignees = await _assignees(request) if manage else []
    settings = request.app[SETTINGS]
    return render(
        request,
        "complaints.html",
        title=t("nav.complaints"),
        active="complaints",
        options=opts,
        states=COMPLAINT_STATES,
        kinds=COMPLAINT_KINDS,
        outcomes=OUTCOMES,
        manage=manage,
        assignees=assignees,
        text_max=settings.public.complaint_max_chars,
        page_config={
            "manage": manage,
            "user_id": p.user_id,
            "today": city_today(settings).isoformat(),
        },
    )


async def track(request: web.Request) -> web.StreamResponse:
    """The complainant's page: no login, no personal data (docs/ARCHITECTURE.md §8)."""
    t = page_translator(request)
    raw = request.query.get("ticket", "")[:40]
    ticket = normalize_ticket(raw) if raw else None
    return render(
        request,
        "complaints_track.html",
        title=t("complaints.track.title"),
        ticket=format_ticket(ticket) if ticket else raw,
        page_config={"ticket": ticket, "ticket_given": bool(raw)},
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/complaints", complaints), web.get("/complaints/track", track)]
