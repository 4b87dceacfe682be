"""Entrustments (委托充装): list, make, end (docs/ARCHITECTURE.md §4, §7; docs/API.md
"Entrustments").

An owner company entrusts a filler company's stations with filling its cylinders for a
period. The owner's company admin makes the entrustment (the admin may make one for any two
companies); either party's company admin, or the admin, ends it — with a reason, audited. An
ended entrustment is kept (who made it, when it ended and why); its ``valid_to`` becomes the
day before the end, the last day it was in force. The rules are the domain's
(:mod:`server.domain.entrustments`).

Fill authorization reads the entrustments in force today from PostgreSQL in its one query
per gun request (``ingest.auth``; no cache), so a new entrustment lets the filler's stations
fill the owner's cylinders from the next request on, and an ended one stops them as fast
(``not_owner``).

Scope (no entity of ``server.kernel.scope`` covers a row with two companies): a company sees
the entrustments it gives or receives; a district-bound regulator or officer those where
either company is registered in their districts; a city-wide regulator and the admin all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Id,
    Param,
    Text,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    jsonable,
    read_body,
    today,
)
from server.api.db_errors import db_errors
from server.domain.entrustments import (
    ENTRUSTMENT_STATES,
    EntrustmentRefused,
    check_new,
    end_date,
    entrustment_state,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, path_int, q_choice, q_id, q_page
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql

READ_ROLES: Final = ("admin", "regulator", "officer", "company_admin", "station_operator")
WRITE_ROLES: Final = ("admin", "company_admin")


class EntrustmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    filler_company_id: Id
    """The company whose stations will fill."""
    owner_company_id: Id | None = None
    """The company that owns the cylinders (a company admin: its own, the default)."""
    valid_from: dt.date | None = None
    """First day in force (default: today)."""
    valid_to: dt.date | None = None
    """Last day in force (none: until ended)."""
    note: Text | None = None
    """The written agreement's number, or anything the parties want on record."""


class EntrustmentEnd(msgspec.Struct, forbid_unknown_fields=True):
    reason: Text | None = None


COLUMNS: Final = (
    "e.id, e.owner_company_id, o.code AS owner_code, o.name AS owner_name,"
    " e.filler_company_id, f.code AS filler_code, f.name AS filler_name,"
    " e.valid_from, e.valid_to, e.note, e.created_at, e.ended_at, e.end_reason"
)
FROM: Final = (
    "entrustments e JOIN companies o ON o.id = e.owner_company_id"
    " JOIN companies f ON f.id = e.filler_company_id"
)


def scope(p: Principal, alias: str, q: Sql) -> str:
    """The entrustments *p* may see (see the module doc)."""
    a = alias
    if p.role == "admin" or p.city_wide:
        return "TRUE"
    if p.role in ("regulator", "officer"):
        return (
            f"EXISTS (SELECT 1 FROM companies sc WHERE sc.id IN"
            f" ({a}.owner_company_id, {a}.filler_company_id)"
            f" AND sc.district_code = ANY({q.add(list(p.districts))}))"
        )
    if p.role in ("company_admin", "station_operator") and p.company_id is not None:
        own = q.add(p.company_id)
        return f"({a}.owner_company_id = {own} OR {a}.filler_company_id = {own})"
    return "FALSE"


def _state_where(state: str, day: dt.date, q: Sql) -> str:
    """SQL for one state of :func:`server.domain.entrustments.entrustment_state`."""
    if state == "ended":
        return "e.ended_at IS NOT NULL"
    d = q.add(day)
    expired = f"(e.valid_to IS NOT NULL AND e.valid_to < {d})"
    if state == "expired":
        return f"(e.ended_at IS NULL AND {expired})"
    if state == "pending":
        return f"(e.ended_at IS NULL AND NOT {expired} AND e.valid_from > {d})"
    return f"(e.ended_at IS NULL AND NOT {expired} AND e.valid_from <= {d})"


