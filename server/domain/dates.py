"""Inspection and scrap dates, and the compliance status a cylinder has on a given day.

Why these rules: TSG 23-2021 气瓶安全技术规程 forbids filling a cylinder that is past its
periodic inspection or its service life; GB/T 8334-2022 sets the periodic inspection of LPG
steel cylinders (every 4 years by default) and GB 5842 the design service life (8 years,
absolute limit 12 years after an inspection extension). docs/ARCHITECTURE.md §4 defines the compliance
status and its precedence. Every number is read from :class:`server.kernel.settings.Dates`; a city
changes a rule by configuration, never by editing this module.

All functions are pure: a date (``today``) goes in, a decision comes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from server.kernel.settings import Dates

from .statuses import SCRAPPED

__all__ = [
    "ComplianceStatus",
    "add_years",
    "compliance_status",
    "derive_next_inspection",
    "derive_scrap_date",
    "is_inspection_overdue",
    "is_scrapped",
    "public_label",
    "require_aware",
]


def add_years(d: date, years: int) -> date:
    """Return *d* moved by *years* calendar years (negative moves back).

    A 29 February lands on 28 February when the target year is not a leap year. This is
    the conservative choice for a safety deadline: the derived inspection or scrap date is
    one day *earlier* than a naive "1 March", never later (TSG 23-2021: a cylinder must not
    be filled once the date has passed, so rounding must never extend its life).

    Raises ``ValueError`` when the target year is outside ``datetime.date``'s range.
    """
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        # Only 29 February is missing from some years; the day before it exists in every
        # year, and an out-of-range year raises again here.
        return d.replace(year=d.year + years, day=d.day - 1)


def derive_next_inspection(
    manufacture_date: date, last_inspection_date: date | None, rules: Dates
) -> date:
    """Next periodic inspection = last inspection (or manufacture) + the interval.

    GB/T 8334-2022 / TSG 23-2021: an LPG steel cylinder is inspected every
    ``rules.inspection_interval_years`` (4 by default), counted from its manufacture until
    its first inspection and from the last inspection after that (DOMAIN.md "Dates").

    A last inspection dated before manufacture is impossible and is rejected with
    ``ValueError`` rather than guessed at: a wrong next-inspection date would let an
    overdue cylinder be filled (the importer reports the row instead).
    """
    if last_inspection_date is not None and last_inspection_date < manufacture_date:
        raise ValueError(
            f"last inspection {last_inspection_date.isoformat()} is before "
            f"manufacture {manufacture_date.isoformat()}"
        )
    base = manufacture_date if last_inspection_date is None else last_inspection_date
    return add_years(base, rules.inspection_interval_years)


def derive_scrap_date(
    manufacture_date: date, rules: Dates, extended_to: date | None = None
) -> date:
    """Scrap date = manufacture + design life, unless an inspection set another date.

    GB 5842 (cylinders made after 2007-02-01) gives a design service life of
    ``rules.design_life_years`` (8); a periodic inspection that passes (GB/T 8334-2022) may
    extend it, but TSG 23-2021 never lets an LPG steel cylinder stay in use beyond
    ``rules.absolute_scrap_age_years`` (12) after manufacture, so every result is capped
    there — the cap also applies should a city configure a design life above it.

    *extended_to* is the date an inspection agency assigned. It replaces the design-life
    date (capped); an assigned date *earlier* than the design life is honoured as well,
    because an inspector shortening a cylinder's life is a safety finding, and honouring it
    can only make the platform stricter. A date before manufacture is impossible and raises
    ``ValueError``. Legacy cylinders under older rules (15 y) keep their own stored
    ``scrap_date``; this function only derives dates for records that lack one.
    """
    if extended_to is not None and extended_to < manufacture_date:
        raise ValueError(
            f"scrap date {extended_to.isoformat()} is before "
            f"manufacture {manufacture_date.isoformat()}"
        )
    cap = add_years(manufacture_date, rules.absolute_scrap_age_years)
    scheduled = (
        add_years(manufacture_date, rules.design_life_years) if extended_to is None else extended_to
    )
    return min(scheduled, cap)


class ComplianceStatus(StrEnum):
    """Compliance of a cylinder on a given day (docs/ARCHITECTURE.md §4), most severe first.

    The declaration order *is* the precedence: ``scrapped > overdue > scrap_due >
    inspection_due > ok``.
    """

    SCRAPPED = "scrapped"
    OVERDUE = "overdue"
    SCRAP_DUE = "scrap_due"
    INSPECTION_DUE = "inspection_due"
    OK = "ok"


def is_scrapped(status: str, scrap_date: date | None, today: date) -> bool:
    """Scrapped: status ``scrapped``, or the scrap date is today or has passed.

    The scrap date itself is the first day out of use (docs/ARCHITECTURE.md §4 "scrap date ≤ today"):
    TSG 23-2021 forbids using a cylinder that has reached its scrap age. An unknown scrap
    date does not by itself make a cylinder scrapped (the record is incomplete, not
    expired); the inspection date still guards it.
    """
    return status == SCRAPPED or (scrap_date is not None and scrap_date <= today)


def is_inspection_overdue(next_inspection_date: date | None, today: date) -> bool:
    """Overdue: the next inspection date has passed (docs/ARCHITECTURE.md §4 "next inspection < today").

    The inspection date itself is still in date. A cylinder with *no* next inspection
    date is treated as overdue: the platform cannot show that it was ever inspected, and
    TSG 23-2021 forbids filling a cylinder whose inspection is not in date — an un-dated
    cylinder must not be filled. :func:`authorize_fill` uses this same function, so the
    public status and the gun never disagree.
    """
    return next_inspection_date is None or next_inspection_date < today


def compliance_status(
    status: str,
    next_inspection_date: date | None,
    scrap_date: date | None,
    today: date,
    rules: Dates,
) -> ComplianceStatus:
    """The compliance status of a cylinder on *today* (docs/ARCHITECTURE.md §4), by precedence.

    - ``scrapped``: status ``scrapped`` or scrap date ≤ today (:func:`is_scrapped`);
    - ``overdue``: next inspection < today, or no next inspection date at all
      (:func:`is_inspection_overdue`);
    - ``scrap_due``: today < scrap date ≤ today + ``rules.scrap_due_days`` (90);
    - ``inspection_due``: today ≤ next inspection ≤ today + ``rules.inspection_due_days`` (30);
    - ``ok`` otherwise.

    The warning windows include both ends: a cylinder whose date is exactly N days away
    is already "due". A missing scrap date never raises ``scrap_due`` or ``scrapped``.
    Operational statuses other than ``scrapped`` (lost, suspended, …) do not change the
    compliance status, which is about dates; they are reasons of their own when filling.
    """
    if is_scrapped(status, scrap_date, today):
        return ComplianceStatus.SCRAPPED
    if is_inspection_overdue(next_inspection_date, today):
        return ComplianceStatus.OVERDUE
    if scrap_date is not None and scrap_date <= today + timedelta(days=rules.scrap_due_days):
        return ComplianceStatus.SCRAP_DUE
    if next_inspection_date is not None and next_inspection_date <= today + timedelta(
        days=rules.inspection_due_days
    ):
        return ComplianceStatus.INSPECTION_DUE
    return ComplianceStatus.OK


_LABELS: Final[Mapping[str, Mapping[ComplianceStatus, str]]] = MappingProxyType(
    {
        "zh-CN": MappingProxyType(
            {
                ComplianceStatus.OK: "合格",
                ComplianceStatus.SCRAP_DUE: "合格",
                ComplianceStatus.INSPECTION_DUE: "待检",
                ComplianceStatus.OVERDUE: "过期",
                ComplianceStatus.SCRAPPED: "报废",
            }
        ),
        "en": MappingProxyType(
            {
                ComplianceStatus.OK: "Compliant",
                ComplianceStatus.SCRAP_DUE: "Compliant",
                ComplianceStatus.INSPECTION_DUE: "Inspection due",
                ComplianceStatus.OVERDUE: "Overdue",
                ComplianceStatus.SCRAPPED: "Scrapped",
            }
        ),
    }
)
_DEFAULT_LANGUAGE: Final = "zh-CN"


def public_label(c: ComplianceStatus, lang: str = "zh-CN") -> str:
    """Label shown on the public QR page (docs/ARCHITECTURE.md §1/§8: 合格/待检/过期/报废).

    ``scrap_due`` shows as compliant: the cylinder may still lawfully be used and the
    public page must not alarm a household about a date the gas company handles. Any
    English tag (``en``, ``en-US``, ``EN-gb``) gives English; every other language falls
    back to the platform's default, Chinese.
    """
    key = "en" if lang.lower().split("-")[0] == "en" else _DEFAULT_LANGUAGE
    return _LABELS[key][ComplianceStatus(c)]


def require_aware(name: str, value: datetime) -> None:
    """Reject a naive datetime with ``ValueError``.

    Device times are UTC epoch milliseconds (docs/ARCHITECTURE.md §5) and opening hours are local to the
    city's ``alerts.timezone``; a naive datetime is ambiguous between the two, and mixing
    them would shift every time-window rule by the zone offset (8 h in Asia/Shanghai).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
