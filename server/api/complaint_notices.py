"""What complaints send (docs/API.md "Complaints"; docs/OUTBOUND.md "SMS"): the answer's SMS to
the complainant, and the reminder round that runs in every server process.

Why apart from the handlers (``server.api.complaints``): these are the complaints' ways out of
the platform — a text message through the outbox, inbox messages to whoever must act — each
written in the transaction of the change that causes it, never sent from a request by hand.

- :func:`queue_answer_sms` is called by an ``answer`` (or a ``close`` carrying one) inside its
  transaction: the message is stored with the answer or not at all, and its key
  ``complaint:<id>:answer`` makes any retry store nothing new.
- :func:`setup` runs the reminder round every ``[complaints] reminder_interval_s`` in this
  process. The round (``server.db.complaints.remind_overdue``) takes a PostgreSQL advisory
  lock, so however many processes run it, each overdue complaint is marked — and its
  assignee messaged — once; its state is in the rows, so a restart repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from server.db.complaints import remind_overdue
from server.domain.complaints import contact_phone, sms_excerpt
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.settings import Settings
from server.kernel.tasks import stop_task
from server.outbound.sms import enqueue_sms

__all__ = ["queue_answer_sms", "setup"]

log = logging.getLogger(__name__)


async def queue_answer_sms(
    conn: asyncpg.Connection, settings: Settings, row: Any, answer: str
) -> int | None:
    """The answer's SMS to the complainant when their contact is a phone number (the outbox
    row's id), else None; *row* is the complaint's row with its ``contact``."""
    phone = contact_phone(row["contact"])
    if phone is None:
        return None
    params = {
        "city": settings.complaints.city_name,
        "ticket": row["ticket"],
        "answer": sms_excerpt(answer, settings.complaints.sms_answer_max_chars),
    }
    try:
        return await enqueue_sms(
            conn,
            settings.sms,
            phone=phone,
            kind="complaint_answer",
            params=params,
            key=f"complaint:{row['id']}:answer",
        )
    except ValueError as exc:  # a template without the kind: the answer stands, on the page
        log.warning("complaint %s: answer SMS not queued: %s", row["id"], exc)
        return None


async def _reminder_rounds(app: web.Application) -> None:
    """Run the reminder round every ``[complaints] reminder_interval_s`` (docs/CONFIG.md).

    The first round waits one interval too: a process that just started has nothing more
    urgent than the others running (whose rounds continue), and one started briefly — a
    command, a test — never sends reminders in passing."""
    settings = app[SETTINGS]
    while True:
        await asyncio.sleep(settings.complaints.reminder_interval_s)
        try:
            marked = await remind_overdue(app[POOL], settings)
            if marked:
                log.info("complaints past their deadline marked: %d", len(marked))
        except Exception:  # a database blip: the next round catches up (state is in the rows)
            log.exception("complaint reminder round failed")


async def _reminders_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_reminder_rounds(app), name="complaint-reminders")
    try:
        yield
    finally:
        await stop_task(task, app[SETTINGS].services.shutdown_grace_s)


def setup(app: web.Application) -> None:
    """Run the reminder round in this server process, once the pool is open (the app root
    opens it in an earlier cleanup context) and stopped before it closes."""
    app.cleanup_ctx.append(_reminders_ctx)
