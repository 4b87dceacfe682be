"""Status transitions of a cylinder record, and what a periodic inspection does to it.

One rule, one place (docs/ARCHITECTURE.md §4): the REST API (a PATCH of the archive, an
inspection result), the archive importer (by way of ``server.domain.record_changes``, with the
importing person's role, exactly as a PATCH) and the database itself (a trigger of migration
``0060_status_transitions``) all refuse the same moves, for the same reasons:

- a scrapped cylinder never returns to use: TSG 23-2021 takes a cylinder out of use for good
  at its scrap age or a failed assessment, and the local traceability standards
  (DOMAIN.md "Standards") say a tag is never reused after scrapping;
- each role sets only the statuses it answers for (docs/API.md "Cylinders"): the inspection
  agency the inspection outcomes, the owner company the operational ones (lost, suspended,
  back in service) — and a company may report its cylinder found again, but not lift a
  suspension that an inspection agency or the regulator imposed.

Pure and synchronous like the rest of ``server.domain``: statuses and dates in, a decision
or a :class:`TransitionRefused` out. The HTTP layer maps each :class:`Rule` onto its error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from server.kernel.settings import Dates

from .dates import derive_next_inspection, derive_scrap_date
from .statuses import (
    CYLINDER_STATUSES,
    IN_SERVICE,
    INSPECTION_RESULTS,
    SCRAP_REASON_DEFAULT,
    SCRAP_REASON_NEEDS_NOTE,
    SCRAP_REASONS,
    SCRAPPED,
)

__all__ = [
    "FINAL_STATUSES",
    "STATUS_BY_ROLE",
    "InspectionOutcome",
    "InspectionRefused",
    "Rule",
    "TransitionRefused",
    "apply_inspection",
    "apply_scrap",
    "check_settable",
    "check_transition",
    "scrap_reason_of",
    "statuses_for",
]

FINAL_STATUSES: Final[frozenset[str]] = frozenset({SCRAPPED})
"""Statuses a record never leaves once it holds them (报废 is for good). The importer's SQL
and the database trigger are written from this set."""

STATUS_BY_ROLE: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "admin": frozenset(CYLINDER_STATUSES),
        "inspector": frozenset({"in_service", "in_inspection", "scrapped", "suspended"}),
        "company_admin": frozenset({"in_service", "lost", "suspended"}),
    }
)
"""Statuses each role may set by hand; a role not listed sets none."""

_COMPANY_MAY_RETURN_FROM: Final[frozenset[str]] = frozenset({IN_SERVICE, "lost"})
"""The owner company may put its cylinder (back) in service only from these: "found
again" after a loss, not the end of a suspension someone else imposed."""

_BACK_IN_SERVICE_AFTER_PASS: Final[frozenset[str]] = frozenset({"in_inspection", "suspended"})
"""A passed inspection ends these statuses; a lost or not-yet-activated record stays so."""


class Rule(StrEnum):
    """Which rule refused a move; the API answers each with its own error."""

    ROLE_MAY_NOT_SET = "role_may_not_set"
    """The role never sets this status (a field it does not answer for)."""
    ROLE_MAY_NOT_RETURN = "role_may_not_return"
    """The role may set the status, but not from the record's current status."""
    FINAL = "final"
    """The record holds a final status (scrapped) and never leaves it."""


