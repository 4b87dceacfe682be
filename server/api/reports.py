"""Reports (docs/ARCHITECTURE.md §9 "Reports under /api/v1/reports/{name}"), as JSON, CSV or XLSX.

Each report is a SQL aggregate with the caller's scope in its WHERE clause (docs/ARCHITECTURE.md §7):
a company admin's report counts its own rows, a district regulator's its districts. CSV
and XLSX stream (`server.kernel.tabular.stream_table`), so a city-wide list never sits in
memory. Days are the city's calendar days (settings.alerts.timezone), not UTC's.

- compliance-summary: cylinders by compliance status, per district and per company;
- inspection-due: cylinders whose inspection is due or overdue (paginated in JSON);
- fills-daily: fills per day per station;
- denials: refused fill attempts per station per day per reason;
- anomalies-by-company: alerts per company per kind;
- safety-inspections: pass rates per item and per company, open and overdue rectifications
  (``server.api.report_safety``).

The first two are open to admin, regulator, officer, company_admin and inspector (agencies
call cylinders in for inspection); the activity reports to admin, regulator, officer and
company_admin (agencies do not read fills or alerts, docs/ARCHITECTURE.md §7).
Station operators get no reports: their tools are the gun and the handheld.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.api import report_activity, report_business, report_cylinders
from server.api.common import (
    API,
    COMPLIANCE_VALUES,
    ComplianceBounds,
    api_doc,
    check_query,
    compliance_case,
    envelope,
    fetch_page,
    iter_rows,
    plain,
    q_format,
    today,
)
from server.api.report_common import (
    ACTIVITY_ROLES,
    COMMON,
    CYL_REPORT_ROLES,
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
from server.kernel.http import json_response, q_page
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.kernel.tabular import stream_table

# ---------------------------------------------------------------- compliance-summary


@api_doc(
    "Report: cylinders by compliance status per district and per company",
    tags=["reports"],
    roles=CYL_REPORT_ROLES,
    query=COMMON,
    formats=FORMATS,
)
async def compliance_summary(request: web.Request) -> web.StreamResponse:
    """Counts of ok / inspection_due / scrap_due / overdue / scrapped (docs/ARCHITECTURE.md §4) on today."""
    p = require(request, *CYL_REPORT_ROLES)
    check_query(request, ["district", "company", "format"])
    fmt = q_format(request, FORMATS)
    settings = request.app[SETTINGS]
    day = today(settings)
    q = Sql()
    where = _filters(request, p, "cylinders", "c", q, "c.district_code", "c.owner_company_id")
    case = compliance_case("c", q, ComplianceBounds.of(day, settings.dates))
    rows = await request.app[POOL].fetch(
        f"""SELECT c.district_code, d.name AS district_name, c.owner_company_id,
                   o.code AS company_code, o.name AS company_name, {case} AS compliance,
                   count(*) AS n
              FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
              LEFT JOIN districts d ON d.code = c.district_code
             WHERE {" AND ".join(where)} GROUP BY 1, 2, 3, 4, 5, 6""",
        *q.params,
    )
    by: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in rows:
        for dim, key, code, label in (
            ("district", r["district_code"], r["district_code"], r["district_name"]),
            ("company", r["owner_company_id"], r["company_code"], r["company_name"]),
        ):
            entry = by.setdefault(
                (dim, key),
                {
                    "dimension": dim,
                    "code": code,
                    "name": label,
                    **dict.fromkeys(COMPLIANCE_VALUES, 0),
                    "total": 0,
                },
            )
            entry[r["compliance"]] += r["n"]
            entry["total"] += r["n"]
    out = sorted(by.values(), key=lambda e: (e["dimension"], str(e["code"])))
    header = ["dimension", "code", "name", *COMPLIANCE_VALUES, "total"]
    if fmt == "json":
        return json_response(
            {
                "report": "compliance-summary",
                "date": day,
                "by_district": [e for e in out if e["dimension"] == "district"],
                "by_company": [e for e in out if e["dimension"] == "company"],
            }
        )
    return await _respond(request, fmt, "compliance-summary", header, out)


# ---------------------------------------------------------------- inspection-due


@api_doc(
    "Report: cylinders due or overdue for periodic inspection",
    tags=["reports"],
    roles=CYL_REPORT_ROLES,
    query=COMMON,
    formats=FORMATS,
    paginated=True,
    description="Not scrapped, next inspection on or before today + dates.inspection_due_days; "
    "JSON is paginated, CSV/XLSX stream every row.",
)
async def inspection_due(request: web.Request) -> web.StreamResponse:
    """Cylinders to call in for inspection, most urgent first."""
    p = require(request, *CYL_REPORT_ROLES)
    check_query(request, ["district", "company", "format"])
    fmt = q_format(request, FORMATS)
    settings = request.app[SETTINGS]
    b = ComplianceBounds.of(today(settings), settings.dates)
    q = Sql()
    where = _filters(request, p, "cylinders", "c", q, "c.district_code", "c.owner_company_id")
    where.append(f"c.next_inspection_date <= {q.add(b.inspection_due_until)}")
    where.append(f"c.status <> 'scrapped' AND c.scrap_date > {q.add(b.today)}")
    case = compliance_case("c", q, b)
    select = f"""c.id, c.tag, c.stamp, c.barcode, o.code AS owner_code, o.name AS owner_name,
        c.spec, c.district_code, c.last_inspection_date, c.next_inspection_date, c.scrap_date,
        c.status,
        {case} AS compliance"""
    from_where = (
        f"cylinders c JOIN companies o ON o.id = c.owner_company_id WHERE {' AND '.join(where)}"
    )
    order = "c.next_inspection_date, c.id"
    if fmt == "json":
        page = q_page(request)
        rows, total = await fetch_page(request.app[POOL], select, from_where, order, q, page)
        return json_response(envelope([plain(r) for r in rows], page, total))
    header = [
        "id",
        "tag",
        "stamp",
        "barcode",
        "owner_code",
        "owner_name",
        "spec",
        "district_code",
        "last_inspection_date",
        "next_inspection_date",
        "scrap_date",
        "status",
        "compliance",
    ]
    sql = f"SELECT {select} FROM {from_where} ORDER BY {order}"
    return await stream_table(
        request, fmt, "inspection-due", header, iter_rows(request.app[POOL], sql, q.params, header)
    )


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
    *report_business.SPECS,
    *report_activity.SPECS,
)
"""The reports built in ``server.api.report_frame`` (columns, chart, drill-down)."""
SPEC_BY_NAME = {s.name: s for s in SPECS}

REPORTS = {
    "compliance-summary": compliance_summary,
    "inspection-due": inspection_due,
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
