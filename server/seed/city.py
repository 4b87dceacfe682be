"""The demo city, built in one transaction: `seed_city` and the `CityBuilder` it runs.

`seed_city` is the seed's entry point (the command, the benchmarks and the tests call it).
`CityBuilder` holds the random stream and what earlier steps created, and runs the steps
in dependency order: districts, the supply chain (`server.seed.sites`), customers
(`server.seed.customers`), devices (`server.seed.devices`), demo logins
(`server.seed.users`), then the cylinders and their history (`server.seed.cylinders`).
Rows go in with COPY and explicit ids reserved from each table's sequence
(`server.db.bulk`), so no step needs a round trip to learn what an earlier one created.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

import asyncpg
import orjson
from tqdm import tqdm

from server.db.bulk import copy_generated
from server.db.install import NotADemo, mark_demo, may_become_demo
from server.kernel.districts import District, load_districts
from server.kernel.settings import Settings
from server.seed.customers import add_customers
from server.seed.cylinders import CYLINDER_COLUMNS, CylinderGenerator
from server.seed.devices import add_devices
from server.seed.past import write_history
from server.seed.records import (
    AlreadySeeded,
    Clock,
    Company,
    Customers,
    Decimals,
    SeedSummary,
    Site,
    Vehicle,
)
from server.seed.shape import (
    ADVISORY_LOCK,
    CHUNK_ROWS,
    DISTRICT_WEIGHTS,
    GENERATE_AHEAD,
    INDEX_BUILD_MEMORY,
    OTHER_DISTRICT_WEIGHT,
    SPEC_WEIGHTS,
    STATION_DISTRICT_WEIGHTS,
)
from server.seed.sites import add_companies, add_entrustments, add_sites
from server.seed.timeline import Timeline, history_start
from server.seed.users import create_demo_users


async def seed_city(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    cylinders: int,
    companies: int | None = None,
    stations: int | None = None,
    stores: int | None = None,
    customers: int | None = None,
    vehicles: int | None = None,
    random_seed: int | None = None,
    today: date | None = None,
    progress: bool = True,
    districts_path: Path | None = None,
    history_months: int | None = None,
) -> SeedSummary:
    """Build the demo city in the (migrated, empty) database behind *conn*.

    Counts not given come from ``settings.seed``; ``customers`` defaults to the configured
    number scaled down for a city smaller than ``settings.seed.cylinders`` (a 3,000-cylinder
    test city does not need 200,000 households) and never above it. Everything happens in
    one transaction; :class:`AlreadySeeded` is raised, and nothing written, when cylinders
    already exist, and :class:`~server.db.install.NotADemo` when the database has users of
    its own. The database is marked as the demo's in the same transaction.

    ``history_months`` (default ``[seed] history_months``) months of history are generated
    before *today* (`server.seed.past`); 0 keeps only a small sample of recent fills.
    """
    started = time.perf_counter()
    cfg = settings.seed
    n_companies = cfg.companies if companies is None else companies
    n_stations = cfg.filling_stations if stations is None else stations
    n_stores = cfg.stores if stores is None else stores
    n_vehicles = cfg.vehicles if vehicles is None else vehicles
    if customers is None:
        scale = cylinders / cfg.cylinders if cfg.cylinders else 1.0
        n_customers = max(1, min(cfg.customers, round(cfg.customers * scale)))
    else:
        n_customers = customers
    if min(n_companies, n_stations, n_customers) < 1 or min(cylinders, n_stores, n_vehicles) < 0:
        raise ValueError(
            "a city needs at least 1 company, filling station and customer, "
            "and no negative count of cylinders, stores or vehicles"
        )
    months = cfg.history_months if history_months is None else history_months
    if months < 0:
        raise ValueError("history months must not be negative")
    seed = cfg.random_seed if random_seed is None else random_seed
    day = today or date.today()
    districts = load_districts(districts_path)
    specs = [s for s in SPEC_WEIGHTS if s in settings.models] or sorted(settings.models)
    if not specs:
        raise ValueError("no cylinder models configured ([models.*] in the settings)")
    counts = {
        "n_companies": n_companies,
        "n_stations": n_stations,
        "n_stores": n_stores,
        "n_customers": n_customers,
        "n_vehicles": n_vehicles,
        "n_cylinders": cylinders,
    }

    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        summary = await _seed(
            conn, settings, districts, specs, random.Random(seed), day, progress, months, counts
        )
    finally:
        sys.setswitchinterval(switch)
    # fresh statistics, or the planner guesses at a million rows it has never seen
    for table in ANALYZED:
        await conn.execute(f"ANALYZE {table}")
    summary.seconds = time.perf_counter() - started
    return summary


async def _seed(
    conn: asyncpg.Connection,
    settings: Settings,
    districts: list[District],
    specs: list[str],
    rng: random.Random,
    day: date,
    progress: bool,
    months: int,
    counts: dict[str, int],
) -> SeedSummary:
    """The seed's one transaction (see `seed_city`)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
        existing = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
        if existing:
            raise AlreadySeeded(existing)
        if not await may_become_demo(conn):
            raise NotADemo()
        await mark_demo(conn)  # the published demo logins go in: say so (server.db.install)
        await conn.execute(
            "LOCK TABLE companies, sites, entrustments, customers, devices, cylinders "
            "IN SHARE ROW EXCLUSIVE MODE"
        )
        # index rebuilds at the end sort a million keys: give them room (this transaction only)
        await conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        builder = CityBuilder(conn, settings, districts, specs, rng, day, progress, months)
        return await builder.build(**counts)


