"""The seeded city as the simulator sees it, and how it is read from PostgreSQL.

The simulator drives *real* seeded devices and cylinders so that every message it sends
refers to something the platform knows (or, for fault injection, deliberately does not).
It reads the city once at start-up with a few bounded queries: a city has ~600k cylinders
and the simulator needs only enough of each kind to pick from, so each pool is capped
(the caps are arguments, defaulted in :mod:`device_sim.config`).

The simulator also predicts the platform's answer to each fill request (allow, or deny
and why) from the same facts, so a run can report replies that disagree with the rules.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "City",
    "Customer",
    "Cylinder",
    "Device",
    "Site",
    "load_city",
]


@dataclass(frozen=True, slots=True)
class Site:
    code: str
    kind: str
    """``filling_station``, ``store`` or ``warehouse``."""
    company_id: int
    lat: float
    lon: float
    site_id: int = 0


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    kind: str
    """``gun``, ``handheld`` or ``vehicle`` (valves are cylinders' tags)."""
    company_id: int | None
    site_code: str | None


@dataclass(frozen=True, slots=True)
class Customer:
    account_no: str
    company_id: int
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Cylinder:
    tag: str
    company_id: int
    spec: str
    tare_kg: float | None
    status: str
    next_inspection: dt.date
    scrap_date: dt.date
    smart_valve: bool = True
    lat: float | None = None
    lon: float | None = None
    deliverable: bool = True
    """Filled at a licensed station since its last return (or registration): the platform
    lets it go to a customer without ``suspected_illegal_fill``. A synthetic city's cylinders
    are; a seeded one's say so from their record (:func:`load_city`)."""
    seen_ms: int | None = None
    """When the platform last saw it (at ``lat``/``lon``): a sim started right after another
    leaves it alone for the cloned-tag window too."""


@dataclass(slots=True)
class City:
    """What the simulator drives. Pools are lists so a seeded RNG picks reproducibly."""

    stations: list[Site]
    stores: list[Site]
    guns: list[Device]
    handhelds: list[Device]
    vehicles: list[Device]
    customers: list[Customer]
    legal: list[Cylinder]
    """In service, in date, not voided: a station of the owner company may fill them."""
    overdue: list[Cylinder]
    scrapped: list[Cylinder]
    """Past their scrap date or scrapped, tag not voided (a voided tag names no cylinder:
    the platform answers ``unknown_tag`` for it, not ``scrapped``)."""
    entrusted: set[tuple[int, int]] = field(default_factory=set)
    """(owner company, filler company) pairs with a valid entrustment (委托充装)."""
    today: dt.date = field(default_factory=dt.date.today)
    _by_company: dict[int, list[Cylinder]] = field(default_factory=dict, repr=False)
    _customers_by_company: dict[int, list[Customer]] = field(default_factory=dict, repr=False)
    _guns_by_station: dict[str, list[Device]] = field(default_factory=dict, repr=False)
    _stores_by_company: dict[int, list[Site]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookups after the pools changed."""
        by_co: defaultdict[int, list[Cylinder]] = defaultdict(list)
        for c in self.legal:
            by_co[c.company_id].append(c)
        self._by_company = dict(by_co)
        cust: defaultdict[int, list[Customer]] = defaultdict(list)
        for cu in self.customers:
            cust[cu.company_id].append(cu)
        self._customers_by_company = dict(cust)
        guns: defaultdict[str, list[Device]] = defaultdict(list)
        for g in self.guns:
            if g.site_code is not None:
                guns[g.site_code].append(g)
        self._guns_by_station = dict(guns)
        stores: defaultdict[int, list[Site]] = defaultdict(list)
        for s in self.stores:
            stores[s.company_id].append(s)
        self._stores_by_company = dict(stores)

    def cylinders_of(self, company_id: int) -> list[Cylinder]:
        return self._by_company.get(company_id, [])

    def customers_of(self, company_id: int) -> list[Customer]:
        return self._customers_by_company.get(company_id, [])

    def guns_at(self, station_code: str) -> list[Device]:
        return self._guns_by_station.get(station_code, [])

    def stores_of(self, company_id: int) -> list[Site]:
        return self._stores_by_company.get(company_id, [])

    def site(self, code: str | None) -> Site | None:
        if code is None:
            return None
        for s in self.stations:
            if s.code == code:
                return s
        for s in self.stores:
            if s.code == code:
                return s
        return None

    def station_of_gun(self, gun: Device) -> Site | None:
        return self.site(gun.site_code)

    def may_fill(self, owner_company: int, filler_company: int) -> bool:
        return owner_company == filler_company or (owner_company, filler_company) in self.entrusted

    def device_ids(self) -> set[str]:
        return {d.device_id for d in (*self.guns, *self.handhelds, *self.vehicles)}


_CYL_COLUMNS = """
    c.tag, c.owner_company_id, c.spec, c.tare_kg::float8 AS tare_kg, c.status,
    c.next_inspection_date, c.scrap_date, c.valve_type = 'smart' AS smart,
    COALESCE(c.lat, s.lat, cu.lat) AS lat, COALESCE(c.lon, s.lon, cu.lon) AS lon,
    (c.last_fill_at > coalesce(c.last_return_at, c.registered_at) AND EXISTS (
        SELECT 1 FROM sites f WHERE f.id = c.last_fill_site_id AND f.licence_status = 'valid'
           AND btrim(coalesce(f.licence_no, '')) <> ''
           AND f.licence_expiry >= c.last_fill_at::date)) IS TRUE AS deliverable,
    (extract(epoch FROM c.last_seen_at) * 1000)::bigint AS seen_ms
"""
_CYL_FROM = """
    FROM cylinders c
    LEFT JOIN sites s ON s.id = c.location_site_id
    LEFT JOIN customers cu ON cu.id = c.location_customer_id
"""


def _cylinder(r: Any) -> Cylinder:
    return Cylinder(
        tag=r["tag"],
        company_id=r["owner_company_id"],
        spec=r["spec"],
        tare_kg=r["tare_kg"],
        status=r["status"],
        next_inspection=r["next_inspection_date"],
        scrap_date=r["scrap_date"],
        smart_valve=bool(r["smart"]),
        lat=r["lat"],
        lon=r["lon"],
        deliverable=bool(r["deliverable"]),
        seen_ms=r["seen_ms"],
    )


async def load_city(
    conn: Any,
    *,
    today: dt.date,
    stations: int | None = None,
    legal_cap: int,
    illegal_cap: int,
    customers_cap: int,
    seed: int = 0,
) -> City:
    """Read the seeded city: licensed *stations* (a subset, or all) with their guns, the companies'
    stores, handhelds and vehicles, a sample of customers and of cylinders per pool.

    Only licensed stations are driven, so that a legal attempt is expected to be allowed
    (an unlicensed station would turn every attempt into ``station_not_licensed``).
    Sampling is ``ORDER BY md5(tag || seed)`` so the same seed reads the same sample.
    """
    st_rows = await conn.fetch(
        """SELECT id, code, kind, company_id, lat, lon FROM sites
            WHERE kind = 'filling_station' AND company_id IS NOT NULL
              AND lat IS NOT NULL AND lon IS NOT NULL
              AND licence_status = 'valid' AND btrim(coalesce(licence_no, '')) <> ''
              AND licence_expiry >= $1
              AND EXISTS (SELECT 1 FROM devices d WHERE d.site_id = sites.id AND d.kind = 'gun'
                                                  AND d.active)
            ORDER BY code""",
        today,
    )
    if stations is not None:
        st_rows = st_rows[:stations]
    station_list = [
        Site(r["code"], r["kind"], r["company_id"], r["lat"], r["lon"], r["id"]) for r in st_rows
    ]
    companies = sorted({s.company_id for s in station_list})
    store_rows = await conn.fetch(
        """SELECT id, code, kind, company_id, lat, lon FROM sites
            WHERE kind IN ('store', 'warehouse') AND company_id = ANY($1::bigint[])
              AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY code""",
        companies,
    )
    stores = [
        Site(r["code"], r["kind"], r["company_id"], r["lat"], r["lon"], r["id"]) for r in store_rows
    ]
    site_ids = [s.site_id for s in station_list] + [s.site_id for s in stores]
    dev_rows = await conn.fetch(
        """SELECT d.device_id, d.kind, d.company_id, s.code AS site_code
             FROM devices d LEFT JOIN sites s ON s.id = d.site_id
            WHERE d.active AND d.kind IN ('gun', 'handheld', 'vehicle')
              AND (d.site_id = ANY($1::bigint[])
                   OR (d.kind <> 'gun' AND d.company_id = ANY($2::bigint[])))
            ORDER BY d.device_id""",
        site_ids,
        companies,
    )
    devices = [Device(r["device_id"], r["kind"], r["company_id"], r["site_code"]) for r in dev_rows]
    cust_rows = await conn.fetch(
        """SELECT account_no, company_id, lat, lon FROM (
               SELECT account_no, company_id, lat, lon,
                      row_number() OVER (PARTITION BY company_id
                                         ORDER BY md5(account_no || $3)) AS n
                 FROM customers
                WHERE company_id = ANY($1::bigint[]) AND lat IS NOT NULL AND lon IS NOT NULL) t
            WHERE n <= $2 ORDER BY company_id, account_no""",
        companies,
        customers_cap,
        str(seed),
    )
    customers = [Customer(r["account_no"], r["company_id"], r["lat"], r["lon"]) for r in cust_rows]
    legal_rows = await conn.fetch(
        f"""SELECT {_CYL_COLUMNS} {_CYL_FROM}
             WHERE c.owner_company_id = ANY($1::bigint[]) AND c.status = 'in_service'
               AND NOT c.tag_voided AND c.next_inspection_date >= $2 AND c.scrap_date > $2
             ORDER BY md5(c.tag || $4) LIMIT $3""",
        companies,
        today,
        legal_cap,
        str(seed),
    )
    overdue_rows = await conn.fetch(
        f"""SELECT {_CYL_COLUMNS} {_CYL_FROM}
             WHERE c.status = 'in_service' AND NOT c.tag_voided
               AND c.next_inspection_date < $1 AND c.scrap_date > $1
             ORDER BY md5(c.tag || $3) LIMIT $2""",
        today,
        illegal_cap,
        str(seed),
    )
    scrapped_rows = await conn.fetch(
        f"""SELECT {_CYL_COLUMNS} {_CYL_FROM}
             WHERE (c.status = 'scrapped' OR c.scrap_date <= $1) AND NOT c.tag_voided
             ORDER BY md5(c.tag || $3) LIMIT $2""",
        today,
        illegal_cap,
        str(seed),
    )
    ent_rows = await conn.fetch(
        """SELECT owner_company_id, filler_company_id FROM entrustments
            WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to >= $1)""",
        today,
    )
    return City(
        stations=station_list,
        stores=stores,
        guns=[d for d in devices if d.kind == "gun"],
        handhelds=[d for d in devices if d.kind == "handheld"],
        vehicles=[d for d in devices if d.kind == "vehicle"],
        customers=customers,
        legal=[_cylinder(r) for r in legal_rows],
        overdue=[_cylinder(r) for r in overdue_rows],
        scrapped=[_cylinder(r) for r in scrapped_rows],
        entrusted={(r["owner_company_id"], r["filler_company_id"]) for r in ent_rows},
        today=today,
    )
