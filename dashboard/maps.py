"""The base map: tile providers, and the folium-built dashboard map served from local assets.

Why folium: the map's static part (the Leaflet map, district boundaries and their labels) is
built server-side in Python from the districts table, so it is the same for every page that
shows the city and needs no JSON round trip before the first paint; the live layers are
added by ``static/js/dashboard.js``. folium's defaults load Leaflet, jQuery, Bootstrap and
Font Awesome from CDNs; supervision networks are often offline (DESIGN §8), so
:class:`LocalMap` replaces those with the vendored Leaflet and drops what the dashboard
does not use. The only remote URL a page may then hold is the configured tile layer's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import folium
from branca.element import Figure, MacroElement
from jinja2 import Template
from shapely.geometry import shape

from dashboard.coords import geojson_to_gcj02, wgs84_to_gcj02
from server.kernel.settings import MapSettings

__all__ = [
    "LEAFLET_CSS",
    "LEAFLET_JS",
    "TILE_PROVIDERS",
    "LocalMap",
    "RenderedMap",
    "TileSpec",
    "build_dashboard_map",
    "tile_spec",
]

PANEL_PAD_TOP_LEFT = (300, 90)
"""Pixels the dashboard's filter panel and KPI strip cover (``static/css/app.css``)."""
PANEL_PAD_BOTTOM_RIGHT = (390, 20)
"""Pixels the alert side panel covers."""

LEAFLET_JS = "/static/vendor/leaflet/leaflet.js"
LEAFLET_CSS = "/static/vendor/leaflet/leaflet.css"


@dataclass(frozen=True)
class TileSpec:
    """A base map provider. ``gcj02``: its tiles are drawn in GCJ-02, so positions shift."""

    name: str
    url: str
    attribution: str
    subdomains: str
    max_zoom: int
    gcj02: bool = False
    overlay_url: str | None = None
    """A second layer drawn on top (Tianditu's place-name annotations)."""

    def public(self) -> dict[str, Any]:
        """What the page scripts need to draw the same layer (detail and trajectory maps)."""
        return {
            "name": self.name,
            "url": self.url,
            "attribution": self.attribution,
            "subdomains": self.subdomains,
            "max_zoom": self.max_zoom,
            "gcj02": self.gcj02,
            "overlay_url": self.overlay_url,
        }


_TIANDITU = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
    "&TILECOL={{x}}&tk={key}"
)

TILE_PROVIDERS: Mapping[str, Callable[[MapSettings], TileSpec]] = {
    "osm": lambda s: TileSpec(
        "osm",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
        "",
        19,
    ),
    "tianditu": lambda s: TileSpec(
        "tianditu",
        _TIANDITU.format(layer="vec", key=s.tianditu_key),
        "&copy; 天地图 Tianditu",
        "01234567",
        18,
        overlay_url=_TIANDITU.format(layer="cva", key=s.tianditu_key),
    ),
    "amap": lambda s: TileSpec(
        "amap",
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
        "&copy; 高德地图 AutoNavi",
        "1234",
        18,
        gcj02=True,
    ),
}
"""Tile URL templates per ``[map] tiles`` value (``none`` has no tiles: offline blank map)."""


def tile_spec(settings: MapSettings) -> TileSpec | None:
    """The configured base layer, or None for ``none`` (and for Tianditu without a key)."""
    make = TILE_PROVIDERS.get(settings.tiles)
    if make is None:
        return None
    if settings.tiles == "tianditu" and not settings.tianditu_key:
        return None  # Tianditu refuses keyless requests: draw the offline map instead
    return make(settings)


class LocalMap(folium.Map):
    """A folium map whose page header loads only the vendored Leaflet from this server."""

    default_js = [("leaflet", LEAFLET_JS)]  # noqa: RUF012 - folium's class attribute
    default_css = [("leaflet_css", LEAFLET_CSS)]  # noqa: RUF012


class _PageHook(MacroElement):
    """Hands the map and the district layer to the page script (folium names are random)."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        window.CW_MAP = {{ this._parent.get_name() }};
        window.CW_DISTRICTS = {{ this.layer.get_name() }};
        {% endmacro %}"""
    )

    def __init__(self, layer: folium.GeoJson) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "CwPageHook"
        self.layer = layer


