"""Licences of companies and stations: the list with expiry and state, and the regulator's
suspend / revoke / reinstate (docs/ARCHITECTURE.md §4, §7; docs/API.md "Licences").

Why an endpoint of its own: a licence's status is the bureau's act. Regulators may not change
a company's or a site's master data (PATCH is the admin's and the company's), but they do
suspend, revoke and reinstate licences — with a reason, audited. The rules of the moves and of
a licence's state on a day are the domain's (:mod:`server.domain.licences`).

A station's licence takes effect at the gun at once: fill authorization (``ingest.auth``)
reads the station's licence columns from PostgreSQL in its one query per request — there is
no cache to invalidate — so the next request after the commit is refused with
``station_not_licensed``.

Scope: company licences of the companies the caller answers for (a district regulator or
officer: companies registered in their districts; a company admin: its own), site licences of
the sites in the caller's scope (``server.kernel.scope``). Sites listed: filling stations
(whose licence the gun checks) and any other site that holds a licence.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    contains,
    envelope,
    fetch_page,
    q_district,
    read_body,
    today,
)
from server.api.params import company_filter
from server.domain.licences import (
    LICENCE_HOLDERS,
    LICENCE_STATES,
    LicenceRefused,
    check_status_change,
    licence_state,
)
from server.domain.statuses import LICENCE_STATUSES
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Alerts

READ_ROLES: Final = ("admin", "regulator", "officer", "company_admin")
"""Who reads the licence list (dashboard.render.NAV "licences")."""
WRITE_ROLES: Final = ("admin", "regulator")
"""Who suspends, revokes and reinstates: the bureau."""

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class LicenceStatusChange(msgspec.Struct, forbid_unknown_fields=True):
    status: str
    """``suspended`` (暂停), ``revoked`` (吊销) or ``valid`` (reinstate a suspended licence)."""
    reason: Reason
    """Why: kept with the licence and in the audit log."""


_COLUMNS: Final = (
    "kind, id, code, name, site_kind, company_id, company_name, district_code,"
    " licence_no, licence_expiry, licence_status, licence_status_reason, licence_status_at"
)


def _company_scope(p: Principal, alias: str, q: Sql) -> str:
    """Companies whose licence the caller answers for: the register's scope, narrowed to
    the districts of a district-bound regulator or officer (they supervise those)."""
    where = scope_where(p, "companies", alias, q)
    if p.role in ("regulator", "officer") and not p.city_wide:
        where += f" AND {alias}.district_code = ANY({q.add(list(p.districts))})"
    return where


def _holders(p: Principal, q: Sql) -> str:
    """Every licence in the caller's scope, one row per holder (a subquery named ``h``)."""
    return f"""(
        SELECT 'company'::text AS kind, co.id, co.code, co.name, NULL::text AS site_kind,
               co.id AS company_id, co.name AS company_name, co.district_code,
               co.licence_no, co.licence_expiry, co.licence_status,
               co.licence_status_reason, co.licence_status_at
          FROM companies co WHERE {_company_scope(p, "co", q)}
        UNION ALL
        SELECT 'site'::text, s.id, s.code, s.name, s.kind,
               s.company_id, sc.name, s.district_code,
               s.licence_no, s.licence_expiry, s.licence_status,
               s.licence_status_reason, s.licence_status_at
          FROM sites s LEFT JOIN companies sc ON sc.id = s.company_id
         WHERE {scope_where(p, "sites", "s", q)}
           AND (s.kind = 'filling_station' OR s.licence_no IS NOT NULL)
    ) h"""


def _state_where(state: str, day: dt.date, rules: Alerts, q: Sql) -> str:
    """SQL for one state of :func:`server.domain.licences.licence_state` (same precedence)."""
    if state in ("revoked", "suspended"):
        return f"h.licence_status = {q.add(state)}"
    missing = "(h.licence_no IS NULL OR btrim(h.licence_no) = '' OR h.licence_expiry IS NULL)"
    if state == "missing":
        return f"(h.licence_status = 'valid' AND {missing})"
    on_record = f"h.licence_status = 'valid' AND NOT {missing}"
    if state == "expired":
        return f"({on_record} AND h.licence_expiry < {q.add(day)})"
    horizon = day + dt.timedelta(days=rules.licence_expiring_days)
    if state == "expiring":
        return f"({on_record} AND h.licence_expiry BETWEEN {q.add(day)} AND {q.add(horizon)})"
    return f"({on_record} AND h.licence_expiry > {q.add(horizon)})"


def _item(row: Any, day: dt.date, rules: Alerts) -> dict[str, Any]:
    """A licence as the API shows it: the holder, the licence, its state and days left."""
    out = dict(row.items())
    expiry = row["licence_expiry"]
    out["days_left"] = None if expiry is None else (expiry - day).days
    out["state"] = licence_state(row["licence_no"], expiry, row["licence_status"], day, rules)
    return out


