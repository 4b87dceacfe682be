"""The closed vocabularies of the platform, in one place (docs/ARCHITECTURE.md §4).

Every word a record, a payload, a filter or a live channel may carry is defined here once
— statuses, kinds, roles, scan actions, alert kinds and severities, fill check items, live
channels — and every other module imports it: the REST API validates with these tuples,
ingest decodes payloads with the ``Literal`` types, the archive importer, the seed and the
device simulator write the same words, and the pages label them. They mirror the CHECK
constraints of the migrations and the contracts of docs/API.md, docs/WEBSOCKET.md and the
MQTT payloads of docs/ARCHITECTURE.md. Order is meaningful only where noted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args

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
"""Statuses accepted by the archive import/export interface: docs/ARCHITECTURE.md §9's five, extended
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
"""Statuses that deny a fill with reason ``not_in_service`` (docs/ARCHITECTURE.md §4). ``scrapped`` is
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
"""Logged-in roles of docs/ARCHITECTURE.md §7 (the anonymous ``public`` has no account and no role)."""

LICENCE_STATUSES: Final[tuple[str, ...]] = ("valid", "suspended", "revoked")
"""Status of a company's or station's filling licence (气瓶充装许可证, TSG 23-2021)."""

VALID_LICENCE: Final = "valid"

FillResult = Literal["completed", "aborted"]
"""``result`` of a gun's fill message; ingest decodes it with this type."""

FILL_RESULTS: Final[tuple[str, ...]] = get_args(FillResult)

INSPECTION_RESULTS: Final[tuple[str, ...]] = ("pass", "fail", "scrap")
"""Outcome of a periodic inspection (GB/T 8334-2022 评定)."""

SCRAP_REASONS: Final[tuple[str, ...]] = (
    "failed_inspection",
    "over_age",
    "damage",
    "markings_illegible",
    "modified",
    "owner_request",
    "other",
)
"""Why a cylinder is scrapped (报废原因; TSG 23-2021 and GB/T 8334-2022 判废): failed its
periodic inspection; reached its scrap age; corroded, dented, burnt or otherwise damaged;
steel-stamp markings missing or illegible; modified or repaired illegally; handed in by its
owner; ``other`` (a note must say what). Mirrors the CHECK of ``inspections.scrap_reason``
(migration 0110)."""

SCRAP_REASON_DEFAULT: Final = "failed_inspection"
"""The reason of a failed inspection that names none (the result says it)."""

SCRAP_REASON_NEEDS_NOTE: Final[frozenset[str]] = frozenset({"other"})
"""Reasons that say nothing by themselves: a note is required with them."""

ScanAction = Literal["dispatch", "deliver", "return", "transfer", "receive"]
"""``action`` of a handheld scan (the ``scan`` payload); ingest decodes it with this type."""

SCAN_ACTION_NAMES: Final[tuple[str, ...]] = get_args(ScanAction)
"""The scan actions as a tuple, in the payload contract's order."""

PRE_CHECK_ITEMS: Final[tuple[str, ...]] = (
    "markings_colour",
    "residual_pressure",
    "valve_accessories_intact",
    "no_visible_damage",
    "inspection_in_date",
    "own_cylinder",
)
"""Pre-fill check items (充装前检查, DOMAIN.md "Filling checks"), the keys of a fill's
``pre_check``: markings and colour, residual pressure present, valve and accessories
intact, no visible damage, inspection in date, own cylinder."""

POST_CHECK_ITEMS: Final[tuple[str, ...]] = (
    "net_weight_in_range",
    "no_leak_at_valve",
    "seals_intact",
    "filling_label_attached",
)
"""Post-fill check items (充装后检查, DOMAIN.md "Filling checks"), the keys of a fill's
``post_check``: net weight in range, no leak at the valve, seals intact, label attached."""

Severity = Literal["info", "warning", "critical"]
"""How grave an alert is; the CHECK constraint of ``alerts.severity``."""

SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
"""Alert severities from the least to the most grave (a page listing the gravest first
reverses it)."""

SubjectType = Literal["cylinder", "site", "device", "company"]
"""What an alert's ``subject_id`` names: a cylinder (its tag), a site (its code), a device
(its device id) or a company (its code)."""


@dataclass(frozen=True, slots=True)
class AlertKind:
    """One kind of alert: how grave it is and what it is about."""

    severity: Severity
    subject_type: SubjectType
    live_only: bool
    """Describes a present condition, so it is not raised from late (buffered) data."""
    why: str


