"""Notices to sign (通知/文件) in PostgreSQL: storing one with its recipients and attachments,
signing, who has and has not signed, and the reminder round's choice of notices
(docs/ARCHITECTURE.md §4; the audience is resolved as for messages, server.db.messages).

A signature is the recipient's own act, once: ``signed_at`` is set only while it is null, and
``notices.signed_count`` moves in the same statement, so a repeated sign changes nothing and
returns the first time. The sender sees both lists (signed, not signed) from the recipient
rows. A notice past its deadline is reminded once (``notices.reminded_at``); the round itself
(an inbox message, SMS to the companies) is ``server.api.notice_reminders``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from server.db.messages import notify_inbox

__all__ = [
    "INBOX_FROM",
    "INBOX_SELECT",
    "LOCK_KEY",
    "OUTBOX_FROM",
    "OUTBOX_SELECT",
    "REMINDER_BATCH",
    "Due",
    "Signed",
    "attachments",
    "claim_due",
    "insert_notice",
    "notice_for",
    "sign",
]

LOCK_KEY: Final = 0x0C71_4E07
"""Advisory lock of the notices' reminder round (distinct from the other rounds' keys)."""
REMINDER_BATCH: Final = 100
"""Notices one round reminds at most; the rest are the next round's (each may reach
thousands of users, so a round stays one short transaction)."""

_SENDER: Final = (
    "su.username AS sender_username, su.display_name AS sender_name, su.role AS sender_role"
)

INBOX_SELECT: Final = (
    f"n.id, n.title, left(n.body, 200) AS preview, n.created_at, n.deadline, n.sender_id, {_SENDER},"
    " r.signed_at, (SELECT count(*) FROM notice_attachments a WHERE a.notice_id = n.id)"
    " AS attachments"
)
INBOX_FROM: Final = (
    "notice_recipients r JOIN notices n ON n.id = r.notice_id JOIN users su ON su.id = n.sender_id"
)
"""Notices addressed to ``r.user_id``: awaiting signature first, then newest."""

OUTBOX_SELECT: Final = (
    "n.id, n.title, left(n.body, 200) AS preview, n.created_at, n.deadline, n.audience,"
    " n.recipient_count, n.signed_count, n.reminded_at,"
    " (SELECT count(*) FROM notice_attachments a WHERE a.notice_id = n.id) AS attachments"
)
OUTBOX_FROM: Final = "notices n"


async def insert_notice(
    conn: asyncpg.Connection,
    *,
    sender_id: int,
    sender_name: str,
    title: str,
    body: str,
    deadline: dt.datetime | None,
    audience: Mapping[str, Any],
    recipients: Sequence[int],
    attachment_ids: Sequence[int],
) -> int:
    """Store a notice, its recipient rows and attachments, and announce it. In a transaction."""
    async with conn.transaction():
        notice_id: int = await conn.fetchval(
            """INSERT INTO notices (sender_id, title, body, audience, deadline, recipient_count)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            sender_id,
            title,
            body,
            dict(audience),
            deadline,
            len(recipients),
        )
        await conn.execute(
            "INSERT INTO notice_recipients (notice_id, user_id) SELECT $1, unnest($2::bigint[])",
            notice_id,
            list(recipients),
        )
        if attachment_ids:
            await conn.executemany(
                "INSERT INTO notice_attachments (notice_id, upload_id, position)"
                " VALUES ($1, $2, $3)",
                [(notice_id, uid, i) for i, uid in enumerate(attachment_ids)],
            )
        row = {
            "kind": "notice",
            "id": notice_id,
            "title": title,
            "from": sender_name,
            "deadline": deadline.isoformat() if deadline else None,
        }
        await notify_inbox(conn, row, recipients, source=("notice", notice_id))
    return notice_id


