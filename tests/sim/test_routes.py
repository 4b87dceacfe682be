"""Vehicles move along straight legs at the configured speed and stay on them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from device_sim.routes import Route, Stop, haversine_m

coord = st.tuples(st.floats(34.5, 35.0), st.floats(113.3, 114.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(coord, min_size=2, max_size=6), st.floats(5, 80), st.floats(0, 120), st.floats(0, 1.2)
)
def test_position_stays_on_its_leg(
    points: list[tuple[float, float]], speed: float, dwell: float, frac: float
) -> None:
    stops = [Stop(lat, lon, "customer", str(i)) for i, (lat, lon) in enumerate(points)]
    r = Route(stops, 1_000_000, speed, dwell)
    t = int(r.start_ms + frac * (r.end_ms - r.start_ms))
    fix = r.fix_at(t)
    if fix.at_stop:
        s = stops[fix.leg]
        assert (fix.lat, fix.lon) == (s.lat, s.lon)
        assert fix.speed_kmh == 0
        return
    a, b = stops[fix.leg], stops[fix.leg + 1]
    # inside the segment's bounding box and collinear with it
    assert min(a.lat, b.lat) - 1e-12 <= fix.lat <= max(a.lat, b.lat) + 1e-12
    assert min(a.lon, b.lon) - 1e-12 <= fix.lon <= max(a.lon, b.lon) + 1e-12
    cross = (b.lat - a.lat) * (fix.lon - a.lon) - (b.lon - a.lon) * (fix.lat - a.lat)
    assert abs(cross) < 1e-9
    assert fix.speed_kmh == speed
    assert 0 <= fix.heading < 360


def test_timing_follows_speed_and_dwell() -> None:
    a, b, c = (
        Stop(34.7, 113.6, "station", "S"),
        Stop(34.7, 113.7, "customer", "C"),
        Stop(34.8, 113.7, "store", "T"),
    )
    r = Route([a, b, c], 0, 36.0, 30.0)  # 36 km/h = 10 m/s
    leg1 = haversine_m(a.lat, a.lon, b.lat, b.lon)
    assert abs(r.arrive_ms[1] - leg1 / 10 * 1000) <= 1
    assert r.depart_ms[1] == r.arrive_ms[1] + 30_000
    assert r.fix_at(r.arrive_ms[1] + 10_000).at_stop  # dwelling
    mid = r.fix_at(r.arrive_ms[1] // 2)
    assert abs(mid.lon - 113.65) < 1e-6 and not mid.at_stop
    assert r.fix_at(r.end_ms + 1).done
    assert r.stops_reached(-1, r.arrive_ms[1]) == [0, 1]
    assert r.stops_reached(r.arrive_ms[1], r.end_ms) == [2]