QUERY = (
    Param("kind", enum=LICENCE_HOLDERS, description="company or site licences only"),
    Param("state", enum=LICENCE_STATES, description="the licence's state today"),
    Param("status", enum=LICENCE_STATUSES, description="the bureau's status"),
    Param("q", description="part of the holder's code or name, or of the licence number"),
    Param("company", description="company code or id (its own and its sites' licences)"),
    Param("district", description="6-digit district code"),
)


@api_doc(
    "List licences",
    tags=["licences"],
    roles=READ_ROLES,
    query=QUERY,
    paginated=True,
    description="Company and station licences in the caller's scope, soonest expiry first "
    "(missing ones first of all): holder, licence no., expiry, days_left, status, state.",
)
async def list_licences(request: web.Request) -> web.Response:
    """Licences in the caller's scope with their state today."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    settings = request.app[SETTINGS]
    day = today(settings)
    q = Sql()
    source = _holders(p, q)
    where = ["TRUE"]
    kind = q_choice(request, "kind", LICENCE_HOLDERS)
    if kind:
        where.append(f"h.kind = {q.add(kind)}")
    state = q_choice(request, "state", LICENCE_STATES)
    if state:
        where.append(_state_where(state, day, settings.alerts, q))
    status = q_choice(request, "status", LICENCE_STATUSES)
    if status:
        where.append(f"h.licence_status = {q.add(status)}")
    text = q_str(request, "q", max_len=100)
    if text:
        pat = q.add(contains(text))
        where.append(f"(h.code ILIKE {pat} OR h.name ILIKE {pat} OR h.licence_no ILIKE {pat})")
    comp = company_filter(request, "h.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"h.district_code = {q.add(district)}")
    rows, total = await fetch_page(
        request.app[POOL],
        _COLUMNS,
        f"{source} WHERE {' AND '.join(where)}",
        "h.licence_expiry ASC NULLS FIRST, h.kind, h.code",
        q,
        page,
    )
    items = [_item(r, day, settings.alerts) for r in rows]
    return json_response(envelope(items, page, total))


_TABLES: Final = {"company": "companies", "site": "sites"}


@api_doc(
    "Suspend, revoke or reinstate a licence",
    tags=["licences"],
    roles=WRITE_ROLES,
    body=LicenceStatusChange,
    responses={
        200: "the licence with its new status and state",
        404: "no such holder in the caller's scope",
        409: "invalid_transition: not a move the rules allow (a revoked licence stays revoked)",
    },
    description="`kind` is company or site. suspend: valid → suspended; revoke: valid or "
    "suspended → revoked; reinstate: suspended → valid. A station's new status applies to its "
    "guns' next fill authorization at once (station_not_licensed). Audited with the reason.",
)
async def change_status(request: web.Request) -> web.Response:
    """Change one licence's status, with a reason (the bureau's act, audited)."""
    p = require(request, *WRITE_ROLES)
    kind = request.match_info["kind"]
    holder_id = path_int(request)
    body = await read_body(request, LicenceStatusChange)
    reason = body.reason.strip()
    if not reason:
        raise bad_field("reason", "must not be blank")
    if body.status not in LICENCE_STATUSES:
        raise bad_field("status", f"must be one of {', '.join(LICENCE_STATUSES)}")
    settings = request.app[SETTINGS]
    day = today(settings)
    table = _TABLES[kind]
    q = Sql(holder_id)
    if kind == "company":
        scope = _company_scope(p, "x", q)
    else:  # the sites the list shows: stations, and other sites holding a licence
        scope = (
            f"{scope_where(p, 'sites', 'x', q)}"
            " AND (x.kind = 'filling_station' OR x.licence_no IS NOT NULL)"
        )
    async with request.app[POOL].acquire() as conn, conn.transaction():
        cur = await conn.fetchrow(
            f"""SELECT x.id, x.code, x.licence_no, x.licence_status FROM {table} x
                 WHERE x.id = $1 AND {scope} FOR UPDATE""",
            *q.params,
        )
        if cur is None:
            raise not_found(f"{kind} {holder_id}")
        try:
            move = check_status_change(cur["licence_status"], body.status)
        except LicenceRefused as exc:
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                f"status: {exc}",
                {"field": "status", "from": cur["licence_status"], "to": body.status},
            ) from None
        await conn.execute(
            f"""UPDATE {table} SET licence_status = $2, licence_status_reason = $3,
                       licence_status_at = now(), updated_at = now()
                 WHERE id = $1""",
            holder_id,
            body.status,
            reason,
        )
        await audit(
            conn,
            p,
            f"licence.{move}",
            kind,
            holder_id,
            {
                "code": cur["code"],
                "licence_no": cur["licence_no"],
                "from": cur["licence_status"],
                "to": body.status,
                "reason": reason,
            },
            request.remote,
        )
        q2 = Sql(kind, holder_id)
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM {_holders(p, q2)} WHERE h.kind = $1 AND h.id = $2",
            *q2.params,
        )
    assert row is not None  # in scope a moment ago, in this transaction
    return json_response(_item(row, day, settings.alerts))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/licences", list_licences, allow_head=False),
        web.post(API + r"/licences/{kind:company|site}/{id:\d+}/status", change_status),
    ]
