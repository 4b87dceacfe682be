"""GET /big-screen: the wall's HTML shell (everything live is drawn by big-screen.js).

The page is server-rendered only for what never changes while it runs: strings in the
wall's language, the tile layer, the map's start view and the wall's tunables. Who may see
it, and how an unattended wall logs in, is decided here and in ``big_screen.kiosk``:

- a browser with a regulator/admin session cookie gets the wall of that session;
- ``?kiosk=<token>`` (see ``big_screen.kiosk``) gets a wall that trades the token for a
  read-only session itself and trades it again whenever the session ends;
- anyone else is sent to ``/login`` (a person at a browser), never shown a form on the wall.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from aiohttp import web

from big_screen import settings as bs_settings
from big_screen.kiosk import WALL_ROLES, verify_token
from dashboard.i18n import remember_language, request_language
from dashboard.maps import LEAFLET_CSS, LEAFLET_JS, tile_spec
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.principal import principal_of

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/static/big-screen"
ECHARTS_JS = "/static/vendor/echarts/echarts.min.js"
COORDS_JS = "/static/js/coords.js"
"""The dashboard's WGS-84 → GCJ-02 port (used only when the tile layer is AMap)."""


@cache
def strings(lang: str) -> Mapping[str, str]:
    with (HERE / "i18n" / f"{lang}.json").open(encoding="utf-8") as fh:
        data: dict[str, str] = json.load(fh)
    return data


@cache
def asset_version() -> str:
    """Cache-busting suffix: changes whenever a static file of the wall changes."""
    h = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:10]


@cache
def _template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text(encoding="utf-8"))


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script type=application/json> (no `</script>` break-out)."""
    return (
        json.dumps(data, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


_HEADERS = {
    "Cache-Control": "no-store",
    # the kiosk token is in the URL: never send it anywhere as a Referer
    "Referrer-Policy": "no-referrer",
}


def _notice(lang: str, status: int, message_key: str, retry_s: int | None) -> web.Response:
    t = strings(lang)
    refresh = f'<meta http-equiv="refresh" content="{retry_s}">' if retry_s else ""
    html = _template("notice.html").substitute(
        lang=lang,
        title=_escape(t["error.title"]),
        message=_escape(t[message_key]),
        refresh=refresh,
        css=f"{STATIC_URL}/big-screen.css?v={asset_version()}",
    )
    return web.Response(text=html, status=status, content_type="text/html", headers=_HEADERS)


async def page(request: web.Request) -> web.StreamResponse:
    """The wall. See the module docstring for who gets it."""
    app = request.app
    settings = app[SETTINGS]
    lang, chosen = request_language(request)
    kiosk = request.query.get("kiosk")
    p = principal_of(request)
    mode: str
    if kiosk:
        if await verify_token(app[POOL], kiosk) is None:
            return _notice(lang, 401, "error.kiosk_invalid", retry_s=60)
        mode = "kiosk"
    elif p is not None:
        if p.role not in WALL_ROLES:
            return _notice(lang, 403, "error.forbidden", retry_s=None)
        mode = "session"
    else:
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
    tiles = tile_spec(settings.map)
    config = {
        "mode": mode,
        "lang": lang,
        "strings": dict(strings(lang)),
        "timezone": settings.alerts.timezone,
        "map": {
            "center": [settings.map.center_lat, settings.map.center_lon],
            "zoom": settings.map.zoom,
            "tiles": tiles.public() if tiles is not None else None,
        },
        "wall": bs_settings.page_config(settings),
    }
    t = strings(lang)
    v = asset_version()
    html = _template("big_screen.html").substitute(
        lang=lang,
        title=_escape(t["title"]),
        subtitle=_escape(t["subtitle"]),
        config=_json_for_script(config),
        leaflet_css=LEAFLET_CSS,
        leaflet_js=LEAFLET_JS,
        echarts_js=ECHARTS_JS,
        coords_js=(
            f'<script src="{COORDS_JS}"></script>' if tiles is not None and tiles.gcj02 else ""
        ),
        css=f"{STATIC_URL}/big-screen.css?v={v}",
        js=f"{STATIC_URL}/big-screen.js?v={v}",
        **{
            k.replace(".", "_"): _escape(val)
            for k, val in t.items()
            if k.startswith(("kpi.", "panel.", "legend."))
        },
        panel_companies=_escape(
            t["panel.companies_by_anomalies"].format(days=bs_settings.of(settings).ranking_days)
        ),
    )
    resp = web.Response(text=html, content_type="text/html", headers=_HEADERS)
    if chosen:
        remember_language(resp, lang)
    return resp
