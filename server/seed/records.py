"""What a seed run knows while it builds the city, and what it reports at the end.

The master data the later steps need (companies, sites, vehicles, customers) is kept in
small records rather than read back from the database; `Decimals` and `Clock` are the
hot loop's helpers for amounts and timestamps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from server.domain.localtime import city_zone
from server.kernel.settings import Settings


class AlreadySeeded(RuntimeError):
    """The database already holds cylinders; seeding again would duplicate the city."""

    def __init__(self, cylinders: int) -> None:
        self.cylinders = cylinders
        super().__init__(
            f"database already seeded: {cylinders:,} cylinders; use --if-empty or a fresh database"
        )


@dataclass
class SeedSummary:
    """What a seed wrote (counts of rows), and how long it took."""

    districts: int = 0
    companies: int = 0
    filling_stations: int = 0
    stores: int = 0
    warehouses: int = 0
    inspection_agencies: int = 0
    entrustments: int = 0
    customers: int = 0
    guns: int = 0
    handhelds: int = 0
    vehicles: int = 0
    cylinders: int = 0
    users: int = 0
    events: int = 0
    fills: int = 0
    history_months: int = 0
    inspections: int = 0
    refusals: int = 0
    alerts: int = 0
    complaints: int = 0
    safety_inspections: int = 0
    rectifications: int = 0
    """Of the safety inspections' failed items (one each), open or closed."""
    seconds: float = 0.0
    compliance: dict[str, int] = field(default_factory=dict)
    """Cylinders by compliance status on the seed's ``today`` (docs/ARCHITECTURE.md §4)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Cylinders by record status (in_service, scrapped, lost …)."""

    def lines(self) -> list[str]:
        """A human summary, one fact per line."""
        return [
            f"districts {self.districts}, companies {self.companies}, "
            f"entrustments {self.entrustments}",
            f"sites: {self.filling_stations} filling stations, {self.stores} stores, "
            f"{self.warehouses} warehouses, {self.inspection_agencies} inspection agencies",
            f"customers {self.customers:,}; devices: {self.guns} guns, "
            f"{self.handhelds} handhelds, {self.vehicles} vehicles",
            f"cylinders {self.cylinders:,}: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(self.compliance.items())),
            "record status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.statuses.items())),
            f"history ({self.history_months} months): {self.events:,} events, "
            f"{self.fills:,} fills, {self.inspections:,} inspections, "
            f"{self.refusals:,} refused fills, {self.alerts:,} alerts, "
            f"{self.complaints:,} complaints, {self.safety_inspections:,} safety inspections "
            f"({self.rectifications:,} rectifications)",
            f"{self.users} demo users created",
            f"took {self.seconds:.1f} s",
        ]


@dataclass
class Site:
    id: int
    code: str
    name: str
    kind: str
    company_id: int | None
    district: str
    lat: float
    lon: float
    capacity: int = 0
    suspended_on: int = 0
    """Ordinal of the local day its filling licence was suspended (0: never)."""


@dataclass
class Company:
    id: int
    code: str
    name: str
    short: str
    weight: float
    district: str = ""
    stations: list[Site] = field(default_factory=list)
    fill_stations: list[Site] = field(default_factory=list)
    """Stations that may fill this company's cylinders: its own, else its filler's."""
    entrusted: list[Site] = field(default_factory=list)
    """Another company's stations it entrusted besides its own (委托充装 for some fills)."""
    depots: list[Site] = field(default_factory=list)


@dataclass
class Vehicle:
    id: int
    device_id: str
    company_id: int
    district: str
    lat: float
    lon: float


class Decimals:
    """Interned ``Decimal`` values in hundredths: asyncpg encodes a Decimal for a numeric
    column about twice as fast as a float, and reusing the objects saves building 3M."""

    def __init__(self) -> None:
        self._cache: dict[int, Decimal] = {}

    def __call__(self, value: float) -> Decimal:
        cents = round(value * 100)
        d = self._cache.get(cents)
        if d is None:
            d = self._cache[cents] = Decimal(cents).scaleb(-2)
        return d


