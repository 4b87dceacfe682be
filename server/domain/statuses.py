"""The closed vocabularies of the domain, in one place.

These tuples mirror the CHECK constraints of the base migration and the contracts of
DESIGN §4/§5/§7/§9, so that validation in the API, the importer, ingest and the device
simulator all agree on the same words. Order is meaningful only where noted.
"""

from __future__ import annotations

from typing import Final

CYLINDER_STATUSES: Final[tuple[str, ...]] = (
    "in_service",
    "in_inspection",
    "scrapped",
    "lost",
    "suspended",
    "not_activated",
)
"""Every status a cylinder record may hold (DOMAIN.md "Cylinder record"; TSG 23-2021 use
registration). ``not_activated`` is a registered (建档) cylinder whose tag is not yet bound
to use — it must not be filled."""

IMPORT_STATUSES: Final[tuple[str, ...]] = (
    "in_service",
    "in_inspection",
    "scrapped",
    "lost",
    "suspended",
    "not_activated",
)
"""Statuses accepted by the archive import/export interface: DESIGN §9's five, extended
with ``not_activated`` because the export writes every status a record may hold, and an
exported archive must import back unchanged (a registered cylinder not yet bound to use)."""

IN_SERVICE: Final = "in_service"
"""The only status under which a cylinder may be filled (GB/T 38059-2019 filling control)."""

SCRAPPED: Final = "scrapped"
"""Status of a cylinder taken out of use for good (报废, TSG 23-2021)."""

NOT_IN_SERVICE_STATUSES: Final[tuple[str, ...]] = (
    "in_inspection",
    "lost",
    "suspended",
    "not_activated",
)
"""Statuses that deny a fill with reason ``not_in_service`` (DESIGN §4). ``scrapped`` is
not here: it has its own, more specific reason."""

SITE_KINDS: Final[tuple[str, ...]] = (
    "filling_station",
    "store",
    "warehouse",
    "inspection_agency",
)
DEVICE_KINDS: Final[tuple[str, ...]] = ("gun", "valve", "handheld", "vehicle")
CUSTOMER_KINDS: Final[tuple[str, ...]] = ("resident", "restaurant", "industrial")
ROLES: Final[tuple[str, ...]] = (
    "admin",
    "regulator",
    "officer",
    "company_admin",
    "station_operator",
    "inspector",
)
"""Logged-in roles of DESIGN §7 (the anonymous ``public`` has no account and no role)."""

LICENCE_STATUSES: Final[tuple[str, ...]] = ("valid", "suspended", "revoked")
"""Status of a company's or station's filling licence (气瓶充装许可证, TSG 23-2021)."""

VALID_LICENCE: Final = "valid"

FILL_RESULTS: Final[tuple[str, ...]] = ("completed", "aborted")
"""``result`` of a gun's fill message (DESIGN §5)."""

INSPECTION_RESULTS: Final[tuple[str, ...]] = ("pass", "fail", "scrap")
"""Outcome of a periodic inspection (GB/T 8334-2022 评定)."""

SCAN_ACTION_NAMES: Final[tuple[str, ...]] = ("dispatch", "deliver", "return", "transfer", "receive")
"""``action`` of a handheld scan (DESIGN §5)."""

ALERT_KINDS: Final[tuple[str, ...]] = (
    "fill_denied",
    "overfill",
    "underfill",
    "repeat_fill",
    "unknown_tag",
    "overstock",
    "leak",
    "device_offline",
    "out_of_region",
    "licence_expiring",
)
"""Alert kinds of DESIGN §4."""

ALERT_STATES: Final[tuple[str, ...]] = ("open", "acknowledged", "resolved")
"""Alert life cycle of DESIGN §4, in the only order it may advance."""
