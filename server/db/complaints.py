"""Complaints in PostgreSQL: who sees which, filing one, its history, the reminder round
(docs/ARCHITECTURE.md §4 and §7; the rules are server.domain.complaints).

Why here and not in the API: a complaint is filed by three callers — the public QR page's
complaint and fault reports, a regulator entering a phone call, and any later source (the
phone view) — and each must get the same ticket, deadline, scope and first history row, so
:func:`file_complaint` is the one way a complaint gets in. The reminder round runs in every
server process (``server.api.complaint_notices``) and :func:`remind_overdue` is safe to run
in all of them at once; it messages whoever must act through the inbox (``server.db.messages``)
in the same transaction, so a reminder is sent exactly when its mark commits.

Scope (``server.kernel.scope`` has no entity for a row with two companies):

| role | sees |
|---|---|
| admin, city-wide regulator | all |
| regulator | complaints in their districts |
| officer | in their districts, and those assigned to them |
| company_admin | those assigned to its company, and those about it — but a report (举报) about it only once assigned to it |

The complainant's contact is selected for :data:`CONTACT_ROLES` only, so no other role's
query ever reads it (DOMAIN.md "Complaints").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from server.db.messages import deliver_system_message
from server.domain.complaints import CONTACT_ROLES, OPEN_STATES, answer_deadline, format_ticket
from server.domain.localtime import city_date
from server.kernel.principal import Principal
from server.kernel.scope import Sql
from server.kernel.settings import Settings

__all__ = [
    "LOCK_KEY",
    "REMINDER_BATCH",
    "Filed",
    "Overdue",
    "add_event",
    "columns",
    "file_complaint",
    "find_cylinder",
    "history",
    "overdue_sql",
    "remind_overdue",
    "scope",
]

LOCK_KEY: Final = 0x0C71_C0A1
"""Advisory lock of the reminder round (distinct from ingest housekeeping's and migrations')."""
REMINDER_BATCH: Final = 1000
"""Complaints one round marks at most; the rest are the next round's (each is one small row)."""
_TICKET_TRIES: Final = 3
"""Inserts tried on a ticket collision: at 60 random bits a second one never happens."""

FROM: Final = (
    "complaints k"
    " LEFT JOIN companies co ON co.id = k.company_id"
    " LEFT JOIN companies ac ON ac.id = k.assigned_company_id"
    " LEFT JOIN users au ON au.id = k.assigned_user_id"
    " LEFT JOIN cylinders cy ON cy.id = k.cylinder_id"
)
_COLUMNS: Final = (
    "k.id, k.ticket, k.kind, k.source, k.state, k.created_at, k.text, k.code, k.cylinder_id,"
    " cy.barcode AS cylinder_barcode, k.company_id, co.name AS company_name, k.district_code,"
    " k.deadline, k.assigned_company_id, ac.name AS assigned_company_name, k.assigned_user_id,"
    " COALESCE(au.display_name, au.username) AS assigned_user_name, k.assigned_at,"
    " k.answer, k.answered_at, k.outcome, k.closed_at, k.reminded_at,"
    " (k.photo_upload_id IS NOT NULL) AS has_photo"
)


def columns(p: Principal) -> str:
    """The select list for *p*: the contact only for the roles that may read it."""
    return _COLUMNS + (", k.contact" if p.role in CONTACT_ROLES else "")


def scope(p: Principal, alias: str, q: Sql) -> str:
    """The complaints *p* may see (the module's table), as SQL on *alias*."""
    a = alias
    if p.city_wide:
        return "TRUE"
    if p.role == "regulator":
        return f"{a}.district_code = ANY({q.add(list(p.districts))})"
    if p.role == "officer":
        return (
            f"({a}.district_code = ANY({q.add(list(p.districts))})"
            f" OR {a}.assigned_user_id = {q.add(p.user_id)})"
        )
    if p.role == "company_admin" and p.company_id is not None:
        own = q.add(p.company_id)
        return (
            f"({a}.assigned_company_id = {own}"
            f" OR ({a}.company_id = {own} AND {a}.kind <> 'report'))"
        )
    return "FALSE"


def overdue_sql(alias: str, today: str) -> str:
    """Still unanswered after its deadline day (server.domain.complaints.is_overdue)."""
    states = ", ".join(f"'{s}'" for s in OPEN_STATES)
    return f"({alias}.state IN ({states}) AND {alias}.deadline < {today})"


