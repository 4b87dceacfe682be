"""Pages over HTTP (no browser): login and logout with CSRF, redirects, roles, language,
security headers, and the dashboard map's assets (no CDN, tiles as configured)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from dashboard.render import NAV
from tests.conftest import PASSWORD, ROLE_USERS

# every page of the navigation, and which role may open it (dashboard.render.NAV): the
# handlers must honour the table (a 403 page for the others), whatever the table says
PAGES = [n.path for n in NAV]
FORBIDDEN = {
    role: {n.path for n in NAV if role not in n.roles}
    for role in ("inspector", "regulator", "officer", "company_admin", "station_operator", "admin")
}
# the table itself, for the pages whose access is a rule of docs/ARCHITECTURE.md §7
assert {"/fills", "/alerts", "/admin/users", "/admin/dead-letters"} <= FORBIDDEN["inspector"]
assert FORBIDDEN["admin"] == set()
ASSET_URL = re.compile(r"""(?:src|href)\s*=\s*["'](https?://[^"']+)""", re.I)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)


def inline_scripts(body: str) -> list[str]:
    """Script elements that would execute without a src (a JSON data block does not)."""
    return [
        attrs
        for attrs in SCRIPT_TAG.findall(body)
        if "src=" not in attrs and 'type="application/json"' not in attrs
    ]


async def dashboard_with_map(client: Any) -> tuple[Any, str]:
    """The dashboard page and its folium map script (served as /dashboard/map.js: the
    Content-Security-Policy allows no inline script), as one text to search."""
    resp = await client.get("/")
    body = await resp.text()
    assert '<script src="/dashboard/map.js"></script>' in body
    script = await client.get("/dashboard/map.js")
    assert script.status == 200 and "javascript" in script.headers["Content-Type"]
    return resp, body + await script.text()


async def cookie_login(client: Any, username: str) -> str:
    """Log in through the JSON endpoint; the client's jar then holds the session cookie."""
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert resp.status == 200
    return str((await resp.json())["csrf_token"])


async def login_form_token(client: Any) -> str:
    resp = await client.get("/login")
    assert resp.status == 200
    m = re.search(r'name="_csrf" value="([^"]+)"', await resp.text())
    assert m
    return m.group(1)


async def test_pages_redirect_to_login_when_anonymous(client: Any) -> None:
    for path in PAGES:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302, path
        assert resp.headers["Location"].startswith("/login?next=")


async def test_login_form_logs_in_and_returns_to_next(client: Any) -> None:
    token = await login_form_token(client)
    resp = await client.post(
        "/login",
        data={"username": "t_regulator", "password": PASSWORD, "_csrf": token, "next": "/alerts"},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert resp.headers["Location"] == "/alerts"
    assert "cylwatch_session" in resp.cookies and "cylwatch_csrf" in resp.cookies
    assert resp.cookies["cylwatch_session"]["httponly"]
    page = await client.get("/alerts")
    assert page.status == 200
    assert "告警中心" in await page.text()


async def test_login_form_wrong_password_shows_error(client: Any) -> None:
    token = await login_form_token(client)
    resp = await client.post(
        "/login", data={"username": "t_regulator", "password": "wrong-wrong", "_csrf": token}
    )
    assert resp.status == 401
    body = await resp.text()
    assert "用户名或密码错误" in body
    assert 'value="t_regulator"' in body  # the username is kept, the password is not
    assert "cylwatch_session" not in resp.cookies


async def test_login_form_without_its_token_is_refused(client: Any) -> None:
    """Login CSRF: a cross-site form cannot read the double-submit cookie's value."""
    await login_form_token(client)
    resp = await client.post(
        "/login", data={"username": "t_admin", "password": PASSWORD, "_csrf": "x"}
    )
    assert resp.status == 403
    assert "cylwatch_session" not in resp.cookies


async def test_login_never_redirects_off_site(client: Any) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        token = await login_form_token(client)
        resp = await client.post(
            "/login",
            data={"username": "t_admin", "password": PASSWORD, "_csrf": token, "next": target},
            allow_redirects=False,
        )
        assert resp.headers["Location"] == "/", target
        client.session.cookie_jar.clear()


async def test_logged_in_login_page_goes_to_next(client: Any) -> None:
    await cookie_login(client, "t_admin")
    resp = await client.get("/login?next=/fills", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/fills"


async def test_logout_needs_csrf_and_ends_the_session(client: Any) -> None:
    csrf = await cookie_login(client, "t_admin")
    bad = await client.post("/logout", data={"_csrf": "nope"}, allow_redirects=False)
    assert bad.status == 403
    ok = await client.post("/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert ok.status == 302 and ok.headers["Location"] == "/login"
    assert (await client.get("/", allow_redirects=False)).status == 302


@pytest.mark.parametrize("username", list(ROLE_USERS))
async def test_every_page_for_every_role(client: Any, username: str) -> None:
    """Each role opens its pages (200) and gets a clear 403 page for the others."""
    role = ROLE_USERS[username][0]
    await cookie_login(client, username)
    for path in PAGES:
        resp = await client.get(path)
        body = await resp.text()
        if path in FORBIDDEN[role]:
            assert resp.status == 403, (username, path)
            assert "无权访问" in body
        else:
            assert resp.status == 200, (username, path, body[:300])
            assert 'id="page-config"' in body
        assert resp.headers["Cache-Control"] == "no-store"
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp
        assert inline_scripts(body) == [], (username, path)


async def test_navigation_shows_only_allowed_pages(client: Any) -> None:
    await cookie_login(client, "t_inspector")
    body = await (await client.get("/cylinders")).text()
    assert 'href="/cylinders"' in body
    assert 'href="/alerts"' not in body and 'href="/admin/users"' not in body


async def test_english_switch_is_remembered(client: Any) -> None:
    await cookie_login(client, "t_admin")
    resp = await client.get("/cylinders?lang=en")
    body = await resp.text()
    assert '<html lang="en">' in body and "Cylinder search" in body
    assert resp.cookies["cylwatch_lang"].value == "en"
    again = await (await client.get("/fills")).text()
    assert "Fill log" in again
    back = await (await client.get("/fills?lang=zh-CN")).text()
    assert "充装记录" in back


async def test_unknown_cylinder_id_is_a_page_not_a_500(client: Any) -> None:
    await cookie_login(client, "t_admin")
    resp = await client.get("/cylinders/abc")
    assert resp.status == 404
    assert (await client.get("/cylinders/99999999999999999999999")).status == 404
    assert (await client.get("/cylinders/123")).status == 200  # the page says "not found" itself


async def test_public_page_needs_no_login(client: Any) -> None:
    resp = await client.get("/q/BC-TAG-A-OK")
    assert resp.status == 200
    body = await resp.text()
    assert "气瓶安全信息" in body and 'data-code="BC-TAG-A-OK"' in body
    assert "/logout" not in body


async def test_dashboard_map_has_no_cdn_asset(client: Any) -> None:
    await cookie_login(client, "t_admin")
    _resp, body = await dashboard_with_map(client)
    assert "/static/vendor/leaflet/leaflet.js" in body
    assert "preferCanvas" in body and '"preferCanvas": true' in body
    assert not ASSET_URL.findall(body)
    assert "https://" not in body and "http://" not in body  # tiles = none: not even a tile URL
    for lib in ("jquery", "bootstrap", "font-awesome", "fontawesome", "awesome-markers"):
        assert lib not in body.lower()
    assert "window.CW_MAP" in body and "金水区" in body and "二七区" in body


@pytest.mark.parametrize("tiles", ["osm", "amap", "tianditu"])
async def test_only_the_tile_layer_is_remote(
    aiohttp_client: Any, settings: Any, world: Any, tiles: str
) -> None:
    from server.app import create_app

    m = msgspec.structs.replace(
        settings.map, tiles=tiles, tianditu_key="k123" if tiles == "tianditu" else ""
    )
    client = await aiohttp_client(create_app(msgspec.structs.replace(settings, map=m)))
    await cookie_login(client, "t_admin")
    resp, body = await dashboard_with_map(client)
    assert not ASSET_URL.findall(body)
    hosts = set(re.findall(r"https?://([^/\"'\s]+)/", body))
    expected = {
        "osm": {"tile.openstreetmap.org"},
        "amap": {"webrd0{s}.is.autonavi.com"},
        "tianditu": {"t{s}.tianditu.gov.cn"},
    }[tiles]
    assert hosts == expected
    csp = resp.headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://" in csp


async def test_amap_draws_boundaries_in_gcj02(
    aiohttp_client: Any, settings: Any, world: Any
) -> None:
    from dashboard.coords import wgs84_to_gcj02
    from server.app import create_app

    m = msgspec.structs.replace(settings.map, tiles="amap")
    client = await aiohttp_client(create_app(msgspec.structs.replace(settings, map=m)))
    await cookie_login(client, "t_admin")
    _resp, body = await dashboard_with_map(client)
    lat, lon = wgs84_to_gcj02(34.75, 113.6)  # a corner of the world's 金水区 square
    assert f"[{lon}, {lat}]" in body
    assert '"gcj02":true' in body  # page scripts shift live positions too


async def test_tianditu_without_key_falls_back_to_offline(
    aiohttp_client: Any, settings: Any, world: Any
) -> None:
    from server.app import create_app

    m = msgspec.structs.replace(settings.map, tiles="tianditu", tianditu_key="")
    client = await aiohttp_client(create_app(msgspec.structs.replace(settings, map=m)))
    await cookie_login(client, "t_admin")
    _resp, body = await dashboard_with_map(client)
    assert "tianditu" not in body and "https://" not in body


async def test_vendor_assets_are_served(client: Any) -> None:
    from dashboard.build_assets import ensure_assets, vendor_urls

    ensure_assets()
    for url in vendor_urls():
        if url.endswith("/images"):
            continue
        resp = await client.get(url)
        assert resp.status == 200, url
    css = await client.get("/static/css/app.css")
    assert css.status == 200 and "text/css" in css.headers["Content-Type"]
