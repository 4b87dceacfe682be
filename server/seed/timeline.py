"""Each cylinder's past, planned while its row is generated: when it was filled, where it is.

The seeded history (`server.seed.past`) must end exactly where each cylinder's row says it
is now — full at a customer, empty back at a store, on a vehicle, scrapped at an agency —
and obey the domain on every day before: filled only at a station allowed to fill it
(its owner's, or one entrusted, 委托充装) that held a valid licence that day, never after
its inspection or scrap date (`server.domain.dates`), never twice without a return, at an
agency on its inspection day. So the plan is made backwards from the row's live state: the
cylinder generator asks `Timeline.live_state` for the last fill and return, and the
timeline keeps a few numbers per cylinder (arrays, ~60 bytes each) from which every
earlier cycle follows:

- fill *k* (k = 0 the last) falls on ``L − k·P ± jitter``, *P* the cylinder's cadence
  (about a month, DOMAIN.md "Scale of one city"), moved past an inspection it would precede;
- delivery follows the fill by a few days, the return precedes the next fill by a few;
- the jitter, the station, the delivery and return days come from a hash of (cylinder,
  cycle), so the month-by-month writer can recompute any cycle on its own — the fills of
  month *m* and the return they lead to in month *m + 1* agree without being stored.

Only the dates are planned here; who received the cylinder and what went wrong at the gun
are drawn when the month is written (`server.seed.cycles`). See docs/ARCHITECTURE.md §4 for
the rules and DOMAIN.md for the numbers.
"""

from __future__ import annotations

import bisect
import calendar
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from server.seed.history_shape import (
    BAD_COMPANIES,
    BAD_STATIONS_ELSEWHERE,
    CADENCE_DAYS,
    CADENCE_JITTER_DAYS,
    DELIVERY_DAYS,
    ENTRUSTED_FILL_SHARE,
    INSPECTION_GAP_DAYS,
    OTHER_STATION_SHARE,
    OVERDUE_ATTEMPTS,
    RETURN_DAYS,
    SCRAP_LAST_FILL_DAYS,
)
from server.seed.records import Site
from server.seed.shape import FILLED_DAYS_AGO_EMPTY, FILLED_DAYS_AGO_FULL, RETURNED_DAYS_AGO

if TYPE_CHECKING:
    from server.seed.city import CityBuilder
    from server.seed.records import Customers

__all__ = [
    "M64",
    "MIX_1",
    "MIX_2",
    "MIX_H",
    "MIX_K",
    "NONE",
    "CoInfo",
    "End",
    "Timeline",
    "history_start",
]

M64: Final = (1 << 64) - 1
MIX_H: Final = 0x9E3779B97F4A7C15
MIX_K: Final = 0xD1B54A32D192ED03
MIX_1: Final = 0xBF58476D1CE4E5B9
MIX_2: Final = 0x94D049BB133111EB
"""splitmix64's constants (`Timeline.mix`; inlined by the month planner's hot loop)."""
NONE: Final = -1


class End:
    """Where a cylinder's last cycle ends (its row's live state)."""

    NONE = 0  # filled, and still at the station that filled it
    CUSTOMER = 1  # delivered to the customer holding it
    VEHICLE = 2  # dispatched onto the vehicle carrying it
    STORE = 3  # moved full from the station to a store or warehouse
    RETURNED = 4  # delivered, used, returned empty to the site holding it
    SCRAPPED = 5  # delivered, returned, then scrapped at its agency


def history_start(today: date, months: int) -> date:
    """First day of a history of *months* calendar months ending yesterday."""
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))


@dataclass
class CoInfo:
    """What the history needs of one company."""

    id: int
    code: str
    district: str
    own: list[int]
    """Site indexes of its own filling stations."""
    entrusted: list[int]
    """Site indexes of the stations it entrusted (委托充装)."""
    vehicles: list[int]
    opened: array[int] = field(default_factory=lambda: array("i"))
    """Opening day (ordinal) of its customers' accounts, ascending."""
    customers: array[int] = field(default_factory=lambda: array("i"))
    """Indexes into `Customers`, in the order of `opened`."""
    bad: bool = False
    cylinders: int = 0
    allowed: list[int] = field(default_factory=list)
    """Every station that may fill its cylinders: its own, then the entrusted ones."""

    def __post_init__(self) -> None:
        self.allowed = self.own + [s for s in self.entrusted if s not in self.own]


