"""Notices to sign (通知/文件): send with attachments, list, read, sign, who signed and who has
not (docs/API.md "Messages and notices"; DESIGN §9 ``GET/POST /api/v1/notices`` and
``POST /api/v1/notices/{id}/sign``).

A notice is a document the bureau sends that each recipient must acknowledge: admins and
regulators send it like a message (users, companies, districts; ``server.api.messages``
resolves the audience), with PDF documents and pictures attached (``server.kernel.uploads``:
the type sniffed, pictures re-encoded) and an optional deadline. Each recipient signs once
(idempotent); the sender sees both lists. Past the deadline, those who have not signed are
reminded once (``server.api.notice_reminders``). Only the sender and the recipients see a
notice and its files (404 for anyone else).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final
from urllib.parse import unquote

import msgspec
from aiohttp import web

from server.api.doc import API, Param, api_doc
from server.api.messages import To, display_name, resolve, serve_attachment
from server.api.params import check_query
from server.api.rows import envelope, fetch_page, plain
from server.db import notices as store
from server.domain.localtime import city_zone
from server.domain.messages import SENDER_ROLES
from server.domain.statuses import ROLES
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import (
    decode_json,
    field_from_msgspec,
    json_response,
    path_int,
    q_bool,
    q_choice,
    q_page,
)
from server.kernel.limits import body_limit, limit_bytes
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql
from server.kernel.uploads import IMAGE_TYPES, read_multipart, sniff
from server.kernel.uploads import store as store_file

__all__ = ["ATTACHMENT_TYPES", "routes"]

ATTACHMENT_TYPES: Final = ("application/pdf", *IMAGE_TYPES)
"""What a notice carries: the document as a PDF, pictures (a scanned page, a photo)."""
TITLE_MAX_CHARS: Final = 200
BODY_MAX_CHARS: Final = 20_000
"""A notice's text (the column's limit); the document itself is usually the attachment."""
_MB: Final = 1024 * 1024


class NoticeCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A notice; as JSON, or as the fields of a multipart form (``to`` as JSON text) with files
    under ``file``."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=TITLE_MAX_CHARS)]
    to: To
    body: Annotated[str, msgspec.Meta(max_length=BODY_MAX_CHARS)] = ""
    deadline: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    """Sign by (ISO 8601; without an offset, the city's local time); in the future."""


def _deadline(raw: str | None, request: web.Request) -> dt.datetime | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_field("deadline", f"expected an ISO 8601 time, got {raw!r}") from None
    settings = request.app[SETTINGS]
    if value.tzinfo is None:
        value = value.replace(tzinfo=city_zone(settings.alerts))
    if value <= dt.datetime.now(dt.UTC):
        raise errors.bad_field("deadline", "must be in the future")
    return value


async def _read_form(request: web.Request) -> tuple[NoticeCreate, list[tuple[str | None, bytes]]]:
    """The notice's fields and files, every file's type checked before anything is stored."""
    settings = request.app[SETTINGS]
    if request.content_type == "application/json":
        limit = limit_bytes(settings.http, "json")
        data = b"" if (request.content_length or 0) > limit else await request.read()
        if (request.content_length or 0) > limit or len(data) > limit:
            raise ApiError(
                413,
                errors.PAYLOAD_TOO_LARGE,
                f"a JSON notice is at most {limit} bytes (files go in a multipart form)",
                {"limit_bytes": limit},
            )
        return decode_json(data, NoticeCreate), []
    max_bytes = max(settings.uploads.file_max_mb, settings.uploads.image_max_mb) * _MB
    fields, files = await read_multipart(
        request, max_bytes, files=("file",), max_files=settings.messages.attachments_max
    )
    if any("\x00" in v for v in fields.values()):
        raise errors.bad_field("body", "strings must not contain NUL characters")
    values: dict[str, Any] = {k: v for k, v in fields.items() if v != "" or k == "title"}
    if "to" in values:
        try:
            values["to"] = msgspec.json.decode(values["to"])
        except msgspec.DecodeError:
            raise errors.bad_field("to", "a JSON object {users, companies, districts}") from None
    try:
        body = msgspec.convert(values, NoticeCreate)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise errors.bad_field(field_from_msgspec(message), message.split(" - at ")[0]) from None
    for _, _, data in files:
        if sniff(data) not in ATTACHMENT_TYPES:
            raise ApiError(
                415,
                errors.UNSUPPORTED_MEDIA_TYPE,
                f"file: only {', '.join(ATTACHMENT_TYPES)} are accepted",
                {"field": "file", "allowed": list(ATTACHMENT_TYPES)},
            )
    # a client may percent-encode a name (aiohttp does; browsers encode only '"' and line
    # breaks, as %22, %0D, %0A): shown to people, it is decoded
    return body, [(unquote(name) if name else name, data) for _, name, data in files]


@api_doc(
    "Send a notice to sign",
    tags=["messages"],
    roles=SENDER_ROLES,
    responses={
        201: "sent: id, recipient_count, attachments",
        413: "a file over [uploads] file_max_mb (PDF) or image_max_mb (picture)",
        415: "a file that is not a PDF or a JPEG/PNG/WebP picture",
    },
    description="multipart/form-data: `title`, `body`, `deadline` (ISO 8601, the city's time "
    "without an offset; in the future), `to` (JSON {users, companies, districts}, resolved "
    "as for messages) and up to messages.attachments_max files under `file`; or JSON "
    "without files. Every file is checked before anything is stored.",
)
@body_limit("upload")
async def create(request: web.Request) -> web.Response:
    p = require(request, *SENDER_ROLES)
    body, files = await _read_form(request)
    if not body.title.strip():
        raise errors.bad_field("title", "must not be blank")
    deadline = _deadline(body.deadline, request)
    settings = request.app[SETTINGS]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        aud, users = await resolve(conn, request, p, body.to)
        stored = [
            await store_file(
                conn,
                settings.uploads,
                data,
                purpose="notice",
                field="file",
                filename=name,
                uploaded_by=p.user_id,
            )
            for name, data in files
        ]
        notice_id = await store.insert_notice(
            conn,
            sender_id=p.user_id,
            sender_name=display_name(p),
            title=body.title.strip(),
            body=body.body,
            deadline=deadline,
            audience=aud.public(),
            recipients=users,
            attachment_ids=[f.id for f in stored],
        )
        await audit(
            conn,
            p,
            "notice.send",
            "notice",
            notice_id,
            {
                "to": aud.public(),
                "recipients": len(users),
                "files": [f.id for f in stored],
                "deadline": deadline.isoformat() if deadline else None,
            },
            request.remote,
        )
    return json_response(
        {
            "id": notice_id,
            "recipient_count": len(users),
            "attachments": [f.public() for f in stored],
        },
        201,
    )


LIST_QUERY = (
    Param("box", description="inbox (default) or outbox", enum=("inbox", "outbox")),
    Param("signed", "boolean", description="inbox: signed or awaiting my signature"),
)


@api_doc(
    "List my notices",
    tags=["messages"],
    roles=ROLES,
    query=LIST_QUERY,
    paginated=True,
    description="box=inbox: notices addressed to me, awaiting signature first, then newest, "
    "with signed_at and deadline. box=outbox: notices I sent, newest first, with "
    "recipient_count, signed_count, deadline and reminded_at.",
)
async def list_notices(request: web.Request) -> web.Response:
    p = require(request)
    check_query(request, [x.name for x in LIST_QUERY])
    page = q_page(request)
    box = q_choice(request, "box", ("inbox", "outbox")) or "inbox"
    q = Sql(p.user_id)
    if box == "outbox":
        rows, total = await fetch_page(
            request.app[POOL],
            store.OUTBOX_SELECT,
            f"{store.OUTBOX_FROM} WHERE n.sender_id = $1",
            "n.id DESC",
            q,
            page,
        )
    else:
        where = "r.user_id = $1"
        signed = q_bool(request, "signed")
        if signed is not None:
            where += " AND r.signed_at IS NOT NULL" if signed else " AND r.signed_at IS NULL"
        rows, total = await fetch_page(
            request.app[POOL],
            store.INBOX_SELECT,
            f"{store.INBOX_FROM} WHERE {where}",
            "(r.signed_at IS NULL) DESC, r.notice_id DESC",
            q,
            page,
        )
    return json_response(envelope([plain(r) for r in rows], page, total))


async def _visible(request: web.Request, p: Principal) -> Any:
    notice_id = path_int(request)
    row = await store.notice_for(request.app[POOL], notice_id, p.user_id)
    if row is None:
        raise errors.not_found(f"notice {notice_id}")
    return row


@api_doc(
    "Read one notice",
    tags=["messages"],
    roles=ROLES,
    responses={404: "no such notice of yours"},
    description="The notice with its attachments; `signed_at` (mine, as a recipient), "
    "`mine` (I sent it: recipient_count and signed_count are the progress).",
)
async def get_notice(request: web.Request) -> web.Response:
    p = require(request)
    row = await _visible(request, p)
    out = plain(row)
    out["attachments"] = await store.attachments(
        request.app[POOL], "notice_attachments", "notice_id", row["id"]
    )
    out["mine"] = row["sender_id"] == p.user_id
    return json_response(out)


@api_doc(
    "Sign a notice",
    tags=["messages"],
    roles=ROLES,
    responses={404: "not a notice addressed to you"},
    description="Idempotent: the first call records who signed and when (audited "
    "`notice.sign`); later calls return the same `signed_at` with `changed` false.",
)
async def sign(request: web.Request) -> web.Response:
    p = require(request)
    notice_id = path_int(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        done = await store.sign(conn, notice_id, p.user_id)
        if done is None:
            raise errors.not_found(f"notice {notice_id}")
        if done.changed:
            await audit(conn, p, "notice.sign", "notice", notice_id, None, request.remote)
    return json_response({"id": notice_id, "signed_at": done.signed_at, "changed": done.changed})


RECIPIENTS_QUERY = (
    Param("signed", "boolean", description="true: who signed; false: who has not yet"),
)


@api_doc(
    "Who signed a notice I sent",
    tags=["messages"],
    roles=SENDER_ROLES,
    query=RECIPIENTS_QUERY,
    paginated=True,
    responses={404: "not a notice you sent"},
    description="Each recipient with signed_at (null: not yet) and reminded_at, their role "
    "and company: signed ones first (by time), then the others by company and name.",
)
async def recipients(request: web.Request) -> web.Response:
    p = require(request)
    row = await _visible(request, p)
    if row["sender_id"] != p.user_id:
        raise errors.not_found(f"notice {row['id']}")
    check_query(request, [x.name for x in RECIPIENTS_QUERY])
    page = q_page(request)
    q = Sql(row["id"])
    where = "r.notice_id = $1"
    signed = q_bool(request, "signed")
    if signed is not None:
        where += " AND r.signed_at IS NOT NULL" if signed else " AND r.signed_at IS NULL"
    rows, total = await fetch_page(
        request.app[POOL],
        "u.id AS user_id, u.username, u.display_name, u.role, c.name AS company_name,"
        " r.signed_at, r.reminded_at",
        "notice_recipients r JOIN users u ON u.id = r.user_id"
        f" LEFT JOIN companies c ON c.id = u.company_id WHERE {where}",
        "r.signed_at NULLS LAST, c.name NULLS LAST, u.username",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


@api_doc(
    "A file attached to a notice",
    tags=["messages"],
    roles=ROLES,
    responses={404: "no such file of a notice of yours"},
    description="The PDF (as a download) or picture, never run as a page.",
)
async def get_attachment(request: web.Request) -> web.Response:
    p = require(request)
    row = await _visible(request, p)
    return await serve_attachment(request, "notice_attachments", "notice_id", row["id"])


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/notices", list_notices, allow_head=False),
        web.post(f"{API}/notices", create),
        web.get(API + r"/notices/{id:\d+}", get_notice, allow_head=False),
        web.post(API + r"/notices/{id:\d+}/sign", sign),
        web.get(API + r"/notices/{id:\d+}/recipients", recipients, allow_head=False),
        web.get(
            API + r"/notices/{id:\d+}/attachments/{file:\d+}", get_attachment, allow_head=False
        ),
    ]
