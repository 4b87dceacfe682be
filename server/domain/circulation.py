"""Circulation checks (违规流通自动报警): alarms at every step a cylinder moves, not only at the gun.

The gun refuses an overdue, scrapped or foreign cylinder (:mod:`.authorization`), but a
cylinder also travels: dispatched from a station, delivered to a household, taken back,
moved between sites. DOMAIN.md "Circulation checks" lists what the bureau wants raised on
those steps, each a rule here, pure and synchronous — facts in, a decision out:

- :func:`violation_reasons` — an overdue, scrapped or voided-tag cylinder dispatched,
  delivered, transferred or received (``circulation_violation``; the reason is the
  compliance status of :func:`.dates.compliance_status`, the one rule of docs/ARCHITECTURE.md
  §4, or ``tag_voided``). A ``return`` is not a violation: taking an unsafe cylinder back out
  of the households is what should happen to it.
- :func:`illegal_fill_suspected` — a cylinder delivered with no completed fill at a licensed
  station since its last return or its registration (``suspected_illegal_fill``, 黑充装嫌疑):
  it reached a customer full without passing a supervised gun. "Licensed" is the gun's own
  rule (:func:`station_licensed`).
- :func:`is_foreign` — a handheld of a company that neither owns the cylinder nor holds an
  entrustment from its owner (``foreign_cylinder``, 串瓶 / 产权瓶流失); entrustments count on
  the days they are in force (:func:`.entrustments.in_force`).
- :func:`impossible_trip` — one tag read at two places no vehicle could connect in the time
  between (``cloned_tag``, 克隆标签嫌疑): one of the reads is a copied chip.
- :func:`site_allowed` — a handheld may name a site of its own company (or of a company it has
  an entrustment with, either way) in a scan, never another company's: the site decides where
  a cylinder is stocked, so a foreign one is refused as invalid input (a dead letter).

Every number and every on/off switch is :class:`server.kernel.settings.Circulation`
(docs/CONFIG.md ``[circulation]``); the compliance dates are ``[dates]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from server.kernel.settings import Circulation, Dates

from .authorization import StationFacts, licence_missing
from .dates import ComplianceStatus, compliance_status
from .entrustments import in_force

__all__ = [
    "TAG_VOIDED",
    "VIOLATION_ACTIONS",
    "CylinderState",
    "FillHistory",
    "entrusted_on",
    "illegal_fill_suspected",
    "impossible_trip",
    "is_foreign",
    "site_allowed",
    "station_licensed",
    "violation_reasons",
]

VIOLATION_ACTIONS: Final[frozenset[str]] = frozenset({"dispatch", "deliver", "transfer", "receive"})
"""Scan actions that move a cylinder on towards use (DOMAIN.md); ``return`` is not one."""

TAG_VOIDED: Final = "tag_voided"
"""Reason of a violation whose tag was voided (scrapping voids a tag for ever): a tag code
is never reused (DB4114/T 185-2023), so a voided tag still circulating is a finding itself."""

_UNSAFE: Final[frozenset[ComplianceStatus]] = frozenset(
    {ComplianceStatus.SCRAPPED, ComplianceStatus.OVERDUE}
)
"""Compliance statuses in which a cylinder may not be used (TSG 23-2021); ``*_due`` still may."""


@dataclass(frozen=True, slots=True)
class CylinderState:
    """The record facts the compliance rule reads."""

    status: str
    next_inspection_date: date | None
    scrap_date: date | None
    tag_voided: bool


def violation_reasons(
    action: str, cylinder: CylinderState, today: date, dates: Dates, rules: Circulation
) -> tuple[str, ...]:
    """Why moving *cylinder* by *action* on *today* is a ``circulation_violation`` (empty: it is
    not one, or the check is off): its compliance status (``scrapped`` or ``overdue``, by the
    precedence of :func:`.dates.compliance_status`) and/or :data:`TAG_VOIDED`."""
    if not rules.circulation_violation or action not in VIOLATION_ACTIONS:
        return ()
    status = compliance_status(
        cylinder.status, cylinder.next_inspection_date, cylinder.scrap_date, today, dates
    )
    reasons: list[str] = [status.value] if status in _UNSAFE else []
    if cylinder.tag_voided:
        reasons.append(TAG_VOIDED)
    return tuple(reasons)


def station_licensed(
    station_id: int,
    company_id: int,
    licence_no: str | None,
    licence_expiry: date | None,
    licence_status: str,
    day: date,
) -> bool:
    """Did the station hold a valid filling licence on *day*? The gun's own rule
    (``station_not_licensed`` of :func:`.authorization.authorize_fill`), so that "a fill at a
    licensed station" means exactly what the gun would have allowed. The bureau's status is
    today's (its history is not kept); the expiry is compared with *day*."""
    facts = StationFacts(station_id, company_id, licence_no, licence_expiry, licence_status)
    return not licence_missing(facts, day)


