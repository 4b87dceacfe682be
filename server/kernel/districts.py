"""The city's districts: their boundaries, and which district a position falls in.

Regulators are scoped to districts (docs/ARCHITECTURE.md §7), every cylinder carries the district of
where it is now, and a cylinder seen outside every district is the `out_of_region` alert
(区域外流, DOMAIN.md "Abnormal behaviour"). All of that is one question — *which district
holds this point?* — asked for every position a valve or vehicle reports, so the answer
must be cheap: the boundaries are loaded once, indexed in an STRtree and tested as shapely
*prepared* geometries (a point-in-polygon test in microseconds, not a walk of every edge).

Boundaries come from ``config/districts.geojson`` (WGS-84, lon/lat order, a
``FeatureCollection`` whose features carry ``code``, ``name`` and ``name_en``): a city is
configured by replacing that file, not by editing code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from server.kernel.settings import CONFIG_DIR

__all__ = [
    "DEFAULT_DISTRICTS_FILE",
    "District",
    "DistrictIndex",
    "district_of",
    "load_districts",
]

DEFAULT_DISTRICTS_FILE = CONFIG_DIR / "districts.geojson"

_MAX_SAMPLE_TRIES = 10_000
"""Rejection sampling gives up after this many misses: a polygon that thin is a data error."""


@dataclass(frozen=True, eq=False)
class District:
    """One district: its administrative code, names and boundary (a GeoJSON geometry).

    The shapely shape is built lazily and prepared on first use, so that loading the file
    stays cheap for callers that only need codes and names (e.g. a district filter list).
    """

    code: str
    name: str
    name_en: str
    geometry: dict[str, Any] = field(repr=False)

    @cached_property
    def shape(self) -> BaseGeometry:
        """The boundary as a prepared shapely geometry (prepared in place, once)."""
        geom = shape(self.geometry)
        shapely.prepare(geom)
        return geom

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees, the order of docs/ARCHITECTURE.md §6's ``bbox``."""
        w, s, e, n = self.shape.bounds
        return (float(w), float(s), float(e), float(n))

    def contains(self, lat: float, lon: float) -> bool:
        """Is the point inside (or on the boundary of) this district?

        ``intersects`` rather than ``contains``: a point exactly on a shared border belongs
        to a district instead of to none — a border is not "outside the city".
        """
        return bool(shapely.intersects_xy(self.shape, lon, lat))

    def random_point(self, rng: random.Random) -> tuple[float, float]:
        """A uniformly random ``(lat, lon)`` inside the district (for seeding and simulation).

        Rejection sampling in the bounding box: deterministic for a given *rng* state, and
        cheap because district polygons fill most of their box.
        """
        w, s, e, n = self.bbox
        for _ in range(_MAX_SAMPLE_TRIES):
            lon = rng.uniform(w, e)
            lat = rng.uniform(s, n)
            if self.contains(lat, lon):
                return lat, lon
        raise ValueError(f"district {self.code}: could not sample a point inside its boundary")

    def random_points(self, rng: random.Random, k: int) -> list[tuple[float, float]]:
        """*k* uniformly random ``(lat, lon)`` inside the district, tested in batches.

        The same rejection sampling as :meth:`random_point`, but one vectorized
        point-in-polygon test per batch: a seed places hundreds of thousands of customers.
        """
        w, s, e, n = self.bbox
        out: list[tuple[float, float]] = []
        rand = rng.random
        for _ in range(_MAX_SAMPLE_TRIES):
            if len(out) >= k:
                break
            batch = max(16, int((k - len(out)) * 1.3))
            lons = [w + (e - w) * rand() for _ in range(batch)]
            lats = [s + (n - s) * rand() for _ in range(batch)]
            inside = shapely.intersects_xy(self.shape, np.array(lons), np.array(lats))
            out.extend((lats[i], lons[i]) for i in np.flatnonzero(inside))
        else:
            raise ValueError(f"district {self.code}: could not sample points inside it")
        return out[:k]


