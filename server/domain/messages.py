"""Messages (系统消息/发件箱) and notices to sign (通知/文件): who may send, who receives, who may
reply, and the words of the live inbox (docs/ARCHITECTURE.md §1 "regulator: messages";
docs/API.md "Messages and notices").

Pure like the rest of the domain: the storage (``server.db.messages``) turns an audience into
recipients in SQL, the API checks the caller with these rules.

Who receives what the sender addressed (the *audience*; resolved once, at send time):

- ``users``: those users (active ones);
- ``companies``: every active user of each company — its company admins and its station
  operators;
- ``districts``: every active user whose place is in the district — officers and district
  regulators assigned to it, the company admins of companies registered there or running a
  site there, station operators and inspection agencies whose site is there. A city-wide
  regulator or an admin belongs to no district (they are the senders' side).

The sender never receives their own message. Replies: a recipient answers the one who
wrote to them, and only them (a company answering a district-wide circular must not write
to every other company); the answer joins the first message's thread. The platform's own
messages (reminders, delivered reports) have no sender and cannot be answered.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUDIENCE_KINDS",
    "CHANNEL_INBOX",
    "INBOX_KINDS",
    "MESSAGE_KINDS",
    "SENDER_ROLES",
    "can_reply",
    "can_send",
]

CHANNEL_INBOX: Final = "inbox"
"""The live channel of a user's own inbox (docs/WEBSOCKET.md "Channels"): each row goes to the
users it names, and only to them."""

SENDER_ROLES: Final[tuple[str, ...]] = ("admin", "regulator")
"""Who writes to users, companies and districts and sends notices (DESIGN §1: the regulator's
"messages to companies"; the admin runs the platform). A district regulator only within their
districts. Everybody else answers what they received."""

MESSAGE_KINDS: Final[tuple[str, ...]] = ("message", "system")
"""``message``: written by a person; ``system``: by the platform (a notice's reminder, a
scheduled report), without a sender."""

AUDIENCE_KINDS: Final[tuple[str, ...]] = ("users", "companies", "districts")
"""What a sender may address: users by id, companies by id (all their users), districts by
code (all users placed there)."""

INBOX_KINDS: Final[tuple[str, ...]] = ("message", "notice", "read", "signed", "receipt")
"""Rows of the ``inbox`` channel: a new message or notice for you; you read messages or signed
a notice (on another screen: counts change); someone read your message or signed your notice
(a receipt for the sender)."""


def can_send(role: str) -> bool:
    """May *role* start a message or a notice (not only answer one)?"""
    return role in SENDER_ROLES


def can_reply(kind: str, sender_id: int | None, reader_id: int) -> bool:
    """May *reader_id*, a recipient, answer a message of *kind* from *sender_id*?

    A person's message only (the platform reads no answers), and not one's own."""
    return kind == "message" and sender_id is not None and sender_id != reader_id