@dataclass(frozen=True)
class RenderedMap:
    """The three parts of a folium page, for embedding in the platform's own layout."""

    header: str
    html: str
    script: str


_VIEWPORT_RE = re.compile(r"<meta[^>]*(viewport|http-equiv)[^>]*/?>", re.S)


def _label_point(geometry: Mapping[str, Any]) -> tuple[float, float]:
    p = shape(geometry).representative_point()
    return float(p.y), float(p.x)


def build_dashboard_map(
    settings: MapSettings,
    districts: Sequence[Mapping[str, Any]],
    lang: str,
    focus: Sequence[str] = (),
) -> RenderedMap:
    """The dashboard's Leaflet map: canvas rendering, base layer, district boundaries.

    *districts* are rows with ``code``, ``name``, ``name_en`` and ``boundary`` (a GeoJSON
    geometry in WGS-84). *focus* lists district codes to fit the view to (a regulator
    scoped to districts starts on them); otherwise the configured centre and zoom.
    """
    tiles = tile_spec(settings)
    gcj = tiles is not None and tiles.gcj02
    center = (settings.center_lat, settings.center_lon)
    if gcj:
        center = wgs84_to_gcj02(*center)
    m = LocalMap(
        location=list(center),
        zoom_start=settings.zoom,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        zoom_control="bottomleft",
    )
    if tiles is not None:
        folium.TileLayer(
            tiles=tiles.url,
            attr=tiles.attribution,
            name=tiles.name,
            max_zoom=tiles.max_zoom,
            subdomains=tiles.subdomains or "abc",
            control=False,
        ).add_to(m)
        if tiles.overlay_url:
            folium.TileLayer(
                tiles=tiles.overlay_url,
                attr=tiles.attribution,
                name=f"{tiles.name}-labels",
                max_zoom=tiles.max_zoom,
                subdomains=tiles.subdomains,
                overlay=True,
                control=False,
            ).add_to(m)
    features: list[dict[str, Any]] = []
    for d in districts:
        geometry = dict(d["boundary"])
        if gcj:
            geometry = geojson_to_gcj02(geometry)
        name = d["name_en"] if lang == "en" and d.get("name_en") else d["name"]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": d["code"],
                    "name": name,
                    "focus": bool(focus) and d["code"] in focus,
                },
                "geometry": geometry,
            }
        )
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name="districts",
        style_function=lambda f: {
            "color": "#1d4ed8",
            "weight": 2,
            "opacity": 0.85,
            "dashArray": "6 4",
            "fillColor": "#3b82f6",
            "fillOpacity": 0.08 if f["properties"]["focus"] else 0.04,
        },
        control=False,
    )
    layer.add_to(m)
    for f in features:
        lat, lon = _label_point(f["geometry"])
        folium.Marker(
            [lat, lon],
            icon=folium.DivIcon(
                html=f"<span>{_escape(f['properties']['name'])}</span>",
                class_name="cw-district-label",
                icon_size=(120, 20),
                icon_anchor=(60, 10),
            ),
            interactive=False,
        ).add_to(m)
    # Start on the districts the user answers for (all of them for city-wide users), leaving
    # room for the dashboard's overlay panels (filters left, alert list right).
    focused = [f for f in features if f["properties"]["focus"]] or features
    if focused:
        bounds = [shape(f["geometry"]).bounds for f in focused]
        west = min(b[0] for b in bounds)
        south = min(b[1] for b in bounds)
        east = max(b[2] for b in bounds)
        north = max(b[3] for b in bounds)
        m.fit_bounds(
            [[south, west], [north, east]],
            padding_top_left=PANEL_PAD_TOP_LEFT,
            padding_bottom_right=PANEL_PAD_BOTTOM_RIGHT,
        )
    _PageHook(layer).add_to(m)
    fig = m.get_root()
    assert isinstance(fig, Figure)
    fig.render()
    header = _VIEWPORT_RE.sub("", fig.header.render())
    return RenderedMap(header=header, html=fig.html.render(), script=fig.script.render())


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
