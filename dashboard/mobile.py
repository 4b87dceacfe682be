"""The field officer's phone view (/m): an installable PWA (docs/ARCHITECTURE.md §1, §8).

Why a shell page plus a service worker: officers work in stairwells and basements where the
network comes and goes. The shell (``/m``, its script, stylesheet, manifest and icons) is
cached by the service worker so the app starts offline; everything live — alerts for the
officer's districts (``/ws``, scoped server-side), acknowledge/resolve (REST with the CSRF
header), cylinder lookup, Web Push subscription — goes to the network and says so when it
cannot. The shell holds no personal data, so caching it is harmless. The safety inspection
works without signal from IndexedDB (``static/m/store.js``): the catalogues, the customers
looked up today (removed the next day and at logout) and the completed inspections waiting to
be sent (``offline-queue.js``; the server takes each ``client_id`` once).

Routes:

- ``GET /m`` — the shell (Jinja2 template ``templates/m/index.html``), in the request's
  language (``server.kernel.i18n``); its scripts are native ES modules (``m.js`` and the
  modules it imports: the lookup, the registration from the phone, the camera scanner, the
  safety inspection at the customer with its offline queue in IndexedDB) using
  the platform's shared modules under ``/static/js/lib/`` and the vendored Leaflet for the
  lookup's small map, all cached by the service worker with the shell;
- ``GET /m/sw.js`` — the service worker, with ``Service-Worker-Allowed: /m`` so that its
  scope can be ``/m`` itself (a script under ``/m/`` could otherwise only control ``/m/…``);
- ``GET /m/manifest.webmanifest`` — the Web App Manifest (``application/manifest+json``);
- ``/static/m/…`` — script, stylesheet, icons.

``python -m dashboard.mobile`` regenerates the PNG icons (drawn here, no image library).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from aiohttp import web

from dashboard.render import environment
from server.domain.registration import REGISTRANT_ROLES, refused_at_registration
from server.domain.safety import CUSTOMER_KINDS, INSPECT_ROLES
from server.domain.site_risk import READ_ROLES as RISK_READ_ROLES
from server.domain.statuses import ROLES
from server.domain.wall import SWITCH_ROLES as WALL_ROLES
from server.kernel.appkeys import SETTINGS
from server.kernel.i18n import load_strings, remember_language, request_language, translator
from server.kernel.pages import (
    CONFIG_ELEMENT_ID,
    LEAFLET_CSS,
    LEAFLET_JS,
    TOOLKIT_URL,
    json_for_html,
    live_config,
    secure_page,
)
from server.kernel.principal import Principal
from server.kernel.scope import can_read
from server.kernel.tiles import tile_spec

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static" / "m"
TOOLKIT_DIR = HERE / "static" / "js" / "lib"
TEMPLATE_DIR = HERE / "templates" / "m"
STATIC_URL = "/static/m"
SCOPE = "/m"
ICON_SIZES = (192, 512)

_MOUNTED: web.AppKey[bool] = web.AppKey("dashboard_mobile_mounted", bool)

REGISTER_FORM_FIELDS = (
    "tag",
    "barcode",
    "stamp",
    "owner_company_id",
    "spec",
    "manufacture_date",
    "last_inspection_date",
    "manufacturer",
    "tare_kg",
    "valve_type",
)
"""The fields of the phone's registration form (``templates/m/index.html``)."""


OPTIONAL_READS = ("alerts", "fills")
"""What the PWA shows only to roles that may read it (alerts tab, a cylinder's fills)."""


def role_reads() -> dict[str, list[str]]:
    """Per role, which of :data:`OPTIONAL_READS` it may read (``server.kernel.scope``): the page
    does not ask for what the server would refuse (an inspection agency reads neither)."""
    return {
        role: [e for e in OPTIONAL_READS if can_read(Principal(0, "", role), e)] for role in ROLES
    }