ALERT_KINDS: Final[Mapping[str, AlertKind]] = MappingProxyType(
    {
        # TSG 23-2021 refusals: the gun held, but a station trying is itself a finding.
        "fill_denied": AlertKind("warning", "cylinder", False, "a gun was refused a fill"),
        # An overfilled cylinder must not leave the station (liquid expansion can burst it).
        "overfill": AlertKind("critical", "cylinder", False, "net mass above the model's maximum"),
        # Consumer protection, not a safety block (DOMAIN.md).
        "underfill": AlertKind("warning", "cylinder", False, "net mass below maximum − tolerance"),
        # Tag cloning or filling off the books.
        "repeat_fill": AlertKind("warning", "cylinder", False, "filled again without a return"),
        # A tag the archive does not know: an unregistered (black-market) cylinder.
        "unknown_tag": AlertKind("warning", "cylinder", False, "a tag no cylinder carries"),
        # 重瓶超量存放: a fire load above the site's storage licence.
        "overstock": AlertKind("critical", "site", True, "full cylinders above permitted storage"),
        # A leaking valve at a customer is the emergency the platform exists for.
        "leak": AlertKind("critical", "cylinder", False, "valve gas sensor at or above threshold"),
        # A gun that cannot reach the platform cannot be stopped from filling.
        "device_offline": AlertKind("warning", "device", True, "device silent or went offline"),
        # 区域外流: the event happened, late or not, so it is raised from late data too.
        "out_of_region": AlertKind("warning", "cylinder", False, "seen outside the city"),
        "licence_expiring": AlertKind("info", "site", False, "filling licence close to expiry"),
        # DOMAIN.md "Circulation checks": facts about a scan, so raised from late data too.
        # An unsafe cylinder moving on towards a household (TSG 23-2021 forbids its use).
        "circulation_violation": AlertKind(
            "critical", "cylinder", False, "overdue, scrapped or voided cylinder circulating"
        ),
        # 黑充装嫌疑: it reached a customer full without passing a supervised gun.
        "suspected_illegal_fill": AlertKind(
            "critical", "cylinder", False, "delivered with no licensed fill since its return"
        ),
        # 串瓶 / 产权瓶流失: the owner's property in another company's hands.
        "foreign_cylinder": AlertKind(
            "warning", "cylinder", False, "scanned by a company neither owner nor entrusted"
        ),
        # 克隆标签嫌疑: one of two reads is a copied chip (or a device's position is wrong).
        "cloned_tag": AlertKind("warning", "cylinder", False, "one tag read too far apart"),
    }
)
"""Every alert kind the platform raises (docs/ARCHITECTURE.md §4), with its severity and
subject: the one table to change. Iterating it gives the kind names in a stable order.

A kind joins this table together with the rule that raises it, so that no filter offers an
alert that can never fire: the circulation checks of DOMAIN.md (``circulation_violation``,
``suspected_illegal_fill``, ``foreign_cylinder``, ``cloned_tag``) are raised by ingest at
every handheld scan and gun read (:mod:`server.domain.circulation`)."""

ALERT_STATES: Final[tuple[str, ...]] = ("open", "acknowledged", "resolved")
"""Alert life cycle of docs/ARCHITECTURE.md §4, in the only order it may advance."""

COMPLAINT_STATES: Final[tuple[str, ...]] = ("new", "assigned", "answered", "closed")
"""A complaint (投诉举报) as the bureau works it, in the only order it advances; the moves and
who makes them are server.domain.complaints."""

# ------------------------------------------------------------------ live channels

CHANNEL_POSITIONS: Final = "positions"
"""Vehicle and valve positions; coalesced (the latest position per object wins)."""
CHANNEL_ALERTS: Final = "alerts"
CHANNEL_FILLS: Final = "fills"
CHANNEL_KPIS: Final = "kpis"
CHANNEL_EVENTS: Final = "events"
"""The cylinder trajectory stream (every recorded event)."""
CHANNEL_DEVICES: Final = "devices"
"""Devices going online and offline."""

LIVE_CHANNELS: Final[tuple[str, ...]] = (
    CHANNEL_POSITIONS,
    CHANNEL_ALERTS,
    CHANNEL_FILLS,
    CHANNEL_KPIS,
    CHANNEL_EVENTS,
    CHANNEL_DEVICES,
)
"""The channels live events are published on and a websocket may subscribe to
(docs/WEBSOCKET.md "Channels")."""

# ------------------------------------------------------------------ district codes

_DISTRICT_CODE: Final = re.compile(r"[0-9]{6}")


def is_district_code(value: str) -> bool:
    """A county-level administrative division code (GB/T 2260): exactly six digits.

    Regulators are scoped by these codes and every record carries one; a filter with any
    other shape can match nothing, so the API refuses it rather than answering empty.
    """
    return _DISTRICT_CODE.fullmatch(value) is not None
