"""Trajectory events across cylinders, and the ingest dead letters (docs/ARCHITECTURE.md §5, §9).

Events are the EPCIS-like what/when/where/why of every cylinder; regulators search them
by place, company, kind and time. Dead letters (payloads ingest could not accept) are an
operations view: admin only, since they hold raw device bytes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
)
from server.api.cylinder_rows import event_json
from server.api.cylinders import EVENT_COLUMNS, EVENT_FROM
from server.api.fills import time_range
from server.api.params import company_filter
from server.domain.events import EventKind
from server.domain.statuses import ROLES
from server.kernel.appkeys import POOL
from server.kernel.http import json_response, q_choice, q_district, q_id, q_page, q_str
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where

EVENT_KINDS = tuple(dict.fromkeys(k.value for k in EventKind))
QUERY = (
    Param("kind", enum=EVENT_KINDS),
    Param("tag", description="cylinder tag"),
    Param("cylinder", "integer", "cylinder id"),
    Param("site", "integer", "site id"),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
    Param("from", "date-time", "at or after"),
    Param("to", "date-time", "before"),
)


@api_doc("Search trajectory events", tags=["events"], roles=ROLES, query=QUERY, paginated=True)
async def list_events(request: web.Request) -> web.Response:
    """Events in the caller's scope, oldest first (a trajectory across cylinders)."""
    p = require(request)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "events", "e", q)]
    kind = q_choice(request, "kind", EVENT_KINDS)
    if kind:
        where.append(f"e.kind = {q.add(kind)}")
    tag = q_str(request, "tag", max_len=64)
    if tag:
        where.append(f"e.tag = {q.add(tag)}")
    for name, col in (("cylinder", "cylinder_id"), ("site", "site_id")):
        value = q_id(request, name)
        if value:
            where.append(f"e.{col} = {q.add(value)}")
    comp = company_filter(request, "e.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"e.district_code = {q.add(district)}")
    where += time_range(request, "e.ts", q)
    rows, total = await fetch_page(
        request.app[POOL],
        EVENT_COLUMNS,
        f"{EVENT_FROM} WHERE {' AND '.join(where)}",
        "e.ts, e.received_at, e.msg_id",
        q,
        page,
    )
    return json_response(envelope([event_json(r, p) for r in rows], page, total))


def _dead_json(row: Any) -> dict[str, Any]:
    payload = row["payload"]
    raw = bytes(payload) if payload is not None else b""
    return {
        "received_at": row["received_at"],
        "topic": row["topic"],
        "reason": row["reason"],
        "worker": row["worker"],
        "size": len(raw),
        "payload": raw[:4096].decode("utf-8", errors="replace"),
    }


DEAD_QUERY = (
    Param("topic", description="exact MQTT topic"),
    Param("from", "date-time", "received at or after"),
    Param("to", "date-time", "received before"),
)


@api_doc("List dead letters", tags=["events"], roles=["admin"], query=DEAD_QUERY, paginated=True)
async def list_dead_letters(request: web.Request) -> web.Response:
    """Rejected device payloads, newest first (payload shown as text, first 4 KiB)."""
    require(request, "admin")
    check_query(request, [x.name for x in DEAD_QUERY])
    page = q_page(request)
    q = Sql()
    where = ["TRUE"]
    topic = q_str(request, "topic", max_len=300)
    if topic:
        where.append(f"d.topic = {q.add(topic)}")
    where += time_range(request, "d.received_at", q)
    rows, total = await fetch_page(
        request.app[POOL],
        "d.*",
        f"dead_letters d WHERE {' AND '.join(where)}",
        "d.received_at DESC",
        q,
        page,
    )
    return json_response(envelope([_dead_json(r) for r in rows], page, total))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/events", list_events, allow_head=False),
        web.get(f"{API}/dead-letters", list_dead_letters, allow_head=False),
    ]
