"""Devices of the demo city: guns per filling station, handhelds, delivery vehicles.

Valves need no rows: a valve is addressed by its cylinder's tag (docs/ARCHITECTURE.md §5). Vehicles
belong to companies with a depot (a station or a warehouse) and start out somewhere on
their rounds.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from server.db.bulk import reserve_ids
from server.seed.names import plate_number, words
from server.seed.records import Vehicle
from server.seed.shape import GUNS_PER_STATION, HANDHELDS_PER_STATION, HANDHELDS_PER_STORE

if TYPE_CHECKING:
    from server.seed.city import CityBuilder


async def add_devices(city: CityBuilder, n_vehicles: int) -> None:
    """Guns per station, handhelds per station and store, vehicles per company.

    Valves need no rows: a valve is addressed by its cylinder's tag (docs/ARCHITECTURE.md §5).
    """
    rng = city.rng
    # (device_id, kind, company_id, site_id, name, plate_no, lat, lon)
    plan: list[tuple[str, str, int | None, int | None, str, str | None, float, float]] = []
    handhelds = {"filling_station": HANDHELDS_PER_STATION, "store": HANDHELDS_PER_STORE}
    for site in city.sites:
        if site.kind == "filling_station":
            guns = [f"GUN-{site.code}-{g}" for g in range(1, rng.randint(*GUNS_PER_STATION) + 1)]
            city.guns[site.id] = guns
            plan += [
                (
                    gun,
                    "gun",
                    site.company_id,
                    site.id,
                    f"{site.name}{g}号枪",
                    None,
                    site.lat,
                    site.lon,
                )
                for g, gun in enumerate(guns, start=1)
            ]
        if site.kind in handhelds:
            plan += [
                (
                    f"HH-{site.code}-{h}",
                    "handheld",
                    site.company_id,
                    site.id,
                    f"{site.name}手持终端{h}",
                    None,
                    site.lat,
                    site.lon,
                )
                for h in range(1, rng.randint(*handhelds[site.kind]) + 1)
            ]
    # vehicles belong to companies with a depot (station or warehouse) and start out
    # somewhere on their rounds
    operators = [c for c in city.companies if c.depots] or city.companies
    owners = rng.choices(operators, weights=[c.weight for c in operators], k=n_vehicles)
    per_company: Counter[int] = Counter()
    vehicles: list[tuple[int, str]] = []
    for company in owners:
        per_company[company.id] += 1
        depot = rng.choice(company.depots).id if company.depots else None
        d = city.pick_district(city.home_weights)
        lat, lon = d.random_point(rng)
        vehicles.append((len(plan), d.code))
        plan.append(
            (
                f"VEH-{company.code}-{per_company[company.id]:03d}",
                "vehicle",
                company.id,
                depot,
                f"{company.short}配送车",
                plate_number(rng),
                lat,
                lon,
            )
        )
    first = await reserve_ids(city.conn, "devices", len(plan))
    await city.conn.copy_records_to_table(
        "devices",
        records=[(first + i, *row) for i, row in enumerate(plan)],
        columns=words("id device_id kind company_id site_id name plate_no lat lon"),
    )
    for i, district in vehicles:
        device_id, _, company_id, _, _, _, lat, lon = plan[i]
        assert company_id is not None
        city.vehicles.append(Vehicle(first + i, device_id, company_id, district, lat, lon))
    counts = Counter(row[1] for row in plan)
    city.summary.guns = counts["gun"]
    city.summary.handhelds = counts["handheld"]
    city.summary.vehicles = counts["vehicle"]
