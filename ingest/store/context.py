"""What one batch knows and what it has decided so far.

:class:`Item` is a received message on its way to the database. :class:`Territory` is the
worker's fixed configuration for the rules (settings, the city's districts, its calendar
day). :class:`BatchContext` holds the registry rows looked up once for the batch
(:mod:`ingest.store.lookups`) and accumulates what the rules of each message kind decide —
cylinder state changes, device presence, refused fills per station, pending alerts and live
events — until :mod:`ingest.store.live_state` and :mod:`ingest.store.alerts` write them.

Late data (a device that buffered while offline) is handled here once for every kind: a
cylinder's state changes only if the change is not older than the state it would replace
(``cylinders.state_at``), and "last seen" only moves forward.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import asyncpg

from ingest.auth import AuthOutcome
from ingest.live import position_event
from ingest.schemas import Parsed
from server.domain.localtime import city_date
from server.domain.supervision import is_live
from server.kernel.districts import DistrictIndex
from server.kernel.events import Event
from server.kernel.settings import Settings

__all__ = [
    "BatchContext",
    "CirculationFacts",
    "Item",
    "NewRead",
    "PendingAlert",
    "Read",
    "Territory",
]


@dataclass(slots=True)
class Item:
    """One received message on its way to the database."""

    topic: str
    payload: bytes
    received_at: datetime
    parsed: Parsed | None = None
    reject: str | None = None
    auth: AuthOutcome | None = None
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Territory:
    """The city the rules apply to: settings, district boundaries, its calendar day."""

    settings: Settings
    districts: DistrictIndex
    known_districts: frozenset[str]
    """District codes present in the ``districts`` table (usable as foreign keys)."""
    live_lag: timedelta
    """``[ingest] live_lag_s``: older messages are late data, not news."""

    @classmethod
    def of(
        cls, settings: Settings, districts: DistrictIndex, known_districts: frozenset[str]
    ) -> Territory:
        return cls(
            settings,
            districts,
            known_districts,
            timedelta(seconds=settings.ingest.live_lag_s),
        )

    def district_at(self, lat: float | None, lon: float | None) -> tuple[bool, str | None]:
        """(inside the city?, district code usable as a foreign key)."""
        if lat is None or lon is None:
            return True, None
        code = self.districts.lookup(lat, lon)
        if code is None:
            return False, None
        return True, code if code in self.known_districts else None

    def locate_many(
        self, points: list[tuple[float, float]]
    ) -> dict[tuple[float, float], tuple[bool, str | None]]:
        """:meth:`district_at` of many (lat, lon) points at once: one vectorized boundary
        test per district instead of one shapely call per point (a batch locates ~80 % of
        its messages; docs/BENCHMARKS.md "Ingest worker CPU per message")."""
        unique = list(dict.fromkeys(points))
        if not unique:
            return {}
        codes = self.districts.lookup_many([p[0] for p in unique], [p[1] for p in unique])
        known = self.known_districts
        return {
            pt: (False, None) if code is None else (True, code if code in known else None)
            for pt, code in zip(unique, codes, strict=True)
        }

    def fk_district(self, code: str | None) -> str | None:
        """*code* if the ``districts`` table has it, else None (a foreign key must hold)."""
        return code if code in self.known_districts else None

    def is_live(self, ts: datetime, now: datetime) -> bool:
        return is_live(ts, now, self.live_lag)

    def local_day(self, ts: datetime) -> date:
        """The city's calendar day of *ts* (``[alerts] timezone``)."""
        return city_date(ts, self.settings.alerts)


@dataclass(slots=True)
class PendingAlert:
    """An alert a rule decided to raise; merged per (kind, subject) before it is written."""

    kind: str
    subject_id: str
    at: datetime
    subject_type: str | None = None
    company_id: int | None = None
    site_id: int | None = None
    district_code: str | None = None
    cylinder_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    count: int = 1


@dataclass(frozen=True, slots=True)
class Read:
    """One reading of a tag with a place: a handheld scan with its fix, a gun at its station,
    a smart valve's own position (``cloned_tag``)."""

    at: datetime
    lat: float
    lon: float
    via: str
    """What read it: a scan action, ``fill``, ``auth`` (a gun's request), ``valve``."""
    device_id: str | None = None


@dataclass(slots=True)
class CirculationFacts:
    """What the circulation checks need beyond the registry rows, fetched in one query
    (:func:`ingest.store.circulation.fetch_facts`)."""

    entrustments: dict[tuple[int, int], list[tuple[date, date | None]]] = field(
        default_factory=dict
    )
    """(owner company, entrusted company) → the (valid_from, valid_to) of its entrustments."""
    reads: dict[int, list[Read]] = field(default_factory=dict)
    """Earlier reads with a place of the cylinders in :attr:`watched`, by cylinder id."""
    watched: set[int] = field(default_factory=set)
    """Cylinders read by a handheld or a gun in this batch: the ``cloned_tag`` check's."""

    def periods(self, owner: int | None, holder: int | None) -> list[tuple[date, date | None]]:
        if owner is None or holder is None:
            return []
        return self.entrustments.get((owner, holder), [])


@dataclass(frozen=True, slots=True)
class NewRead:
    """A read of a watched cylinder made by this batch's messages."""

    read: Read
    rfid: bool
    """A tag read by a handheld or a gun (a trigger of ``cloned_tag``), not a valve's fix."""
    site_id: int | None = None


