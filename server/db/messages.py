"""Messages in PostgreSQL: the fan-out, inbox and outbox, read receipts, the live
notification, and the one call other features use to put a message in someone's inbox
(docs/ARCHITECTURE.md §4 and §7; the rules are server.domain.messages, whom an audience
reaches is server.db.audience).

Why this shape:

- **Fan-out at send time, in the sending transaction.** A message to a district becomes one
  ``message_recipients`` row per user it reaches that day, with that user's ``read_at``: the
  inbox, the unread count and the read receipts are then plain indexed reads, and a message
  either reached everyone or (rolled back) no one. The number of rows is bounded by the
  caller (``[messages] recipients_max`` for a person's message).
- **Counters kept with the rows.** ``messages.read_count`` moves in the same statement that
  sets a recipient's ``read_at`` (only when it was unset), so the outbox shows "read by n of
  m" without counting thousands of rows per line, and a repeated "read" counts nothing.
- **Live delivery through PostgreSQL.** Every change a user should see at once (a new
  message, something read, a receipt for the sender) is announced with ``pg_notify`` on
  :data:`NOTIFY_CHANNEL` inside the writing transaction. PostgreSQL delivers a notification
  only when its transaction commits, to every server process listening
  (``realtime.inbox``): a rolled-back message is never announced, and any code holding a
  connection — an API handler, a reminder round, a scheduled report — announces without a
  bus. A notification names its recipients while they are few (:data:`NOTIFY_USERS_MAX`);
  for more, the listener reads them (the payload limit is 8000 bytes).
- :func:`deliver_system_message` is how the platform itself writes to people (a notice's
  reminder, a scheduled report, a complaint's deadline): no sender, no reply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import orjson

from server.domain.messages import CHANNEL_INBOX

__all__ = [
    "BODY_MAX_CHARS",
    "INBOX_FROM",
    "INBOX_SELECT",
    "NOTIFY_CHANNEL",
    "NOTIFY_USERS_MAX",
    "OUTBOX_FROM",
    "OUTBOX_SELECT",
    "SUBJECT_MAX_CHARS",
    "Read",
    "deliver_system_message",
    "insert_message",
    "mark_read",
    "message_for",
    "notify_inbox",
    "recipients_of",
    "thread_of",
    "unread_counts",
]

NOTIFY_CHANNEL: Final = f"cylwatch_{CHANNEL_INBOX}"
"""The PostgreSQL notification channel the server processes listen on (``realtime.inbox``)."""
NOTIFY_USERS_MAX: Final = 500
"""Recipients named in a notification: 500 ids of up to 12 digits stay under PostgreSQL's
8000-byte payload; beyond, the notification names the message and listeners read them."""
SUBJECT_MAX_CHARS: Final = 200
"""A subject is a line (the column's limit); a system message's longer subject is cut."""
BODY_MAX_CHARS: Final = 10_000
"""A message is a letter (the column's limit); a document is a notice's attachment."""
THREAD_MAX: Final = 200
"""Messages of one thread a detail shows (the oldest ones): a thread is a short exchange."""

_SENDER_COLUMNS: Final = (
    "su.username AS sender_username, su.display_name AS sender_name, su.role AS sender_role,"
    " sc.name AS sender_company"
)
_SENDER_JOIN: Final = (
    "LEFT JOIN users su ON su.id = m.sender_id LEFT JOIN companies sc ON sc.id = su.company_id"
)

INBOX_SELECT: Final = (
    "m.id, m.kind, m.subject, left(m.body, 200) AS preview, m.created_at, m.sender_id, "
    f"{_SENDER_COLUMNS}, m.reply_to, m.thread_id, m.notice_id, r.read_at, "
    "(SELECT count(*) FROM message_attachments a WHERE a.message_id = m.id) AS attachments"
)
INBOX_FROM: Final = f"message_recipients r JOIN messages m ON m.id = r.message_id {_SENDER_JOIN}"
"""The inbox of ``r.user_id``: unread first, then newest (``(r.read_at IS NULL) DESC,
r.message_id DESC``), read through ``message_recipients_user_idx``."""

OUTBOX_SELECT: Final = (
    "m.id, m.kind, m.subject, left(m.body, 200) AS preview, m.created_at, m.audience, "
    "m.recipient_count, m.read_count, m.reply_to, m.thread_id, "
    "(SELECT count(*) FROM message_attachments a WHERE a.message_id = m.id) AS attachments"
)
OUTBOX_FROM: Final = "messages m"
"""The outbox of ``m.sender_id``, newest first, through ``messages_sender_idx``."""


async def insert_message(
    conn: asyncpg.Connection,
    *,
    kind: str,
    sender_id: int | None,
    subject: str,
    body: str,
    recipients: Sequence[int],
    audience: Mapping[str, Any] | None = None,
    reply_to: int | None = None,
    thread_id: int | None = None,
    notice_id: int | None = None,
    attachment_ids: Sequence[int] = (),
    sender_name: str | None = None,
) -> int:
    """Store one message and its recipient rows and announce it; its id. In a transaction."""
    async with conn.transaction():
        message_id: int = await conn.fetchval(
            """INSERT INTO messages (kind, sender_id, subject, body, audience, reply_to,
                                    thread_id, notice_id, recipient_count)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
            kind,
            sender_id,
            subject,
            body,
            dict(audience or {}),
            reply_to,
            thread_id,
            notice_id,
            len(recipients),
        )
        await conn.execute(
            """INSERT INTO message_recipients (message_id, user_id)
               SELECT $1, unnest($2::bigint[])""",
            message_id,
            list(recipients),
        )
        if attachment_ids:
            await conn.executemany(
                "INSERT INTO message_attachments (message_id, upload_id, position)"
                " VALUES ($1, $2, $3)",
                [(message_id, uid, i) for i, uid in enumerate(attachment_ids)],
            )
        row = {
            "kind": "message",
            "id": message_id,
            "subject": subject,
            "from": sender_name,
            "system": kind == "system",
        }
        await notify_inbox(conn, row, recipients, source=("message", message_id))
    return message_id


async def deliver_system_message(
    conn: asyncpg.Connection,
    user_ids: Iterable[int],
    subject: str,
    body: str,
    attachment_ids: Sequence[int] = (),
    *,
    notice_id: int | None = None,
) -> int | None:
    """Put a message from the platform in the inbox of each of *user_ids* (active ones).

    For the platform's own writing: a notice's reminder, a scheduled report ("lands in the
    inbox"), a complaint's deadline. Call it with the connection of your transaction: the
    message commits with your change or not at all, and the recipients see it live once it
    commits. *attachment_ids* are ``uploads`` rows (``server.kernel.uploads.store``), served
    to the recipients by ``GET /api/v1/messages/{id}/attachments/{file}``. A *subject* longer
    than a line is cut; a *body* over :data:`BODY_MAX_CHARS` is a ``ValueError``. Returns the
    message id, or None when none of the users is active (nothing is written).
    """
    if not subject.strip():
        raise ValueError("subject: empty")
    if len(body) > BODY_MAX_CHARS:
        raise ValueError(f"body: at most {BODY_MAX_CHARS} characters")
    if len(subject) > SUBJECT_MAX_CHARS:
        subject = subject[: SUBJECT_MAX_CHARS - 1] + "…"
    wanted = sorted(set(user_ids))
    if not wanted:
        return None
    active = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM users WHERE id = ANY($1::bigint[]) AND active ORDER BY id", wanted
        )
    ]
    if not active:
        return None
    return await insert_message(
        conn,
        kind="system",
        sender_id=None,
        subject=subject,
        body=body,
        recipients=active,
        notice_id=notice_id,
        attachment_ids=attachment_ids,
    )