class TransitionRefused(Exception):
    """A status change the rules forbid; ``rule`` says which, ``message`` says why.

    ``old_status`` is None when the status was refused before the record was read
    (:func:`check_settable`)."""

    def __init__(self, rule: Rule, old_status: str | None, new_status: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.old_status = old_status
        self.new_status = new_status
        self.message = message


class InspectionRefused(ValueError):
    """An inspection result whose dates cannot be right; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def statuses_for(role: str) -> frozenset[str]:
    """The statuses *role* may set by hand (none for a role not in :data:`STATUS_BY_ROLE`)."""
    return STATUS_BY_ROLE.get(role, frozenset())


def check_settable(new_status: str, role: str) -> None:
    """Refuse a status *role* never sets, whatever the record holds (:attr:`Rule.ROLE_MAY_NOT_SET`).

    Checked before the record is read, so that a request a role may never make is refused
    as such, whether or not the cylinder is in the caller's scope.
    """
    if new_status not in statuses_for(role):
        allowed = ", ".join(sorted(statuses_for(role))) or "none"
        raise TransitionRefused(
            Rule.ROLE_MAY_NOT_SET, None, new_status, f"must be one of {allowed}"
        )


def check_transition(old_status: str, new_status: str, role: str | None) -> None:
    """Refuse a move from *old_status* to *new_status* by *role* with :class:`TransitionRefused`.

    *role* ``None`` judges the life cycle alone, not the per-role lists: for an act of the
    platform itself rather than of a person's choice. A person's act always passes its role —
    the archive import too, whose rows are judged like a PATCH
    (``server.domain.record_changes.check_change``). Keeping a status is always allowed, a
    final one included.
    """
    if role is not None:
        check_settable(new_status, role)
    if new_status == old_status:
        return
    if (
        role == "company_admin"
        and new_status == IN_SERVICE
        and old_status not in _COMPANY_MAY_RETURN_FROM
    ):
        raise TransitionRefused(
            Rule.ROLE_MAY_NOT_RETURN,
            old_status,
            new_status,
            f"role company_admin may not return a {old_status} cylinder to service",
        )
    if old_status in FINAL_STATUSES:
        raise TransitionRefused(
            Rule.FINAL, old_status, new_status, "a scrapped cylinder is never returned to use"
        )


@dataclass(frozen=True, slots=True)
class InspectionOutcome:
    """The record after a periodic inspection (GB/T 8334-2022 评定)."""

    status: str
    last_inspection_date: date
    next_inspection_date: date
    scrap_date: date
    scrap_date_capped: bool
    """True when the agency's scrap date was cut to manufacture + the absolute scrap age."""


def apply_inspection(
    *,
    status: str,
    manufacture_date: date,
    last_inspection_date: date | None,
    next_inspection_date: date,
    scrap_date: date,
    inspected_on: date,
    result: str,
    rules: Dates,
    given_next_inspection: date | None = None,
    given_scrap_date: date | None = None,
) -> InspectionOutcome:
    """What an inspection result does to a record (docs/API.md "Cylinders").

    - ``pass``: the next inspection is the agency's date, or *inspected_on* + the interval
      (:func:`~server.domain.dates.derive_next_inspection`, DOMAIN.md "Dates"); an agency's
      new scrap date is capped at manufacture + the absolute scrap age
      (:func:`~server.domain.dates.derive_scrap_date`); an ``in_inspection`` or
      ``suspended`` record is back in service;
    - ``fail`` and ``scrap``: scrapped, from the inspection day at the latest — TSG 23-2021
      and GB/T 8334-2022 know two assessments, 合格 and 报废: a cylinder that fails its
      periodic inspection is scrapped (判废), never put back after a repair; ``scrap`` is a
      scrap decided at the inspection for another reason (:data:`SCRAP_REASONS`).

    A scrapped record is never inspected back into use (:class:`TransitionRefused`,
    :attr:`Rule.FINAL`); impossible dates raise :class:`InspectionRefused` naming the field.
    The last inspection date never moves back when an older report is entered late.
    """
    if result not in INSPECTION_RESULTS:
        raise InspectionRefused("result", f"must be one of {', '.join(INSPECTION_RESULTS)}")
    if status in FINAL_STATUSES:
        raise TransitionRefused(Rule.FINAL, status, status, "the cylinder is scrapped")
    if inspected_on < manufacture_date:
        raise InspectionRefused("inspected_on", "is before the cylinder's manufacture_date")
    next_insp, scrap, capped = next_inspection_date, scrap_date, False
    if result == "pass":
        try:
            next_insp = given_next_inspection or derive_next_inspection(
                manufacture_date, inspected_on, rules
            )
            if given_scrap_date is not None:
                scrap = derive_scrap_date(manufacture_date, rules, extended_to=given_scrap_date)
                capped = scrap != given_scrap_date
        except ValueError as exc:
            field = "scrap_date" if given_scrap_date else "inspected_on"
            raise InspectionRefused(field, str(exc)) from None
        if next_insp <= inspected_on:
            raise InspectionRefused("next_inspection_date", "must be after inspected_on")
        if status in _BACK_IN_SERVICE_AFTER_PASS:
            status = IN_SERVICE
    else:
        status = SCRAPPED
        scrap = min(scrap, inspected_on)
    last = max(inspected_on, last_inspection_date or inspected_on)
    return InspectionOutcome(status, last, next_insp, scrap, capped)


def scrap_reason_of(result: str, reason: str | None, note: str | None) -> str | None:
    """The scrap reason an inspection record keeps (报废原因, :data:`SCRAP_REASONS`).

    A pass scraps nothing and names no reason; a fail or a scrap names one of the vocabulary —
    :data:`SCRAP_REASON_DEFAULT` when a failed assessment gives none — and a reason that says
    nothing by itself (``other``) needs a *note*. :class:`InspectionRefused` names the field.
    """
    if result == "pass":
        if reason is not None:
            raise InspectionRefused("scrap_reason", "only a fail or a scrap names a scrap reason")
        return None
    reason = reason or SCRAP_REASON_DEFAULT
    if reason not in SCRAP_REASONS:
        raise InspectionRefused("scrap_reason", f"must be one of {', '.join(SCRAP_REASONS)}")
    if reason in SCRAP_REASON_NEEDS_NOTE and not (note or "").strip():
        raise InspectionRefused("notes", f"a scrap for reason {reason} must say why in a note")
    return reason


def apply_scrap(
    *, status: str, manufacture_date: date, scrap_date: date, scrapped_on: date
) -> date:
    """A cylinder scrapped without an inspection (报废): its scrap date afterwards.

    The record becomes ``scrapped`` for good (and the database voids its tag, migration 0110);
    its scrap date moves to *scrapped_on* unless an earlier one stands. Its inspection dates
    and count are left alone: no inspection took place. An already scrapped record is refused
    (:class:`TransitionRefused`, :attr:`Rule.FINAL`: scrapping twice would hide the first
    decision), a day before manufacture too (:class:`InspectionRefused`).
    """
    if status in FINAL_STATUSES:
        raise TransitionRefused(Rule.FINAL, status, SCRAPPED, "the cylinder is already scrapped")
    if scrapped_on < manufacture_date:
        raise InspectionRefused("scrapped_on", "is before the cylinder's manufacture_date")
    return min(scrap_date, scrapped_on)
