"""Pure parts of the dashboard: GCJ-02 (Python and its JS port), i18n tables, vendor assets.

Pure: no service is needed (``no_services``). A missing node or npm install skips the test
that needs it on a developer's machine and fails it in CI (``tests.tools.missing``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dashboard import build_assets, coords
from dashboard.i18n import strings, translator
from server.kernel.i18n import LANGUAGES, normalize
from tests.tools import missing

pytestmark = pytest.mark.no_services

# Published WGS-84 → GCJ-02 pairs: the test vectors of the eviltransform project
# (Shanghai, Shenzhen, Beijing) and the wandergis/coordtransform README (Tiananmen).
REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    (39.915, 116.404, 39.91640428150164, 116.41024449916938),
]
TOLERANCE = 1e-6
OUTSIDE = [(48.8584, 2.2945), (40.6892, -74.0445), (-33.8568, 151.2153), (35.6586, 139.7454 + 0.1)]


@pytest.mark.parametrize(("lat", "lon", "glat", "glon"), REFERENCE)
def test_wgs84_to_gcj02_matches_published_points(
    lat: float, lon: float, glat: float, glon: float
) -> None:
    out_lat, out_lon = coords.wgs84_to_gcj02(lat, lon)
    assert abs(out_lat - glat) < TOLERANCE
    assert abs(out_lon - glon) < TOLERANCE


def test_zhengzhou_offset_is_a_few_hundred_metres() -> None:
    """In the platform's default city the shift is real (AMap would misplace everything)."""
    lat, lon = 34.7466, 113.6254
    glat, glon = coords.wgs84_to_gcj02(lat, lon)
    assert 1e-4 < abs(glat - lat) < 5e-3
    assert 1e-3 < abs(glon - lon) < 1e-2


@pytest.mark.parametrize(("lat", "lon"), OUTSIDE)
def test_outside_china_is_unchanged(lat: float, lon: float) -> None:
    # Paris, New York, Sydney, Tokyo: a bounding box that took any of them in is the bug
    assert coords.out_of_china(lat, lon)
    assert coords.wgs84_to_gcj02(lat, lon) == (lat, lon)


def test_geojson_shift_moves_every_vertex_and_keeps_shape() -> None:
    ring = [[113.6, 34.7], [113.7, 34.7], [113.7, 34.8], [113.6, 34.7]]
    poly = {"type": "MultiPolygon", "coordinates": [[ring]]}
    out = coords.geojson_to_gcj02(poly)
    assert out["type"] == "MultiPolygon"
    shifted = out["coordinates"][0][0]
    assert len(shifted) == len(ring)
    for (lon, lat), (slon, slat) in zip(ring, shifted, strict=True):
        assert (slat, slon) == pytest.approx(coords.wgs84_to_gcj02(lat, lon))
    assert poly["coordinates"][0][0] == ring  # the input is not modified


def test_js_port_agrees_with_python() -> None:
    """``static/js/lib/coords.js`` (live positions) gives the same answers as the Python."""
    node = shutil.which("node")
    if node is None:
        missing("node", "apt-get install nodejs")
    js = Path(build_assets.__file__).parent / "static" / "js" / "lib" / "coords.js"
    points = [(r[0], r[1]) for r in REFERENCE] + OUTSIDE + [(34.7466, 113.6254)]
    script = (
        f"const {{ wgs84ToGcj02 }} = await import({json.dumps(js.as_uri())});"
        f"const pts={json.dumps(points)};"
        "console.log(JSON.stringify(pts.map(p=>wgs84ToGcj02(p[0],p[1]))));"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    got = json.loads(out.stdout)
    for (lat, lon), (jlat, jlon) in zip(points, got, strict=True):
        plat, plon = coords.wgs84_to_gcj02(lat, lon)
        assert abs(plat - jlat) < 1e-9 and abs(plon - jlon) < 1e-9


# ---------------------------------------------------------------- i18n


def test_every_key_exists_in_every_language() -> None:
    tables = {lang: strings(lang) for lang in LANGUAGES}
    keys = {lang: set(t) for lang, t in tables.items()}
    union = set().union(*keys.values())
    for lang, ks in keys.items():
        assert not union - ks, f"{lang} lacks {sorted(union - ks)}"
    for lang, table in tables.items():
        empty = [k for k, v in table.items() if not v.strip()]
        assert not empty, f"{lang}: empty strings {empty}"


def test_placeholders_agree_between_languages() -> None:
    zh, en = strings("zh-CN"), strings("en")
    for key in zh:
        assert set(re.findall(r"\{(\w+)\}", zh[key])) == set(re.findall(r"\{(\w+)\}", en[key])), key


def test_every_key_used_by_templates_and_scripts_exists() -> None:
    """A key typed in a template or script but missing from the tables would show raw."""
    root = Path(build_assets.__file__).parent
    used: set[str] = set()
    for path in (root / "templates").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"t\('([a-z_]+\.[a-z_.0-9-]+)'\)", text))
        # the filter-bar macros (templates/filters.html) take the label key second
        used |= set(re.findall(r"f\.\w+\('\w+', '([a-z_]+\.[a-z_.0-9-]+)'", text))
    for path in (root / "static" / "js").rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\(\"([a-z_]+\.[a-z_.0-9-]+)\"", text))
        used |= set(
            re.findall(r"(?:label|emptyTitle|emptyHint): \"([a-z_]+\.[a-z_.0-9-]+)\"", text)
        )
        used |= set(re.findall(r"(?:field|row)\(\"([a-z_]+\.[a-z_.0-9-]+)\"", text))
    missing = sorted(k for k in used if not k.endswith(".") and k not in strings("zh-CN"))
    assert not missing