class DistrictIndex:
    """District lookup by position, built once per process and reused.

    A point is first matched against the districts' bounding boxes (pure Python, no
    shapely call for the many points that are plainly elsewhere), then tested against
    the *prepared* boundary. A city has a handful of districts, so a linear scan of boxes
    beats a tree; beyond ``linear_scan_max`` districts (a province-wide deployment) an
    STRtree picks the candidates instead. Where two boundaries meet, the first district in
    file order wins, so a point on a shared border always gets the same answer.
    """

    linear_scan_max = 32

    def __init__(self, districts: Iterable[District]) -> None:
        self.districts: tuple[District, ...] = tuple(districts)
        self._boxes = [(d.bbox, d.shape, d.code) for d in self.districts]
        self._tree = (
            STRtree([d.shape for d in self.districts])
            if len(self.districts) > self.linear_scan_max
            else None
        )

    def lookup(self, lat: float, lon: float) -> str | None:
        """The code of the district holding the point, or ``None`` outside every district."""
        if self._tree is not None:
            for i in sorted(int(i) for i in self._tree.query(shapely.points(lon, lat))):
                d = self.districts[i]
                if shapely.intersects_xy(d.shape, lon, lat):
                    return d.code
            return None
        for (w, s, e, n), geom, code in self._boxes:
            if w <= lon <= e and s <= lat <= n and shapely.intersects_xy(geom, lon, lat):
                return code
        return None

    def lookup_many(self, lats: Sequence[float], lons: Sequence[float]) -> list[str | None]:
        """:meth:`lookup` for a batch of points (ingest's batches), vectorized per district."""
        if len(lats) != len(lons):
            raise ValueError("lats and lons differ in length")
        x = np.asarray(lons, dtype=float)
        y = np.asarray(lats, dtype=float)
        out: list[str | None] = [None] * len(x)
        todo = np.ones(len(x), dtype=bool)
        for d in self.districts:
            if not todo.any():
                break
            hit = todo & shapely.intersects_xy(d.shape, x, y)
            for i in np.flatnonzero(hit):
                out[int(i)] = d.code
            todo &= ~hit
        return out


def load_districts(path: Path | None = None) -> list[District]:
    """Read a GeoJSON ``FeatureCollection`` of districts (``config/districts.geojson``).

    Each feature needs ``properties.code`` and ``properties.name`` (``name_en`` is
    optional) and a Polygon or MultiPolygon geometry. An invalid boundary (self-crossing
    ring), a duplicate code or a missing property is a ``ValueError`` naming the feature:
    a wrong boundary would silently put cylinders in the wrong regulator's scope.
    """
    source = path or DEFAULT_DISTRICTS_FILE
    with Path(source).open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{source}: not a GeoJSON FeatureCollection")
    out: list[District] = []
    seen: set[str] = set()
    for n, feature in enumerate(data.get("features") or [], start=1):
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        code = props.get("code")
        name = props.get("name")
        if not isinstance(code, str) or not code or not isinstance(name, str) or not name:
            raise ValueError(f"{source}: feature {n} lacks a string code and name")
        if code in seen:
            raise ValueError(f"{source}: duplicate district code {code}")
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"{source}: district {code} is not a Polygon or MultiPolygon")
        district = District(code, name, str(props.get("name_en") or name), geometry)
        if not district.shape.is_valid:
            raise ValueError(f"{source}: district {code} has an invalid boundary")
        seen.add(code)
        out.append(district)
    if not out:
        raise ValueError(f"{source}: no districts")
    return out


_INDEX_CACHE: dict[tuple[int, ...], DistrictIndex] = {}


def _index_for(districts: Sequence[District]) -> DistrictIndex:
    """One index per distinct list of districts, so repeated calls do not rebuild the tree."""
    key = tuple(id(d) for d in districts)
    index = _INDEX_CACHE.get(key)
    if index is None:
        if len(_INDEX_CACHE) > 16:  # a long-lived process reloading districts must not leak
            _INDEX_CACHE.clear()
        index = _INDEX_CACHE[key] = DistrictIndex(districts)
    return index


def district_of(
    lat: float, lon: float, districts: Sequence[District] | DistrictIndex
) -> str | None:
    """The code of the district containing ``(lat, lon)``, or ``None`` if outside the city.

    Pass a :class:`DistrictIndex` on hot paths; a plain list of districts is indexed on
    first use and the index reused for the same list.
    """
    index = districts if isinstance(districts, DistrictIndex) else _index_for(districts)
    return index.lookup(lat, lon)
