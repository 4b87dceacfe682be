"""Work page: scheduled reports (定期报表).

``GET /reports/schedules`` (docs/ARCHITECTURE.md §8): the caller's schedules (an admin's:
everyone's) with each one's last run and its file, the runs of one schedule, and a dialog to
make one — opened already filled in when a report page's "schedule this report" sends its
report and filters in the URL. Pause, resume, run now and delete are one click each (delete
asks first). Everything goes through ``/api/v1/report-schedules`` (docs/API.md "Scheduled
reports"), which checks the report, the role and the filters again.

Registered before ``/reports/{name}`` (dashboard.pages.PAGE_MODULES), whose pattern would
otherwise take "schedules" for a report's name.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.kernel.principal import Principal

__all__ = ["routes"]


@page("report_schedules")
async def report_schedules(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    return render(
        request,
        "report_schedules.html",
        title=t("nav.report_schedules"),
        active="report_schedules",
        page_config={"admin": p.role == "admin"},
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/reports/schedules", report_schedules)]