def register_hidden() -> dict[str, list[str]]:
    """Per registering role, the form's fields it may not state (``server.domain.registration``:
    a company admin states no inspection findings; the server derives those dates)."""
    return {
        role: [f for f in REGISTER_FORM_FIELDS if refused_at_registration(role, [f]) is not None]
        for role in REGISTRANT_ROLES
    }


def strings(lang: str) -> Mapping[str, str]:
    return load_strings(TEMPLATE_DIR / f"strings.{lang}.json")


def _shell_files() -> list[Path]:
    return sorted(
        p
        for p in [*STATIC_DIR.rglob("*"), *TOOLKIT_DIR.rglob("*.js"), *TEMPLATE_DIR.rglob("*")]
        if p.is_file()
    )


@cache
def asset_version() -> str:
    """Changes whenever a shell file changes (the shared modules included): the service
    worker's cache name carries it, so a deploy replaces the offline copy instead of serving
    the old shell forever."""
    h = hashlib.sha256()
    for path in _shell_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def shell_urls() -> list[str]:
    """What the service worker caches at install so that ``/m`` starts offline."""
    v = asset_version()
    icons = [f"{STATIC_URL}/icons/icon-{s}.png" for s in ICON_SIZES]
    toolkit = [f"{TOOLKIT_URL}/{p.name}" for p in sorted(TOOLKIT_DIR.glob("*.js"))]
    # the modules m.js imports by relative URL (no version: a new cache name replaces them)
    modules = [
        f"{STATIC_URL}/{p.name}"
        for p in sorted(STATIC_DIR.glob("*.js"))
        if p.name not in ("m.js", "sw.js")
    ]
    return [
        SCOPE,
        f"{SCOPE}/manifest.webmanifest",
        f"{STATIC_URL}/m.js?v={v}",
        f"{STATIC_URL}/m.css?v={v}",
        *modules,
        LEAFLET_JS,
        LEAFLET_CSS,
        *icons,
        *toolkit,
    ]


async def shell(request: web.Request) -> web.Response:
    """GET /m: the app shell (no data in it; the script asks who is logged in)."""
    settings = request.app[SETTINGS]
    lang, chosen = request_language(request)
    table = strings(lang)
    v = asset_version()
    tiles = tile_spec(settings.map)
    config = {
        "lang": lang,
        "strings": dict(table),
        "csrf_cookie": settings.auth.csrf_cookie,
        "timezone": settings.alerts.timezone,
        "version": v,
        "scope": SCOPE,
        "live": live_config(settings),
        # the lookup's small map (static/js/lib/map.js reads these)
        "tiles": tiles.public() if tiles else None,
        "map": {
            "center": [settings.map.center_lat, settings.map.center_lon],
            "zoom": settings.map.zoom,
        },
        "page_size_max": settings.http.page_size_max,
        "reads": role_reads(),
        # registration from the phone (static/m/register.js)
        "register_roles": list(REGISTRANT_ROLES),
        "register_hidden": register_hidden(),
        # the safety inspection at the customer (static/m/safety.js): who inspects, the
        # catalogue's customer kinds (all cached for offline work), the photos a record takes
        "inspect_roles": list(INSPECT_ROLES),
        # the settings tab's wall card (static/m/wall.js): who switches a wall's layout
        "wall_roles": list(WALL_ROLES),
        "customer_kinds": list(CUSTOMER_KINDS),
        "safety_photos_max": settings.safety.photos_max,
        # today's inspection list (static/m/today.js): who reads it
        "risk_roles": list(RISK_READ_ROLES),
    }
    html = (
        environment()
        .get_template("m/index.html")
        .render(
            lang=lang,
            t=translator(table),
            config_json=json_for_html(config),
            config_id=CONFIG_ELEMENT_ID,
            css=f"{STATIC_URL}/m.css?v={v}",
            js=f"{STATIC_URL}/m.js?v={v}",
            leaflet_css=LEAFLET_CSS,
            leaflet_js=LEAFLET_JS,
            models=sorted(settings.models),
        )
    )
    resp = web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})
    secure_page(resp, tiles)
    if chosen:
        remember_language(resp, lang)
    return resp


