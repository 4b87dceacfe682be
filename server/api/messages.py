"""Messages (系统消息/发件箱): send, reply, inbox, outbox, read receipts, the unread count
(docs/API.md "Messages and notices"; DESIGN §9 ``GET/POST /api/v1/messages``).

Who may do what is ``server.domain.messages``: admins and regulators write to users,
companies and districts (a district regulator within its districts); every recipient of a
person's message may answer it, to its writer only. The fan-out, the counters and the live
notification are ``server.db.messages``. Everyone reads only their own inbox and outbox: a
message is visible to its sender and its recipients and to nobody else (404), the admin
included — a letter is not master data.

Every message sent and every first read is audited (``message.send``, ``message.read``), in
the transaction that writes it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from aiohttp import web

from server.api.doc import API, Param, api_doc
from server.api.fields import District, Id
from server.api.params import check_query, read_body
from server.api.rows import envelope, fetch_page, plain
from server.db import audience
from server.db import messages as store
from server.db.notices import attachments
from server.domain.messages import AUDIENCE_KINDS, SENDER_ROLES, can_reply, can_send
from server.domain.statuses import ROLES
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import json_response, path_int, q_bool, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql
from server.kernel.uploads import file_response, read_verified

__all__ = ["To", "audience_of", "display_name", "routes", "serve_attachment"]

AUDIENCE_ITEMS_MAX: Final = 1000
"""Users, companies or districts one audience names: a picker's selection, not a list of ids
from elsewhere (an address book that large is a district)."""
TARGETS_MAX: Final = 50
"""Choices the compose form's picker shows for one search (type more to narrow it)."""

Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=store.SUBJECT_MAX_CHARS)]
Body = Annotated[str, msgspec.Meta(max_length=store.BODY_MAX_CHARS)]


class To(msgspec.Struct, forbid_unknown_fields=True):
    """The audience: users by id, companies by id (all their users), districts by code."""

    users: Annotated[list[Id], msgspec.Meta(max_length=AUDIENCE_ITEMS_MAX)] = []
    companies: Annotated[list[Id], msgspec.Meta(max_length=AUDIENCE_ITEMS_MAX)] = []
    districts: Annotated[list[District], msgspec.Meta(max_length=AUDIENCE_ITEMS_MAX)] = []


class MessageCreate(msgspec.Struct, forbid_unknown_fields=True):
    subject: Subject
    body: Body = ""
    to: To | None = None
    """Who receives it (admin, regulator). Not with ``reply_to``."""
    reply_to: Id | None = None
    """Answer a message you received: it goes to its writer only."""


def display_name(p: Principal) -> str:
    return p.display_name or p.username


def audience_of(to: To) -> audience.Audience:
    return audience.Audience(
        tuple(dict.fromkeys(to.users)),
        tuple(dict.fromkeys(to.companies)),
        tuple(dict.fromkeys(to.districts)),
    )


def audience_error(exc: audience.AudienceError) -> ApiError:
    return errors.bad_field(exc.field, str(exc).split(": ", 1)[-1], **exc.details)


async def resolve(
    conn: Any, request: web.Request, p: Principal, to: To | None
) -> tuple[audience.Audience, list[int]]:
    """The audience checked against the sender's scope, and the users it reaches (bounded)."""
    if to is None:
        raise errors.bad_field("to", "who receives it: users, companies or districts")
    aud = audience_of(to)
    if aud.empty:
        raise errors.bad_field("to", "name at least one user, company or district")
    limit = request.app[SETTINGS].messages.recipients_max
    try:
        await audience.check_audience(conn, p, aud)
        users = await audience.resolve_audience(conn, aud, exclude=p.user_id, limit=limit)
    except audience.AudienceError as exc:
        raise audience_error(exc) from None
    return aud, users


LIST_QUERY = (
    Param("box", description="inbox (default) or outbox", enum=("inbox", "outbox")),
    Param("unread", "boolean", description="inbox: only unread messages"),
)


@api_doc(
    "List my messages",
    tags=["messages"],
    roles=ROLES,
    query=LIST_QUERY,
    paginated=True,
    description="box=inbox: messages I received, unread first, then newest, each with its "
    "sender and read_at. box=outbox: messages I sent, newest first, with recipient_count, "
    "read_count and the audience as addressed.",
)
async def list_messages(request: web.Request) -> web.Response:
    p = require(request)
    check_query(request, [x.name for x in LIST_QUERY])
    page = q_page(request)
    box = q_choice(request, "box", ("inbox", "outbox")) or "inbox"
    q = Sql(p.user_id)
    if box == "outbox":
        rows, total = await fetch_page(
            request.app[POOL],
            store.OUTBOX_SELECT,
            f"{store.OUTBOX_FROM} WHERE m.sender_id = $1",
            "m.id DESC",
            q,
            page,
        )
    else:
        where = "r.user_id = $1"
        if q_bool(request, "unread"):
            where += " AND r.read_at IS NULL"
        rows, total = await fetch_page(
            request.app[POOL],
            store.INBOX_SELECT,
            f"{store.INBOX_FROM} WHERE {where}",
            "(r.read_at IS NULL) DESC, r.message_id DESC",
            q,
            page,
        )
    return json_response(envelope([plain(r) for r in rows], page, total))