@dataclass(frozen=True)
class Filed:
    """A complaint just filed: what the complainant is told and what the caller audits."""

    id: int
    ticket: str
    created_at: dt.datetime
    deadline: dt.date
    cylinder_id: int | None
    company_id: int | None
    district_code: str | None


async def find_cylinder(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """The cylinder a scanned code names (its barcode, else its tag): its company, district."""
    return await conn.fetchrow(
        """SELECT id, owner_company_id, district_code FROM cylinders
            WHERE barcode = $1 OR tag = $1 ORDER BY (barcode = $1) DESC LIMIT 1""",
        code,
    )


async def file_complaint(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    text: str,
    kind: str = "complaint",
    source: str = "qr",
    code: str | None = None,
    contact: str | None = None,
    company_id: int | None = None,
    district_code: str | None = None,
    photo_upload_id: int | None = None,
    created_by: int | None = None,
    now: dt.datetime | None = None,
) -> Filed:
    """Store a complaint (in the caller's transaction) with its ticket, deadline and first
    history row. A *code* that names a cylinder ties the complaint to its owner company and
    district (they win over *company_id* / *district_code*); a company without a district
    given lends its own. The caller checks the text and audits."""
    now = now or dt.datetime.now(dt.UTC)
    cylinder_id = None
    if code:
        cyl = await find_cylinder(conn, code)
        if cyl is not None:
            cylinder_id = cyl["id"]
            company_id = cyl["owner_company_id"]
            district_code = cyl["district_code"] or district_code
    if company_id is not None and district_code is None:
        district_code = await conn.fetchval(
            "SELECT district_code FROM companies WHERE id = $1", company_id
        )
    deadline = answer_deadline(now, settings.complaints, settings.alerts)
    row = None
    for attempt in range(_TICKET_TRIES):
        try:
            async with conn.transaction():  # a savepoint: a collision leaves nothing behind
                row = await conn.fetchrow(
                    """INSERT INTO complaints (created_at, code, cylinder_id, company_id,
                                              district_code, text, contact, kind, source,
                                              photo_upload_id, created_by, deadline, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $1)
                       RETURNING id, ticket""",
                    now,
                    code,
                    cylinder_id,
                    company_id,
                    district_code,
                    text,
                    contact,
                    kind,
                    source,
                    photo_upload_id,
                    created_by,
                    deadline,
                )
            break
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "complaints_ticket_idx" or attempt == _TICKET_TRIES - 1:
                raise
    assert row is not None
    await add_event(
        conn,
        row["id"],
        "filed",
        None,
        "new",
        created_by,
        details={"kind": kind, "source": source, "deadline": deadline.isoformat()},
        at=now,
    )
    return Filed(row["id"], row["ticket"], now, deadline, cylinder_id, company_id, district_code)


async def add_event(
    conn: asyncpg.Connection,
    complaint_id: int,
    kind: str,
    from_state: str | None,
    to_state: str,
    actor_id: int | None,
    *,
    note: str | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """One row of a complaint's history (never the complainant's contact)."""
    await conn.execute(
        """INSERT INTO complaint_events (complaint_id, at, kind, from_state, to_state, actor_id,
                                         note, details)
           VALUES ($1, COALESCE($2, now()), $3, $4, $5, $6, $7, $8)""",
        complaint_id,
        at,
        kind,
        from_state,
        to_state,
        actor_id,
        note,
        details or {},
    )


async def history(db: asyncpg.Connection | asyncpg.Pool, complaint_id: int) -> list[dict[str, Any]]:
    """Every move of a complaint, oldest first, with who made it (name and role) and, for an
    assignment, to whom."""
    rows = await db.fetch(
        """SELECT e.at, e.kind, e.from_state, e.to_state, e.note, e.details, e.actor_id,
                  COALESCE(u.display_name, u.username) AS actor_name, u.role AS actor_role,
                  ac.name AS assigned_company_name,
                  COALESCE(au.display_name, au.username) AS assigned_user_name
             FROM complaint_events e LEFT JOIN users u ON u.id = e.actor_id
             LEFT JOIN companies ac ON ac.id = (e.details ->> 'assigned_company_id')::bigint
             LEFT JOIN users au ON au.id = (e.details ->> 'assigned_user_id')::bigint
            WHERE e.complaint_id = $1 ORDER BY e.at, e.id""",
        complaint_id,
    )
    return [dict(r.items()) for r in rows]


@dataclass(frozen=True)
class Overdue:
    """A complaint the round just marked: whom to remind."""

    id: int
    ticket: str
    state: str
    deadline: dt.date
    assigned_company_id: int | None
    assigned_user_id: int | None
    district_code: str | None


async def remind_overdue(
    pool: asyncpg.Pool, settings: Settings, now: dt.datetime | None = None
) -> list[Overdue]:
    """One reminder round: mark each open complaint past its deadline day once (``reminded_at``
    and an ``overdue`` history row), message whoever must act on it (:func:`_remind`) and
    return them.

    Every server process runs rounds; the transaction-scoped advisory lock lets one at a
    time work and the others return at once, and what a round did is in the rows it commits
    (a restart neither repeats nor skips a complaint). Even without the lock a complaint
    could not be marked twice: the rows are claimed ``FOR UPDATE SKIP LOCKED`` where
    ``reminded_at IS NULL``, and one overdue row per deadline is a unique index. A new
    deadline set when assigning clears ``reminded_at``, arming the reminder again.
    """
    now = now or dt.datetime.now(dt.UTC)
    today = city_date(now, settings.alerts)
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return []
        rows = await conn.fetch(
            f"""WITH due AS (
                    SELECT id FROM complaints k
                     WHERE k.reminded_at IS NULL AND {overdue_sql("k", "$1")}
                     ORDER BY k.deadline, k.id LIMIT $2
                       FOR UPDATE SKIP LOCKED)
                UPDATE complaints k SET reminded_at = $3 FROM due WHERE k.id = due.id
                RETURNING k.id, k.ticket, k.state, k.deadline, k.assigned_company_id,
                          k.assigned_user_id, k.district_code""",
            today,
            REMINDER_BATCH,
            now,
        )
        marked = [Overdue(**dict(r.items())) for r in rows]
        for o in marked:
            told = await _remind(conn, o)
            await conn.execute(
                """INSERT INTO complaint_events (complaint_id, at, kind, from_state, to_state,
                                                 details)
                   VALUES ($1, $2, 'overdue', $3, $3, $4)
                   ON CONFLICT DO NOTHING""",
                o.id,
                now,
                o.state,
                {"deadline": o.deadline.isoformat(), "reminded_users": told},
            )
    return marked


REMINDER_TEXT: Final = {
    "zh-CN": (
        "投诉 {ticket} 已超过答复期限",
        "投诉（受理编号 {ticket}）的答复期限为 {deadline}，至今尚未答复。"
        "请在“投诉举报”页面办理：/complaints?ticket={ticket}",
    ),
    "en": (
        "Complaint {ticket} is past its deadline",
        "The answer to complaint {ticket} was due by {deadline} and has not been given. "
        "Handle it on the Complaints page: /complaints?ticket={ticket}",
    ),
}
"""The reminder's subject and body in each interface language (users.language)."""


async def _remind(conn: asyncpg.Connection, o: Overdue) -> int:
    """Message whoever must act on an overdue complaint, in their language, through the inbox
    (server.db.messages, in the round's transaction): the user it is assigned to, or the
    admins of the company it is assigned to; a complaint nobody was given yet, the regulators
    of its district and the city-wide ones. Returns how many users were told."""
    rows = await conn.fetch(
        """SELECT id, language FROM users
            WHERE active AND (id = $1 OR (role = 'company_admin' AND company_id = $2)
                  OR ($3 AND role = 'regulator'
                      AND (cardinality(districts) = 0 OR $4 = ANY(districts))))
            ORDER BY id""",
        o.assigned_user_id,
        o.assigned_company_id,
        o.state == "new",
        o.district_code,
    )
    by_language: dict[str, list[int]] = {}
    for r in rows:
        lang = r["language"] if r["language"] in REMINDER_TEXT else "zh-CN"
        by_language.setdefault(lang, []).append(r["id"])
    values = {"ticket": format_ticket(o.ticket), "deadline": o.deadline.isoformat()}
    for lang, users in by_language.items():
        subject, body = REMINDER_TEXT[lang]
        await deliver_system_message(conn, users, subject.format(**values), body.format(**values))
    return len(rows)