class Clock:
    """Timestamps of the seeded history, all strictly before the start of ``today``.

    Anchoring on local midnight (``[alerts] timezone``) keeps the seed deterministic for a
    given day and never puts a fill or registration in the future. Times fall within the
    configured opening hours. Day bases and second offsets are precomputed: the seed asks
    for a few million timestamps and building each from scratch dominated its profile.
    """

    def __init__(self, today: date, settings: Settings) -> None:
        zone = city_zone(settings.alerts)
        self.zone = zone
        self.today = today
        self.today_ord = today.toordinal()
        self.midnight = datetime(today.year, today.month, today.day, tzinfo=zone).astimezone(UTC)
        self.open_s = settings.alerts.opening_hour_start * 3600
        self.span_s = max(settings.alerts.opening_hour_end * 3600 - self.open_s, 3600)
        self._opening = timedelta(seconds=self.open_s)
        self._bases: dict[int, datetime] = {}
        self._seconds = [timedelta(seconds=s) for s in range(self.span_s)]

    def on_day(self, day: date, rand: Callable[[], float]) -> datetime:
        """A moment during opening hours on *day* (which must be before today)."""
        days_ago = self.today_ord - day.toordinal()
        base = self._bases.get(days_ago)
        if base is None:
            base = self._bases[days_ago] = self.midnight - timedelta(days=days_ago) + self._opening
        return base + self._seconds[int(rand() * self.span_s)]

    def at(self, day_ord: int, second: int) -> datetime:
        """The moment *second* seconds after opening time on the day of ordinal *day_ord*."""
        days_ago = self.today_ord - day_ord
        base = self._bases.get(days_ago)
        if base is None:
            base = self._bases[days_ago] = self.midnight - timedelta(days=days_ago) + self._opening
        return base + self._seconds[second]

    def day_base(self, day_ord: int) -> datetime:
        """Opening time on the day of ordinal *day_ord* (add ``seconds[s]`` for a moment)."""
        days_ago = self.today_ord - day_ord
        base = self._bases.get(days_ago)
        if base is None:
            base = self._bases[days_ago] = self.midnight - timedelta(days=days_ago) + self._opening
        return base

    @property
    def seconds(self) -> list[timedelta]:
        """``seconds[s]`` is a timedelta of *s* seconds, for s within the opening hours."""
        return self._seconds

    def local_day(self, moment: datetime) -> int:
        """Ordinal of the city's calendar day of *moment*."""
        return moment.astimezone(self.zone).date().toordinal()

    def days_ago(self, lo: int, hi: int, rand: Callable[[], float]) -> datetime:
        """A moment during opening hours between *hi* and *lo* days before today (lo ≥ 1)."""
        return self.on_day(
            date.fromordinal(self.today_ord - lo - int(rand() * (hi - lo + 1))), rand
        )


class Customers:
    """Column arrays of the seeded customers, for placing cylinders at them."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.company_ids: list[int] = []
        self.districts: list[str] = []
        self.lats: list[float] = []
        self.lons: list[float] = []
        self.opened: list[int] = []
        """Ordinal of the day each account was opened (deliveries only from then on)."""
        self.kinds: list[str] = []
        """resident, restaurant or industrial (the safety inspection's catalogue)."""
        self._weights: list[float] = []
        self.cum_weights: list[float] = []

    def add(
        self,
        cid: int,
        company_id: int,
        district: str,
        lat: float,
        lon: float,
        weight: float,
        opened: int,
        kind: str = "resident",
    ) -> None:
        self.ids.append(cid)
        self.opened.append(opened)
        self.kinds.append(kind)
        self.company_ids.append(company_id)
        self.districts.append(district)
        self.lats.append(lat)
        self.lons.append(lon)
        self._weights.append(weight)

    def finish(self) -> None:
        self.cum_weights = list(itertools.accumulate(self._weights))
        self._weights = []