@api_doc(
    "Send a message or answer one",
    tags=["messages"],
    roles=ROLES,
    body=MessageCreate,
    responses={201: "sent: id and recipient_count", 404: "reply_to: no such message of yours"},
    description="Admins and regulators start messages; any role answers one it received. "
    "`to` {users, companies, districts}: every active user it reaches that day gets "
    "a copy (companies: all their users; districts: users placed there, docs/API.md), at most "
    "messages.recipients_max (400 beyond); a district regulator only within its districts. "
    "`reply_to` answers a message you received, to its writer only (any role).",
)
async def send(request: web.Request) -> web.Response:
    p = require(request)
    body = await read_body(request, MessageCreate)
    if not body.subject.strip():
        raise errors.bad_field("subject", "must not be blank")
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        if body.reply_to is not None:
            if body.to is not None:
                raise errors.bad_field("to", "a reply goes to the writer of reply_to only")
            original = await store.message_for(conn, body.reply_to, p.user_id)
            if original is None or not original["received"]:
                raise errors.not_found(f"message {body.reply_to}")
            if not can_reply(original["kind"], original["sender_id"], p.user_id):
                raise ApiError(
                    409, errors.CONFLICT, "reply_to: the platform's messages take no answer"
                )
            active = await conn.fetchval(
                "SELECT active FROM users WHERE id = $1", original["sender_id"]
            )
            if not active:
                raise ApiError(409, errors.CONFLICT, "reply_to: its writer's account is closed")
            aud = audience.Audience(users=(original["sender_id"],))
            users = [original["sender_id"]]
            thread = original["thread_id"] or original["id"]
        else:
            if not can_send(p.role):
                raise errors.forbidden(
                    f"role {p.role} may answer messages (reply_to), not start them"
                )
            aud, users = await resolve(conn, request, p, body.to)
            thread = None
        message_id = await store.insert_message(
            conn,
            kind="message",
            sender_id=p.user_id,
            subject=body.subject.strip(),
            body=body.body,
            recipients=users,
            audience=aud.public(),
            reply_to=body.reply_to,
            thread_id=thread,
            sender_name=display_name(p),
        )
        await audit(
            conn,
            p,
            "message.send",
            "message",
            message_id,
            {"to": aud.public(), "recipients": len(users), "reply_to": body.reply_to},
            request.remote,
        )
    return json_response({"id": message_id, "recipient_count": len(users)}, 201)


async def _visible(request: web.Request, p: Principal) -> Any:
    message_id = path_int(request)
    row = await store.message_for(request.app[POOL], message_id, p.user_id)
    if row is None:
        raise errors.not_found(f"message {message_id}")
    return row


@api_doc(
    "Read one message",
    tags=["messages"],
    roles=ROLES,
    responses={404: "no such message of yours"},
    description="The message, its attachments and its thread (the messages of the exchange "
    "you wrote or received, oldest first); `can_reply`. Reading does not mark it read: "
    "POST .../read does.",
)
async def get_message(request: web.Request) -> web.Response:
    p = require(request)
    row = await _visible(request, p)
    pool = request.app[POOL]
    out = plain(row)
    out["attachments"] = await attachments(pool, "message_attachments", "message_id", row["id"])
    out["thread"] = [
        plain(m) for m in await store.thread_of(pool, row["thread_id"] or row["id"], p.user_id)
    ]
    out["can_reply"] = bool(row["received"]) and can_reply(row["kind"], row["sender_id"], p.user_id)
    out["mine"] = row["sender_id"] == p.user_id
    return json_response(out)