def test_every_domain_word_has_a_label() -> None:
    """Statuses, kinds and reasons shown on pages come from the domain's closed vocabularies."""
    from dashboard.data import COMPLIANCE_CODES
    from server.api.reports import REPORTS
    from server.domain.events import EventKind
    from server.domain.filling import FillAssessment
    from server.domain.statuses import (
        ALERT_KINDS,
        ALERT_STATES,
        CYLINDER_STATUSES,
        ROLES,
        SITE_KINDS,
    )

    families = {
        "compliance": COMPLIANCE_CODES,
        "status": CYLINDER_STATUSES,
        "role": ROLES,
        "alert.kind": ALERT_KINDS,
        "alert.state": ALERT_STATES,
        "site.kind": SITE_KINDS,
        "event": [k.value for k in EventKind],
        "fill.assessment": [a.value for a in FillAssessment],
        "report": list(REPORTS),
        "severity": ("info", "warning", "critical"),
    }
    table = strings("zh-CN")
    missing = [
        f"{fam}.{w}" for fam, words in families.items() for w in words if f"{fam}.{w}" not in table
    ]
    assert not missing


def test_translator_fills_placeholders_and_shows_missing_keys() -> None:
    t = translator("en")
    assert t("pager.summary", total=3, page=1, pages=2) == "3 in total · page 1 of 2"
    assert t("no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("tag", "lang"),
    [("en", "en"), ("en-US", "en"), ("zh", "zh-CN"), ("zh-cn", "zh-CN"), ("fr", None), ("", None)],
)
def test_language_tags(tag: str, lang: str | None) -> None:
    assert normalize(tag) == lang


# ---------------------------------------------------------------- vendor assets


def test_build_copies_every_asset(tmp_path: Path) -> None:
    if not (build_assets.NODE_MODULES / "leaflet").exists():
        missing("node_modules", "make assets")
    written = build_assets.copy_assets(tmp_path)
    assert len(written) == len(build_assets.ASSETS)
    assert build_assets.assets_present(tmp_path)
    assert (tmp_path / "leaflet" / "images" / "marker-icon.png").exists()
    assert "Supercluster" in (tmp_path / "supercluster" / "supercluster.min.js").read_text()


def test_vendor_paths_are_stable() -> None:
    """Other pages (big screen, officer PWA) link these URLs: they must not change."""
    urls = build_assets.vendor_urls()
    for url in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/supercluster/supercluster.min.js",
        "/static/vendor/echarts/echarts.min.js",
    ):
        assert url in urls


def test_package_json_pins_the_vendored_packages() -> None:
    pkg = json.loads((build_assets.ROOT / "package.json").read_text())
    for asset in build_assets.ASSETS:
        assert asset.package in pkg["dependencies"]
    lock = json.loads((build_assets.ROOT / "package-lock.json").read_text())
    assert all(f"node_modules/{a.package}" in lock["packages"] for a in build_assets.ASSETS)
