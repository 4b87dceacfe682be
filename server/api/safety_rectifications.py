"""Rectifications (整改) of failed safety-inspection items: the re-check that closes one, the
customer's SMS, and the overdue round (docs/API.md "Safety inspections"; DOMAIN.md "Safety
inspection at the customer"; docs/OUTBOUND.md "SMS").

- ``POST /api/v1/rectifications/{id}/recheck`` (multipart: a ``photo``, an optional ``note``)
  closes an open rectification in the caller's scope, audited; the photo is evidence, stored
  with its hash and served by the record's files endpoint.
- :func:`queue_issued_sms` tells the customer what to fix when a record with failed items is
  signed (the ``rectification`` template, keyed ``safety:<id>:issued``: once per record).
- :func:`run_round` marks rectifications past their deadline once (``server.db.safety``: an
  advisory lock and ``SKIP LOCKED``), records the credit event, and in the same transaction
  messages the company's admins and the inspector through the inbox (which the live inbox
  pushes to their phones by Web Push) and queues an SMS to the customer. :func:`setup` runs it
  every ``[safety] round_interval_s`` in every server process; state is in the rows, so a
  restart neither repeats nor skips one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg
from aiohttp import web

from server.api.common import API, api_doc, jsonable
from server.db import safety as store
from server.db.messages import deliver_system_message
from server.domain.complaints import contact_phone
from server.domain.safety import RECHECK_ROLES, fill_text
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, path_int
from server.kernel.limits import body_limit
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Settings
from server.kernel.tasks import stop_task
from server.kernel.uploads import read_multipart
from server.kernel.uploads import store as store_file
from server.outbound.sms import enqueue_sms

__all__ = ["queue_issued_sms", "routes", "run_round", "setup"]

log = logging.getLogger(__name__)
_MB = 1024 * 1024
SMS_ISSUE_CHARS: Final = 30
"""Characters of an item's text quoted in the SMS (one SMS is 70 Chinese characters)."""

OVERDUE_TEXT: Final = {
    "zh-CN": (
        "整改逾期：{customer} {item}",
        "安检记录 {inspection} 的整改项“{text}”应于 {deadline} 前完成，至今未复查关闭。"
        "请在安检记录页面处理：/safety-inspections/{inspection}",
    ),
    "en": (
        "Rectification overdue: {customer} {item}",
        "The rectification “{text}” of safety inspection {inspection} was due by {deadline} "
        "and has not been re-checked. See /safety-inspections/{inspection}",
    ),
}


async def _sms(
    conn: Any, settings: Settings, phone: str | None, params: dict[str, str], key: str
) -> int | None:
    number = contact_phone(phone)
    if number is None:
        return None
    try:
        return await enqueue_sms(
            conn, settings.sms, phone=number, kind="rectification", params=params, key=key
        )
    except ValueError as exc:  # a template without the kind, a bad number: the record stands
        log.warning("safety SMS %s not queued: %s", key, exc)
        return None


async def queue_issued_sms(conn: Any, settings: Settings, rid: int, customer: Any) -> int | None:
    """The customer's SMS listing what to fix by when (None: nothing failed, no phone, SMS off)."""
    rows = await conn.fetch(
        """SELECT i.text_zh, r.deadline FROM safety_rectifications r
             JOIN safety_items i ON i.id = r.item_id
            WHERE r.inspection_id = $1 ORDER BY r.deadline, i.position""",
        rid,
    )
    if not rows:
        return None
    issue = fill_text(rows[0]["text_zh"], settings.safety)[:SMS_ISSUE_CHARS]
    if len(rows) > 1:
        issue += f"等{len(rows)}项"
    params = {
        "city": settings.safety.city_name,
        "company": customer["company_name"],
        "issue": issue,
        "deadline": rows[0]["deadline"].isoformat(),
    }
    return await _sms(conn, settings, customer["phone"], params, f"safety:{rid}:issued")