@api_doc(
    "Mark a message read",
    tags=["messages"],
    roles=ROLES,
    responses={404: "not a message you received"},
    description="Idempotent: the first call sets read_at (and the sender's receipt), later "
    "calls return the same time with `changed` false.",
)
async def mark_read(request: web.Request) -> web.Response:
    p = require(request)
    message_id = path_int(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        done = await store.mark_read(conn, message_id, p.user_id)
        if done is None:
            raise errors.not_found(f"message {message_id}")
        if done.changed:
            await audit(conn, p, "message.read", "message", message_id, None, request.remote)
    return json_response({"id": message_id, "read_at": done.read_at, "changed": done.changed})


@api_doc(
    "My unread count",
    tags=["messages"],
    roles=ROLES,
    description="`messages`: unread messages; `notices`: notices awaiting my signature. Two "
    "counts over partial indexes: cheap enough for every page's header.",
)
async def unread_count(request: web.Request) -> web.Response:
    p = require(request)
    check_query(request, [])
    return json_response(await store.unread_counts(request.app[POOL], p.user_id))


RECIPIENTS_QUERY = (Param("read", "boolean", description="true: who read it; false: who not yet"),)


@api_doc(
    "Read receipts of a message I sent",
    tags=["messages"],
    roles=ROLES,
    query=RECIPIENTS_QUERY,
    paginated=True,
    responses={404: "not a message you sent"},
    description="Each recipient with read_at (null: not read yet): read ones first (by "
    "time), then the others by name.",
)
async def recipients(request: web.Request) -> web.Response:
    p = require(request)
    row = await _visible(request, p)
    if row["sender_id"] != p.user_id:
        raise errors.not_found(f"message {row['id']}")
    check_query(request, [x.name for x in RECIPIENTS_QUERY])
    page = q_page(request)
    q = Sql(row["id"])
    where = "r.message_id = $1"
    read = q_bool(request, "read")
    if read is not None:
        where += " AND r.read_at IS NOT NULL" if read else " AND r.read_at IS NULL"
    rows, total = await fetch_page(
        request.app[POOL],
        "u.id AS user_id, u.username, u.display_name, u.role, c.name AS company_name, r.read_at",
        "message_recipients r JOIN users u ON u.id = r.user_id"
        f" LEFT JOIN companies c ON c.id = u.company_id WHERE {where}",
        "r.read_at NULLS LAST, u.username",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


TARGET_QUERY = (
    Param("kind", description="what to pick", enum=AUDIENCE_KINDS, required=True),
    Param("q", description="part of a name, username or code"),
)


@api_doc(
    "Whom I may write to",
    tags=["messages"],
    roles=SENDER_ROLES,
    query=TARGET_QUERY,
    description="For the compose form's pickers: active users, companies or districts in your "
    f"scope (a district regulator: its districts), matching q, at most {TARGETS_MAX}.",
)
async def list_targets(request: web.Request) -> web.Response:
    p = require(request, *SENDER_ROLES)
    check_query(request, [x.name for x in TARGET_QUERY])
    kind = q_choice(request, "kind", AUDIENCE_KINDS)
    if kind is None:
        raise errors.bad_query("kind", f"one of {', '.join(AUDIENCE_KINDS)}")
    text = q_str(request, "q", max_len=100)
    items = await audience.targets(request.app[POOL], p, kind, text, TARGETS_MAX)
    return json_response({"kind": kind, "items": items})


async def serve_attachment(
    request: web.Request, table: str, column: str, owner_id: int
) -> web.Response:
    """A file of a notice or message the caller may read (checked by the caller): only a
    file attached to that very record is served."""
    file_id = path_int(request, "file")
    pool = request.app[POOL]
    attached = await pool.fetchval(
        f"SELECT 1 FROM {table} WHERE {column} = $1 AND upload_id = $2", owner_id, file_id
    )
    if attached is None:
        raise errors.not_found(f"file {file_id}")
    f, data = await read_verified(pool, request.app[SETTINGS].uploads, file_id)
    return file_response(f, data)


@api_doc(
    "A file attached to a message",
    tags=["messages"],
    roles=ROLES,
    responses={404: "no such file of a message of yours"},
    description="The file as uploaded (pictures re-encoded), never run as a page.",
)
async def get_attachment(request: web.Request) -> web.Response:
    p = require(request)
    row = await _visible(request, p)
    return await serve_attachment(request, "message_attachments", "message_id", row["id"])


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/messages", list_messages, allow_head=False),
        web.post(f"{API}/messages", send),
        web.get(f"{API}/messages/unread-count", unread_count, allow_head=False),
        web.get(f"{API}/messages/targets", list_targets, allow_head=False),
        web.get(API + r"/messages/{id:\d+}", get_message, allow_head=False),
        web.post(API + r"/messages/{id:\d+}/read", mark_read),
        web.get(API + r"/messages/{id:\d+}/recipients", recipients, allow_head=False),
        web.get(
            API + r"/messages/{id:\d+}/attachments/{file:\d+}", get_attachment, allow_head=False
        ),
    ]
