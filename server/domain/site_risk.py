"""The officer's daily inspection list: which sites to visit first, and why.

A filling station or store is scored from the facts of a recent window (``[risk]
window_days``): each factor's count, held within its cap, times its weight, summed. The
sites are ranked by that score, highest first, and each carries its reasons — the count per
factor and a sentence a person reads (zh-CN and English), the heaviest first — so that an
officer knows what to look for on arrival. Every number is a setting (docs/CONFIG.md
"[risk]" says why each weight is what it is); this module only decides, pure like the rest
of the domain (docs/ARCHITECTURE.md §4): ``server.db.site_risk`` gathers the counts in one
query and ranks them in SQL with the same arithmetic (:func:`score_terms` says how), and a
property test checks the two orders agree.

Arithmetic is in ``Decimal`` so that the SQL's ``numeric`` sums and these are the same
number, never two floats summed in another order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, Generic, TypeVar

from server.domain.events import EventKind
from server.kernel.settings import Risk

__all__ = [
    "COMPLAINT_DISMISSED",
    "COMPLAINT_FILL_KIND",
    "COMPLAINT_HANDOVER_KINDS",
    "FACTORS",
    "HANDLING_KINDS",
    "READ_ROLES",
    "SITE_KINDS",
    "Factor",
    "Reason",
    "Scored",
    "cap",
    "list_size",
    "points",
    "rank",
    "reasons",
    "score",
    "score_terms",
    "sentence",
    "weight",
    "window_first_day",
]


class Factor(StrEnum):
    """What ranks a site. Declaration order is the order of the list's columns."""

    denied_attempt = "denied_attempt"
    """Fill attempts the site's guns refused (any reason)."""
    overfill = "overfill"
    """Fills judged overfilled at the station (completed or aborted: the gas is in)."""
    overstock_day = "overstock_day"
    """Days the site held more full cylinders than permitted (its overstock alerts)."""
    open_alert = "open_alert"
    """Alerts at the site not yet resolved, whenever raised."""
    overdue_cylinder = "overdue_cylinder"
    """Distinct cylinders seen at the site on a day after their next inspection date."""
    complaint = "complaint"
    """Complaints about a cylinder the site last filled or handled, not dismissed."""


FACTORS: Final[tuple[str, ...]] = tuple(f.value for f in Factor)

READ_ROLES: Final[tuple[str, ...]] = ("admin", "regulator", "officer")
"""Who reads the list (the API, the page, the phone's tab): the supervision side. Not a
company: the list says where inspectors will go, and a visit announced is a visit wasted."""

SITE_KINDS: Final[tuple[str, ...]] = ("filling_station", "store")
"""Sites an officer inspects for these factors: where cylinders are filled and sold.
Warehouses and inspection agencies have their own supervision (licences, inspections)."""


HANDLING_KINDS: Final[tuple[str, ...]] = (
    EventKind.fill,
    EventKind.dispatch,
    EventKind.deliver,
    EventKind.transfer,
    EventKind.receive,
)
"""Trajectory events by which a site handles a cylinder on its way to a customer: an overdue
cylinder seen in one of these is circulating (DOMAIN.md "Circulation checks"). A return is
not among them — taking an overdue cylinder back is what a site should do — nor a refusal,
which the gun made and ``denied_attempt`` counts."""

COMPLAINT_FILL_KIND: Final[str] = EventKind.fill
"""A complaint about a cylinder counts against the station that last filled it before the
complaint ..."""
COMPLAINT_HANDOVER_KINDS: Final[tuple[str, ...]] = (
    EventKind.dispatch,
    EventKind.deliver,
    EventKind.transfer,
)
"""... and against the site that last handed it on towards the complainant."""
COMPLAINT_DISMISSED: Final[str] = "not_upheld"
"""A complaint closed as not upheld is not a fact about the site; open and upheld ones are."""


def weight(factor: str, cfg: Risk) -> Decimal:
    """Points one counted fact of *factor* adds, as the decimal a person wrote (0.1 stays 0.1)."""
    return Decimal(str(cfg.weights[factor]))  # type: ignore[index]


def cap(factor: str, cfg: Risk) -> int | None:
    """The most facts of *factor* the score counts, or None (no cap)."""
    return cfg.caps.get(factor)  # type: ignore[call-overload, no-any-return]


def _counted(factor: str, count: int, cfg: Risk) -> int:
    limit = cap(factor, cfg)
    return count if limit is None else min(count, limit)


def points(factor: str, count: int, cfg: Risk) -> Decimal:
    """What *count* facts of *factor* add to a score: weight × the count within its cap."""
    if count < 0:
        raise ValueError(f"{factor}: a count is never negative ({count})")
    return weight(factor, cfg) * _counted(factor, count, cfg)


def score(counts: Mapping[str, int], cfg: Risk) -> Decimal:
    """A site's score: the points of every factor (a factor missing from *counts* is 0)."""
    total = Decimal(0)
    for factor in FACTORS:
        total += points(factor, counts.get(factor, 0), cfg)
    return total


