"""Scheduled reports: a person's schedules, their runs and the runs' files (docs/API.md
"Scheduled reports").

Anyone who runs reports may schedule the reports their role may run, with the filters the
report page shows; the run computes as its owner (``server.api.report_scheduler``), so a
schedule never widens anyone's scope. Each person sees and changes their own schedules; an
admin sees everyone's (a person who left still has schedules someone must stop). Every
change is audited (``report_schedule.create|update|delete``); the files are served to their
schedule's owner and to admins only.

The filters are checked when the schedule is made, exactly as a run will read them
(``server.api.report_frame.build_context``): a schedule that could only fail is a 400 now,
not a failed run next month.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from aiohttp import web

from server.api.common import API, api_doc, check_query, envelope, fetch_page, plain, read_body
from server.api.report_frame import build_context
from server.api.report_scheduler import run_query, schedule_round
from server.api.reports import SPEC_BY_NAME
from server.api.rows import before_after, jsonable, update_row_audited
from server.domain.report_periods import FREQUENCIES, last_closed
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.http import json_response, path_int, q_page
from server.kernel.limits import body_limit
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql
from server.kernel.tabular import CSV_MIME, XLSX_MIME
from server.kernel.uploads import file_response, read_verified

__all__ = ["ROLES", "routes"]

ROLES: Final = ("admin", "regulator", "officer", "company_admin", "inspector")
"""Who runs reports (the roles of ``server.api.report_common``)."""
TITLE_MAX: Final = 200
_PERIOD_PARAMS: Final = frozenset({"format", "from", "to"})
_COLUMNS: Final = """s.id, s.owner_id, u.username AS owner, s.report, s.params, s.frequency,
    s.format, s.title, s.active, s.created_at, s.updated_at,
    (SELECT row_to_json(r) FROM (SELECT id, period_first, period_last, state, row_count,
            error, finished_at FROM report_runs WHERE schedule_id = s.id
            ORDER BY period_first DESC LIMIT 1) r) AS last_run"""
_FROM: Final = "report_schedules s JOIN users u ON u.id = s.owner_id"

Frequency = Annotated[str, msgspec.Meta(pattern="^(daily|weekly|monthly)$")]
Format = Annotated[str, msgspec.Meta(pattern="^(csv|xlsx)$")]
Params = dict[
    Annotated[str, msgspec.Meta(max_length=40)], Annotated[str, msgspec.Meta(max_length=100)]
]


class ScheduleBody(msgspec.Struct, forbid_unknown_fields=True):
    report: Annotated[str, msgspec.Meta(max_length=60)]
    frequency: Frequency
    format: Format = "xlsx"
    params: Params = msgspec.field(default_factory=dict)
    """The report's filters (district, company, station, group…), never its period."""
    title: Annotated[str, msgspec.Meta(max_length=TITLE_MAX)] | None = None


class SchedulePatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    frequency: Frequency | None = None
    format: Format | None = None
    params: Params | None = None
    title: Annotated[str, msgspec.Meta(max_length=TITLE_MAX)] | None = None
    active: bool | None = None


def _mine(p: Principal, q: Sql, alias: str = "s") -> str:
    return "true" if p.role == "admin" else f"{alias}.owner_id = {q.add(p.user_id)}"


def _check(
    request: web.Request, p: Principal, report: str, params: dict[str, str], frequency: str
) -> None:
    """400 unless *p* may run *report* with *params* (checked as a run will read them)."""
    spec = SPEC_BY_NAME.get(report)
    if spec is None:
        raise errors.bad_field("report", f"must be one of {', '.join(sorted(SPEC_BY_NAME))}")
    if p.role not in spec.roles:
        raise errors.bad_field("report", f"role {p.role} may not run {report}")
    allowed = set(spec.query_names()) - _PERIOD_PARAMS
    for name in params:
        if name not in allowed:
            raise errors.bad_field(
                f"params.{name}", f"known: {', '.join(sorted(allowed)) or 'none'}"
            )
    first, last = last_closed(frequency, city_today(request.app[SETTINGS]))
    try:
        build_context(
            request.app[POOL], request.app[SETTINGS], p, spec, run_query(spec, params, first, last)
        )
    except errors.ApiError as exc:
        field = exc.details.get("field") if isinstance(exc.details, dict) else None
        raise errors.bad_field(f"params.{field or 'filter'}", str(exc)) from None


