"""Outbound delivery as operators see it: the SMS queue and the upload batches, and the one
action on them — queue a dead upload batch again (docs/API.md "Outbound", docs/OUTBOUND.md).

Why these roles: the SMS queue tells a regulator whether a notice or an answer reached
people, so regulators read it too, but a phone number is personal data (GB/T 35273), so only
an admin sees it whole. The upload is the platform's own plumbing: admin only.
"""

from __future__ import annotations

from typing import Any, Final

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
    plain,
    read_body,
)
from server.api.fills import time_range
from server.kernel import errors
from server.kernel.appkeys import POOL
from server.kernel.audit import audit
from server.kernel.errors import ApiError, not_found
from server.kernel.http import json_response, path_int, q_choice, q_page, q_str
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.outbound.sms import mask_phone
from server.outbound.upstream import retry_batch

SMS_ROLES: Final = ("admin", "regulator")
SMS_STATES: Final = ("queued", "sending", "sent", "failed")
BATCH_STATES: Final = ("pending", "sending", "delivered", "dead")
_SMS_COLUMNS: Final = (
    "s.id, s.kind, s.phone, s.body, s.state, s.attempts, s.next_attempt_at, s.last_error,"
    " s.provider_message_id, s.created_at, s.sent_at"
)
_BATCH_COLUMNS: Final = (
    "b.id, b.state, b.records, b.attempts, b.next_attempt_at, b.last_error, b.created_at,"
    " b.delivered_at,"
    " (SELECT min(o.id) FROM upstream_outbox o WHERE o.batch_id = b.id) AS first_outbox_id,"
    " (SELECT max(o.id) FROM upstream_outbox o WHERE o.batch_id = b.id) AS last_outbox_id"
)

SMS_QUERY = (
    Param("state", enum=SMS_STATES),
    Param("kind", description="message kind (a key of [sms.templates])"),
    Param("from", "date-time", "queued at or after"),
    Param("to", "date-time", "queued before"),
)
BATCH_QUERY = (Param("state", enum=BATCH_STATES),)


@api_doc("List text messages", tags=["outbound"], roles=SMS_ROLES, query=SMS_QUERY, paginated=True)
async def list_sms(request: web.Request) -> web.Response:
    """The SMS queue, newest first; the phone number is masked except for an admin."""
    p = require(request, *SMS_ROLES)
    check_query(request, [x.name for x in SMS_QUERY])
    page = q_page(request)
    q = Sql()
    where = ["TRUE"]
    state = q_choice(request, "state", SMS_STATES)
    if state:
        where.append(f"s.state = {q.add(state)}")
    kind = q_str(request, "kind", max_len=64)
    if kind:
        where.append(f"s.kind = {q.add(kind)}")
    where += time_range(request, "s.created_at", q)
    rows, total = await fetch_page(
        request.app[POOL],
        _SMS_COLUMNS,
        f"sms_outbox s WHERE {' AND '.join(where)}",
        "s.created_at DESC, s.id DESC",
        q,
        page,
    )
    items = []
    for row in rows:
        item = plain(row)
        if p.role != "admin":
            item["phone"] = mask_phone(row["phone"])
        items.append(item)
    return json_response(envelope(items, page, total))


@api_doc(
    "List upload batches", tags=["outbound"], roles=["admin"], query=BATCH_QUERY, paginated=True
)
async def list_batches(request: web.Request) -> web.Response:
    """Batches of changes uploaded to the provincial / national platform, newest first;
    ``state=dead`` is the dead-letter view."""
    require(request, "admin")
    check_query(request, [x.name for x in BATCH_QUERY])
    page = q_page(request)
    q = Sql()
    where = ["TRUE"]
    state = q_choice(request, "state", BATCH_STATES)
    if state:
        where.append(f"b.state = {q.add(state)}")
    rows, total = await fetch_page(
        request.app[POOL],
        _BATCH_COLUMNS,
        f"upstream_batches b WHERE {' AND '.join(where)}",
        "b.id DESC",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


class RetryBody(msgspec.Struct, forbid_unknown_fields=True):
    note: Note | None = None


@api_doc("Retry a dead upload batch", tags=["outbound"], roles=["admin"], body=RetryBody)
async def retry(request: web.Request) -> web.Response:
    """Queue a dead-lettered batch again with a fresh count of attempts (audited). Only a
    ``dead`` batch can be retried: any other state is 409 ``invalid_transition``."""
    p = require(request, "admin")
    batch_id = path_int(request)
    body = RetryBody()
    if request.can_read_body:
        body = await read_body(request, RetryBody)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await retry_batch(conn, batch_id)
        if row is None:
            state = await conn.fetchval(
                "SELECT state FROM upstream_batches WHERE id = $1", batch_id
            )
            if state is None:
                raise not_found(f"upload batch {batch_id}")
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                f"upload batch {batch_id} is {state}: only a dead batch can be retried",
                {"field": "state", "state": state},
            )
        details: dict[str, Any] = {"records": row["records"], "last_error": row["last_error"]}
        if body.note:
            details["note"] = body.note
        await audit(conn, p, "upstream.retry", "upstream_batch", batch_id, details, request.remote)
    return json_response(plain(row))


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/outbound/sms", list_sms, allow_head=False),
        web.get(f"{API}/outbound/upstream", list_batches, allow_head=False),
        web.post(f"{API}/outbound/upstream/{{id}}/retry", retry),
    ]