async def run_round(
    pool: asyncpg.Pool, settings: Settings, now: dt.datetime | None = None
) -> list[store.Overdue]:
    """One overdue round: marks, credit events, inbox messages, SMS — one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        marked = await store.mark_overdue(conn, settings, now)
        for o in marked:
            await _tell(conn, settings, o)
    return marked


async def _tell(conn: Any, settings: Settings, o: store.Overdue) -> None:
    users = await conn.fetch(
        """SELECT id, language FROM users
            WHERE active AND (id = $1 OR (role = 'company_admin' AND company_id = $2))
            ORDER BY id""",
        o.inspector_id,
        o.company_id,
    )
    by_language: dict[str, list[int]] = {}
    for u in users:
        lang = u["language"] if u["language"] in OVERDUE_TEXT else "zh-CN"
        by_language.setdefault(lang, []).append(u["id"])
    for lang, ids in by_language.items():
        subject, body = OVERDUE_TEXT[lang]
        values = {
            "customer": o.customer_name,
            "item": o.item_code,
            "text": fill_text(o.text_zh if lang == "zh-CN" else o.text_en, settings.safety),
            "inspection": o.inspection_id,
            "deadline": o.deadline.isoformat(),
        }
        await deliver_system_message(conn, ids, subject.format(**values), body.format(**values))
    params = {
        "city": settings.safety.city_name,
        "company": o.company_name,
        "issue": fill_text(o.text_zh, settings.safety)[:SMS_ISSUE_CHARS],
        "deadline": o.deadline.isoformat(),
    }
    await _sms(conn, settings, o.customer_phone, params, f"safety:rect:{o.id}:overdue")


@api_doc(
    "Close a rectification after a re-check",
    tags=["safety"],
    roles=RECHECK_ROLES,
    responses={
        200: "closed: the rectification",
        400: "no photo",
        404: "no such rectification in the caller's scope",
        409: "already closed",
        413: "the photo over [uploads] image_max_mb",
        415: "not multipart, or the photo not a JPEG/PNG/WebP picture",
    },
    description="multipart/form-data: `photo` (required: the fixed item) and `note` (optional). "
    "The photo is served by GET /api/v1/safety-inspections/{id}/files/{upload_id}.",
)
@body_limit("upload")
async def recheck(request: web.Request) -> web.Response:
    """Close an open rectification with the re-check's photo (audited)."""
    p = require(request, *RECHECK_ROLES)
    rect_id = path_int(request)
    settings = request.app[SETTINGS]
    fields, files = await read_multipart(
        request, settings.uploads.image_max_mb * _MB, files=("photo",), max_files=1
    )
    if not files:
        raise bad_field("photo", "the re-check's photo is required")
    note = (fields.get("note") or "").strip() or None
    if note is not None and len(note) > 1000:
        raise bad_field("note", "at most 1000 characters")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        q = Sql(rect_id)
        row = await conn.fetchrow(
            f"""SELECT r.id, r.state, r.inspection_id FROM safety_rectifications r
                 WHERE r.id = $1 AND {scope_where(p, "safety_inspections", "r", q)}
                 FOR UPDATE""",
            *q.params,
        )
        if row is None:
            raise not_found(f"rectification {rect_id}")
        if row["state"] != "open":
            raise ApiError(
                409,
                errors.INVALID_TRANSITION,
                "state: the rectification is already closed",
                {"field": "state", "state": row["state"]},
            )
        f = await store_file(
            conn,
            settings.uploads,
            files[0][2],
            purpose="safety_recheck",
            field="photo",
            images_only=True,
            filename=files[0][1],
            uploaded_by=p.user_id,
        )
        out = await conn.fetchrow(
            """UPDATE safety_rectifications
                  SET state = 'closed', closed_at = now(), closed_by = $2,
                      recheck_upload_id = $3, recheck_note = $4
                WHERE id = $1
            RETURNING id, inspection_id, item_id, deadline, state, overdue_at, closed_at,
                      closed_by, recheck_note, recheck_upload_id""",
            rect_id,
            p.user_id,
            f.id,
            note,
        )
        await audit(
            conn,
            p,
            "safety_rectification.close",
            "safety_rectification",
            rect_id,
            jsonable({"inspection_id": row["inspection_id"], "photo": f.id, "note": note}),
            request.remote,
        )
    body = dict(out.items())
    body["recheck_photo_url"] = f"{API}/safety-inspections/{out['inspection_id']}/files/{f.id}"
    return json_response(body)


async def _rounds(app: web.Application) -> None:
    settings = app[SETTINGS]
    while True:
        try:
            marked = await run_round(app[POOL], settings)
            if marked:
                log.info("rectifications past their deadline marked: %d", len(marked))
        except Exception:  # a database blip: the next round catches up (state is in the rows)
            log.exception("rectification overdue round failed")
        await asyncio.sleep(settings.safety.round_interval_s)


async def _rounds_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_rounds(app), name="safety-rectification-round")
    try:
        yield
    finally:
        await stop_task(task, app[SETTINGS].services.shutdown_grace_s)


def setup(app: web.Application) -> None:
    """Run the overdue round in this server process once the pool is open."""
    app.cleanup_ctx.append(_rounds_ctx)


def routes() -> list[web.RouteDef]:
    return [web.post(API + r"/rectifications/{id:\d+}/recheck", recheck)]
