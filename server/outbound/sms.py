"""Queue a text message: the one call a feature makes to send an SMS (docs/OUTBOUND.md "SMS").

A feature (a notice, a complaint's answer, a rectification notice) calls
:func:`enqueue_sms` with the connection of its own transaction: the message is stored with
the business change or not at all — an answer rolled back sends nothing, an answer
committed is never forgotten, whatever happens to the process afterwards. The sender
(``server.outbound.sms_sender``) delivers it later.

The caller names an idempotency key (``complaint:123:answer``): enqueuing the same key
again, from a retried request or a second process, stores nothing new and returns the
first message's id. The text is rendered here, from the ``[sms.templates]`` entry of the
message kind, so a missing value is the caller's error at once, not a failed message later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import asyncpg

from server.kernel.settings import Sms, template_fields

__all__ = ["KEY_MAX_CHARS", "enqueue_sms", "mask_phone", "normalize_phone", "render"]

KEY_MAX_CHARS: Final = 200
_PHONE = re.compile(r"^\+?[0-9]{5,15}$")
"""ITU-T E.164: at most 15 digits; a leading ``+`` for an international number."""
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_MASK_KEEP_HEAD: Final = 3
_MASK_KEEP_TAIL: Final = 4


def normalize_phone(raw: str) -> str:
    """A phone number as stored and sent: digits (and a leading ``+``), separators removed."""
    number = _PHONE_SEPARATORS.sub("", raw)
    if not _PHONE.match(number):
        raise ValueError(f"phone: {raw!r} is not a phone number (5 to 15 digits)")
    return number


def mask_phone(number: str) -> str:
    """``138****5678``: enough to tell messages apart, not enough to call someone."""
    digits = len(number)
    if digits <= _MASK_KEEP_HEAD + _MASK_KEEP_TAIL:
        return "*" * (digits - 2) + number[-2:]
    return number[:_MASK_KEEP_HEAD] + "*" * (digits - 7) + number[-_MASK_KEEP_TAIL:]


def render(rules: Sms, kind: str, params: Mapping[str, object]) -> str:
    """The text of a message of *kind*, its ``{placeholders}`` filled from *params*."""
    template = rules.templates.get(kind)
    if template is None:
        known = ", ".join(sorted(rules.templates))
        raise ValueError(f"kind: no SMS template {kind!r} in [sms.templates] (known: {known})")
    names = template_fields(template)
    missing = sorted(set(names) - set(params))
    if missing:
        raise ValueError(f"params: template {kind!r} needs {', '.join(missing)}")
    return template.format_map({name: str(params[name]) for name in names})


async def enqueue_sms(
    conn: asyncpg.Connection,
    rules: Sms,
    *,
    phone: str,
    kind: str,
    params: Mapping[str, object],
    key: str,
) -> int | None:
    """Queue one message in the caller's transaction; its id, or None when SMS is off.

    *key* makes the call idempotent: a second call with the same key returns the first
    message's id and stores nothing. Bad input (number, kind, missing placeholder, key) is
    a ``ValueError`` naming it, raised before anything is written.
    """
    if not rules.enabled:
        return None
    if not conn.is_in_transaction():
        raise RuntimeError("enqueue_sms runs inside the business change's transaction")
    if not key or len(key) > KEY_MAX_CHARS:
        raise ValueError(f"key: 1 to {KEY_MAX_CHARS} characters")
    number = normalize_phone(phone)
    body = render(rules, kind, params)
    new_id: int | None = await conn.fetchval(
        """INSERT INTO sms_outbox (idem_key, phone, kind, body) VALUES ($1, $2, $3, $4)
           ON CONFLICT (idem_key) DO NOTHING RETURNING id""",
        key,
        number,
        kind,
        body,
    )
    if new_id is None:
        new_id = await conn.fetchval("SELECT id FROM sms_outbox WHERE idem_key = $1", key)
    return new_id
