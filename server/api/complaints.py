"""Complaints as the bureau and the companies work them (docs/API.md "Complaints";
DOMAIN.md "Complaints"; docs/ARCHITECTURE.md §4, §7).

``GET /api/v1/complaints`` (filters), ``GET /api/v1/complaints/{id}`` (with its history and
what the caller may do), ``PATCH /api/v1/complaints/{id}`` (``assign`` / ``answer`` / ``close``),
``GET /api/v1/complaints/{id}/photo``. Filing (``POST /api/v1/complaints``, from the desk or
the phone) is ``server.api.complaints_filing``. The moves and who makes them are the domain's
(:mod:`server.domain.complaints`); the rows, the scope and filing are ``server.db.complaints``.

Every move is one transaction: the complaint's row (locked), its history row, the audit row
and — when an answer reaches a complainant whose contact is a phone number — the SMS in the
outbox (``server.outbound.sms``, keyed ``complaint:<id>:answer``, so it is queued once however
the answer is retried). The contact is never selected for a company's admin.

What a move sends — the answer's SMS — and the reminder round every server process runs
(:func:`setup`) are ``server.api.complaint_notices``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web

from server.api import complaint_notices
from server.api.common import (
    API,
    Id,
    Note,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    jsonable,
    plain,
    read_body,
    today,
)
from server.api.fills import time_range
from server.api.params import company_filter
from server.db import complaints as store
from server.domain.complaints import (
    ACTIONS,
    ASSIGNEE_ROLES,
    COMPLAINT_KINDS,
    COMPLAINT_SOURCES,
    COMPLAINT_STATES,
    OUTCOMES,
    READ_ROLES,
    Assignment,
    TransitionRefused,
    is_overdue,
    may_act,
    next_state,
    normalize_ticket,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import (
    json_response,
    path_int,
    q_bool,
    q_choice,
    q_district,
    q_page,
    q_str,
)
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql
from server.kernel.uploads import file_response, read_verified

__all__ = ["detail", "item", "routes", "setup"]

Answer = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


class ComplaintAction(msgspec.Struct, forbid_unknown_fields=True):
    """One move: ``assign`` {company_id | user_id, deadline?, note?}, ``answer`` {answer},
    ``close`` {outcome, answer? (required if never answered), note?}."""

    action: Literal["assign", "answer", "close"]
    company_id: Id | None = None
    user_id: Id | None = None
    deadline: dt.date | None = None
    answer: Answer | None = None
    outcome: Literal["upheld", "not_upheld"] | None = None
    note: Note | None = None


_FIELDS_OF: Final = {
    "assign": frozenset({"company_id", "user_id", "deadline", "note"}),
    "answer": frozenset({"answer", "note"}),
    "close": frozenset({"outcome", "answer", "note"}),
}
"""The fields each action reads; any other one in the body is a mistake (400)."""


def item(row: Any, day: dt.date) -> dict[str, Any]:
    """A complaint as the API answers it, with ``overdue`` judged on the city's *day*."""
    out = plain(row)
    out["overdue"] = is_overdue(row["state"], row["deadline"], day)
    return out


QUERY = (
    Param("state", enum=COMPLAINT_STATES),
    Param("kind", enum=COMPLAINT_KINDS),
    Param("source", enum=COMPLAINT_SOURCES),
    Param("outcome", enum=OUTCOMES),
    Param("company", description="the company concerned or assigned: id or code"),
    Param("district", description="6-digit district code"),
    Param("overdue", "boolean", "unanswered after the deadline day (true) or not (false)"),
    Param("mine", "boolean", "assigned to me or to my company"),
    Param("ticket", description="a ticket (case, spaces and dashes forgiven)"),
    Param("from", "date-time", "filed at or after"),
    Param("to", "date-time", "filed before"),
)