async def notice_for(
    db: asyncpg.Pool | asyncpg.Connection, notice_id: int, user_id: int
) -> asyncpg.Record | None:
    """A notice its sender or a recipient may read (None for anyone else), with the reader's
    ``signed_at``."""
    return await db.fetchrow(
        f"""SELECT n.id, n.title, n.body, n.created_at, n.deadline, n.sender_id, {_SENDER},
                   n.audience, n.recipient_count, n.signed_count, n.reminded_at,
                   r.signed_at, (r.user_id IS NOT NULL) AS received
              FROM notices n JOIN users su ON su.id = n.sender_id
              LEFT JOIN notice_recipients r ON r.notice_id = n.id AND r.user_id = $2
             WHERE n.id = $1 AND (n.sender_id = $2 OR r.user_id IS NOT NULL)""",
        notice_id,
        user_id,
    )


async def attachments(
    db: asyncpg.Pool | asyncpg.Connection, table: str, column: str, owner_id: int
) -> list[dict[str, Any]]:
    """The files of a notice or message (``notice_attachments``/``message_attachments``)."""
    assert (table, column) in (
        ("notice_attachments", "notice_id"),
        ("message_attachments", "message_id"),
    )
    rows = await db.fetch(
        f"""SELECT u.id, u.filename, u.mime, u.size, u.width, u.height
              FROM {table} a JOIN uploads u ON u.id = a.upload_id
             WHERE a.{column} = $1 ORDER BY a.position""",
        owner_id,
    )
    return [dict(r.items()) for r in rows]


@dataclass(frozen=True)
class Signed:
    signed_at: dt.datetime
    changed: bool


async def sign(conn: asyncpg.Connection, notice_id: int, user_id: int) -> Signed | None:
    """Sign the user's copy (idempotent: a second sign returns the first's time); None when
    the user is not a recipient. The first time, the sender hears a ``receipt`` and the
    user's other screens ``signed``."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """WITH upd AS (
                   UPDATE notice_recipients SET signed_at = now()
                    WHERE notice_id = $1 AND user_id = $2 AND signed_at IS NULL
                RETURNING signed_at),
               cnt AS (
                   UPDATE notices SET signed_count = signed_count + 1
                    WHERE id = $1 AND EXISTS (SELECT 1 FROM upd)
                RETURNING sender_id)
               SELECT (SELECT signed_at FROM upd) AS new_signed_at,
                      (SELECT sender_id FROM cnt) AS sender_id""",
            notice_id,
            user_id,
        )
        assert row is not None
        if row["new_signed_at"] is None:
            old = await conn.fetchval(
                "SELECT signed_at FROM notice_recipients WHERE notice_id = $1 AND user_id = $2",
                notice_id,
                user_id,
            )
            return None if old is None else Signed(old, False)
        await notify_inbox(conn, {"kind": "signed", "notice": notice_id}, [user_id])
        await notify_inbox(
            conn, {"kind": "receipt", "notice": notice_id, "user": user_id}, [row["sender_id"]]
        )
        return Signed(row["new_signed_at"], True)


@dataclass(frozen=True)
class Due:
    """A notice the round claimed: its unsigned recipients were marked reminded."""

    id: int
    title: str
    deadline: dt.datetime
    unsigned: list[int]


async def claim_due(conn: asyncpg.Connection, now: dt.datetime) -> list[Due]:
    """In the caller's transaction: notices past their deadline not yet reminded (locked,
    skipping those another round holds), each marked reminded with its unsigned recipients."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM notices
                WHERE reminded_at IS NULL AND deadline IS NOT NULL AND deadline <= $1
                ORDER BY deadline, id LIMIT $2
                  FOR UPDATE SKIP LOCKED)
           UPDATE notices n SET reminded_at = $1 FROM due WHERE n.id = due.id
           RETURNING n.id, n.title, n.deadline""",
        now,
        REMINDER_BATCH,
    )
    out = []
    for r in sorted(rows, key=lambda r: r["id"]):
        unsigned = await conn.fetch(
            """UPDATE notice_recipients SET reminded_at = $2
                WHERE notice_id = $1 AND signed_at IS NULL AND reminded_at IS NULL
               RETURNING user_id""",
            r["id"],
            now,
        )
        out.append(Due(r["id"], r["title"], r["deadline"], sorted(u["user_id"] for u in unsigned)))
    return out
