"""District lookup (server/districts.py): the question ingest asks for every position."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from server.kernel.districts import District, DistrictIndex, district_of, load_districts

REAL_CODES = {"410102", "410103", "410104", "410105", "410106", "410108"}


@pytest.fixture(scope="module")
def districts() -> list[District]:
    return load_districts()


def test_config_has_the_main_urban_districts(districts: list[District]) -> None:
    codes = {d.code for d in districts}
    assert codes >= REAL_CODES
    assert all(d.name and d.name_en for d in districts)


def test_boundaries_are_valid_and_do_not_overlap(districts: list[District]) -> None:
    for d in districts:
        assert d.shape.is_valid, d.code
    for i, a in enumerate(districts):
        for b in districts[i + 1 :]:
            assert a.shape.intersection(b.shape).area < 1e-12, (a.code, b.code)


def test_the_city_centre_is_in_the_city(districts: list[District]) -> None:
    assert district_of(34.7466, 113.6254, districts) is not None  # [map] centre
    assert district_of(34.80, 113.29, districts) == "410106"  # 上街区, detached to the west


@pytest.mark.parametrize("code", sorted(REAL_CODES | {"410171", "410172"}))
def test_a_point_in_each_district_is_found(districts: list[District], code: str) -> None:
    district = next(d for d in districts if d.code == code)
    point = district.shape.representative_point()
    assert district_of(point.y, point.x, districts) == code


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(39.9042, 116.4074), (34.75, 113.10), (35.20, 113.63), (0.0, 0.0), (34.75, -113.63)],
)
def test_a_point_outside_the_city_is_in_no_district(
    districts: list[District], lat: float, lon: float
) -> None:
    assert district_of(lat, lon, districts) is None


def test_index_tree_and_batch_agree_with_the_scan(
    districts: list[District], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    points = [(rng.uniform(34.55, 35.0), rng.uniform(113.2, 113.9)) for _ in range(3000)]
    scan = DistrictIndex(districts)
    monkeypatch.setattr(DistrictIndex, "linear_scan_max", 0)  # a province: the STRtree path
    tree = DistrictIndex(districts)
    expected = [scan.lookup(lat, lon) for lat, lon in points]
    assert [tree.lookup(lat, lon) for lat, lon in points] == expected
    lats, lons = zip(*points, strict=True)
    assert scan.lookup_many(lats, lons) == expected
    assert any(e is None for e in expected) and any(e is not None for e in expected)


def test_random_points_fall_inside_their_district(districts: list[District]) -> None:
    rng = random.Random(3)
    for d in districts:
        lat, lon = d.random_point(rng)
        assert district_of(lat, lon, districts) == d.code
        batch = d.random_points(rng, 50)
        assert len(batch) == 50
        assert {district_of(la, lo, districts) for la, lo in batch} == {d.code}


def test_border_point_belongs_to_exactly_one_district(districts: list[District]) -> None:
    # 113.645 / 34.80 lies on the 中原区 | 金水区 border of the shipped file
    assert district_of(34.80, 113.645, districts) in {"410102", "410105"}


def _write(tmp_path: Path, features: list[dict[str, object]]) -> Path:
    path = tmp_path / "d.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def _square(code: str, x: float) -> dict[str, object]:
    ring = [[x, 0.0], [x + 1, 0.0], [x + 1, 1.0], [x, 1.0], [x, 0.0]]
    return {
        "type": "Feature",
        "properties": {"code": code, "name": f"区{code}"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_a_custom_file_loads(tmp_path: Path) -> None:
    ds = load_districts(_write(tmp_path, [_square("1", 0.0), _square("2", 1.0)]))
    assert [d.code for d in ds] == ["1", "2"]
    assert ds[0].name_en == "区1"  # falls back to the Chinese name
    assert ds[1].bbox == (1.0, 0.0, 2.0, 1.0)
    assert district_of(0.5, 1.5, ds) == "2"


def test_a_self_crossing_boundary_is_refused(tmp_path: Path) -> None:
    bowtie = _square("9", 0.0)
    bowtie["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
    }
    with pytest.raises(ValueError, match="invalid boundary"):
        load_districts(_write(tmp_path, [bowtie]))


def test_duplicate_codes_and_missing_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        load_districts(_write(tmp_path, [_square("1", 0.0), _square("1", 1.0)]))
    nameless = _square("3", 0.0)
    nameless["properties"] = {"code": "3"}
    with pytest.raises(ValueError, match="code and name"):
        load_districts(_write(tmp_path, [nameless]))
