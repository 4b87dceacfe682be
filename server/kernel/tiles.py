"""The base map's tile provider, derived from the ``[map]`` settings (docs/CONFIG.md).

Every map the platform draws — the dashboard's folium map, the cylinder track, the wall —
uses the same provider, and every page's Content-Security-Policy allows exactly that
provider's host, so the spec lives in the kernel and both page packages read it from here.
Nothing else leaves the machine: supervision networks are often offline
(docs/ARCHITECTURE.md), and ``[map] tiles = "none"`` draws a blank background.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from server.kernel.settings import MapSettings

__all__ = ["TILE_PROVIDERS", "TileSpec", "tile_hosts", "tile_spec"]


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
        """What the page scripts need to draw the same layer (detail, trajectory, wall)."""
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


def tile_hosts(tiles: TileSpec | None) -> list[str]:
    """The origins a page may load tile images from (``{s}`` subdomains as a wildcard)."""
    if tiles is None:
        return []
    hosts: list[str] = []
    for url in (tiles.url, tiles.overlay_url):
        if not url:
            continue
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0]
        if "{s}" in host:
            host = "*." + host.split(".", 1)[1]
        hosts.append(f"{scheme}://{host}")
    return hosts
