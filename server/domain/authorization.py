"""Fill authorization: may this gun fill this cylinder today?

GB/T 38059-2019 气瓶射频识别(RFID)应用 充装控制管理要求 describes an *automatic filling
control system*: the gun reads the cylinder's tag, the data platform verifies the cylinder
and the station, and the filling control terminal opens only on the platform's answer.
TSG 23-2021 lists what must be refused: a cylinder that is not the filling unit's own
(or entrusted to it), past its periodic inspection, scrapped, or not in use, and any
filling by a unit without a valid filling licence. docs/ARCHITECTURE.md §4 fixes the reason codes.

The answer always carries *every* applicable reason, in one canonical order, so that the
regulator's refusal statistics count each cause and the operator learns everything that
is wrong in one scan rather than one reason per attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from server.kernel.settings import GunCodes

from .dates import is_inspection_overdue, is_scrapped
from .statuses import IN_SERVICE, SCRAPPED, VALID_LICENCE

__all__ = [
    "GUN_CODE_SEVERITY",
    "CylinderFacts",
    "FillDecision",
    "Reason",
    "StationFacts",
    "authorize_fill",
    "gun_code",
    "most_severe",
]


class Reason(StrEnum):
    """Deny reasons of docs/ARCHITECTURE.md §4. Declaration order is the canonical order in replies."""

    UNKNOWN_TAG = "unknown_tag"
    NOT_OWNER = "not_owner"
    OVERDUE_INSPECTION = "overdue_inspection"
    SCRAPPED = "scrapped"
    NOT_IN_SERVICE = "not_in_service"
    STATION_NOT_LICENSED = "station_not_licensed"
    UNKNOWN_STATION = "unknown_station"


_CANONICAL: Final[Mapping[Reason, int]] = MappingProxyType({r: i for i, r in enumerate(Reason)})


@dataclass(frozen=True, slots=True)
class CylinderFacts:
    """What the platform knows about the cylinder whose tag the gun read."""

    cylinder_id: int
    tag: str
    owner_company_id: int
    status: str
    next_inspection_date: date | None
    scrap_date: date | None
    tag_voided: bool = False
    spec: str = ""
    stamp: str = ""


@dataclass(frozen=True, slots=True)
class StationFacts:
    """The filling station the gun belongs to (from the device registry, never the payload)."""

    station_id: int
    company_id: int
    licence_no: str | None
    licence_expiry: date | None
    licence_status: str


@dataclass(frozen=True, slots=True)
class FillDecision:
    """The platform's answer: allowed when there is no reason to deny.

    ``reasons`` is kept deduplicated and in canonical order by :meth:`of` and
    :func:`authorize_fill`; build decisions through them.
    """

    reasons: tuple[Reason, ...]

    @classmethod
    def of(cls, reasons: Iterable[Reason]) -> FillDecision:
        """A decision from any collection of reasons: deduplicated, canonical order."""
        return cls(tuple(sorted(set(reasons), key=_CANONICAL.__getitem__)))

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def decision(self) -> str:
        """``"allow"`` or ``"deny"``, the wire value of the MQTT reply (docs/ARCHITECTURE.md §5)."""
        return "allow" if self.allowed else "deny"

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """The reasons as the plain strings of the MQTT reply's ``reasons`` list."""
        return tuple(r.value for r in self.reasons)


def licence_missing(station: StationFacts, today: date) -> bool:
    """TSG 23-2021: only a unit holding a valid filling licence (气瓶充装许可证) may fill.

    Missing or blank licence number, unknown expiry, expiry passed (the expiry day itself
    is still valid) or a suspended/revoked licence all deny.
    """
    return (
        station.licence_no is None
        or not station.licence_no.strip()
        or station.licence_expiry is None
        or station.licence_expiry < today
        or station.licence_status != VALID_LICENCE
    )