def score_terms(cfg: Risk) -> tuple[tuple[str, Decimal, int | None], ...]:
    """(factor, weight, cap) per factor in :data:`FACTORS` order: what the SQL ranking sums as
    ``weight * least(count, cap)`` — the same terms :func:`score` adds, so the two agree."""
    return tuple((f, weight(f, cfg), cap(f, cfg)) for f in FACTORS)


def list_size(limit: int | None, cfg: Risk) -> int:
    """Sites one list shows: *limit* as asked (``list_default`` when None), at most ``list_max``."""
    if limit is None:
        return cfg.list_default
    if limit < 1 or limit > cfg.list_max:
        raise ValueError(f"limit: from 1 to {cfg.list_max}")
    return limit


def window_first_day(today: dt.date, cfg: Risk) -> dt.date:
    """The first city day the window counts: ``window_days`` days, today included."""
    return today - dt.timedelta(days=cfg.window_days - 1)


# --------------------------------------------------------------------------- reasons


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def sentence(factor: str, count: int, window_days: int, lang: str) -> str:
    """One reason as a person reads it: *count* facts of *factor* in the window (``zh-CN``
    or ``en``; any other language gets the English)."""
    n, d = count, window_days
    if lang == "zh-CN":
        return {
            Factor.denied_attempt: f"近{d}天充装枪拒绝充装{n}次",
            Factor.overfill: f"近{d}天超装{n}瓶",
            Factor.overstock_day: f"近{d}天中有{n}天重瓶超量存放",
            Factor.open_alert: f"尚有{n}条告警未解除",
            Factor.overdue_cylinder: f"近{d}天经手超期未检气瓶{n}只",
            Factor.complaint: f"近{d}天涉及其充装或经手气瓶的投诉{n}件",
        }[Factor(factor)]
    return {
        Factor.denied_attempt: f"{n} fill {_plural(n, 'attempt', 'attempts')} refused at its "
        f"guns in the last {d} days",
        Factor.overfill: f"{n} {_plural(n, 'cylinder', 'cylinders')} overfilled in the last "
        f"{d} days",
        Factor.overstock_day: f"over its permitted full-cylinder storage on {n} "
        f"{_plural(n, 'day', 'days')} of the last {d}",
        Factor.open_alert: f"{n} {_plural(n, 'alert', 'alerts')} still open",
        Factor.overdue_cylinder: f"{n} overdue {_plural(n, 'cylinder', 'cylinders')} handled "
        f"there in the last {d} days",
        Factor.complaint: f"{n} {_plural(n, 'complaint', 'complaints')} about cylinders it "
        f"filled or handed on in the last {d} days",
    }[Factor(factor)]


def _cap_note(limit: int, lang: str) -> str:
    if lang == "zh-CN":
        return f"（计分以{limit}为限）"
    return f" (the score counts {limit})"


@dataclass(frozen=True, slots=True)
class Reason:
    """One factor behind a site's rank: what was counted, what it weighs, what it reads as."""

    factor: str
    count: int
    """Facts counted in the window."""
    counted: int
    """The count within the factor's cap: what the score multiplies."""
    weight: Decimal
    points: Decimal
    text: str
    """The sentence in zh-CN."""
    text_en: str


def reasons(counts: Mapping[str, int], cfg: Risk) -> tuple[Reason, ...]:
    """The factors with facts, the heaviest first (then in :data:`FACTORS` order); a factor
    weighing 0 is still a reason (its count is shown, it adds nothing)."""
    out = []
    for factor in FACTORS:
        count = counts.get(factor, 0)
        if count <= 0:
            continue
        counted = _counted(factor, count, cfg)
        text = sentence(factor, count, cfg.window_days, "zh-CN")
        text_en = sentence(factor, count, cfg.window_days, "en")
        if counted < count:
            text += _cap_note(counted, "zh-CN")
            text_en += _cap_note(counted, "en")
        out.append(
            Reason(
                factor=factor,
                count=count,
                counted=counted,
                weight=weight(factor, cfg),
                points=points(factor, count, cfg),
                text=text,
                text_en=text_en,
            )
        )
    order = {f: i for i, f in enumerate(FACTORS)}
    out.sort(key=lambda r: (-r.points, order[r.factor]))
    return tuple(out)


# --------------------------------------------------------------------------- ranking

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Scored(Generic[K]):
    """A site (its *key*, e.g. an id) with its score and the reasons behind it."""

    key: K
    score: Decimal
    reasons: tuple[Reason, ...]


def rank(sites: Iterable[tuple[K, str, Mapping[str, int]]], cfg: Risk) -> list[Scored[K]]:
    """(key, code, counts) per site → the list: sites scoring above 0, highest first, ties by
    the site's code (the order a person finds in a printed list)."""
    scored = []
    for key, code, counts in sites:
        total = score(counts, cfg)
        if total > 0:
            scored.append((total, code, Scored(key, total, reasons(counts, cfg))))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [s for _, _, s in scored]