Position = tuple[datetime, float, float, str | None, int | None, float | None, float | None]
"""(ts, lat, lon, district, company id, speed km/h, heading) of a vehicle or cylinder."""


@dataclass(slots=True)
class BatchContext:
    """Lookups and accumulators of one batch."""

    territory: Territory
    devices: dict[str, asyncpg.Record]
    cylinders: dict[str, dict[str, Any]]
    """Locked cylinder rows by tag, as mutable dicts: the rules change them in place."""
    sites_by_code: dict[str, asyncpg.Record]
    sites_by_id: dict[int, asyncpg.Record]
    customers: dict[tuple[int, str], asyncpg.Record]
    cyl_by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    dirty_cylinders: set[int] = field(default_factory=set)
    """Cylinders whose state changed (:meth:`set_state`): every state column is written."""
    seen_cylinders: set[int] = field(default_factory=set)
    """Cylinders only seen (and maybe moved) by the batch — most of a city's traffic, valve
    telemetry: only "last seen" and the position are written for them."""
    dev_seen: dict[int, datetime] = field(default_factory=dict)
    dev_status: dict[int, tuple[datetime, bool]] = field(default_factory=dict)
    dev_position: dict[int, tuple[datetime, float, float]] = field(default_factory=dict)
    touched_sites: set[int] = field(default_factory=set)
    """Sites whose stock of full cylinders may have grown (the overstock rule looks)."""
    alerts: list[PendingAlert] = field(default_factory=list)
    denials: defaultdict[tuple[int, date, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    """Refused fills per (station, local day, reason): ``fill_denials_daily``."""
    live_events: list[Event] = field(default_factory=list)
    circulation: CirculationFacts = field(default_factory=CirculationFacts)
    new_reads: dict[int, list[NewRead]] = field(default_factory=dict)
    """Reads of watched cylinders by this batch, by cylinder id (``cloned_tag``)."""
    positions: dict[tuple[Literal["vehicle", "cylinder"], str], Position] = field(
        default_factory=dict
    )
    """The newest position of each vehicle and cylinder the batch moved, by (kind, id): one
    ``positions`` event per object per batch, built after the rules (:meth:`show_position`)."""
    places: dict[tuple[float, float], tuple[bool, str | None]] = field(default_factory=dict)
    """(inside the city?, district) of the batch's positions, located all at once
    (:meth:`Territory.locate_many`) before the rules ask :meth:`district_at`."""

    def district_at(self, lat: float | None, lon: float | None) -> tuple[bool, str | None]:
        """:meth:`Territory.district_at`, answered from the batch's :attr:`places`."""
        if lat is None or lon is None:
            return True, None
        place = self.places.get((lat, lon))
        if place is None:
            place = self.places[(lat, lon)] = self.territory.district_at(lat, lon)
        return place

    def show_position(
        self,
        kind: Literal["vehicle", "cylinder"],
        ident: str,
        ts: datetime,
        lat: float,
        lon: float,
        district: str | None,
        company_id: int | None,
        speed_kmh: float | None = None,
        heading: float | None = None,
    ) -> None:
        """Announce where a vehicle or cylinder now is. Messages are applied in device-time
        order, so the last call per object is its newest fix and the only one published: the
        live map shows where things are, and its hub keeps only the latest per object anyway
        (docs/WEBSOCKET.md "Slow clients"), so the fixes in between were built for nobody."""
        self.positions[(kind, ident)] = (ts, lat, lon, district, company_id, speed_kmh, heading)

    def position_events(self) -> list[Event]:
        """The ``positions`` events of :attr:`positions`, one per object."""
        return [
            position_event(
                kind=kind,
                ident=ident,
                ts=ts,
                lat=lat,
                lon=lon,
                district=district,
                company_id=company_id,
                speed_kmh=speed_kmh,
                heading=heading,
            )
            for (kind, ident), (
                ts,
                lat,
                lon,
                district,
                company_id,
                speed_kmh,
                heading,
            ) in self.positions.items()
        ]

    def device_seen(self, dev_pk: int, ts: datetime) -> None:
        prev = self.dev_seen.get(dev_pk)
        if prev is None or ts > prev:
            self.dev_seen[dev_pk] = ts

    def set_state(self, cyl: dict[str, Any], ts: datetime, **changes: Any) -> bool:
        """Apply a state change unless a newer one is already recorded (late data)."""
        if cyl["state_at"] is not None and ts < cyl["state_at"]:
            return False
        cyl.update(changes)
        cyl["state_at"] = ts
        self.dirty_cylinders.add(cyl["id"])
        return True

    def see_cylinder(self, cyl: dict[str, Any], ts: datetime) -> bool:
        """Record that the cylinder was seen at *ts*; False if it was seen later already."""
        if cyl["last_seen_at"] is not None and ts < cyl["last_seen_at"]:
            return False
        cyl["last_seen_at"] = ts
        self.seen_cylinders.add(cyl["id"])
        return True

    def move_cylinder(
        self, cyl: dict[str, Any], lat: float, lon: float, district: str | None
    ) -> None:
        """Where a cylinder seen just now is (call after :meth:`see_cylinder` said yes)."""
        cyl["lat"], cyl["lon"] = lat, lon
        if district is not None:
            cyl["district_code"] = district
