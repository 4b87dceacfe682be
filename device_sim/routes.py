"""Delivery-vehicle routes: straight legs between stops, driven at a steady speed.

A vehicle's position is a pure function of time, so the simulator never has to "move"
vehicles on a timer: whatever instant a position message is due, the point is computed on
the leg the vehicle is on. Legs are straight in (lat, lon) — over a few kilometres inside
one city the difference from a great circle is centimetres, and a point interpolated in
(lat, lon) provably lies on the segment the map draws. Distances (for the time a leg
takes) use the haversine formula so speeds are plausible in km/h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["EARTH_RADIUS_M", "Fix", "Route", "Stop", "bearing_deg", "haversine_m"]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), metres."""


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass heading from point 1 to point 2, degrees in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


@dataclass(frozen=True, slots=True)
class Stop:
    """A place a route visits: a site (station/store) or a customer."""

    lat: float
    lon: float
    kind: str
    """``station``, ``store`` or ``customer``."""
    ref: str
    """Site code or customer account number."""


@dataclass(frozen=True, slots=True)
class Fix:
    """Where a vehicle is at one instant."""

    lat: float
    lon: float
    speed_kmh: float
    heading: float
    leg: int
    """Index of the leg being driven, or of the stop being dwelt at (see ``at_stop``)."""
    at_stop: bool
    done: bool


@dataclass(slots=True)
class Route:
    """Stops visited in order from ``start_ms``, driving at ``speed_kmh`` and dwelling
    ``dwell_s`` at every stop after the first (unloading, scanning, paperwork)."""

    stops: list[Stop]
    start_ms: int
    speed_kmh: float
    dwell_s: float
    arrive_ms: list[int] = field(default_factory=list)
    """arrive_ms[i]: when stop i is reached (stop 0: start_ms)."""
    depart_ms: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.stops) < 2:
            raise ValueError("a route needs at least two stops")
        if self.speed_kmh <= 0:
            raise ValueError("speed must be positive")
        mps = self.speed_kmh / 3.6
        t = float(self.start_ms)
        self.arrive_ms = [self.start_ms]
        self.depart_ms = [self.start_ms]
        for a, b in zip(self.stops, self.stops[1:], strict=False):
            t += haversine_m(a.lat, a.lon, b.lat, b.lon) / mps * 1000.0
            self.arrive_ms.append(round(t))
            t += self.dwell_s * 1000.0
            self.depart_ms.append(round(t))

    @property
    def end_ms(self) -> int:
        """When the vehicle has arrived at its last stop (no dwell after it)."""
        return self.arrive_ms[-1]

    def stops_reached(self, after_ms: int, until_ms: int) -> list[int]:
        """Indexes of stops reached in the time window ``(after_ms, until_ms]``."""
        return [i for i, t in enumerate(self.arrive_ms) if after_ms < t <= until_ms]

    def fix_at(self, now_ms: int) -> Fix:
        """The vehicle's position at *now_ms* (clamped to the route's start and end)."""
        first, last = self.stops[0], self.stops[-1]
        if now_ms <= self.start_ms:
            return Fix(first.lat, first.lon, 0.0, 0.0, 0, True, False)
        if now_ms >= self.end_ms:
            return Fix(last.lat, last.lon, 0.0, 0.0, len(self.stops) - 1, True, True)
        for leg in range(1, len(self.stops)):
            if now_ms < self.arrive_ms[leg]:
                a, b = self.stops[leg - 1], self.stops[leg]
                dep, arr = self.depart_ms[leg - 1], self.arrive_ms[leg]
                if now_ms <= dep:
                    return Fix(a.lat, a.lon, 0.0, 0.0, leg - 1, True, False)
                frac = (now_ms - dep) / (arr - dep) if arr > dep else 1.0
                lat = a.lat + (b.lat - a.lat) * frac
                lon = a.lon + (b.lon - a.lon) * frac
                return Fix(
                    lat,
                    lon,
                    self.speed_kmh,
                    bearing_deg(a.lat, a.lon, b.lat, b.lon),
                    leg - 1,
                    False,
                    False,
                )
            if now_ms <= self.depart_ms[leg]:
                s = self.stops[leg]
                return Fix(s.lat, s.lon, 0.0, 0.0, leg, True, False)
        return Fix(last.lat, last.lon, 0.0, 0.0, len(self.stops) - 1, True, True)
