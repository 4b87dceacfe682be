"""WGS-84 → GCJ-02 ("Mars coordinates"), for drawing on AMap tiles only.

Why: Chinese commercial base maps (AMap/高德) are published in GCJ-02, an obfuscated datum
required by Chinese surveying rules, offset by up to several hundred metres from the WGS-84
positions devices report (docs/ARCHITECTURE.md §5). The platform stores and computes in WGS-84 always;
positions are shifted only when drawn on a GCJ-02 tile layer (docs/ARCHITECTURE.md §8). Outside China
the datum is not applied, so a point there is returned unchanged.

The algorithm is the widely used public reimplementation (Krasovsky 1940 ellipsoid,
``a = 6378245 m``, ``e² = 0.00669342162296594323``). ``static/js/coords.js`` is its port
for live positions in the browser; both are tested against the same reference points.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["geojson_to_gcj02", "out_of_china", "wgs84_to_gcj02"]

_A = 6378245.0
"""Semi-major axis of the Krasovsky 1940 ellipsoid the GCJ-02 offset is defined on (m)."""
_EE = 0.00669342162296594323
"""First eccentricity squared of that ellipsoid."""


def out_of_china(lat: float, lon: float) -> bool:
    """Is the point outside the rough bounding box where GCJ-02 applies?"""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _d_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _d_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """``(lat, lon)`` in WGS-84 → ``(lat, lon)`` in GCJ-02; unchanged outside China."""
    if out_of_china(lat, lon):
        return lat, lon
    d_lat = _d_lat(lon - 105.0, lat - 35.0)
    d_lon = _d_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = math.sin(rad_lat)
    magic = 1 - _EE * magic * magic
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + d_lat, lon + d_lon


def _shift_coords(coords: Any) -> Any:
    """Shift a GeoJSON coordinate array of any nesting depth ([lon, lat] leaves)."""
    if coords and isinstance(coords[0], int | float):
        lat, lon = wgs84_to_gcj02(float(coords[1]), float(coords[0]))
        return [lon, lat, *coords[2:]]
    return [_shift_coords(c) for c in coords]


def geojson_to_gcj02(geometry: dict[str, Any]) -> dict[str, Any]:
    """A copy of a GeoJSON geometry (Polygon, MultiPolygon, …) with every vertex shifted."""
    if geometry.get("type") == "GeometryCollection":
        return {**geometry, "geometries": [geojson_to_gcj02(g) for g in geometry["geometries"]]}
    return {**geometry, "coordinates": _shift_coords(geometry["coordinates"])}