@api_doc(
    "List report schedules",
    tags=["reports"],
    roles=ROLES,
    paginated=True,
    description="Your schedules (an admin: everyone's), newest first, each with its last run.",
)
async def list_schedules(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    check_query(request, [])
    page = q_page(request)
    q = Sql()
    rows, total = await fetch_page(
        request.app[POOL], _COLUMNS, f"{_FROM} WHERE {_mine(p, q)}", "s.id DESC", q, page
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


@api_doc(
    "Schedule a report",
    tags=["reports"],
    roles=ROLES,
    body=ScheduleBody,
    responses={201: "the schedule", 409: "[reports] schedules_per_user reached"},
    description="Daily (yesterday), weekly (last ISO week) or monthly (last month), as CSV or "
    "XLSX; the first run is the last closed period, at the next round.",
)
@body_limit("small")
async def create_schedule(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    body = await read_body(request, ScheduleBody)
    _check(request, p, body.report, body.params, body.frequency)
    cap = request.app[SETTINGS].reports.schedules_per_user
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('report_schedules'), $1::int)", p.user_id % 2**31
        )
        n = await conn.fetchval(
            "SELECT count(*) FROM report_schedules WHERE owner_id = $1", p.user_id
        )
        if n >= cap:
            raise errors.ApiError(409, errors.CONFLICT, f"at most {cap} schedules per person")
        sid = await conn.fetchval(
            """INSERT INTO report_schedules (owner_id, report, params, frequency, format, title)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            p.user_id,
            body.report,
            body.params,
            body.frequency,
            body.format,
            (body.title or "").strip() or None,
        )
        await audit(
            conn,
            p,
            "report_schedule.create",
            "report_schedule",
            sid,
            msgspec.to_builtins(body),
            request.remote,
        )
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE s.id = $1", sid)
    assert row is not None
    return json_response(plain(row), 201)


async def _own(request: web.Request, p: Principal, conn: Any, sid: int) -> Any:
    q = Sql(sid)
    row = await conn.fetchrow(
        f"SELECT s.* FROM report_schedules s WHERE s.id = $1 AND {_mine(p, q)} FOR UPDATE",
        *q.params,
    )
    if row is None:
        raise errors.not_found(f"report schedule {sid}")
    return row


@api_doc(
    "Change a report schedule",
    tags=["reports"],
    roles=ROLES,
    body=SchedulePatch,
    responses={404: "no such schedule of yours"},
    description="Frequency, format, filters, title, or active=false to pause it.",
)
@body_limit("small")
async def update_schedule(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    sid = path_int(request)
    body = await read_body(request, SchedulePatch)
    fields = msgspec.to_builtins(body)
    if not fields:
        raise errors.bad_field("body", "nothing to change")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        cur = await _own(request, p, conn, sid)
        owner = p if cur["owner_id"] == p.user_id else None
        if "params" in fields or "frequency" in fields:
            who = owner or await _owner(conn, cur["owner_id"])
            _check(
                request,
                who,
                cur["report"],
                fields.get("params", cur["params"]),
                fields.get("frequency", cur["frequency"]),
            )
        if "title" in fields:
            fields["title"] = (fields["title"] or "").strip() or None
        after, before = await update_row_audited(
            conn, "report_schedules", sid, fields, "report schedule"
        )
        del after
        changes = dict(fields)
        await audit(
            conn,
            p,
            "report_schedule.update",
            "report_schedule",
            sid,
            before_after(jsonable(before), jsonable(changes)),
            request.remote,
        )
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE s.id = $1", sid)
    assert row is not None
    return json_response(plain(row))


async def _owner(conn: Any, user_id: int) -> Principal:
    u = await conn.fetchrow(
        "SELECT id, username, role, company_id, site_id, districts FROM users WHERE id = $1",
        user_id,
    )
    return Principal(
        user_id=u["id"],
        username=u["username"],
        role=u["role"],
        company_id=u["company_id"],
        site_id=u["site_id"],
        districts=tuple(u["districts"] or ()),
    )


@api_doc(
    "Delete a report schedule",
    tags=["reports"],
    roles=ROLES,
    responses={204: "deleted", 404: "no such schedule of yours"},
    description="The schedule and its runs; files already delivered stay in the inbox.",
)
async def delete_schedule(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    sid = path_int(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        cur = await _own(request, p, conn, sid)
        await conn.execute("DELETE FROM report_schedules WHERE id = $1", sid)
        await audit(
            conn,
            p,
            "report_schedule.delete",
            "report_schedule",
            sid,
            {"report": cur["report"], "owner_id": cur["owner_id"]},
            request.remote,
        )
    return web.Response(status=204)


@api_doc(
    "Runs of a report schedule",
    tags=["reports"],
    roles=ROLES,
    paginated=True,
    responses={404: "no such schedule of yours"},
    description="Newest period first: state (running, done, failed), rows, error, the file.",
)
async def list_runs(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    check_query(request, [])
    sid = path_int(request)
    page = q_page(request)
    q = Sql(sid)
    mine = _mine(p, q)
    pool = request.app[POOL]
    if not await pool.fetchval(
        f"SELECT true FROM report_schedules s WHERE s.id = $1 AND {mine}", *q.params
    ):
        raise errors.not_found(f"report schedule {sid}")
    rows, total = await fetch_page(
        pool,
        """r.id, r.period_first, r.period_last, r.state, r.attempts, r.row_count, r.error,
           r.claimed_at, r.finished_at, r.upload_id IS NOT NULL AS has_file""",
        "report_runs r WHERE r.schedule_id = $1",
        "r.period_first DESC",
        Sql(sid),
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


@api_doc(
    "Run a report schedule now",
    tags=["reports"],
    roles=ROLES,
    responses={404: "no such schedule of yours"},
    description="Runs this schedule's last closed period if it has not run (as the next "
    "round would); answers its latest run. Never runs a period twice; a paused schedule "
    "does not run.",
)
async def run_now(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    sid = path_int(request)
    q = Sql(sid)
    pool = request.app[POOL]
    if not await pool.fetchval(
        f"SELECT true FROM report_schedules s WHERE s.id = $1 AND {_mine(p, q)}", *q.params
    ):
        raise errors.not_found(f"report schedule {sid}")
    await schedule_round(pool, request.app[SETTINGS], only=sid)
    rows = await pool.fetch(
        """SELECT id, period_first, period_last, state, row_count, error FROM report_runs
            WHERE schedule_id = $1 ORDER BY period_first DESC LIMIT 1""",
        sid,
    )
    return json_response({"runs": [plain(r) for r in rows]})


@api_doc(
    "A scheduled report's file",
    tags=["reports"],
    roles=ROLES,
    responses={404: "no such run of yours, or it has no file"},
    media_types=(CSV_MIME, XLSX_MIME),
    description="The CSV or XLSX a run wrote (its schedule's owner, or an admin).",
)
async def run_file(request: web.Request) -> web.Response:
    p = require(request, *ROLES)
    rid = path_int(request)
    q = Sql(rid)
    upload = await request.app[POOL].fetchval(
        f"""SELECT r.upload_id FROM report_runs r JOIN report_schedules s ON s.id = r.schedule_id
             WHERE r.id = $1 AND {_mine(p, q)}""",
        *q.params,
    )
    if upload is None:
        raise errors.not_found(f"report run {rid}")
    f, data = await read_verified(request.app[POOL], request.app[SETTINGS].uploads, upload)
    return file_response(f, data, download=True)


def routes() -> list[web.RouteDef]:
    base = f"{API}/report-schedules"
    return [
        web.get(base, list_schedules, allow_head=False),
        web.post(base, create_schedule),
        web.patch(base + "/{id}", update_schedule),
        web.delete(base + "/{id}", delete_schedule),
        web.get(base + "/{id}/runs", list_runs, allow_head=False),
        web.post(base + "/{id}/run", run_now),
        web.get(f"{API}/report-runs/{{id}}/file", run_file, allow_head=False),
    ]


assert set(FREQUENCIES) == {"daily", "weekly", "monthly"}
