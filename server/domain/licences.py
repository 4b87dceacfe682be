"""Licences of companies and stations: their state on a day, and the regulator's moves.

TSG 23-2021: only a unit holding a valid filling licence (气瓶充装许可证) may fill; the
market-supervision bureau issues it, and may suspend (暂停) or revoke (吊销) it. What a
licence *is* on a given day combines the bureau's status with the dates, in one order of
precedence (docs/ARCHITECTURE.md §4):

``revoked`` > ``suspended`` > ``missing`` (no number or no expiry on record) > ``expired``
(the day after the expiry date) > ``expiring`` (within ``[alerts] licence_expiring_days``)
> ``valid``.

A station's licence in any state but ``valid`` and ``expiring`` makes fill authorization
refuse with ``station_not_licensed`` (:func:`server.domain.authorization.authorize_fill`
applies the same facts; :func:`licensed` says the same thing here).

The regulator's moves (:func:`check_status_change`): suspend a valid licence, revoke a valid
or suspended one, reinstate a suspended one. A revoked licence is not reinstated: the bureau
issues a new one (a new number and expiry, set by the admin), which is a new licence.
Pure and synchronous: facts in, a state or a :class:`LicenceRefused` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Final

from server.kernel.settings import Alerts

from .statuses import LICENCE_STATUSES, VALID_LICENCE
from .supervision import licence_expired, licence_expiring

__all__ = [
    "LICENCE_HOLDERS",
    "LICENCE_MOVES",
    "LICENCE_STATES",
    "LicenceRefused",
    "check_status_change",
    "licence_state",
    "licensed",
    "move_of",
]

LICENCE_HOLDERS: Final[tuple[str, ...]] = ("company", "site")
"""Who holds a licence: a gas company (燃气经营许可) or a site (a station's 充装许可)."""

LICENCE_STATES: Final[tuple[str, ...]] = (
    "revoked",
    "suspended",
    "missing",
    "expired",
    "expiring",
    "valid",
)
"""States of a licence on a day, most serious first (the precedence of the module doc)."""

_LICENSED_STATES: Final = frozenset({"expiring", "valid"})

LICENCE_MOVES: Final[Mapping[tuple[str, str], str]] = MappingProxyType(
    {
        ("valid", "suspended"): "suspend",
        ("valid", "revoked"): "revoke",
        ("suspended", "revoked"): "revoke",
        ("suspended", "valid"): "reinstate",
    }
)
"""(from status, to status) → the regulator's act; any other pair is refused."""


class LicenceRefused(ValueError):
    """A status change the rules refuse; the message says why."""


def licence_state(
    licence_no: str | None,
    expiry: date | None,
    status: str,
    today: date,
    rules: Alerts,
) -> str:
    """The state of one licence on *today* (see the module doc for the precedence)."""
    if status != VALID_LICENCE:
        return status if status in LICENCE_STATUSES else "suspended"  # unknown: fail closed
    if licence_no is None or not licence_no.strip() or expiry is None:
        return "missing"
    if licence_expired(expiry, today):
        return "expired"
    if licence_expiring(expiry, today, rules):
        return "expiring"
    return "valid"


def licensed(state: str) -> bool:
    """May the holder fill on this state? (``expiring`` still may: the day is not past.)"""
    return state in _LICENSED_STATES


def move_of(old: str, new: str) -> str | None:
    """The act that takes a licence from status *old* to *new* (``None``: not one)."""
    return LICENCE_MOVES.get((old, new))


def check_status_change(old: str, new: str) -> str:
    """The act (suspend / revoke / reinstate) of a status change, or :class:`LicenceRefused`."""
    if new not in LICENCE_STATUSES:
        raise LicenceRefused(f"status must be one of {', '.join(LICENCE_STATUSES)}")
    if old == new:
        raise LicenceRefused(f"the licence is already {new}")
    move = move_of(old, new)
    if move is None:
        if old == "revoked":
            raise LicenceRefused(
                "a revoked licence is not reinstated: the bureau issues a new licence"
            )
        raise LicenceRefused(f"a licence cannot go from {old} to {new}")
    return move
