"""Who may change which field of a cylinder's archive, and what makes a record's dates coherent.

One rule, one place (docs/ARCHITECTURE.md §4): a change by hand (``PATCH
/api/v1/cylinders/{id}``) and a change by file (the archive import, ``server.archive``) are the
same act and are judged by the functions below, so that no door is wider than the other. Before
this rule had one home, a company could upload a file that moved its own cylinders' next
inspection or scrap date — which the gun then trusted (fill authorization reads those dates) —
and an inspection agency could give any cylinder a new owner, both of which editing forbids.

The fields are split by who is accountable for them (docs/API.md "Who may write"):

- the owner company's admin answers for the operational fields of its own cylinders (barcode,
  valve type, use registration no.) and reports them lost or suspended, or back in service
  (the status rules are :mod:`server.domain.transitions`);
- the inspection agency registered and inspects the cylinder: its archive fields (stamp,
  model, volume, tare, manufacturer, dates of manufacture) and inspection fields (last and
  next inspection, scrap date, status) — but not the owner, the tag or the barcode;
- the admin may change anything, the owner, tag and location included.

Pure like the rest of ``server.domain``: field names and dates in, a refusal out. Each caller
maps a refusal onto its own answer (an HTTP error, a rejected row of a report).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Final

from .events import EventKind
from .statuses import SCRAPPED
from .transitions import check_transition

__all__ = [
    "ADMIN_ONLY_FIELDS",
    "ARCHIVE_FIELDS",
    "CHANGEABLE_FIELDS",
    "DATE_REFUSALS",
    "INSPECTION_FIELDS",
    "OPERATIONAL_FIELDS",
    "STATUS_NOTE",
    "DatesRefused",
    "FieldRefused",
    "RecordDates",
    "check_change",
    "check_dates",
    "check_fields",
    "fields_for",
    "status_event",
]

STATUS_NOTE: Final = "reason"
"""Not a field of the record: the note kept with a status change (in its trajectory event and
the audit log). Whoever may change the status may give it."""

OPERATIONAL_FIELDS: Final[frozenset[str]] = frozenset(
    {"barcode", "valve_type", "use_registration_no", "status", STATUS_NOTE}
)
ARCHIVE_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "stamp",
        "spec",
        "medium",
        "volume_l",
        "tare_kg",
        "wall_thickness_mm",
        "manufacturer",
        "manufacture_date",
        "serial_no",
        "inspection_ring_no",
    }
)
INSPECTION_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "last_inspection_date",
        "next_inspection_date",
        "inspection_count",
        "scrap_date",
        "status",
        STATUS_NOTE,
    }
)
ADMIN_ONLY_FIELDS: Final[frozenset[str]] = frozenset(
    {"tag", "owner_company_id", "district_code", "location_site_id"}
)

CHANGEABLE_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "admin": OPERATIONAL_FIELDS | ARCHIVE_FIELDS | INSPECTION_FIELDS | ADMIN_ONLY_FIELDS,
        "inspector": ARCHIVE_FIELDS | INSPECTION_FIELDS,
        "company_admin": OPERATIONAL_FIELDS,
    }
)
"""Fields of an existing record each role may change; a role not listed changes none. Which
*statuses* a role may set is :data:`server.domain.transitions.STATUS_BY_ROLE`."""


class FieldRefused(Exception):
    """A field the role does not answer for; ``field`` names it (a record field name)."""

    def __init__(self, field: str, role: str) -> None:
        self.field = field
        self.role = role
        self.message = f"role {role} may not change this field"
        super().__init__(self.message)


DATE_REFUSALS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "date_in_future": "is in the future",
        "date_before": "is before {other}",
        "date_not_after": "must be after {other}",
    }
)
"""Why dates of one record cannot all be true: a stable code (which a report carries for a
page to say it in the reader's language, ``server.archive.reasons``) and its English words,
after the field's name; ``{other}`` is the field it is compared with."""


class DatesRefused(ValueError):
    """Dates of one record that cannot all be true; ``field`` names the one to correct,
    ``code`` (one of :data:`DATE_REFUSALS`) and ``other`` say why, ``message`` in words."""

    def __init__(self, field: str, code: str, other: str | None = None) -> None:
        message = DATE_REFUSALS[code].format(other=other)
        super().__init__(message)
        self.field = field
        self.code = code
        self.other = other
        self.message = message


def fields_for(role: str) -> frozenset[str]:
    """The fields *role* may change (none for a role not in :data:`CHANGEABLE_FIELDS`)."""
    return CHANGEABLE_FIELDS.get(role, frozenset())


def check_fields(role: str, names: Iterable[str]) -> None:
    """Refuse the first of *names* that *role* may not change (:class:`FieldRefused`).

    Checked on the fields a request names (a PATCH), or on the fields a row would change (an
    import), before the status: a change a role may never make is refused as such.
    """
    allowed = fields_for(role)
    for name in names:
        if name not in allowed:
            raise FieldRefused(name, role)


def check_change(role: str, changed: Iterable[str], old_status: str, new_status: str) -> None:
    """The whole rule for a change of an existing record by *role*.

    *changed* are the fields whose value changes (record field names, in the order a refusal
    should name them); *old_status* and *new_status* the record's status before and after.
    Raises :class:`FieldRefused` for a field the role does not answer for, else
    :class:`~server.domain.transitions.TransitionRefused` for a status move the life cycle or
    the role forbids.
    """
    names = list(changed)
    check_fields(role, names)
    if "status" in names and new_status != old_status:
        check_transition(old_status, new_status, role)


def status_event(new_status: str) -> EventKind:
    """The trajectory event a change of status to *new_status* records (DOMAIN.md
    "Trajectory events": scrapping is decommissioning, a loss its own disposition)."""
    if new_status == SCRAPPED:
        return EventKind.scrap
    if new_status == "lost":
        return EventKind.lost
    return EventKind.status_change


@dataclass(frozen=True, slots=True)
class RecordDates:
    """The dates of one archive record, as they would be stored."""

    manufacture: date
    last_inspection: date | None
    next_inspection: date
    scrap: date


def check_dates(dates: RecordDates, today: date) -> None:
    """Refuse dates of one record that cannot all be true (:class:`DatesRefused`), naming the
    field to correct: nothing made or inspected in the future, no inspection before the
    cylinder was made, the next inspection after both, the scrap date not before manufacture.

    The same words for a registration, a change and an import row, so that a person reads one
    reason whichever door the record came through.
    """
    made, last = dates.manufacture, dates.last_inspection
    if made > today:
        raise DatesRefused("manufacture_date", "date_in_future")
    if last is not None and last < made:
        raise DatesRefused("last_inspection_date", "date_before", "manufacture_date")
    if last is not None and last > today:
        raise DatesRefused("last_inspection_date", "date_in_future")
    if dates.next_inspection <= made:
        raise DatesRefused("next_inspection_date", "date_not_after", "manufacture_date")
    if last is not None and dates.next_inspection <= last:
        raise DatesRefused("next_inspection_date", "date_not_after", "last_inspection_date")
    if dates.scrap < made:
        raise DatesRefused("scrap_date", "date_before", "manufacture_date")
