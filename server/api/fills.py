"""Fills (充装记录) as stored by ingest from the guns (docs/ARCHITECTURE.md §5, §9).

Read-only: a fill is a device's record, never edited by a person. Scope: a station sees
its own fills, a company its own, regulators their districts; inspection agencies none.
"""

from __future__ import annotations

from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    plain,
)
from server.api.params import company_filter
from server.domain.filling import FillAssessment
from server.domain.statuses import FILL_RESULTS
from server.kernel.appkeys import POOL
from server.kernel.errors import bad_query, forbidden
from server.kernel.http import json_response, q_choice, q_datetime, q_district, q_id, q_page, q_str
from server.kernel.principal import require
from server.kernel.scope import Sql, can_read, scope_where

READ_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator")
ASSESSMENTS = tuple(a.value for a in FillAssessment)
COLUMNS = """f.ts, f.ts_start, f.received_at, f.msg_id, f.gun_id, f.station_id,
    s.code AS station_code, s.name AS station_name, f.company_id, co.name AS company_name,
    f.district_code, f.cylinder_id,
    f.tag, f.spec, f.net_kg, f.tare_kg, f.gross_kg, f.result, f.assessment, f.operator,
    f.pre_check, f.post_check"""

QUERY = (
    Param("station", "integer", "station (site) id"),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
    Param("tag", description="cylinder tag"),
    Param("cylinder", "integer", "cylinder id"),
    Param("from", "date-time", "from this time (inclusive)"),
    Param("to", "date-time", "up to this time (exclusive)"),
    Param("assessment", enum=ASSESSMENTS),
    Param("result", enum=FILL_RESULTS),
)


def time_range(request: web.Request, column: str, q: Sql) -> list[str]:
    """`from`/`to` filters on a time column (to must follow from)."""
    start = q_datetime(request, "from")
    end = q_datetime(request, "to")
    if start and end and end <= start:
        raise bad_query("to", "must be after from")
    out = []
    if start:
        out.append(f"{column} >= {q.add(start)}")
    if end:
        out.append(f"{column} < {q.add(end)}")
    return out


@api_doc("List fills", tags=["fills"], roles=READ_ROLES, query=QUERY, paginated=True)
async def list_fills(request: web.Request) -> web.Response:
    """Fills in the caller's scope, newest first."""
    p = require(request, *READ_ROLES)
    if not can_read(p, "fills"):
        raise forbidden()  # pragma: no cover - READ_ROLES already excludes them
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "fills", "f", q)]
    station = q_id(request, "station")
    if station:
        where.append(f"f.station_id = {q.add(station)}")
    comp = company_filter(request, "f.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"f.district_code = {q.add(district)}")
    tag = q_str(request, "tag", max_len=64)
    if tag:
        where.append(f"f.tag = {q.add(tag)}")
    cyl = q_id(request, "cylinder")
    if cyl:
        where.append(f"f.cylinder_id = {q.add(cyl)}")
    where += time_range(request, "f.ts", q)
    assessment = q_choice(request, "assessment", ASSESSMENTS)
    if assessment:
        where.append(f"f.assessment = {q.add(assessment)}")
    result = q_choice(request, "result", FILL_RESULTS)
    if result:
        where.append(f"f.result = {q.add(result)}")
    rows, total = await fetch_page(
        request.app[POOL],
        COLUMNS,
        f"""fills f LEFT JOIN sites s ON s.id = f.station_id
            LEFT JOIN companies co ON co.id = f.company_id WHERE {" AND ".join(where)}""",
        "f.ts DESC, f.msg_id",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/fills", list_fills, allow_head=False)]
