"""Reports (docs/ARCHITECTURE.md §9 "Reports under /api/v1/reports/{name}"), as JSON, CSV or XLSX.

Each report is a SQL aggregate with the caller's scope in its WHERE clause (docs/ARCHITECTURE.md §7):
a company admin's report counts its own rows, a district regulator's its districts. CSV
and XLSX stream (`server.kernel.tabular.stream_table`), so a city-wide list never sits in
memory. Days are the city's calendar days (settings.alerts.timezone), not UTC's.

- fills-daily, denials, anomalies-by-company: the earlier activity reports, framed and read
  from the daily rollups (``server.api.report_activity_legacy``, listed by
  ``report_activity.SPECS``);
- safety-inspections: pass rates per item and per company, open and overdue rectifications
  (``server.api.report_safety``, listed by ``report_activity.SPECS``).

The activity reports are open to admin, regulator, officer and company_admin (agencies do
not read fills or alerts, docs/ARCHITECTURE.md §7). The reports built in the report frame
(``server.api.report_frame``: the archive's in ``server.api.report_cylinders*`` —
compliance-summary and inspection-due among them —, the business and activity ones) are
listed by ``SPECS`` below.
Station operators get no reports: their tools are the gun and the handheld.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.api import (
    report_activity,
    report_business,
    report_cylinders,
    report_cylinders_due,
    report_cylinders_flow,
)
from server.api.common import (
    API,
    api_doc,
)
from server.api.report_common import (
    FORMATS,
)
from server.api.report_frame import Report
from server.api.report_http import drill_route, report_routes
from server.domain.statuses import ROLES
from server.kernel.http import json_response
from server.kernel.principal import require

SPECS: tuple[Report, ...] = (
    *report_cylinders.SPECS,
    *report_cylinders_due.SPECS,
    *report_cylinders_flow.SPECS,
    *report_business.SPECS,
    *report_activity.SPECS,
)
"""The reports built in ``server.api.report_frame`` (columns, chart, drill-down)."""
SPEC_BY_NAME = {s.name: s for s in SPECS}

REPORTS: dict[str, Any] = {}


@api_doc("List the reports", tags=["reports"], roles=ROLES)
async def list_reports(request: web.Request) -> web.Response:
    """The report names and who may run them."""
    require(request)
    out: list[dict[str, Any]] = []
    for name, handler in REPORTS.items():
        doc = getattr(handler, "__api_doc__", None)
        out.append(
            {
                "name": name,
                "path": f"{API}/reports/{name}",
                "summary": doc.summary if doc else name,
                "roles": list(doc.roles) if doc else [],
                "formats": list(FORMATS),
            }
        )
    out += [s.catalogue() for s in SPECS]
    return json_response({"items": out})


def routes() -> list[web.RouteDef]:
    out = [web.get(f"{API}/reports", list_reports, allow_head=False)]
    out += [web.get(f"{API}/reports/{name}", h, allow_head=False) for name, h in REPORTS.items()]
    out += report_routes(SPECS)
    drill_roles = sorted({r for s in SPECS for r in s.roles})
    out.append(drill_route(SPEC_BY_NAME, drill_roles))
    return out