@dataclass(frozen=True, slots=True)
class FillHistory:
    """What the cylinder record says of its last fill and return (kept by ingest)."""

    registered_at: datetime | None
    last_fill_at: datetime | None
    last_fill_licensed: bool
    """The station of the last fill was licensed on the fill's day (:func:`station_licensed`)."""
    last_return_at: datetime | None


def illegal_fill_suspected(
    delivered_at: datetime, history: FillHistory, rules: Circulation
) -> bool:
    """``suspected_illegal_fill``: delivered at *delivered_at* with no completed fill at a
    licensed station since the last return (or, never returned, since registration).

    The record keeps only the *latest* fill and return. When either is later than the
    delivery (a delivery that arrives late, buffered by an offline handheld), the record no
    longer tells what came before it, and the rule stays silent rather than guess: a false
    黑充装 accusation against a company is worse than a missed one that the next delivery
    of the same cylinder will show.
    """
    if not rules.suspected_illegal_fill:
        return False
    h = history
    since = h.last_return_at if h.last_return_at is not None else h.registered_at
    if since is not None and since > delivered_at:
        return False
    if h.last_fill_at is None:
        return True
    if h.last_fill_at > delivered_at:
        return False
    if since is not None and h.last_fill_at <= since:
        return True
    return not h.last_fill_licensed


def entrusted_on(periods: Iterable[tuple[date, date | None]], day: date) -> bool:
    """Is any of the entrustments (``valid_from``, ``valid_to``) in force on *day*?"""
    return any(in_force(valid_from, valid_to, day) for valid_from, valid_to in periods)


def is_foreign(
    owner_company_id: int, scanner_company_id: int | None, entrusted: bool, rules: Circulation
) -> bool:
    """``foreign_cylinder``: the scanning handheld's company is neither the owner nor entrusted
    by it (*entrusted*: an entrustment owner → scanner in force that day, :func:`entrusted_on`).
    A handheld of no company is judged by :func:`site_allowed` alone: there is no one to blame."""
    return (
        rules.foreign_cylinder
        and scanner_company_id is not None
        and scanner_company_id != owner_company_id
        and not entrusted
    )


def site_allowed(
    site_company_id: int | None, scanner_company_id: int | None, entrusted: bool
) -> bool:
    """May a handheld of *scanner_company_id* name a site of *site_company_id* in a scan?

    Yes for a site of its own company, of no company, or of a company it has an entrustment
    with in force (either way: the filler's driver brings the owner's cylinders back to the
    owner's store). Never another company's: the site is where the cylinder is then stocked,
    so trusting any code in a payload would let a device move stock between companies.
    """
    return site_company_id is None or site_company_id == scanner_company_id or entrusted


def impossible_trip(km: float, between: timedelta, rules: Circulation) -> bool:
    """``cloned_tag``: two reads of one tag *km* apart and *between* apart in time that no
    vehicle could connect — more than ``cloned_tag_km`` apart (below it: positioning error),
    at most ``cloned_tag_window_s`` apart in time (older reads are not compared), and faster
    than ``cloned_tag_speed_kmh`` (two reads at the same instant are infinitely fast). The
    distance is the caller's (a great-circle distance between the two fixes). False when the
    check is off."""
    gap = abs(between)
    if not rules.cloned_tag or gap > timedelta(seconds=rules.cloned_tag_window_s):
        return False
    if km <= rules.cloned_tag_km:
        return False
    return km > rules.cloned_tag_speed_kmh * (gap / timedelta(hours=1))