def authorize_fill(
    cylinder: CylinderFacts | None,
    station: StationFacts | None,
    today: date,
    entrusted_owner_ids: frozenset[int] = frozenset(),
) -> FillDecision:
    """Decide a gun's request, with every applicable reason (docs/ARCHITECTURE.md §4).

    - ``unknown_tag``: no cylinder has the tag, or the tag was voided. A voided tag
      (scrapped cylinder, replaced tag) identifies no cylinder any more — a tag code is
      never reused (DB4114/T 185-2023) — so the facts of the cylinder it used to name are
      *not* evaluated: they would describe a different physical object than the one on
      the scale.
    - ``not_owner``: cylinder and station both known, and the cylinder's owner company is
      neither the station's company nor in *entrusted_owner_ids* (owners that entrusted the
      station's company with filling, 委托充装, valid today — the caller filters by date).
      TSG 23-2021: a unit fills only its own cylinders (a cylinder is registered to one
      filling unit).
    - ``overdue_inspection``: next inspection < today, or no next inspection date
      (same rule as :func:`~server.domain.dates.compliance_status`).
    - ``scrapped``: status ``scrapped`` or scrap date ≤ today.
    - ``not_in_service``: any status other than ``in_service`` and ``scrapped`` — the
      listed in_inspection/lost/suspended/not_activated, and, failing closed, any status
      the platform does not know.
    - ``station_not_licensed``: see :func:`licence_missing`.
    - ``unknown_station``: the gun's station is not registered. The cylinder's own checks
      are still reported; ownership cannot be, for want of a company to compare.
    """
    reasons: list[Reason] = []
    known = cylinder is not None and not cylinder.tag_voided
    if not known:
        reasons.append(Reason.UNKNOWN_TAG)
    if station is None:
        reasons.append(Reason.UNKNOWN_STATION)
    elif licence_missing(station, today):
        reasons.append(Reason.STATION_NOT_LICENSED)
    if cylinder is not None and known:
        if (
            station is not None
            and cylinder.owner_company_id != station.company_id
            and cylinder.owner_company_id not in entrusted_owner_ids
        ):
            reasons.append(Reason.NOT_OWNER)
        if is_inspection_overdue(cylinder.next_inspection_date, today):
            reasons.append(Reason.OVERDUE_INSPECTION)
        if is_scrapped(cylinder.status, cylinder.scrap_date, today):
            reasons.append(Reason.SCRAPPED)
        if cylinder.status not in (IN_SERVICE, SCRAPPED):
            reasons.append(Reason.NOT_IN_SERVICE)
    return FillDecision.of(reasons)


GUN_CODE_SEVERITY: Final[tuple[Reason, ...]] = (
    Reason.UNKNOWN_STATION,
    Reason.UNKNOWN_TAG,
    Reason.SCRAPPED,
    Reason.OVERDUE_INSPECTION,
    Reason.NOT_IN_SERVICE,
    Reason.NOT_OWNER,
    Reason.STATION_NOT_LICENSED,
)
"""Most severe first: which single reason a gun's one numeric code shows.

A gun displays one code (DOMAIN.md "Gun refusal codes"); the reply still lists every
reason. The order puts first what makes everything else meaningless or what is the
gravest hazard:

1. ``unknown_station`` — an unregistered gun: nothing else about the request can be
   trusted (the station, hence ownership and licence, is unknown).
2. ``unknown_tag`` — the platform cannot tell which cylinder is on the scale; no other
   cylinder fact applies to it.
3. ``scrapped`` — a cylinder past its service life is the gravest physical hazard and is
   permanent: it must be pulled from circulation, not sent for inspection.
4. ``overdue_inspection`` — unproven integrity (TSG 23-2021); curable by inspection.
5. ``not_in_service`` — an administrative hold (lost, suspended, in inspection,
   not activated); the operator must set the cylinder aside.
6. ``not_owner`` — a legal/commercial breach, not a hazard of the cylinder itself.
7. ``station_not_licensed`` — concerns the station, not the cylinder; the operator cannot
   act on it at the gun, and it is shown anyway when nothing is wrong with the cylinder.
"""

_GUN_CODE_OF: Final[Mapping[Reason, Callable[[GunCodes], str]]] = MappingProxyType(
    {
        Reason.UNKNOWN_TAG: lambda c: c.unknown_tag,
        Reason.NOT_OWNER: lambda c: c.not_owner,
        Reason.OVERDUE_INSPECTION: lambda c: c.overdue_inspection,
        Reason.SCRAPPED: lambda c: c.scrapped,
        Reason.NOT_IN_SERVICE: lambda c: c.not_in_service,
        Reason.STATION_NOT_LICENSED: lambda c: c.station_not_licensed,
        Reason.UNKNOWN_STATION: lambda c: c.unknown_station,
    }
)
"""Reason → its field of ``[gun_codes]`` (the numbers themselves live in the config)."""

_SEVERITY_RANK: Final[Mapping[Reason, int]] = MappingProxyType(
    {r: i for i, r in enumerate(GUN_CODE_SEVERITY)}
)


def most_severe(decision: FillDecision) -> Reason | None:
    """The reason a gun's single code shows (:data:`GUN_CODE_SEVERITY`); ``None`` if allowed."""
    if decision.allowed:
        return None
    return min(decision.reasons, key=_SEVERITY_RANK.__getitem__)


def gun_code(decision: FillDecision, codes: GunCodes) -> str:
    """The vendor's numeric code for a decision (DOMAIN.md "Gun refusal codes").

    ``codes.allow`` when allowed, else the code of the most severe reason.
    """
    reason = most_severe(decision)
    if reason is None:
        return codes.allow
    return _GUN_CODE_OF[reason](codes)