async def notify_inbox(
    conn: asyncpg.Connection,
    row: Mapping[str, Any],
    users: Sequence[int],
    *,
    source: tuple[str, int] | None = None,
) -> None:
    """Announce *row* to *users* once the transaction commits (see the module docstring).

    With more than :data:`NOTIFY_USERS_MAX` users, *source* (``("message", id)`` or
    ``("notice", id)``) tells the listeners where to read them."""
    payload: dict[str, Any] = {"row": dict(row)}
    if len(users) <= NOTIFY_USERS_MAX or source is None:
        payload["users"] = list(users)
    else:
        payload["source"] = list(source)
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, orjson.dumps(payload).decode())


async def recipients_of(db: asyncpg.Pool | asyncpg.Connection, source: Sequence[Any]) -> list[int]:
    """The user ids of a message's or a notice's recipient rows (a large notification)."""
    kind, ident = str(source[0]), int(source[1])
    table, column = (
        ("notice_recipients", "notice_id")
        if kind == "notice"
        else ("message_recipients", "message_id")
    )
    rows = await db.fetch(f"SELECT user_id FROM {table} WHERE {column} = $1", ident)
    return [r["user_id"] for r in rows]


async def unread_counts(db: asyncpg.Pool | asyncpg.Connection, user_id: int) -> dict[str, int]:
    """Unread messages and notices awaiting the user's signature (two partial-index counts)."""
    row = await db.fetchrow(
        """SELECT (SELECT count(*) FROM message_recipients
                    WHERE user_id = $1 AND read_at IS NULL) AS messages,
                  (SELECT count(*) FROM notice_recipients
                    WHERE user_id = $1 AND signed_at IS NULL) AS notices""",
        user_id,
    )
    assert row is not None
    return {"messages": int(row["messages"]), "notices": int(row["notices"])}


