"""The folium-built dashboard map, served from local assets (tile providers: the kernel's
:mod:`server.kernel.tiles`, shared with the wall).

Why folium: the map's static part (the Leaflet map, district boundaries and their labels) is
built server-side in Python from the districts table, so it is the same for every page that
shows the city and needs no JSON round trip before the first paint; the live layers are
added by ``static/js/dashboard.js``, which finds the map in ``window.CW_MAP``. folium's
defaults load Leaflet, jQuery, Bootstrap and Font Awesome from CDNs; supervision networks are often offline (docs/ARCHITECTURE.md §8), so
:class:`LocalMap` replaces those with the vendored Leaflet and drops what the dashboard
does not use. The only remote URL a page may then hold is the configured tile layer's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import folium
from branca.element import Figure, MacroElement
from jinja2 import Template
from shapely.geometry import shape

from dashboard.coords import geojson_to_gcj02, wgs84_to_gcj02
from server.kernel.pages import LEAFLET_CSS, LEAFLET_JS
from server.kernel.settings import MapSettings
from server.kernel.tiles import tile_spec

__all__ = ["LocalMap", "RenderedMap", "build_dashboard_map"]

PANEL_PAD_TOP_LEFT = (300, 90)
"""Pixels the dashboard's filter panel and KPI strip cover (``static/css/app.css``)."""
PANEL_PAD_BOTTOM_RIGHT = (390, 20)
"""Pixels the alert side panel covers."""
MAP_ID = "dashboard"
"""The folium map's fixed id (its element is ``#map_dashboard``): the page and its map
script (``GET /dashboard/map.js``) are rendered by separate requests and must agree."""


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
    """The parts of a folium page, for embedding in the platform's own layout: *header*
    (stylesheets and Leaflet) and *html* go into the page, *script* is served as a file
    (the Content-Security-Policy allows no inline script)."""

    header: str
    html: str
    script: str


_VIEWPORT_RE = re.compile(r"<meta[^>]*(viewport|http-equiv)[^>]*/?>", re.S)
_INLINE_SCRIPT_RE = re.compile(r"<script>.*?</script>", re.S)
"""folium's header sets ``L_NO_TOUCH``/``L_DISABLE_3D`` after Leaflet has loaded, where
they change nothing; the blocks are dropped rather than allowed by the policy."""


def _label_point(geometry: Mapping[str, Any]) -> list[float]:
    p = shape(geometry).representative_point()
    return [float(p.y), float(p.x)]


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
    m._id = MAP_ID
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
                    # where the page script writes the name (as text, never as HTML)
                    "label": _label_point(geometry),
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
    header = _INLINE_SCRIPT_RE.sub("", _VIEWPORT_RE.sub("", fig.header.render()))
    return RenderedMap(header=header, html=fig.html.render(), script=fig.script.render())
