"""Reports (docs/ARCHITECTURE.md §9 "Reports under /api/v1/reports/{name}"), as JSON, CSV or XLSX.

Each report is a SQL aggregate with the caller's scope in its WHERE clause (docs/ARCHITECTURE.md §7):
a company admin's report counts its own rows, a district regulator's its districts. CSV
and XLSX stream (`server.kernel.tabular.stream_table`), so a city-wide list never sits in
memory. Days are the city's calendar days (settings.alerts.timezone), not UTC's.

- fills-daily: fills per day per station;
- denials: refused fill attempts per station per day per reason;
- anomalies-by-company: alerts per company per kind;
- safety-inspections: pass rates per item and per company, open and overdue rectifications
  (``server.api.report_safety``).

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
)
from server.api.common import (
    API,
    api_doc,
    check_query,
    plain,
    q_format,
)
from server.api.report_common import (
    ACTIVITY_ROLES,
    COMMON,
    FORMATS,
    RANGE,
)
from server.api.report_common import days as _days
from server.api.report_common import filters as _filters
from server.api.report_common import respond as _respond
from server.api.report_frame import Report, drill_route, report_routes
from server.api.report_safety import safety_inspections
from server.domain.statuses import ROLES
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.http import json_response
from server.kernel.principal import require
from server.kernel.scope import Sql

# ---------------------------------------------------------------- fills-daily


@api_doc(
    "Report: fills per day per station",
    tags=["reports"],
    roles=ACTIVITY_ROLES,
    query=COMMON + RANGE,
    formats=FORMATS,
)
async def fills_daily(request: web.Request) -> web.StreamResponse:
    """Fills, completed/aborted and net mass per city day, station and company."""
    p = require(request, *ACTIVITY_ROLES)
    check_query(request, ["district", "company", "format", "from", "to"])
    fmt = q_format(request, FORMATS)
    first, last, start, end = _days(request)
    q = Sql()
    zone = q.add(request.app[SETTINGS].alerts.timezone)
    where = _filters(request, p, "fills", "f", q, "f.district_code", "f.company_id")
    where += [f"f.ts >= {q.add(start)}", f"f.ts < {q.add(end)}"]
    rows = await request.app[POOL].fetch(
        f"""SELECT (f.ts AT TIME ZONE {zone})::date AS day, f.station_id, s.code AS station_code,
                   s.name AS station_name, f.company_id, co.name AS company_name,
                   count(*) AS fills, count(*) FILTER (WHERE f.result = 'completed') AS completed,
                   count(*) FILTER (WHERE f.result <> 'completed') AS aborted,
                   coalesce(sum(f.net_kg) FILTER (WHERE f.result = 'completed'), 0) AS net_kg
              FROM fills f LEFT JOIN sites s ON s.id = f.station_id
              LEFT JOIN companies co ON co.id = f.company_id
             WHERE {" AND ".join(where)}
             GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 3""",
        *q.params,
    )
    header = [
        "day",
        "station_id",
        "station_code",
        "station_name",
        "company_id",
        "company_name",
        "fills",
        "completed",
        "aborted",
        "net_kg",
    ]
    return await _respond(
        request, fmt, "fills-daily", header, [plain(r) for r in rows], {"from": first, "to": last}
    )


# ---------------------------------------------------------------- denials


@api_doc(
    "Report: refused fill attempts per station per day per reason",
    tags=["reports"],
    roles=ACTIVITY_ROLES,
    query=COMMON + RANGE,
    formats=FORMATS,
    description="From the trajectory's fill_refused events and their reasons (docs/ARCHITECTURE.md §4).",
)
async def denials(request: web.Request) -> web.StreamResponse:
    """Each denied attempt counted once per reason it carried (DOMAIN.md abnormal behaviour)."""
    p = require(request, *ACTIVITY_ROLES)
    check_query(request, ["district", "company", "format", "from", "to"])
    fmt = q_format(request, FORMATS)
    first, last, start, end = _days(request)
    q = Sql()
    zone = q.add(request.app[SETTINGS].alerts.timezone)
    where = _filters(request, p, "events", "e", q, "e.district_code", "e.company_id")
    where += ["e.kind = 'fill_refused'", f"e.ts >= {q.add(start)}", f"e.ts < {q.add(end)}"]
    rows = await request.app[POOL].fetch(
        f"""SELECT (e.ts AT TIME ZONE {zone})::date AS day, e.site_id AS station_id,
                   s.code AS station_code, s.name AS station_name, e.company_id,
                   co.name AS company_name, r.reason, count(*) AS attempts
              FROM events e
              CROSS JOIN LATERAL jsonb_array_elements_text(
                  CASE WHEN jsonb_typeof(e.details->'reasons') = 'array'
                       THEN e.details->'reasons' ELSE '[]'::jsonb END) AS r(reason)
              LEFT JOIN sites s ON s.id = e.site_id
              LEFT JOIN companies co ON co.id = e.company_id
             WHERE {" AND ".join(where)}
             GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 3, 7""",
        *q.params,
    )
    header = [
        "day",
        "station_id",
        "station_code",
        "station_name",
        "company_id",
        "company_name",
        "reason",
        "attempts",
    ]
    return await _respond(
        request, fmt, "denials", header, [plain(r) for r in rows], {"from": first, "to": last}
    )


# ---------------------------------------------------------------- anomalies-by-company


@api_doc(
    "Report: alerts per company per kind",
    tags=["reports"],
    roles=ACTIVITY_ROLES,
    query=COMMON + RANGE,
    formats=FORMATS,
    description="Alerts last seen in the range; `alerts` counts alerts, `occurrences` their "
    "de-duplicated repeats.",
)
async def anomalies_by_company(request: web.Request) -> web.StreamResponse:
    """Companies ranked by abnormal behaviour (异常经营行为)."""
    p = require(request, *ACTIVITY_ROLES)
    check_query(request, ["district", "company", "format", "from", "to"])
    fmt = q_format(request, FORMATS)
    first, last, start, end = _days(request)
    q = Sql()
    where = _filters(request, p, "alerts", "a", q, "a.district_code", "a.company_id")
    where += [f"a.last_at >= {q.add(start)}", f"a.last_at < {q.add(end)}"]
    rows = await request.app[POOL].fetch(
        f"""SELECT a.company_id, co.code AS company_code, co.name AS company_name, a.kind,
                   count(*) AS alerts, sum(a.count) AS occurrences,
                   count(*) FILTER (WHERE a.state <> 'resolved') AS unresolved
              FROM alerts a LEFT JOIN companies co ON co.id = a.company_id
             WHERE {" AND ".join(where)}
             GROUP BY 1, 2, 3, 4 ORDER BY sum(count(*)) OVER (PARTITION BY a.company_id) DESC,
                   2, 4""",
        *q.params,
    )
    header = [
        "company_id",
        "company_code",
        "company_name",
        "kind",
        "alerts",
        "occurrences",
        "unresolved",
    ]
    return await _respond(
        request,
        fmt,
        "anomalies-by-company",
        header,
        [plain(r) for r in rows],
        {"from": first, "to": last},
    )


SPECS: tuple[Report, ...] = (
    *report_cylinders.SPECS,
    *report_cylinders_due.SPECS,
    *report_business.SPECS,
    *report_activity.SPECS,
)
"""The reports built in ``server.api.report_frame`` (columns, chart, drill-down)."""
SPEC_BY_NAME = {s.name: s for s in SPECS}

REPORTS = {
    "fills-daily": fills_daily,
    "denials": denials,
    "anomalies-by-company": anomalies_by_company,
    "safety-inspections": safety_inspections,
}


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