def _item(row: Any, day: dt.date) -> dict[str, Any]:
    out = dict(row.items())
    out["state"] = entrustment_state(
        row["valid_from"], row["valid_to"], row["ended_at"] is not None, day
    )
    return out


QUERY = (
    Param("state", enum=ENTRUSTMENT_STATES, description="state today"),
    Param("owner", "integer", description="owner company id"),
    Param("filler", "integer", description="filler company id"),
    Param("company", "integer", description="a company id on either side"),
)


@api_doc(
    "List entrustments",
    tags=["entrustments"],
    roles=READ_ROLES,
    query=QUERY,
    paginated=True,
    description="Entrustments in the caller's scope, newest first, with both companies' codes "
    "and names and the state today (active, pending, expired, ended).",
)
async def list_entrustments(request: web.Request) -> web.Response:
    """Entrustments the caller gives, receives or supervises."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    day = today(request.app[SETTINGS])
    q = Sql()
    where = [scope(p, "e", q)]
    state = q_choice(request, "state", ENTRUSTMENT_STATES)
    if state:
        where.append(_state_where(state, day, q))
    for name, col in (("owner", "e.owner_company_id"), ("filler", "e.filler_company_id")):
        value = q_id(request, name)
        if value is not None:
            where.append(f"{col} = {q.add(value)}")
    company = q_id(request, "company")
    if company is not None:
        c = q.add(company)
        where.append(f"(e.owner_company_id = {c} OR e.filler_company_id = {c})")
    rows, total = await fetch_page(
        request.app[POOL], COLUMNS, f"{FROM} WHERE {' AND '.join(where)}", "e.id DESC", q, page
    )
    return json_response(envelope([_item(r, day) for r in rows], page, total))


async def _one(conn: Any, p: Principal, eid: int, day: dt.date) -> dict[str, Any]:
    q = Sql(eid)
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM {FROM} WHERE e.id = $1 AND {scope(p, 'e', q)}", *q.params
    )
    if row is None:
        raise not_found(f"entrustment {eid}")
    return _item(row, day)


def _owner_of(p: Principal, body: EntrustmentCreate) -> int:
    """The owner company: a company admin entrusts its own cylinders only."""
    if p.role == "company_admin":
        if body.owner_company_id is not None and body.owner_company_id != p.company_id:
            raise ApiError(
                403,
                errors.FORBIDDEN,
                "owner_company_id: a company admin entrusts its own company's cylinders only",
                {"field": "owner_company_id"},
            )
        assert p.company_id is not None  # a company admin always has one (users CHECK)
        return p.company_id
    if body.owner_company_id is None:
        raise bad_field("owner_company_id", "is required")
    return body.owner_company_id


@api_doc(
    "Make an entrustment",
    tags=["entrustments"],
    roles=WRITE_ROLES,
    body=EntrustmentCreate,
    responses={
        201: "made: the entrustment with its state",
        400: "unknown company, a company entrusting itself, an end before the start or "
        "already past",
        409: "the two companies already have an entrustment (not ended) overlapping the period",
    },
    description="company_admin: its own company is the owner. The filler's stations may fill "
    "the owner's cylinders from valid_from (default today) to valid_to (none: until ended).",
)
async def create_entrustment(request: web.Request) -> web.Response:
    """Entrust a filler company with filling the owner's cylinders (audited)."""
    p = require(request, *WRITE_ROLES)
    body = await read_body(request, EntrustmentCreate)
    owner = _owner_of(p, body)
    day = today(request.app[SETTINGS])
    valid_from = body.valid_from or day
    try:
        check_new(owner, body.filler_company_id, valid_from, body.valid_to, day)
    except EntrustmentRefused as exc:
        raise bad_field(exc.field, str(exc)) from None
    note = body.note.strip() if body.note and body.note.strip() else None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        # the owner's row lock serialises its entrustments: two overlapping requests cannot
        # both pass the overlap check below
        found = await conn.fetchval("SELECT id FROM companies WHERE id = $1 FOR UPDATE", owner)
        if found is None:
            raise bad_field("owner_company_id", f"no company {owner}")
        if (
            await conn.fetchval("SELECT id FROM companies WHERE id = $1", body.filler_company_id)
            is None
        ):
            raise bad_field("filler_company_id", f"no company {body.filler_company_id}")
        clash = await conn.fetchval(
            """SELECT id FROM entrustments
                WHERE owner_company_id = $1 AND filler_company_id = $2 AND ended_at IS NULL
                  AND (valid_to IS NULL OR valid_to >= $3)
                  AND ($4::date IS NULL OR valid_from <= $4::date)
                ORDER BY id LIMIT 1""",
            owner,
            body.filler_company_id,
            valid_from,
            body.valid_to,
        )
        if clash is not None:
            raise ApiError(
                409,
                errors.CONFLICT,
                f"filler_company_id: entrustment {clash} of the same companies overlaps"
                " this period",
                {"field": "filler_company_id", "entrustment": clash},
            )
        async with db_errors("filler_company_id"):
            eid = await conn.fetchval(
                """INSERT INTO entrustments (owner_company_id, filler_company_id, valid_from,
                                             valid_to, note, created_by)
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
                owner,
                body.filler_company_id,
                valid_from,
                body.valid_to,
                note,
                p.user_id,
            )
        values = {
            "owner_company_id": owner,
            "filler_company_id": body.filler_company_id,
            "valid_from": valid_from,
            "valid_to": body.valid_to,
            "note": note,
        }
        await audit(
            conn, p, "entrustment.create", "entrustment", eid, jsonable(values), request.remote
        )
        out = await _one(conn, p, eid, day)
    return json_response(out, 201)


@api_doc(
    "End an entrustment",
    tags=["entrustments"],
    roles=WRITE_ROLES,
    body=EntrustmentEnd,
    responses={
        404: "no such entrustment in the caller's scope",
        409: "invalid_transition: already ended or expired",
    },
    description="Either company's admin, or the admin; optional {reason}. The entrustment "
    "stops counting for fill authorization at once (valid_to becomes yesterday); the row "
    "stays, with ended_at and end_reason.",
)
async def end_entrustment(request: web.Request) -> web.Response:
    """End an entrustment now (audited); the record is kept."""
    p = require(request, *WRITE_ROLES)
    eid = path_int(request)
    body = EntrustmentEnd()
    if request.can_read_body:
        body = await read_body(request, EntrustmentEnd)
    reason = body.reason.strip() if body.reason and body.reason.strip() else None
    day = today(request.app[SETTINGS])
    async with request.app[POOL].acquire() as conn, conn.transaction():
        q = Sql(eid)
        row = await conn.fetchrow(
            f"""SELECT e.valid_from, e.valid_to, e.ended_at FROM entrustments e
                 WHERE e.id = $1 AND {scope(p, "e", q)} FOR UPDATE""",
            *q.params,
        )
        if row is None:
            raise not_found(f"entrustment {eid}")
        state = entrustment_state(
            row["valid_from"], row["valid_to"], row["ended_at"] is not None, day
        )
        if state in ("ended", "expired"):
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                f"state: the entrustment is already {state}",
                {"field": "state", "state": state},
            )
        new_to = end_date(row["valid_to"], day)
        await conn.execute(
            """UPDATE entrustments SET ended_at = now(), ended_by = $2, end_reason = $3,
                      valid_to = $4
                WHERE id = $1""",
            eid,
            p.user_id,
            reason,
            new_to,
        )
        await audit(
            conn,
            p,
            "entrustment.end",
            "entrustment",
            eid,
            jsonable({"valid_to_before": row["valid_to"], "valid_to": new_to, "reason": reason}),
            request.remote,
        )
        out = await _one(conn, p, eid, day)
    return json_response(out)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/entrustments", list_entrustments, allow_head=False),
        web.post(f"{API}/entrustments", create_entrustment),
        web.post(API + r"/entrustments/{id:\d+}/end", end_entrustment),
    ]