@api_doc(
    "List complaints",
    tags=["complaints"],
    roles=READ_ROLES,
    query=QUERY,
    paginated=True,
    description="Complaints in the caller's scope, newest first: a regulator's districts, an "
    "officer's districts and those assigned to them, a company's own (a report about it only "
    "once assigned to it). `contact` is present for admin and regulators only.",
)
async def list_complaints(request: web.Request) -> web.Response:
    """Complaints the caller may see, filtered."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    day = today(request.app[SETTINGS])
    q = Sql()
    where = [store.scope(p, "k", q)]
    for name, vocab in (
        ("state", COMPLAINT_STATES),
        ("kind", COMPLAINT_KINDS),
        ("source", COMPLAINT_SOURCES),
        ("outcome", OUTCOMES),
    ):
        value = q_choice(request, name, vocab)
        if value:
            where.append(f"k.{name} = {q.add(value)}")
    company = company_filter(request, "k.company_id", q)
    if company:
        where.append(f"({company} OR {company.replace('k.company_id', 'k.assigned_company_id')})")
    district = q_district(request)
    if district:
        where.append(f"k.district_code = {q.add(district)}")
    overdue = q_bool(request, "overdue")
    if overdue is not None:
        where.append(("" if overdue else "NOT ") + store.overdue_sql("k", q.add(day)))
    if q_bool(request, "mine"):
        mine = [f"k.assigned_user_id = {q.add(p.user_id)}"]
        if p.company_id is not None:
            mine.append(f"k.assigned_company_id = {q.add(p.company_id)}")
        where.append(f"({' OR '.join(mine)})")
    raw_ticket = q_str(request, "ticket", max_len=40)
    if raw_ticket:
        where.append(f"k.ticket = {q.add(normalize_ticket(raw_ticket) or '')}")
    where += time_range(request, "k.created_at", q)
    rows, total = await fetch_page(
        request.app[POOL],
        store.columns(p),
        f"{store.FROM} WHERE {' AND '.join(where)}",
        "k.created_at DESC, k.id DESC",
        q,
        page,
    )
    return json_response(envelope([item(r, day) for r in rows], page, total))


async def _one(db: Any, p: Principal, cid: int, *, lock: bool = False) -> Any:
    """The complaint *cid* if *p* may see it (404 otherwise: its existence is not disclosed).
    *lock*: FOR UPDATE of the complaint's row, with every column (the contact included, for
    the SMS; never returned to a role that may not read it)."""
    q = Sql(cid)
    if lock:
        sql = (
            f"SELECT k.* FROM complaints k WHERE k.id = $1 AND {store.scope(p, 'k', q)} FOR UPDATE"
        )
    else:
        sql = f"SELECT {store.columns(p)} FROM {store.FROM} WHERE k.id = $1 AND {store.scope(p, 'k', q)}"
    row = await db.fetchrow(sql, *q.params)
    if row is None:
        raise not_found(f"complaint {cid}")
    return row


def _may(p: Principal, row: Any) -> dict[str, bool]:
    """What *p* may do with the complaint now (the page offers exactly these)."""
    assigned = Assignment(row["assigned_company_id"], row["assigned_user_id"])
    out = {}
    for action in ACTIONS:
        allowed = may_act(
            action, p.role, user_id=p.user_id, company_id=p.company_id, assigned=assigned
        )
        try:
            next_state(row["state"], action, with_answer=True)
        except TransitionRefused:
            allowed = False
        out[action] = allowed
    return out


async def detail(db: Any, p: Principal, cid: int, day: dt.date) -> dict[str, Any]:
    row = await _one(db, p, cid)
    out = item(row, day)
    out["history"] = await store.history(db, cid)
    out["may"] = _may(p, row)
    return out


@api_doc(
    "One complaint with its history",
    tags=["complaints"],
    roles=READ_ROLES,
    responses={404: "no such complaint in the caller's scope"},
    description="The complaint, `history` (every move: kind, from_state, to_state, at, actor "
    "name and role, note) and `may` {assign, answer, close}: what the caller may do now.",
)
async def get_complaint(request: web.Request) -> web.Response:
    """A complaint in the caller's scope, with its history."""
    p = require(request, *READ_ROLES)
    cid = path_int(request)
    day = today(request.app[SETTINGS])
    return json_response(await detail(request.app[POOL], p, cid, day))