SWITCH_INTERVAL_S: Final = 0.0005
"""The interpreter's thread switch interval while seeding (default 5 ms). Rows are generated
in a worker thread while the event loop encodes and sends the previous chunk (COPY); with
the default, every time the loop waits on the socket it may then wait up to 5 ms for the
GIL, and the loop's COPY crawls (measured: the 100k-cylinder city with 3 months' history
went from ~87 s to ~56 s on the shared 2-core machine)."""
ANALYZED: Final = (
    "companies",
    "sites",
    "customers",
    "devices",
    "cylinders",
    "events",
    "fills",
    "alerts",
    "inspections",
    "fill_denials_daily",
    "complaints",
    "safety_inspections",
    "safety_answers",
    "safety_rectifications",
)
"""Tables the seed fills in bulk, analysed afterwards."""


def _weights_for(codes: Sequence[str], table: dict[str, float]) -> list[float]:
    return [table.get(c, OTHER_DISTRICT_WEIGHT) for c in codes]


class CityBuilder:
    """One seed run: holds the random stream and what earlier steps created."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        settings: Settings,
        districts: list[District],
        specs: list[str],
        rng: random.Random,
        today: date,
        progress: bool,
        history_months: int = 0,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.districts = districts
        self.specs = specs
        self.rng = rng
        self.today = today
        self.clock = Clock(today, settings)
        self.history_months = history_months
        self.history_start = history_start(today, history_months)
        """First day of the seeded history (today when there is none)."""
        self.timeline: Timeline | None = None
        self.progress = progress and sys.stderr.isatty()
        self.summary = SeedSummary()
        self.companies: list[Company] = []
        self.company_by_id: dict[int, Company] = {}
        self.sites: list[Site] = []
        self.agencies: list[Site] = []
        self.vehicles: list[Vehicle] = []
        self.guns: dict[int, list[str]] = {}
        self.company_cum: list[float] = []
        self.account_seq: dict[int, int] = {}
        self.dec = Decimals()
        codes = [d.code for d in districts]
        self.home_weights = list(itertools.accumulate(_weights_for(codes, DISTRICT_WEIGHTS)))
        self.station_weights = list(
            itertools.accumulate(_weights_for(codes, STATION_DISTRICT_WEIGHTS))
        )

    def pick_district(self, cum_weights: list[float]) -> District:
        """A district drawn by the given cumulative weights (homes or stations)."""
        return self.rng.choices(self.districts, cum_weights=cum_weights)[0]

    async def build(
        self,
        *,
        n_companies: int,
        n_stations: int,
        n_stores: int,
        n_customers: int,
        n_vehicles: int,
        n_cylinders: int,
    ) -> SeedSummary:
        await self._districts()
        await add_companies(self, n_companies)
        await add_sites(self, n_stations, n_stores)
        await add_entrustments(self)
        customers = await add_customers(self, n_customers)
        await add_devices(self, n_vehicles)
        await self._users()
        if self.history_months:
            self.timeline = Timeline(self, customers, self.history_months)
        await self._cylinders(n_cylinders, customers)
        if self.timeline is not None:
            await write_history(self, self.timeline)
        return self.summary

    async def _districts(self) -> None:
        """Upsert the configured districts (a re-seed after editing the file updates them)."""
        await self.conn.executemany(
            """INSERT INTO districts (code, name, name_en, boundary)
               VALUES ($1, $2, $3, $4::text::jsonb)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
                   name_en = EXCLUDED.name_en, boundary = EXCLUDED.boundary""",
            [
                (d.code, d.name, d.name_en, orjson.dumps(d.geometry).decode())
                for d in self.districts
            ],
        )
        self.summary.districts = len(self.districts)

    async def _users(self) -> None:
        """The demo logins, bound to the first company, its first station, the first agency."""
        company = self.companies[0]
        station = (
            company.stations[0]
            if company.stations
            else next(s for s in self.sites if s.kind == "filling_station")
        )
        self.summary.users = await create_demo_users(
            self.conn, self.settings, self.districts, company, station, self.agencies[0]
        )

    # -- bulk rows -----------------------------------------------------------------

    async def copy_generated(
        self,
        table: str,
        columns: Sequence[str],
        n: int,
        make_rows: Callable[[int, int, int], list[tuple[Any, ...]]],
    ) -> None:
        """COPY *n* generated rows into *table* (`server.db.bulk.copy_generated`), with a
        progress bar on a terminal."""
        with tqdm(total=n, desc=table, unit="row", disable=not self.progress) as bar:
            await copy_generated(
                self.conn,
                table,
                columns,
                n,
                make_rows,
                chunk_rows=CHUNK_ROWS,
                ahead=GENERATE_AHEAD,
                progress=bar.update,
            )

    async def _cylinders(self, n: int, customers: Customers) -> None:
        gen = CylinderGenerator(self, customers, n)
        await self.copy_generated("cylinders", CYLINDER_COLUMNS, n, gen.rows)
        await gen.history.store(self.conn)
        self.summary.events = len(gen.history.events)
        self.summary.fills = len(gen.history.fills)
        self.summary.cylinders = n
        self.summary.compliance = dict(gen.compliance)
        self.summary.statuses = dict(gen.statuses)
