"""The notices' reminder round: those who have not signed a notice by its deadline are reminded
once, by an inbox message and, for a company's users, an SMS to the company (docs/API.md
"Messages and notices"; docs/CONFIG.md "[messages]").

Why it runs like this:

- **Every server process runs rounds** (every ``[messages] reminder_interval_s``, started by
  :func:`setup`); a transaction-scoped PostgreSQL advisory lock lets one at a time work and
  the others return at once. Even two rounds that both got past the lock could not remind a
  notice twice: the notices are claimed ``FOR UPDATE SKIP LOCKED`` where ``reminded_at`` is
  null, and each recipient row is marked in the same transaction (``server.db.notices``).
- **State in PostgreSQL, so restarts neither repeat nor skip.** What a round did is the rows
  it committed: the notice's and each recipient's ``reminded_at``, the inbox message, the
  SMS queued. A process killed mid-round commits nothing of it; the next round does it all.
- **The SMS goes to the company, once.** Users have no phone of their own in the platform;
  a company has a contact phone (``companies.contact_phone``). Each company with an unsigned
  company admin or station operator gets one ``notice_reminder`` SMS per notice (its
  idempotency key says so), queued in the round's transaction (``server.outbound.sms``).
  Regulators, officers and inspection agencies get the inbox message only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

import asyncpg
from aiohttp import web

from server.db.messages import deliver_system_message
from server.db.notices import LOCK_KEY, claim_due
from server.domain.localtime import city_zone
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.settings import Settings
from server.kernel.tasks import stop_task
from server.outbound.sms import enqueue_sms, normalize_phone

__all__ = ["Round", "remind_round", "setup"]

log = logging.getLogger(__name__)

SMS_TITLE_MAX_CHARS: Final = 24
"""Of a notice's title quoted in the SMS: one SMS is 70 Chinese characters and the template
takes about 40 of them."""
_COMPANY_ROLES: Final = ("company_admin", "station_operator")


@dataclass
class Round:
    """What one round did (counts for the log and the tests)."""

    notices: list[int] = field(default_factory=list)
    reminded_users: int = 0
    messages: int = 0
    sms: int = 0
    locked_out: bool = False


def _short(title: str) -> str:
    return title if len(title) <= SMS_TITLE_MAX_CHARS else title[: SMS_TITLE_MAX_CHARS - 1] + "…"


async def remind_round(
    pool: asyncpg.Pool, settings: Settings, now: dt.datetime | None = None
) -> Round:
    """One round: every notice past its deadline and not yet reminded gets its reminders."""
    now = now or dt.datetime.now(dt.UTC)
    zone = city_zone(settings.alerts)
    done = Round()
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            done.locked_out = True
            return done
        for due in await claim_due(conn, now):
            done.notices.append(due.id)
            if not due.unsigned:
                continue
            done.reminded_users += len(due.unsigned)
            local = due.deadline.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            message = await deliver_system_message(
                conn,
                due.unsigned,
                f"通知签收提醒：{due.title}",
                f"通知《{due.title}》应于 {local} 前签收，您尚未签收。请打开通知阅读并签收。",
                notice_id=due.id,
            )
            done.messages += message is not None
            done.sms += await _sms_companies(conn, settings, due.id, due.title, local, due.unsigned)
    if done.notices:
        log.info(
            "notice reminders: %d notice(s), %d user(s), %d SMS",
            len(done.notices),
            done.reminded_users,
            done.sms,
        )
    return done


async def _sms_companies(
    conn: asyncpg.Connection,
    settings: Settings,
    notice_id: int,
    title: str,
    deadline: str,
    users: list[int],
) -> int:
    """One SMS per company of the unsigned company users, to its contact phone."""
    rows = await conn.fetch(
        """SELECT DISTINCT c.id, c.contact_phone FROM users u JOIN companies c ON c.id = u.company_id
            WHERE u.id = ANY($1::bigint[]) AND u.role = ANY($2::text[])
              AND c.contact_phone IS NOT NULL AND c.contact_phone <> ''
            ORDER BY c.id""",
        users,
        list(_COMPANY_ROLES),
    )
    queued = 0
    for r in rows:
        try:
            phone = normalize_phone(r["contact_phone"])
        except ValueError:
            log.warning("notice %d: company %d has no usable contact phone", notice_id, r["id"])
            continue
        sms_id = await enqueue_sms(
            conn,
            settings.sms,
            phone=phone,
            kind="notice_reminder",
            params={
                "city": settings.messages.city_name,
                "title": _short(title),
                "deadline": deadline,
            },
            key=f"notice:{notice_id}:reminder:company:{r['id']}",
        )
        queued += sms_id is not None
    return queued


async def _loop(app: web.Application) -> None:
    settings = app[SETTINGS]
    pool = app[POOL]
    while True:
        try:
            await remind_round(pool, settings)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("notice reminders: round failed (%s); trying again later", exc)
        except Exception:
            log.exception("notice reminders: round failed")
        await asyncio.sleep(settings.messages.reminder_interval_s)


async def _reminders_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(_loop(app), name="notice-reminders")
    try:
        yield
    finally:
        await stop_task(task, app[SETTINGS].services.shutdown_grace_s)


def setup(app: web.Application) -> None:
    """Run the reminder round in this server process (after the pool opens; the app root
    appends the API's contexts after its services context)."""
    app.cleanup_ctx.append(_reminders_ctx)
