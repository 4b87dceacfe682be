"""Complaints (投诉举报, DOMAIN.md "Complaints"): states, who may move them, the answer deadline,
the ticket the complainant follows (docs/ARCHITECTURE.md §4).

A complaint is filed from the public QR page, the phone view or by a regulator entering a
phone call. Its life is ``new → assigned → answered → closed`` and it closes ``upheld`` or
``not_upheld`` — the outcome credit evaluation counts (DOMAIN.md "Credit evaluation":
complaint upheld −3, by ``closed_at``).

- **assign** (a regulator or the admin): ``new`` or ``assigned`` (re-assigned) → ``assigned``,
  to a company (its company admin answers) or to a user of the bureau (an officer).
- **answer** (the assignee: that company's admin or that user; the admin too):
  ``assigned → answered``. The answer is what the complainant reads on the tracking page.
- **close** (a regulator or the admin): ``answered → closed`` with an outcome. A complaint
  still ``new`` or ``assigned`` may be closed at once only with an answer given in the same
  step (a duplicate, a complaint settled on the phone): the complainant is never left with
  a closed ticket and no word.

The deadline is a number of working days (Monday to Friday on the city's calendar) after
the day of filing; a complaint not yet answered after its deadline day is overdue.

Tickets are 12 characters of an alphabet without the look-alikes 0/O and 1/I: 32 symbols,
5 bits each, 60 random bits — a public lookup key nobody guesses (the public API is also
rate-limited), short enough to read over the phone. People may type them in lower case,
with spaces or dashes (:func:`normalize_ticket`).

Pure like the rest of the domain: the caller passes the moment, the settings and the facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from server.kernel.settings import Alerts, Complaints

from .localtime import city_date
from .statuses import COMPLAINT_STATES

__all__ = [
    "ACTIONS",
    "ASSIGN_ROLES",
    "CLOSE_ROLES",
    "COMPLAINT_KINDS",
    "COMPLAINT_SOURCES",
    "COMPLAINT_STATES",
    "CONTACT_ROLES",
    "EVENT_KINDS",
    "OPEN_STATES",
    "OUTCOMES",
    "READ_ROLES",
    "TICKET_ALPHABET",
    "TICKET_LENGTH",
    "Assignment",
    "TransitionRefused",
    "add_working_days",
    "answer_deadline",
    "contact_phone",
    "format_ticket",
    "is_overdue",
    "may_act",
    "next_state",
    "normalize_ticket",
    "sms_excerpt",
]

OPEN_STATES: Final[tuple[str, ...]] = ("new", "assigned")
"""States in which the answer is still due (and so may be overdue)."""
COMPLAINT_KINDS: Final[tuple[str, ...]] = ("complaint", "report", "fault")
"""投诉 (about service: short weight, rudeness), 举报 (a report of illegal filling or a hazard:
never shown to the company reported before a regulator assigns it), 故障报修 (a fault of the
cylinder or valve reported from the QR page)."""
COMPLAINT_SOURCES: Final[tuple[str, ...]] = ("qr", "mobile", "phone")
"""Where it came from: the public QR page, the phone view, a phone call a regulator entered."""
OUTCOMES: Final[tuple[str, ...]] = ("upheld", "not_upheld")
ACTIONS: Final[tuple[str, ...]] = ("assign", "answer", "close")
EVENT_KINDS: Final[tuple[str, ...]] = ("filed", "assign", "answer", "close", "overdue")
"""Rows of a complaint's history: its filing, each action, the reminder round's mark."""

READ_ROLES: Final[tuple[str, ...]] = ("admin", "regulator", "officer", "company_admin")
ASSIGN_ROLES: Final[tuple[str, ...]] = ("admin", "regulator")
CLOSE_ROLES: Final[tuple[str, ...]] = ("admin", "regulator")
CONTACT_ROLES: Final[tuple[str, ...]] = ("admin", "regulator")
"""Who may read the complainant's contact details (DOMAIN.md: regulators only, never the
company concerned)."""
ASSIGNEE_ROLES: Final[tuple[str, ...]] = ("officer", "regulator")
"""Users of the bureau a complaint may be assigned to (a regulator may take one on)."""

TICKET_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""32 symbols: digits and capitals without 0/O and 1/I (migration 0140 generates from it)."""
TICKET_LENGTH: Final = 12
"""60 random bits: guessing one live ticket among a million takes ~10^12 tries."""
TICKET_GROUP: Final = 4
"""Symbols per group when a ticket is shown (``ABCD-EFGH-JKLM``): read and typed in fours."""
SATURDAY: Final = 5
"""``date.weekday()`` of Saturday: Monday to Friday are working days (public holidays are not
known to the platform)."""
_SEPARATORS: Final = re.compile(r"[\s\-_.]")
_TICKET: Final = re.compile(rf"^[{TICKET_ALPHABET}]{{{TICKET_LENGTH}}}$")
_PHONE: Final = re.compile(r"^\+?[0-9]{5,15}$")
_CN_MOBILE: Final = re.compile(r"(?<![0-9])(?:\+?86)?(1[3-9][0-9]{9})(?![0-9])")
_PHONE_SEPARATORS: Final = re.compile(r"[\s\-()]")


