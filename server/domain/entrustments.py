"""Entrustments (委托充装): one company's cylinders filled at another company's stations.

TSG 23-2021 lets a filling unit fill only its own cylinders, or those whose owner entrusted
it in writing. An entrustment names the owner and the filler company and the days it is in
force (``valid_from`` … ``valid_to``, both included; no ``valid_to``: until ended). Fill
authorization (:func:`server.domain.authorization.authorize_fill`) counts the owners whose
entrustment of the station's company is in force today; ``not_owner`` otherwise.

States on a day, for lists and for what may still be done (docs/ARCHITECTURE.md §4):
``ended`` (ended by a party: its ``valid_to`` became the day before) > ``expired`` (past its
``valid_to``) > ``pending`` (starts later) > ``active``.

:func:`check_new` holds the rules of a new entrustment: two different companies, an end not
before its start, not already over. Overlap with another entrustment of the same two
companies (periods sharing a day, ends included) is a conflict the API checks against the
stored rows, under a lock of the owner's row (``server.api.entrustments``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

__all__ = [
    "ENTRUSTMENT_STATES",
    "EntrustmentRefused",
    "check_new",
    "end_date",
    "entrustment_state",
    "in_force",
]

ENTRUSTMENT_STATES: Final[tuple[str, ...]] = ("active", "pending", "expired", "ended")


class EntrustmentRefused(ValueError):
    """A new entrustment the rules refuse; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def entrustment_state(valid_from: date, valid_to: date | None, ended: bool, today: date) -> str:
    """The state of one entrustment on *today*."""
    if ended:
        return "ended"
    if valid_to is not None and valid_to < today:
        return "expired"
    if valid_from > today:
        return "pending"
    return "active"


def in_force(valid_from: date, valid_to: date | None, today: date) -> bool:
    """Does the entrustment count for fill authorization on *today*? (ingest/auth.py's SQL)"""
    return valid_from <= today and (valid_to is None or valid_to >= today)


def check_new(
    owner_id: int, filler_id: int, valid_from: date, valid_to: date | None, today: date
) -> None:
    """Refuse an entrustment that could never be one (:class:`EntrustmentRefused`)."""
    if owner_id == filler_id:
        raise EntrustmentRefused("filler_company_id", "a company does not entrust itself")
    if valid_to is not None and valid_to < valid_from:
        raise EntrustmentRefused("valid_to", "ends before it starts (valid_from)")
    if valid_to is not None and valid_to < today:
        raise EntrustmentRefused("valid_to", "is already over")


def end_date(valid_to: date | None, today: date) -> date:
    """The new ``valid_to`` of an entrustment ended on *today*: the day before, so that it is
    no longer in force today (an earlier end it already had stays)."""
    yesterday = today - timedelta(days=1)
    return yesterday if valid_to is None or valid_to > yesterday else valid_to
