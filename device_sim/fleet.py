"""The simulated city's delivery vehicles (part of :class:`device_sim.behaviour.CitySim`; no I/O).

A vehicle drives trips along straight legs (:mod:`device_sim.routes`): station → customers →
station for a delivery, station → store → station at ``transfer_share`` for a transfer. Its
company's handheld scans ``dispatch`` (or ``transfer``) at the start, ``deliver`` at each
customer with the account number, ``receive`` at the store and ``return`` of the collected
empties back at the station; what is full and what is empty comes from the circulation
(:mod:`device_sim.circulation`). ``position`` reports one vehicle at a time, in turn.

Split from the behaviour module so each stays one concern; the simulation's random draws are
the caller's generator, taken in the same order as before, so a seed gives the same
messages byte for byte.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .circulation import Circulation
from .config import SimConfig
from .payloads import Outgoing, position_msg
from .routes import Route, Stop
from .stats import SimStats
from .world import City, Customer, Device, Site

__all__ = ["SPEED_SPREAD", "Fleet"]

SPEED_SPREAD = 0.3
"""Vehicle speeds vary ± this share around ``--vehicle-speed-kmh``: city traffic varies, and
equal speeds would bring every vehicle back to its station at once."""


class ScanFn(Protocol):
    def __call__(
        self,
        hh: Device,
        now_ms: int,
        tag: str,
        action: str,
        *,
        count: bool = True,
        site: str | None = None,
        customer: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> Outgoing: ...


@dataclass(slots=True)
class _Vehicle:
    device: Device
    handheld: Device | None
    home: Site
    route: Route
    trip: str
    """``delivery`` or ``transfer``."""
    customers: list[Customer]
    cargo: list[str]
    empties: list[str]
    checked_ms: int


class Fleet:
    """Every vehicle's trip; scans go to *ready* as the vehicles reach their stops."""

    def __init__(
        self,
        city: City,
        cfg: SimConfig,
        rng: random.Random,
        circ: Circulation,
        stats: SimStats,
        stations: dict[str, Site],
        *,
        scan: ScanFn,
        ready: deque[Outgoing],
        msg_id: Callable[[], str],
        start_ms: int,
    ) -> None:
        self.city = city
        self.cfg = cfg
        self.rng = rng
        self.circ = circ
        self.stats = stats
        self._stations = stations
        self._scan = scan
        self._ready = ready
        self._msg_id = msg_id
        self._vehicles: list[_Vehicle] = []
        self._next_vehicle = 0
        self._hh_by_company: dict[int | None, list[Device]] = {}
        for h in city.handhelds:
            self._hh_by_company.setdefault(h.company_id, []).append(h)
        self._setup(start_ms)

    def __len__(self) -> int:
        return len(self._vehicles)

    def _setup(self, start_ms: int) -> None:
        for v in self.city.vehicles:
            home = self._stations.get(v.site_code or "")
            if home is None:
                home = next((s for s in self.city.stations if s.company_id == v.company_id), None)
            if home is None:
                self.stats.skipped["vehicle_without_station"] += 1
                continue
            hhs = self._hh_by_company.get(v.company_id) or []  # never another company's
            handheld = hhs[len(self._vehicles) % len(hhs)] if hhs else None
            veh = self._new_trip(v, handheld, home, start_ms)
            # start somewhere along the trip, so a short run sees arrivals
            offset = int(self.rng.uniform(0, max(1, veh.route.end_ms - start_ms)))
            veh.route = Route(
                veh.route.stops, start_ms - offset, veh.route.speed_kmh, veh.route.dwell_s
            )
            veh.checked_ms = start_ms
            self._vehicles.append(veh)

    def _new_trip(self, v: Device, hh: Device | None, home: Site, now_ms: int) -> _Vehicle:
        speed = self.cfg.vehicle_speed_kmh * self.rng.uniform(1 - SPEED_SPREAD, 1 + SPEED_SPREAD)
        stores = self.city.stores_of(home.company_id)
        home_stop = Stop(home.lat, home.lon, "station", home.code)
        customers: list[Customer] = []
        if stores and self.rng.random() < self.cfg.transfer_share:
            store = self.rng.choice(stores)
            stops = [home_stop, Stop(store.lat, store.lon, "store", store.code), home_stop]
            trip = "transfer"
            n_cargo = self.cfg.stops_per_route * self.cfg.cargo_per_stop
        else:
            pool = self.city.customers_of(home.company_id) or self.city.customers
            customers = self.rng.sample(pool, min(self.cfg.stops_per_route, len(pool)))
            stops = [
                home_stop,
                *(Stop(c.lat, c.lon, "customer", c.account_no) for c in customers),
                home_stop,
            ]
            trip = "delivery"
            n_cargo = len(customers) * self.cfg.cargo_per_stop
        if len(stops) < 2 or all(s == home_stop for s in stops):
            stops = [home_stop, home_stop]
        cargo = self.circ.load(home.company_id, n_cargo, now_ms)  # full ones only
        route = Route(stops, now_ms, speed, self.cfg.dwell_s)
        return _Vehicle(v, hh, home, route, trip, customers, cargo, [], now_ms)

    def advance(self, now_ms: int) -> None:
        """Scans for every stop a vehicle reached since the last call; new trips."""
        for i, veh in enumerate(self._vehicles):
            if now_ms <= veh.checked_ms:
                continue
            for idx in veh.route.stops_reached(veh.checked_ms, now_ms):
                self._arrive(veh, idx, veh.route.arrive_ms[idx])
            veh.checked_ms = now_ms
            if now_ms >= veh.route.end_ms:
                new = self._new_trip(veh.device, veh.handheld, veh.home, now_ms)
                self._vehicles[i] = new
                self._arrive(new, 0, now_ms)

    def _arrive(self, veh: _Vehicle, idx: int, at_ms: int) -> None:
        stop = veh.route.stops[idx]
        last = idx == len(veh.route.stops) - 1
        hh = veh.handheld
        if hh is None:
            self.stats.skipped["scan_without_handheld"] += 1
            return
        lat, lon = stop.lat, stop.lon
        if idx == 0:
            action = "transfer" if veh.trip == "transfer" else "dispatch"
            site = veh.route.stops[1].ref if veh.trip == "transfer" else veh.home.code
            for tag in veh.cargo:
                self._ready.append(self._scan(hh, at_ms, tag, action, site=site, lat=lat, lon=lon))
        elif last:
            for tag in veh.empties:
                self._ready.append(
                    self._scan(hh, at_ms, tag, "return", site=veh.home.code, lat=lat, lon=lon)
                )
            veh.empties = []
        elif stop.kind == "store":
            for tag in veh.cargo:
                self._ready.append(
                    self._scan(hh, at_ms, tag, "receive", site=stop.ref, lat=lat, lon=lon)
                )
            veh.cargo = []
        elif stop.kind == "customer":
            drop = veh.cargo[: self.cfg.cargo_per_stop]
            veh.cargo = veh.cargo[self.cfg.cargo_per_stop :]
            for tag in drop:
                self._ready.append(
                    self._scan(hh, at_ms, tag, "deliver", customer=stop.ref, lat=lat, lon=lon)
                )
            empty = self.circ.empty_one(veh.home.company_id, at_ms, collect=True)
            if empty is not None:
                veh.empties.append(empty)

    def position(self, now_ms: int) -> Outgoing | None:
        """The next vehicle's position in turn; None with no vehicle."""
        if not self._vehicles:
            return None
        veh = self._vehicles[self._next_vehicle % len(self._vehicles)]
        self._next_vehicle += 1
        fix = veh.route.fix_at(now_ms)
        return position_msg(
            veh.device.device_id,
            self._msg_id(),
            now_ms,
            fix.lat,
            fix.lon,
            speed_kmh=fix.speed_kmh,
            heading=fix.heading,
            cargo=veh.cargo + veh.empties,
        )
