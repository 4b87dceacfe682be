"""The supply chain of the demo city: gas companies, their sites, and who fills for whom.

Companies carry their licences (燃气经营许可证) with a few expiring or suspended so that
the licence alerts and the fill authorization's `station_not_licensed` have something to
show; the demo company ZZ-G001 and its first station always stay valid (the demo logins
are bound to them). Sites — filling stations, stores (供应站), warehouses and inspection
agencies — are placed inside the district polygons, stations towards the outskirts. The
smallest companies run no station and entrust a larger one (委托充装).
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from server.db.bulk import reserve_ids
from server.seed.history_shape import (
    ENTRUSTING_WITH_STATIONS,
    ENTRUSTMENT_AGE_DAYS,
    ENTRUSTMENT_LEFT_DAYS,
    SUSPENDED_DAYS_AGO,
    SUSPENSION_REASON,
)
from server.seed.names import (
    GENERATED_COMPANY_WORDS,
    GENERIC_ROADS,
    INSPECTION_AGENCIES,
    NAMED_COMPANIES,
    ROADS,
    person_name,
    phone_number,
    street_address,
    words,
)
from server.seed.records import Company, Site
from server.seed.shape import (
    COMPANIES_LICENCE_EXPIRING,
    ENTRUSTING_COMPANIES,
    LICENCE_EXPIRED_DAYS,
    LICENCE_LEFT_DAYS_MAX,
    LICENCE_TERM_YEARS,
    PERMITTED_STORAGE_FACTORS,
    PERMITTED_STORAGE_SET_SHARE,
    STATIONS_LICENCE_EXPIRING,
    STATIONS_SUSPENDED,
    WAREHOUSE_PER_STATIONS,
)

if TYPE_CHECKING:
    from server.seed.city import CityBuilder


async def add_companies(city: CityBuilder, n: int) -> None:
    """The named large companies first (ZZ-G001 is the demo company), then generated ones
    with a market weight that falls with their rank."""
    rng = city.rng
    names: list[tuple[str, str, float]] = list(NAMED_COMPANIES[:n])
    pool = list(GENERATED_COMPANY_WORDS)
    rng.shuffle(pool)
    for i in range(len(names), n):
        word = pool[i % len(pool)] + ("" if i < len(pool) else str(i // len(pool) + 1))
        names.append((f"郑州市{word}液化气有限公司", f"{word}液化气", 4.0 / (1 + i) ** 0.5))
    licence_days = city.settings.alerts.licence_expiring_days
    # the smallest companies carry the licence problems; ZZ-G001 (the demo company) never
    suspended = n - 1 if n >= 3 else -1
    expiring = set(range(max(1, n - 1 - COMPANIES_LICENCE_EXPIRING), n - 1)) if n >= 3 else set()
    first = await reserve_ids(city.conn, "companies", n)
    rows = []
    for i, (name, short, weight) in enumerate(names):
        d = city.pick_district(city.home_weights)
        status = "valid"
        if i == suspended:
            expiry = city.today - timedelta(days=rng.randint(*LICENCE_EXPIRED_DAYS))
            status = "suspended"
        elif i in expiring:
            expiry = city.today + timedelta(days=rng.randint(3, max(3, licence_days - 2)))
        else:
            expiry = city.today + timedelta(
                days=rng.randint(licence_days + 60, LICENCE_LEFT_DAYS_MAX)
            )
        issued = expiry.year - LICENCE_TERM_YEARS
        company = Company(first + i, f"ZZ-G{i + 1:03d}", name, short, weight, d.code)
        city.companies.append(company)
        rows.append(
            (
                company.id,
                company.code,
                name,
                d.code,
                f"豫{issued}01{i + 1:04d}G",
                expiry,
                status,
                person_name(rng),
                phone_number(rng),
                street_address(d, rng),
            )
        )
    await city.conn.copy_records_to_table(
        "companies",
        records=rows,
        columns=words(
            "id code name district_code licence_no licence_expiry licence_status "
            "contact_name contact_phone address"
        ),
    )
    city.company_by_id = {c.id: c for c in city.companies}
    city.company_cum = list(itertools.accumulate(c.weight for c in city.companies))
    city.summary.companies = n


async def add_sites(city: CityBuilder, n_stations: int, n_stores: int) -> None:
    """Filling stations (every filling company gets one, the rest by market weight), stores,
    warehouses and the inspection agencies, with licences and permitted full storage."""
    rng = city.rng
    alerts = city.settings.alerts
    companies = city.companies
    fillers = companies[: max(1, len(companies) - ENTRUSTING_COMPANIES)]
    # every filling company gets one station, the rest go by market weight
    owners = [fillers[i % len(fillers)] for i in range(min(n_stations, len(fillers)))]
    owners += rng.choices(fillers, weights=[c.weight for c in fillers], k=n_stations - len(owners))
    store_owners = rng.choices(companies, weights=[c.weight for c in companies], k=n_stores)
    n_warehouses = max(1, n_stations // WAREHOUSE_PER_STATIONS)
    warehouse_owners = fillers[:n_warehouses]
    plan: list[tuple[str, Company | None]] = (
        [("filling_station", c) for c in owners]
        + [("store", c) for c in store_owners]
        + [("warehouse", c) for c in warehouse_owners]
        + [("inspection_agency", None) for _ in INSPECTION_AGENCIES]
    )
    first = await reserve_ids(city.conn, "sites", len(plan))
    counters: Counter[str] = Counter()
    prefixes = {
        "filling_station": "S",
        "store": "D",
        "warehouse": "W",
        "inspection_agency": "J",
    }
    default_storage = {
        "filling_station": alerts.default_storage_filling_station,
        "store": alerts.default_storage_store,
        "warehouse": alerts.default_storage_warehouse,
        "inspection_agency": 0,
    }
    # licence trouble goes to the last stations; the demo operator's station stays valid
    station_ids = list(range(n_stations))
    suspended = set(station_ids[-STATIONS_SUSPENDED:]) if n_stations > 2 else set()
    expiring = (
        set(station_ids[-(STATIONS_SUSPENDED + STATIONS_LICENCE_EXPIRING) : -STATIONS_SUSPENDED])
        if n_stations > STATIONS_SUSPENDED + STATIONS_LICENCE_EXPIRING + 1
        else set()
    )
    rows = []
    for i, (kind, company) in enumerate(plan):
        counters[kind] += 1
        k = counters[kind]
        d = city.pick_district(city.station_weights if kind != "store" else city.home_weights)
        lat, lon = d.random_point(rng)
        road = rng.choice(ROADS.get(d.code, GENERIC_ROADS))
        permitted: int | None = None
        licence_no = expiry = None
        status = "valid"
        status_at = None
        if kind == "filling_station":
            assert company is not None
            name = f"{company.short}{road}充装站"
            licence_no = f"TS4241{k:03d}-"
            idx = k - 1
            if idx in suspended:
                status = "suspended"
                expiry = city.today + timedelta(days=rng.randint(90, 700))
                status_at = city.clock.days_ago(*SUSPENDED_DAYS_AGO, rng.random)
            elif idx in expiring:
                expiry = city.today + timedelta(
                    days=rng.randint(3, max(3, alerts.licence_expiring_days - 2))
                )
            else:
                expiry = city.today + timedelta(
                    days=rng.randint(alerts.licence_expiring_days + 60, LICENCE_LEFT_DAYS_MAX)
                )
            licence_no += str(expiry.year)
        elif kind == "store":
            assert company is not None
            name = f"{company.short}{road}供应站"
        elif kind == "warehouse":
            assert company is not None
            name = f"{company.short}{d.name}储配库"
        else:
            name = INSPECTION_AGENCIES[k - 1]
        if kind != "inspection_agency" and rng.random() < PERMITTED_STORAGE_SET_SHARE:
            permitted = int(default_storage[kind] * rng.choice(PERMITTED_STORAGE_FACTORS))
        site = Site(
            first + i,
            f"ZZ-{prefixes[kind]}{k:03d}",
            name,
            kind,
            None if company is None else company.id,
            d.code,
            lat,
            lon,
            permitted if permitted is not None else default_storage[kind],
        )
        if status_at is not None:
            site.suspended_on = city.clock.local_day(status_at)
        city.sites.append(site)
        if company is not None and kind == "filling_station":
            company.stations.append(site)
        if company is not None and kind in ("filling_station", "warehouse"):
            company.depots.append(site)
        if kind == "inspection_agency":
            city.agencies.append(site)
        rows.append(
            (
                site.id,
                site.code,
                name,
                kind,
                site.company_id,
                d.code,
                street_address(d, rng),
                lat,
                lon,
                permitted,
                licence_no,
                expiry,
                status,
                status_at,
                None if status_at is None else SUSPENSION_REASON,
            )
        )
    await city.conn.copy_records_to_table(
        "sites",
        records=rows,
        columns=words(
            "id code name kind company_id district_code address lat lon "
            "permitted_full_storage licence_no licence_expiry licence_status "
            "licence_status_at licence_status_reason"
        ),
    )
    city.summary.filling_stations = counters["filling_station"]
    city.summary.stores = counters["store"]
    city.summary.warehouses = counters["warehouse"]
    city.summary.inspection_agencies = counters["inspection_agency"]


async def add_entrustments(city: CityBuilder) -> None:
    """Companies without a station have a larger one fill for them (委托充装), and a few with
    stations of their own entrust another company's stations for some fills besides.

    Every entrustment began before the seeded history does, so each fill of the history at
    an entrusted station was authorised on its day (ingest/auth.py reads valid_from/valid_to).
    """
    rng = city.rng
    fillers = [c for c in city.companies if c.stations]
    start = city.history_start
    rows = []

    def entrust(owner: Company, filler: Company) -> None:
        valid_from = start - timedelta(days=rng.randint(*ENTRUSTMENT_AGE_DAYS))
        valid_to = city.today + timedelta(days=rng.randint(*ENTRUSTMENT_LEFT_DAYS))
        rows.append((owner.id, filler.id, valid_from, valid_to))

    for c in city.companies:
        if c.stations:
            c.fill_stations = c.stations
            continue
        filler = rng.choices(fillers, weights=[f.weight for f in fillers])[0]
        c.fill_stations = filler.stations
        entrust(c, filler)
    # the demo company (the first) keeps to its own stations
    mixed = [c for c in fillers[1:] if len(fillers) > 2]
    for c in rng.sample(mixed, min(ENTRUSTING_WITH_STATIONS, len(mixed))):
        others = [f for f in fillers if f is not c]
        filler = rng.choices(others, weights=[f.weight for f in others])[0]
        c.entrusted = list(filler.stations)
        entrust(c, filler)
    if rows:
        await city.conn.copy_records_to_table(
            "entrustments",
            records=rows,
            columns=["owner_company_id", "filler_company_id", "valid_from", "valid_to"],
        )
    city.summary.entrustments = len(rows)
