"""Trajectory events of a cylinder and their GS1 EPCIS 2.0 / CBV mapping.

The local traceability standards (e.g. DB4114/T 185-2023) require a cylinder's whole life
— registration, every fill, dispatch, sale, return, transfer, inspection, scrapping — to
be recorded and kept. EPCIS 2.0 is the international model for such records (what, when,
where, why); storing the CBV ``bizStep`` and ``disposition`` beside our own event kind lets
the platform exchange trajectories with other systems without a translation layer.
The mapping is DOMAIN.md "Trajectory events", held in one table below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from .statuses import SCAN_ACTION_NAMES

__all__ = [
    "DISPOSITION_EXPIRED",
    "FILLING_BIZ_STEP",
    "SCAN_ACTIONS",
    "EpcisMapping",
    "EventKind",
    "epcis_for",
]


class EventKind(StrEnum):
    """What happened to a cylinder; the value is stored in ``events.kind``.

    Members are spelled like their values (``EventKind.fill``); ``return`` being a Python
    keyword, its member is ``EventKind.return_`` with the value ``"return"``.
    """

    register = "register"
    fill = "fill"
    fill_refused = "fill_refused"
    dispatch = "dispatch"
    deliver = "deliver"
    return_ = "return"
    transfer = "transfer"
    receive = "receive"
    inspection = "inspection"
    scrap = "scrap"
    lost = "lost"
    status_change = "status_change"
    update = "update"


@dataclass(frozen=True, slots=True)
class EpcisMapping:
    """CBV short names (``None`` where EPCIS has no business step for the event)."""

    biz_step: str | None
    disposition: str | None


DISPOSITION_EXPIRED: Final = "expired"
"""CBV disposition of an overdue cylinder (DOMAIN.md: persistent, not an event of its own)."""

FILLING_BIZ_STEP: Final = "urn:cylwatch:bizstep:filling"
"""CBV has no "filling" step; EPCIS 2.0 allows a URI of our own (weights as sensor data)."""


@dataclass(frozen=True, slots=True)
class _Row:
    """One row of the mapping table: the usual case and its variants."""

    default: EpcisMapping
    non_conformant: EpcisMapping | None = None
    """When the event's outcome is non-conformant (an inspection that failed)."""
    arriving: EpcisMapping | None = None
    """The arriving side of a movement (a transfer seen at its destination)."""


_ARRIVING: Final = EpcisMapping("arriving", "active")

_EPCIS: Final[Mapping[EventKind, _Row]] = MappingProxyType(
    {
        EventKind.register: _Row(EpcisMapping("commissioning", "active")),
        EventKind.fill: _Row(EpcisMapping(FILLING_BIZ_STEP, "active")),
        EventKind.fill_refused: _Row(EpcisMapping("inspecting", "non_conformant")),
        EventKind.dispatch: _Row(EpcisMapping("shipping", "in_transit")),
        EventKind.deliver: _Row(EpcisMapping("retail_selling", "retail_sold")),
        EventKind.return_: _Row(EpcisMapping("receiving", "returned")),
        EventKind.transfer: _Row(EpcisMapping("departing", "in_transit"), arriving=_ARRIVING),
        EventKind.receive: _Row(_ARRIVING),
        EventKind.inspection: _Row(
            EpcisMapping("inspecting", "conformant"),
            non_conformant=EpcisMapping("inspecting", "non_conformant"),
        ),
        EventKind.scrap: _Row(EpcisMapping("decommissioning", "inactive")),
        EventKind.lost: _Row(EpcisMapping(None, "stolen")),
        EventKind.status_change: _Row(EpcisMapping(None, None)),
        EventKind.update: _Row(EpcisMapping(None, None)),
    }
)
"""DOMAIN.md "Trajectory events and their EPCIS 2.0 mapping".

- ``receive`` is the handheld's arrival scan of a transfer (调拨), hence ``arriving`` /
  ``active`` like a transfer seen at its destination.
- ``scrap`` records the decommissioning (``inactive``); physical destruction
  (``destroying`` / ``destroyed``) is a later step outside the platform's events.
- ``status_change`` and ``update`` are changes to the archive (master data), not
  observations of the object, so EPCIS has no step or disposition for them.
"""


def epcis_for(kind: EventKind, *, conformant: bool = True, arriving: bool = False) -> EpcisMapping:
    """The CBV business step and disposition of an event.

    *conformant* matters only where an outcome can fail (inspection); *arriving* only for
    a movement with two sides (transfer). Elsewhere the flags are ignored, so a caller may
    pass them for every event.
    """
    row = _EPCIS[EventKind(kind)]
    if not conformant and row.non_conformant is not None:
        return row.non_conformant
    if arriving and row.arriving is not None:
        return row.arriving
    return row.default


SCAN_ACTIONS: Final[Mapping[str, EventKind]] = MappingProxyType(
    {action: EventKind(action) for action in SCAN_ACTION_NAMES}
)
"""Handheld scan ``action`` → the trajectory event it records: each action is recorded as
the event of the same name (``return`` as :attr:`EventKind.return_`)."""
