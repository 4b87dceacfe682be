"""Alerts: list, read, acknowledge, resolve (docs/ARCHITECTURE.md §4, §7; ingest raises them).

Who may act, and why:

- acknowledge (open → acknowledged: "seen, someone is on it"): the admin, regulators and
  field officers in their districts, and the company admin for its own company's alerts —
  the company is the one that must act on most of them (overfill, overstock, offline gun);
- resolve (→ resolved: the matter is closed): the admin, regulators and officers only —
  closing a finding against a company is the supervisor's decision, not the company's;
- station operators and inspection agencies read their scope (operators) or nothing
  (agencies), and act on none.

The life cycle itself (legal moves, a race between two officers) is
`server.db.alerts.transition_alert`'s; an illegal move is a 409 `invalid_transition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Note,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    read_body,
)
from server.api.fills import time_range
from server.api.params import company_filter
from server.db.alerts import InvalidTransition, alert_event, alert_json, transition_alert
from server.domain.statuses import ALERT_KINDS, ALERT_STATES, SEVERITIES
from server.kernel import errors
from server.kernel.appkeys import BUS, POOL
from server.kernel.audit import audit
from server.kernel.errors import ApiError, forbidden, not_found
from server.kernel.http import json_response, path_int, q_choice, q_district, q_page
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, can_read, scope_where

READ_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator")
ACK_ROLES = ("admin", "regulator", "officer", "company_admin")
RESOLVE_ROLES = ("admin", "regulator", "officer")
KINDS = tuple(ALERT_KINDS)
COLUMNS = """a.*, co.name AS company_name, s.code AS site_code, s.name AS site_name"""
FROM = """alerts a LEFT JOIN companies co ON co.id = a.company_id
    LEFT JOIN sites s ON s.id = a.site_id"""


def _json(row: Mapping[str, Any]) -> dict[str, Any]:
    out = alert_json(row)
    for key in ("company_name", "site_code", "site_name"):
        out[key] = row[key]
    return out


QUERY = (
    Param("state", enum=ALERT_STATES),
    Param("kind", enum=KINDS),
    Param("severity", enum=SEVERITIES),
    Param("district", description="6-digit district code"),
    Param("company", description="company code or id"),
    Param("from", "date-time", "last seen at or after"),
    Param("to", "date-time", "last seen before"),
)


@api_doc("List alerts", tags=["alerts"], roles=READ_ROLES, query=QUERY, paginated=True)
async def list_alerts(request: web.Request) -> web.Response:
    """Alerts in the caller's scope, most recent first."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "alerts", "a", q)]
    for name, choices in (("state", ALERT_STATES), ("kind", KINDS), ("severity", SEVERITIES)):
        value = q_choice(request, name, choices)
        if value:
            where.append(f"a.{name} = {q.add(value)}")
    district = q_district(request)
    if district:
        where.append(f"a.district_code = {q.add(district)}")
    comp = company_filter(request, "a.company_id", q)
    if comp:
        where.append(comp)
    where += time_range(request, "a.last_at", q)
    rows, total = await fetch_page(
        request.app[POOL],
        COLUMNS,
        f"{FROM} WHERE {' AND '.join(where)}",
        "a.last_at DESC, a.id DESC",
        q,
        page,
    )
    return json_response(envelope([_json(r) for r in rows], page, total))


async def _visible(request: web.Request, p: Principal, aid: int) -> dict[str, Any]:
    if not can_read(p, "alerts"):
        raise forbidden()  # pragma: no cover
    q = Sql(aid)
    row = await request.app[POOL].fetchrow(
        f"SELECT {COLUMNS} FROM {FROM} WHERE a.id = $1 AND {scope_where(p, 'alerts', 'a', q)}",
        *q.params,
    )
    if row is None:
        raise not_found(f"alert {aid}")
    return _json(row)


@api_doc("Get an alert", tags=["alerts"], roles=READ_ROLES)
async def get_alert(request: web.Request) -> web.Response:
    """One alert in the caller's scope."""
    p = require(request, *READ_ROLES)
    return json_response(await _visible(request, p, path_int(request)))


class AlertAction(msgspec.Struct, forbid_unknown_fields=True):
    note: Note | None = None


async def _act(
    request: web.Request, action: Literal["ack", "resolve"], roles: tuple[str, ...]
) -> web.Response:
    p = require(request, *roles)
    aid = path_int(request)
    body = AlertAction()
    if request.can_read_body:
        body = await read_body(request, AlertAction)
    await _visible(request, p, aid)  # scope first: 404 outside it
    async with request.app[POOL].acquire() as conn, conn.transaction():
        try:
            out = await transition_alert(conn, aid, action, p.user_id, body.note)
        except InvalidTransition as exc:
            raise ApiError(
                409, errors.INVALID_TRANSITION, str(exc), {"field": "state", "state": exc.state}
            ) from None
        if out is None:
            raise not_found(f"alert {aid}")
        await audit(conn, p, f"alert.{action}", "alert", aid, {"note": body.note}, request.remote)
    request.app[BUS].publish(alert_event(out))  # after commit: other screens update live
    return json_response(await _visible(request, p, aid))


@api_doc(
    "Acknowledge an alert",
    tags=["alerts"],
    roles=ACK_ROLES,
    body=AlertAction,
    responses={409: "not open"},
)
async def ack_alert(request: web.Request) -> web.Response:
    """open → acknowledged, with an optional note."""
    return await _act(request, "ack", ACK_ROLES)


@api_doc(
    "Resolve an alert",
    tags=["alerts"],
    roles=RESOLVE_ROLES,
    body=AlertAction,
    responses={409: "already resolved"},
)
async def resolve_alert(request: web.Request) -> web.Response:
    """open | acknowledged → resolved, with an optional note."""
    return await _act(request, "resolve", RESOLVE_ROLES)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/alerts", list_alerts, allow_head=False),
        web.get(API + r"/alerts/{id:\d+}", get_alert, allow_head=False),
        web.post(API + r"/alerts/{id:\d+}/ack", ack_alert),
        web.post(API + r"/alerts/{id:\d+}/resolve", resolve_alert),
    ]
