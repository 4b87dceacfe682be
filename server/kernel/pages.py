"""What every HTML page of the platform shares: vendored asset URLs, the page-config
block, the security headers and the live-socket settings its script needs.

The regulator pages (``dashboard``), the officer PWA (``/m``) and the command-centre wall
(``big_screen``) are separate packages that share no Python with each other
(docs/ARCHITECTURE.md); they share one set of browser modules as static files under
``/static/js/lib/`` and these server-side conventions, which therefore live in the kernel:

- libraries are served by the platform itself (``make assets`` copies them from npm into
  ``dashboard/static/vendor``), at URLs without version numbers;
- a page hands its script everything it needs (strings, settings, close codes) in one
  ``<script type="application/json" id="page-config">`` element, which is data, never
  executed, so the Content-Security-Policy allows no inline script at all;
- the policy lets a page fetch only from this server, plus tile images from the configured
  provider (:mod:`server.kernel.tiles`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from server.kernel.live_codes import close_codes_for_pages
from server.kernel.settings import Settings
from server.kernel.tiles import TileSpec, tile_hosts

__all__ = [
    "CONFIG_ELEMENT_ID",
    "ECHARTS_JS",
    "HLS_JS",
    "LEAFLET_CSS",
    "LEAFLET_JS",
    "SUPERCLUSTER_JS",
    "TOOLKIT_URL",
    "content_security_policy",
    "json_for_html",
    "live_config",
    "secure_page",
]

LEAFLET_JS = "/static/vendor/leaflet/leaflet.js"
LEAFLET_CSS = "/static/vendor/leaflet/leaflet.css"
ECHARTS_JS = "/static/vendor/echarts/echarts.min.js"
HLS_JS = "/static/vendor/hls/hls.min.js"
SUPERCLUSTER_JS = "/static/vendor/supercluster/supercluster.min.js"
TOOLKIT_URL = "/static/js/lib"
"""The platform's own browser modules (i18n, api, dom, ws, chart, table, map), served from
``dashboard/static/js/lib`` and imported by URL from every page script."""

CONFIG_ELEMENT_ID = "page-config"


def json_for_html(data: Any) -> str:
    """JSON safe to place inside a ``<script type=application/json>`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def live_config(
    settings: Settings,
    *,
    reconnect_min_s: float | None = None,
    reconnect_max_s: float | None = None,
    ping_s: float | None = None,
) -> dict[str, Any]:
    """How a page's ``ws.js`` talks to ``/ws`` (docs/WEBSOCKET.md): close codes, backoff,
    and its keep-alive ping. By default the backoff is ``[realtime] page_reconnect_*`` and the
    ping the server's own ``[realtime] ws_heartbeat_s``; the wall passes its own."""
    rt = settings.realtime
    return {
        "url": "/ws",
        "close": close_codes_for_pages(),
        "reconnect_min_s": rt.page_reconnect_min_s if reconnect_min_s is None else reconnect_min_s,
        "reconnect_max_s": rt.page_reconnect_max_s if reconnect_max_s is None else reconnect_max_s,
        "ping_s": rt.ws_heartbeat_s if ping_s is None else ping_s,
    }


def content_security_policy(tiles: TileSpec | None, media: Sequence[str] | None = None) -> str:
    """Scripts from this server only (no inline script); images also from the tile host.

    Styles keep ``'unsafe-inline'``: Leaflet and folium position map panes with inline
    styles. What matters is that nothing can be *fetched* from elsewhere (an offline
    network, and no data leaving the platform). *media* (the wall: ``[big_screen]
    stream_origins``) adds the origins of video and camera streams, as media, as images
    (MJPEG) and as the HLS player's requests; given, even empty, it allows ``blob:`` media
    (the HLS player feeds the video element through Media Source Extensions).
    """
    streams = list(media or ())
    img = " ".join(["'self'", "data:", "blob:", *tile_hosts(tiles), *streams])
    connect = " ".join(["'self'", *streams])
    media_src = "" if media is None else " ".join(["media-src 'self' blob:", *streams]) + "; "
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {img}; {media_src}connect-src {connect}; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'; worker-src 'self'"
    )


def secure_page(
    resp: web.StreamResponse,
    tiles: TileSpec | None,
    *,
    referrer: str = "same-origin",
    media: Sequence[str] | None = None,
) -> None:
    """The security headers of every HTML page (CSP, no sniffing, no framing)."""
    resp.headers["Content-Security-Policy"] = content_security_policy(tiles, media)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = referrer
    resp.headers["X-Frame-Options"] = "DENY"