def _clean(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def _unused(body: ComplaintAction) -> None:
    for name in ("company_id", "user_id", "deadline", "answer", "outcome", "note"):
        if getattr(body, name) is not None and name not in _FIELDS_OF[body.action]:
            raise bad_field(name, f"is not used by {body.action}")


async def _assignment(conn: Any, body: ComplaintAction, day: dt.date) -> dict[str, Any]:
    """The columns an ``assign`` sets, after checking whom it names (400 otherwise)."""
    if (body.company_id is None) == (body.user_id is None):
        raise bad_field("company_id", "assign to one company (company_id) or one user (user_id)")
    if body.deadline is not None and body.deadline < day:
        raise bad_field("deadline", "is already past")
    if body.company_id is not None:
        if await conn.fetchval("SELECT id FROM companies WHERE id = $1", body.company_id) is None:
            raise bad_field("company_id", f"no company {body.company_id}")
    else:
        role = await conn.fetchval("SELECT role FROM users WHERE id = $1 AND active", body.user_id)
        if role not in ASSIGNEE_ROLES:
            raise bad_field("user_id", f"no active officer or regulator {body.user_id}")
    return {"assigned_company_id": body.company_id, "assigned_user_id": body.user_id}


@api_doc(
    "Assign, answer or close a complaint",
    tags=["complaints"],
    roles=READ_ROLES,
    body=ComplaintAction,
    responses={
        200: "moved: the complaint with its history",
        400: "a field missing or not used by the action, an unknown company or user, a past "
        "deadline",
        403: "the caller may not take this action (assign/close: regulators; answer: the assignee)",
        404: "no such complaint in the caller's scope",
        409: "invalid_transition: the complaint's state does not allow the action",
    },
    description="assign (admin, regulator): new|assigned → assigned, to company_id or user_id "
    "(an officer or regulator), optional new deadline. answer (the assigned company's admin or "
    "the assigned user; the admin): assigned → answered; the answer is texted to a complainant "
    "whose contact is a phone number. close (admin, regulator): answered → closed with outcome "
    "upheld|not_upheld; new|assigned → closed only with an answer in the same body.",
)
async def act_on_complaint(request: web.Request) -> web.Response:
    """One move of a complaint (audited, with its history row and any SMS, in one transaction)."""
    p = require(request, *READ_ROLES)
    cid = path_int(request)
    body = await read_body(request, ComplaintAction)
    _unused(body)
    settings = request.app[SETTINGS]
    day = today(settings)
    note = _clean(body.note)
    answer = _clean(body.answer)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await _one(conn, p, cid, lock=True)
        assigned = Assignment(row["assigned_company_id"], row["assigned_user_id"])
        if not may_act(
            body.action, p.role, user_id=p.user_id, company_id=p.company_id, assigned=assigned
        ):
            raise ApiError(
                403,
                errors.FORBIDDEN,
                f"action: role {p.role} may not {body.action} this complaint",
                {"field": "action"},
            )
        state = row["state"]
        try:
            new_state = next_state(state, body.action, with_answer=answer is not None)
        except TransitionRefused as exc:
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                str(exc),
                {"field": "state", "state": state, "action": body.action},
            ) from None
        sets: dict[str, Any] = {"state": new_state}
        details: dict[str, Any] = {}
        if body.action == "assign":
            sets |= await _assignment(conn, body, day)
            sets |= {"assigned_at": dt.datetime.now(dt.UTC), "assigned_by": p.user_id}
            if body.deadline is not None and body.deadline != row["deadline"]:
                sets |= {"deadline": body.deadline, "reminded_at": None}
            if row["company_id"] is None and body.company_id is not None:
                sets["company_id"] = body.company_id  # the company concerned, from now on
            details = {k: sets.get(k) for k in ("assigned_company_id", "assigned_user_id")}
            details["deadline"] = sets.get("deadline", row["deadline"])
        elif body.action == "answer":
            if answer is None:
                raise bad_field("answer", "is required")
        else:
            if body.outcome is None:
                raise bad_field("outcome", f"is required: {' or '.join(OUTCOMES)}")
            if answer is not None and state == "answered":
                raise bad_field("answer", "the complaint is already answered")
            sets |= {"outcome": body.outcome, "closed_at": dt.datetime.now(dt.UTC)}
            sets["closed_by"] = p.user_id
            details["outcome"] = body.outcome
        if answer is not None:
            sets |= {"answer": answer, "answered_at": dt.datetime.now(dt.UTC)}
            sets["answered_by"] = p.user_id
            queued = await complaint_notices.queue_answer_sms(conn, settings, row, answer)
            details["sms"] = queued is not None
        q = Sql(cid)
        assignments = ", ".join(f"{k} = {q.add(v)}" for k, v in sets.items())
        await conn.execute(
            f"UPDATE complaints SET {assignments}, updated_at = now() WHERE id = $1", *q.params
        )
        await store.add_event(
            conn,
            cid,
            body.action,
            state,
            new_state,
            p.user_id,
            note=note,
            details=jsonable(details),
        )
        await audit(
            conn,
            p,
            f"complaint.{body.action}",
            "complaint",
            cid,
            jsonable({"from": state, "to": new_state, **details, "note": note}),
            request.remote,
        )
        out = await detail(conn, p, cid, day)
    return json_response(out)


@api_doc(
    "The photo of a complaint",
    tags=["complaints"],
    roles=READ_ROLES,
    responses={200: "the picture (JPEG, PNG or WebP, re-encoded without metadata)", 404: "none"},
)
async def complaint_photo(request: web.Request) -> web.StreamResponse:
    """The photo the complainant attached, for those who may see the complaint."""
    p = require(request, *READ_ROLES)
    cid = path_int(request)
    q = Sql(cid)
    upload = await request.app[POOL].fetchval(
        f"SELECT k.photo_upload_id FROM complaints k WHERE k.id = $1 AND {store.scope(p, 'k', q)}",
        *q.params,
    )
    if upload is None:
        raise not_found(f"photo of complaint {cid}")
    f, data = await read_verified(request.app[POOL], request.app[SETTINGS].uploads, upload)
    return file_response(f, data)


def setup(app: web.Application) -> None:
    """Run the reminder round in this server process (``server.api.complaint_notices``)."""
    complaint_notices.setup(app)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/complaints", list_complaints, allow_head=False),
        web.get(API + r"/complaints/{id:\d+}", get_complaint, allow_head=False),
        web.patch(API + r"/complaints/{id:\d+}", act_on_complaint),
        web.get(API + r"/complaints/{id:\d+}/photo", complaint_photo, allow_head=False),
    ]
