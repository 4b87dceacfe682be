"""GET /big-screen: the wall's HTML shell (everything live is drawn by big-screen.js).

The page is server-rendered (Jinja2, ``big_screen/templates``) only for what never changes
while it runs: strings in the wall's language, the tile layer, the map's start view, the
wall's tunables and the layout its scope shows now (``server.domain.wall``; later switches
arrive over ``/ws``). Its Content-Security-Policy allows ``[big_screen] stream_origins`` for
the video windows. Who may see it, and how an unattended wall logs in, is decided here and in
``big_screen.kiosk``:

- a browser with a regulator/admin session cookie gets the wall of that session;
- ``?kiosk=<token>`` (see ``big_screen.kiosk``) gets a wall that trades the token for a
  read-only session itself and trades it again whenever the session ends;
- anyone else is sent to ``/login`` (a person at a browser), never shown a form on the wall.

The wall shares no Python with the regulator pages (docs/ARCHITECTURE.md): language
negotiation, the tile provider, the vendored asset URLs and the page's security headers
come from the kernel, and its script imports the platform's browser modules by URL
(``/static/js/lib/``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from big_screen import settings as bs_settings
from big_screen.kiosk import WALL_ROLES, verify_token
from server.db import wall_layouts
from server.domain.wall import KPI_KEYS, scope_of
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.i18n import (
    Translator,
    load_strings,
    remember_language,
    request_language,
    translator,
)
from server.kernel.pages import (
    CONFIG_ELEMENT_ID,
    ECHARTS_JS,
    HLS_JS,
    LEAFLET_CSS,
    LEAFLET_JS,
    json_for_html,
    live_config,
    secure_page,
)
from server.kernel.principal import principal_of
from server.kernel.tiles import tile_spec

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/static/big-screen"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def strings(lang: str) -> Mapping[str, str]:
    return load_strings(HERE / "i18n" / f"{lang}.json")


@cache
def asset_version() -> str:
    """Cache-busting suffix: changes whenever a static file of the wall changes."""
    h = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:10]


_HEADERS = {
    "Cache-Control": "no-store",
    # the kiosk token is in the URL: never send it anywhere as a Referer
    "Referrer-Policy": "no-referrer",
}


def _notice(lang: str, status: int, message_key: str, retry_s: int | None) -> web.Response:
    t = translator(strings(lang))
    html = _env.get_template("notice.html").render(
        lang=lang,
        title=t("error.title"),
        message=t(message_key),
        retry_s=retry_s,
        css=f"{STATIC_URL}/big-screen.css?v={asset_version()}",
    )
    resp = web.Response(text=html, status=status, content_type="text/html", headers=_HEADERS)
    secure_page(resp, None, referrer="no-referrer")
    return resp


def _default_title(win: Mapping[str, Any], t: Translator, ranking_days: int) -> str:
    kind = win["kind"]
    if kind == "chart":
        return t(f"panel.{win['chart']}", days=ranking_days)
    if kind == "report":
        return str(win["report"])
    if kind == "stream":
        return t("panel.stream")
    return t(f"panel.{kind}") if kind in ("map", "ticker") else ""


def first_paint(
    layout: Mapping[str, Any], t: Translator, ranking_days: int
) -> list[dict[str, Any]]:
    """The layout's windows as the page's HTML draws them before any script runs (titles,
    KPI tiles with their labels); big-screen.js then mounts the live content in their place."""
    return [
        {
            **win,
            "title": win.get("title") or _default_title(win, t, ranking_days),
            "keys": win.get("keys") or list(KPI_KEYS),
            "area": f"{win['y'] + 1} / {win['x'] + 1} / span {win['h']} / span {win['w']}",
        }
        for win in layout["windows"]
    ]


async def page(request: web.Request) -> web.StreamResponse:
    """The wall. See the module docstring for who gets it."""
    app = request.app
    settings = app[SETTINGS]
    lang, chosen = request_language(request)
    kiosk = request.query.get("kiosk")
    p = principal_of(request)
    mode: str
    if kiosk:
        user = await verify_token(app[POOL], kiosk)
        if user is None:
            return _notice(lang, 401, "error.kiosk_invalid", retry_s=60)
        mode = "kiosk"
        districts = await app[POOL].fetchval(
            "SELECT districts FROM users WHERE id = $1", user.user_id
        )
        scope = scope_of(user.role == "admin" or not districts, districts or ())
    elif p is not None:
        if p.role not in WALL_ROLES:
            return _notice(lang, 403, "error.forbidden", retry_s=None)
        mode = "session"
        scope = scope_of(p.city_wide, p.districts)
    else:
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
    tiles = tile_spec(settings.map)
    wall = settings.big_screen
    current = await wall_layouts.current(app[POOL], scope)
    layout = current["layout"]
    config = {
        "mode": mode,
        "lang": lang,
        "strings": dict(strings(lang)),
        "timezone": settings.alerts.timezone,
        "map": {
            "center": [settings.map.center_lat, settings.map.center_lon],
            "zoom": settings.map.zoom,
        },
        "tiles": tiles.public() if tiles is not None else None,
        "wall": bs_settings.page_config(settings),
        # what this wall shows now; the `wall` channel brings each switch (realtime.wall)
        "layout": current,
        "hls_js": HLS_JS,
        "stream_origins": list(wall.stream_origins),
        "live": live_config(
            settings,
            reconnect_min_s=wall.reconnect_min_s,
            reconnect_max_s=wall.reconnect_max_s,
            ping_s=wall.ping_s,
        ),
    }
    v = asset_version()
    html = _env.get_template("big_screen.html").render(
        lang=lang,
        t=translator(strings(lang)),
        layout=layout,
        windows=first_paint(layout, translator(strings(lang)), wall.ranking_days),
        config_json=json_for_html(config),
        config_id=CONFIG_ELEMENT_ID,
        leaflet_css=LEAFLET_CSS,
        leaflet_js=LEAFLET_JS,
        echarts_js=ECHARTS_JS,
        css=f"{STATIC_URL}/big-screen.css?v={v}",
        js=f"{STATIC_URL}/big-screen.js?v={v}",
    )
    resp = web.Response(text=html, content_type="text/html", headers=_HEADERS)
    secure_page(resp, tiles, referrer="no-referrer", media=wall.stream_origins)
    if chosen:
        remember_language(resp, lang)
    return resp