async def service_worker(request: web.Request) -> web.Response:
    """GET /m/sw.js: never cached by HTTP, so a new version is found on the next visit."""
    body = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    body = body.replace("__VERSION__", asset_version())
    body = body.replace("__SHELL__", json.dumps(shell_urls()))
    return web.Response(
        text=body,
        content_type="application/javascript",
        headers={"Service-Worker-Allowed": SCOPE, "Cache-Control": "no-cache"},
    )


async def manifest(request: web.Request) -> web.Response:
    """GET /m/manifest.webmanifest, named in the request's language."""
    lang, _ = request_language(request)
    t = strings(lang)
    data = {
        "name": t["app.name"],
        "short_name": t["app.short_name"],
        "description": t["app.description"],
        "lang": lang,
        "start_url": SCOPE,
        "scope": SCOPE,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#0b1f3a",
        "theme_color": "#0b1f3a",
        "icons": [
            {
                "src": f"{STATIC_URL}/icons/icon-{s}.png",
                "sizes": f"{s}x{s}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for s in ICON_SIZES
        ],
    }
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode(),
        content_type="application/manifest+json",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def setup(app: web.Application) -> None:
    """Mount /m (idempotent: ``big_screen.setup`` and later ``dashboard.setup`` may both
    call it)."""
    if app.get(_MOUNTED):
        return
    app[_MOUNTED] = True
    app.router.add_get(SCOPE, shell)
    app.router.add_get(SCOPE + "/", shell)
    app.router.add_get(SCOPE + "/sw.js", service_worker)
    app.router.add_get(SCOPE + "/manifest.webmanifest", manifest)
    app.router.add_static(STATIC_URL, STATIC_DIR, append_version=False)


# ---------------------------------------------------------------- icons


def _png(width: int, height: int, rgb_rows: list[bytes]) -> bytes:
    """A truecolour PNG from raw RGB rows (filter byte 0 on each row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    raw = b"".join(b"\x00" + row for row in rgb_rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def icon_png(size: int) -> bytes:
    """The app icon: an orange LPG cylinder with a valve on a navy field (maskable-safe:
    the drawing stays inside the central 60 %)."""
    navy, orange, band = (11, 31, 58), (245, 158, 11), (255, 255, 255)
    valve, ring = (148, 163, 184), (34, 211, 238)
    rows: list[bytes] = []
    cx = size / 2
    body_w, body_top, body_bot = size * 0.30, size * 0.34, size * 0.78
    radius = body_w / 2
    for y in range(size):
        row = bytearray()
        for x in range(size):
            px = navy
            dx = abs(x + 0.5 - cx)
            yy = y + 0.5
            # glow ring
            dist = ((x + 0.5 - cx) ** 2 + (yy - size * 0.55) ** 2) ** 0.5
            if size * 0.36 < dist < size * 0.38:
                px = ring
            # valve stem and handwheel
            if dx < size * 0.035 and size * 0.22 < yy < body_top:
                px = valve
            if dx < size * 0.09 and size * 0.20 < yy < size * 0.235:
                px = valve
            # body: a rectangle with round shoulders and base
            if dx <= radius and body_top <= yy <= body_bot:
                top_c = body_top + radius * 0.6
                bot_c = body_bot - radius * 0.4
                inside = True
                if yy < top_c:
                    inside = (dx / radius) ** 2 + ((top_c - yy) / (radius * 0.6)) ** 2 <= 1
                elif yy > bot_c:
                    inside = (dx / radius) ** 2 + ((yy - bot_c) / (radius * 0.4)) ** 2 <= 1
                if inside:
                    px = band if size * 0.52 < yy < size * 0.57 else orange
            row += bytes(px)
        rows.append(bytes(row))
    return _png(size, size, rows)


def write_icons(directory: Path = STATIC_DIR / "icons") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for s in ICON_SIZES:
        path = directory / f"icon-{s}.png"
        path.write_bytes(icon_png(s))
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_icons():
        print(p)
    sys.exit(0)