async def message_for(
    db: asyncpg.Pool | asyncpg.Connection, message_id: int, user_id: int
) -> asyncpg.Record | None:
    """A message its sender or one of its recipients may read (None for anyone else), with
    the reader's ``read_at`` (null for the sender)."""
    return await db.fetchrow(
        f"""SELECT m.id, m.kind, m.subject, m.body, m.created_at, m.sender_id, {_SENDER_COLUMNS},
                   m.audience, m.recipient_count, m.read_count, m.reply_to, m.thread_id,
                   m.notice_id, r.read_at, (r.user_id IS NOT NULL) AS received
              FROM messages m {_SENDER_JOIN}
              LEFT JOIN message_recipients r ON r.message_id = m.id AND r.user_id = $2
             WHERE m.id = $1 AND (m.sender_id = $2 OR r.user_id IS NOT NULL)""",
        message_id,
        user_id,
    )


async def thread_of(
    db: asyncpg.Pool | asyncpg.Connection, root_id: int, user_id: int
) -> list[dict[str, Any]]:
    """The messages of a thread the user wrote or received, oldest first."""
    rows = await db.fetch(
        f"""SELECT m.id, m.subject, m.body, m.created_at, m.sender_id, {_SENDER_COLUMNS}
              FROM messages m {_SENDER_JOIN}
             WHERE (m.id = $1 OR m.thread_id = $1)
               AND (m.sender_id = $2 OR EXISTS (SELECT 1 FROM message_recipients r
                                                 WHERE r.message_id = m.id AND r.user_id = $2))
             ORDER BY m.id LIMIT {THREAD_MAX}""",
        root_id,
        user_id,
    )
    return [dict(r.items()) for r in rows]


@dataclass(frozen=True)
class Read:
    """What marking a message read did: when it was read, and whether this call did it."""

    read_at: Any
    changed: bool
    sender_id: int | None = None


async def mark_read(conn: asyncpg.Connection, message_id: int, user_id: int) -> Read | None:
    """Mark the user's copy read (idempotent); None when the user did not receive it.

    The first time, the message's ``read_count`` moves with it, the user's other screens
    hear ``read`` and the sender a ``receipt``."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """WITH upd AS (
                   UPDATE message_recipients SET read_at = now()
                    WHERE message_id = $1 AND user_id = $2 AND read_at IS NULL
                RETURNING read_at),
               cnt AS (
                   UPDATE messages SET read_count = read_count + 1
                    WHERE id = $1 AND EXISTS (SELECT 1 FROM upd)
                RETURNING sender_id)
               SELECT (SELECT read_at FROM upd) AS new_read_at,
                      (SELECT sender_id FROM cnt) AS sender_id""",
            message_id,
            user_id,
        )
        assert row is not None
        if row["new_read_at"] is None:
            old = await conn.fetchrow(
                "SELECT read_at FROM message_recipients WHERE message_id = $1 AND user_id = $2",
                message_id,
                user_id,
            )
            return None if old is None else Read(old["read_at"], False)
        await notify_inbox(conn, {"kind": "read", "message": message_id}, [user_id])
        sender = row["sender_id"]
        if sender is not None:
            await notify_inbox(
                conn, {"kind": "receipt", "message": message_id, "user": user_id}, [sender]
            )
        return Read(row["new_read_at"], True, sender)