class Timeline:
    """The plan of every cylinder's past (see the module docstring)."""

    def __init__(self, city: CityBuilder, customers: Customers, months: int) -> None:
        self.city = city
        self.rng = city.rng
        self.rand: Callable[[], float] = city.rng.random
        self.clock = city.clock
        self.span = city.clock.span_s
        self.months = months
        self.today = city.today.toordinal()
        self.start = history_start(city.today, months).toordinal()
        self.salt = city.rng.getrandbits(64)
        self.sites: list[Site] = city.sites
        self.site_index = {s.id: i for i, s in enumerate(city.sites)}
        self.suspended_on = [s.suspended_on for s in city.sites]
        self.agency_index = {s.id: i for i, s in enumerate(city.agencies)}
        self.customers = customers
        self.specs: list[str] = city.specs
        self.spec_index = {s: i for i, s in enumerate(city.specs)}
        self.cos = self._companies(city, customers)
        self.co_index = {c.id: i for i, c in enumerate(self.cos)}
        self._profiles(city)
        # per cylinder with a history (index h)
        self.cid = array("q")
        self.tag: list[str] = []
        self.spec_i = array("b")
        self.owner = array("h")
        self.tare = array("i")
        self.home = array("h")
        self.last = array("i")
        self.last_sec = array("i")
        self.cadence = array("b")
        self.first = array("i")
        self.insp = array("i")
        self.next_due = array("i")
        self.scrap = array("i")
        self.final = array("b")
        self.final_ref = array("i")
        self.d0 = array("i")
        self.r0 = array("i")
        self.r0_sec = array("i")
        # events that are not cycles
        self.registrations: list[tuple[datetime, int, str, int, int]] = []
        """(registered_at, cylinder id, tag, agency index, owner id) within the history."""
        self.inspections: list[tuple[int, int, str, int, int, date | None, date, str]] = []
        """(day, cylinder id, tag, owner id, agency index, next due, scrap date, result)."""
        self.overdue_attempts: list[tuple[int, int]] = []
        """(day, h): a station tried to fill a returned cylinder past its dates."""

    # ---- master data

    def _companies(self, city: CityBuilder, customers: Customers) -> list[CoInfo]:
        index = self.site_index
        cos = [
            CoInfo(
                c.id,
                c.code,
                c.district,
                [index[s.id] for s in c.stations],
                [index[s.id] for s in (c.entrusted if c.stations else c.fill_stations)],
                [i for i, v in enumerate(city.vehicles) if v.company_id == c.id],
            )
            for c in city.companies
        ]
        by_id = {c.id: c for c in cos}
        order = sorted(range(len(customers.ids)), key=customers.opened.__getitem__)
        for k in order:
            co = by_id[customers.company_ids[k]]
            co.opened.append(customers.opened[k])
            co.customers.append(k)
        return cos

    def _profiles(self, city: CityBuilder) -> None:
        """The few companies and stations where the anomalies concentrate."""
        rng = self.rng
        candidates = [i for i, c in enumerate(self.cos) if i > 0 and c.own]
        for i in rng.sample(candidates, min(BAD_COMPANIES, len(candidates))):
            self.cos[i].bad = True
        self.bad_site = [False] * len(self.sites)
        for c in self.cos:
            for own in c.own:
                self.bad_site[own] = c.bad
        demo_station = self.cos[0].own[0] if self.cos and self.cos[0].own else NONE
        others = [
            i
            for i, s in enumerate(self.sites)
            if s.kind == "filling_station" and not self.bad_site[i] and i != demo_station
        ]
        for i in rng.sample(others, min(BAD_STATIONS_ELSEWHERE, len(others))):
            self.bad_site[i] = True
        # stores and warehouses of bad companies overstock too
        bad_ids = {c.id for c in self.cos if c.bad}
        for i, site in enumerate(self.sites):
            if site.company_id in bad_ids:
                self.bad_site[i] = True

    # ---- hashing: the cycle's own numbers, recomputable in any month

    def mix(self, h: int, k: int) -> int:
        """64 pseudo-random bits for cycle *k* of cylinder *h* (splitmix64)."""
        x = (h * MIX_H + self.salt + k * MIX_K) & M64
        x = ((x ^ (x >> 30)) * MIX_1) & M64
        x = ((x ^ (x >> 27)) * MIX_2) & M64
        return x ^ (x >> 31)

    def fill_day(self, h: int, k: int, x: int) -> int:
        """Day (ordinal) of fill *k* of cylinder *h*; *x* is ``mix(h, k)``."""
        last = self.last[h]
        if k == 0:
            return last
        f = last - k * self.cadence[h] + (x & 0xFF) % (2 * CADENCE_JITTER_DAYS + 1)
        f -= CADENCE_JITTER_DAYS
        i = self.insp[h]
        if i and i < last and i - INSPECTION_GAP_DAYS <= f <= i:
            f = i + 1  # it was at the agency: filled the day after
        return f

    @staticmethod
    def delivery_day(fill: int, x: int) -> int:
        return fill + 1 + (x >> 30) % DELIVERY_DAYS

    def return_day(self, h: int, k: int, x: int, next_fill: int, delivered: int) -> int:
        """Day the cylinder came back before fill *k − 1* (on *next_fill*)."""
        r = next_fill - 1 - (x >> 34) % RETURN_DAYS
        i = self.insp[h]
        if i and delivered < i <= r:
            r = i - 1  # back in time for its inspection
        return r

    def return_second(self, x: int) -> int:
        return (x >> 38) % self.span

    def station_for(self, h: int, k: int, day: int, x: int) -> int:
        """Site index of the station that filled cycle *k* on *day*, or NONE if no station
        allowed to fill the cylinder held a valid licence that day."""
        s = self.home[h]
        if k == 0:
            return s
        pool = self.cos[self.owner[h]].allowed
        n = len(pool)
        if n > 1 and ((x >> 8) & 0x3FF) < OTHER_STATION_SHARE * 1024:
            s = pool[(x >> 18) % n]
        susp = self.suspended_on[s]
        if susp and day >= susp:
            s = self.licensed(pool, day)
        return s

    def licensed(self, pool: list[int], day: int) -> int:
        """The first station of *pool* whose licence was valid on *day*, or NONE."""
        susp = self.suspended_on
        return next((p for p in pool if not susp[p] or day < susp[p]), NONE)

    # ---- pass 1: the cylinder generator asks, the timeline plans

    def valid_station(self, co: CoInfo, day: int) -> int:
        """A station allowed to fill *co*'s cylinders and licensed on *day*: its own,
        sometimes an entrusted one (ENTRUSTED_FILL_SHARE), NONE if there is none."""
        rand = self.rand
        pool = co.own
        if not pool or (co.entrusted and rand() < ENTRUSTED_FILL_SHARE):
            pool = co.entrusted or co.own
        susp = self.suspended_on
        valid = [s for s in pool if not susp[s] or day < susp[s]]
        if not valid:
            valid = [s for s in co.allowed if not susp[s] or day < susp[s]]
        return valid[int(rand() * len(valid))] if valid else NONE

    def live_state(
        self,
        *,
        cid: int,
        tag: str,
        spec: str,
        owner_id: int,
        tare_kg: Decimal,
        status: str,
        mfg: date,
        last_inspection: date | None,
        next_inspection: date,
        scrap: date,
        registered: date,
        agency: Site,
        loc_kind: str,
        site: Site | None,
        customer: int | None,
        vehicle: int | None,
        full: bool,
    ) -> tuple[datetime | None, int | None, datetime | None]:
        """(last_fill_at, last_fill_site_id, last_return_at) of a cylinder's row, planning
        its past on the way; also records its inspection and scrapping in the history."""
        start, today = self.start, self.today
        rand = self.rand
        ci = self.co_index[owner_id]
        co = self.cos[ci]
        co.cylinders += 1
        agency_i = self.agency_index[agency.id]
        scrap_ord = scrap.toordinal()
        lo_day = max(mfg.toordinal(), registered.toordinal()) + 1
        insp = 0
        if last_inspection is not None and start <= last_inspection.toordinal() < today:
            insp = last_inspection.toordinal()
            self.inspections.append(
                (insp, cid, tag, owner_id, agency_i, next_inspection, scrap, "pass")
            )
        if status == "scrapped":
            if not (start <= scrap_ord < today and co.allowed):
                return None, None, None
            self.inspections.append((scrap_ord, cid, tag, owner_id, agency_i, None, scrap, "scrap"))
            lo, hi = SCRAP_LAST_FILL_DAYS
            last = scrap_ord - lo - int(rand() * (hi - lo + 1))
            kind, ref, d0 = End.SCRAPPED, NONE, last + 1 + int(rand() * DELIVERY_DAYS)
            r0 = d0 + 1 + int(rand() * max(1, scrap_ord - d0 - 2))
            insp = 0
        elif status != "in_service" or not co.allowed:
            return None, None, None
        else:
            planned = self._plan_in_service(
                co,
                loc_kind,
                site,
                customer,
                vehicle,
                full,
                next_inspection,
                scrap_ord,
                insp,
                lo_day,
            )
            if planned is None:
                return None, None, None
            last, kind, ref, d0, r0 = planned
        if last < lo_day:
            return None, None, None
        station = self.site_index[site.id] if kind == End.NONE and site else NONE
        if station == NONE or (self.suspended_on[station] and last >= self.suspended_on[station]):
            station = self.valid_station(co, last)
        if station == NONE:
            return None, None, None
        h = len(self.cid)
        self.cid.append(cid)
        self.tag.append(tag)
        self.spec_i.append(self.spec_index[spec])
        self.owner.append(ci)
        self.tare.append(round(tare_kg * 100))
        self.home.append(station)
        self.last.append(last)
        last_sec = int(rand() * self.span)
        self.last_sec.append(last_sec)
        self.cadence.append(CADENCE_DAYS[0] + int(rand() * (CADENCE_DAYS[1] - CADENCE_DAYS[0] + 1)))
        self.first.append(max(start, lo_day))
        self.insp.append(insp)
        self.next_due.append(next_inspection.toordinal())
        self.scrap.append(scrap_ord)
        self.final.append(kind)
        self.final_ref.append(ref)
        self.d0.append(d0)
        self.r0.append(r0)
        r0_sec = int(rand() * self.span)
        self.r0_sec.append(r0_sec)
        clock = self.clock
        returned: datetime | None = None
        if kind in (End.RETURNED, End.SCRAPPED):
            returned = clock.at(r0, r0_sec)
        else:
            x = self.mix(h, 1)
            f1 = self.fill_day(h, 1, x)
            if f1 >= self.first[h]:
                r1 = self.return_day(h, 1, x, last, self.delivery_day(f1, x))
                returned = clock.at(r1, self.return_second(x))
        blocked = next_inspection.toordinal() < today or scrap_ord <= today
        if blocked and kind == End.RETURNED and status == "in_service":
            lo_n, hi_n = OVERDUE_ATTEMPTS[co.bad]
            for _ in range(lo_n + int(rand() * (hi_n - lo_n + 1))):
                self.overdue_attempts.append((r0 + int(rand() * (today - r0)), h))
        return clock.at(last, last_sec), self.sites[station].id, returned

    def _plan_in_service(
        self,
        co: CoInfo,
        loc_kind: str,
        site: Site | None,
        customer: int | None,
        vehicle: int | None,
        full: bool,
        next_inspection: date,
        scrap_ord: int,
        insp: int,
        lo_day: int,
    ) -> tuple[int, int, int, int, int] | None:
        """(last fill, final kind, final ref, delivery/dispatch day, return day)."""
        rand = self.rand
        today = self.today
        bound = min(today - 1, next_inspection.toordinal(), scrap_ord - 1)
        lo, hi = FILLED_DAYS_AGO_FULL if full else FILLED_DAYS_AGO_EMPTY
        last = today - lo - int(rand() * (hi - lo + 1))
        ref = NONE
        r0 = 0
        if loc_kind == "customer" and customer is not None:
            kind, ref, cap = End.CUSTOMER, customer, today - 2
        elif loc_kind == "vehicle" and vehicle is not None:
            kind, ref, cap = End.VEHICLE, vehicle, today - 2
        elif site is not None and not full:
            kind, ref = End.RETURNED, self.site_index[site.id]
            if bound < today - 1:  # past its dates: came back on schedule, then sat refused
                r0 = min(today - 1, min(last, bound) + CADENCE_DAYS[0] + int(rand() * 10))
            else:
                lo_r, hi_r = RETURNED_DAYS_AGO
                r0 = today - lo_r - int(rand() * (hi_r - lo_r + 1))
            cap = r0 - 1 - DELIVERY_DAYS
        elif site is not None:
            own_station = site.kind == "filling_station" and self.site_index[site.id] in co.allowed
            kind = End.NONE if own_station else End.STORE
            ref = self.site_index[site.id]
            cap = today - 1 if own_station else today - 2
        else:
            return None
        cap = min(cap, bound)
        if insp and last <= insp and insp + 1 <= cap:
            last = insp + 1 + int(rand() * min(cap - insp, 7))  # filled after its inspection
        last = min(last, cap)
        if last < lo_day <= cap:  # a new cylinder: filled since it was registered
            last = lo_day + int(rand() * (cap - lo_day + 1))
        d0 = 0
        if kind in (End.CUSTOMER, End.RETURNED, End.VEHICLE, End.STORE):
            limit = r0 - 1 if kind == End.RETURNED else today - 1
            d0 = min(last + 1 + int(rand() * DELIVERY_DAYS), limit)
            if kind == End.CUSTOMER:
                d0 = max(d0, self.customers.opened[ref])
            if d0 <= last:
                return None
        return last, kind, ref, d0, r0

    def register(
        self, registered_at: datetime, cid: int, tag: str, agency: Site, owner: int
    ) -> bool:
        """Record a registration within the history; False if it predates it."""
        if self.clock.local_day(registered_at) < self.start:
            return False
        self.registrations.append((registered_at, cid, tag, self.agency_index[agency.id], owner))
        return True

    def eligible_customer(self, co: CoInfo, day: int, u: float) -> int:
        """A customer of *co* whose account was open on *day* (index into Customers), by
        the uniform number *u*; NONE if none was."""
        n = bisect.bisect_right(co.opened, day)
        return co.customers[int(u * n)] if n else NONE
