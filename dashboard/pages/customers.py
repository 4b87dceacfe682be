"""Work page: real-name customers (实名制用户), their accounts opened and closed.

``GET /admin/customers`` (docs/ARCHITECTURE.md §8): a company's real-name accounts — name,
phone, address, kind (resident, restaurant, industrial), the resident ID number only ever as
its masked form — searchable by name, phone, account or masked ID number. A company admin
opens, changes and closes its own accounts and the admin any; regulators, officers and
station staff read (docs/API.md "Roles and scope"). The full ID number is typed only into the
form, sent once to ``server.api.customers`` (which keeps a masked form and a keyed hash) and
never shown, stored in the page, or put in a URL. Rows come from ``GET /api/v1/customers``,
scoped in SQL; the filter choices here are scoped the same way (§7).
"""

from __future__ import annotations

from aiohttp import web

from dashboard.data import filter_options
from dashboard.render import page, page_translator, render
from server.domain.statuses import CUSTOMER_KINDS
from server.kernel.appkeys import POOL
from server.kernel.principal import Principal

__all__ = ["routes"]

WRITE_ROLES = ("admin", "company_admin")
"""Who opens, changes and closes accounts (server.api.customers.WRITE_ROLES)."""
ACCOUNT_STATES = ("open", "closed")
"""The ``state`` filter of ``GET /api/v1/customers``."""


@page("customers")
async def customers(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    opts = await filter_options(request.app[POOL], p)
    can_edit = p.role in WRITE_ROLES
    return render(
        request,
        "customers.html",
        title=t("nav.customers"),
        active="customers",
        options=opts,
        kinds=CUSTOMER_KINDS,
        states=ACCOUNT_STATES,
        can_edit=can_edit,
        page_config={
            "districts": opts.districts,
            "companies": [{"id": c["id"], "name": c["name"]} for c in opts.companies],
            "can_edit": can_edit,
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/customers", customers)]