class TransitionRefused(ValueError):
    """An action the complaint's state does not allow (the API answers 409)."""

    def __init__(self, action: str, state: str, message: str) -> None:
        super().__init__(message)
        self.action = action
        self.state = state


@dataclass(frozen=True)
class Assignment:
    """Who must answer a complaint: a company (its admins) or one user of the bureau."""

    company_id: int | None = None
    user_id: int | None = None


def next_state(state: str, action: str, *, with_answer: bool = False) -> str:
    """The state after *action*, or :class:`TransitionRefused`.

    *with_answer*: a ``close`` carries the answer to the complainant (needed to close a
    complaint that was never answered)."""
    if state not in COMPLAINT_STATES:
        raise ValueError(f"state: unknown complaint state {state!r}")
    if action == "assign":
        if state in OPEN_STATES:
            return "assigned"
        raise TransitionRefused(action, state, f"state: a complaint {state} is not assigned again")
    if action == "answer":
        if state == "assigned":
            return "answered"
        why = "assign it first" if state == "new" else f"it is already {state}"
        raise TransitionRefused(action, state, f"state: a complaint {state} is not answered: {why}")
    if action == "close":
        if state == "answered" or (state in OPEN_STATES and with_answer):
            return "closed"
        if state in OPEN_STATES:
            raise TransitionRefused(
                action, state, f"state: a complaint {state} is closed only with an answer"
            )
        raise TransitionRefused(action, state, "state: the complaint is already closed")
    raise ValueError(f"action: must be one of {', '.join(ACTIONS)}")


def may_act(
    action: str,
    role: str,
    *,
    user_id: int,
    company_id: int | None,
    assigned: Assignment,
) -> bool:
    """Whether a person of *role* may take *action* on a complaint in their scope.

    The answer is the assignee's: the admin of the company it is assigned to, or the bureau
    user it is assigned to (the admin may answer any, to unblock one)."""
    if action == "assign":
        return role in ASSIGN_ROLES
    if action == "close":
        return role in CLOSE_ROLES
    if action == "answer":
        if role == "admin":
            return True
        if role == "company_admin":
            return company_id is not None and assigned.company_id == company_id
        return role in ASSIGNEE_ROLES and assigned.user_id == user_id
    return False


def add_working_days(start: date, days: int) -> date:
    """The *days*-th working day (Monday–Friday) after *start* (which itself never counts)."""
    if days < 0:
        raise ValueError("days: must not be negative")
    day = start
    left = days
    while left:
        day += timedelta(days=1)
        if day.weekday() < SATURDAY:
            left -= 1
    return day


def answer_deadline(filed_at: datetime, rules: Complaints, clock: Alerts) -> date:
    """The last day to answer a complaint filed at *filed_at*: ``answer_working_days``
    working days after the city's day of filing (``[complaints]``, ``[alerts] timezone``)."""
    return add_working_days(city_date(filed_at, clock), rules.answer_working_days)


def is_overdue(state: str, deadline: date | None, today: date) -> bool:
    """Still unanswered after its deadline day (the same test as the SQL of server.db)."""
    return state in OPEN_STATES and deadline is not None and deadline < today


def normalize_ticket(raw: str) -> str | None:
    """A ticket as stored (12 capitals of :data:`TICKET_ALPHABET`), or None if *raw* cannot
    be one. Case, spaces and dashes are forgiven; look-alikes are not guessed at."""
    text = _SEPARATORS.sub("", raw).upper()
    return text if _TICKET.match(text) else None


def format_ticket(ticket: str) -> str:
    """``ABCD-EFGH-JKLM``: groups of four, as people read and type it."""
    return "-".join(ticket[i : i + TICKET_GROUP] for i in range(0, len(ticket), TICKET_GROUP))


def contact_phone(contact: str | None) -> str | None:
    """The phone number to text in a complainant's contact details, or None.

    The contact is free text ("张先生 138-0013-8000", an e-mail, "anonymous"): a contact that
    is a phone number (5–15 digits, separators allowed) is that number; otherwise a mainland
    mobile number (11 digits from 13–19) inside the text is."""
    if not contact:
        return None
    compact = _PHONE_SEPARATORS.sub("", contact)
    if _PHONE.match(compact):
        return compact
    found = _CN_MOBILE.search(compact)
    return found.group(1) if found else None


def sms_excerpt(answer: str, max_chars: int) -> str:
    """The answer as an SMS quotes it: at most *max_chars* characters, "…" when cut."""
    text = " ".join(answer.split())
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
