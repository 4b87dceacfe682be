"""The wall's feeds, its kiosk authentication and the officer PWA's static routes.

What must hold: feeds answer only wall roles and only in the caller's scope (SQL scope, so a
district regulator's numbers are its district's); answers are shared per scope for a few
seconds; a kiosk token trades for a session that can read but never write; a bad token or
an inactive account gets nothing; /m serves its manifest and service worker with the
content types and scope header a browser insists on.
"""

from __future__ import annotations

import struct
from typing import Any

from big_screen import kiosk
from big_screen.feeds import FEED_CACHE
from server.kernel import kiosk_tokens
from tests.conftest import login as _login


async def login(client: Any, username: str) -> dict[str, str]:
    """Bearer headers; the session cookie login also sets is dropped (bearer-only calls)."""
    headers = await _login(client, username)
    client.session.cookie_jar.clear()
    return headers


async def _json(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_charts_need_a_wall_role(client: Any, world: Any) -> None:
    resp = await client.get("/big-screen/data/charts")
    assert resp.status == 401
    officer = await login(client, "t_officer")
    resp = await client.get("/big-screen/data/charts", headers=officer)
    assert resp.status == 403


async def test_charts_shape_and_scope(
    client: Any, pool: Any, world: Any, wall_data: dict[str, Any]
) -> None:
    city = await _json(
        await client.get("/big-screen/data/charts", headers=await login(client, "t_regulator"))
    )
    assert set(city["kpis"]) == {
        "registered",
        "in_service",
        "inspection_due",
        "overdue",
        "scrapped",
        "fills_today",
        "denials_today",
        "open_alerts",
    }
    assert all(isinstance(v, int) for v in city["kpis"].values())
    assert len(city["fills_per_hour"]) == 24
    assert sum(city["fills_per_hour"]) >= 1
    reasons = {d["reason"] for d in city["denials_by_reason"]}
    assert {"overdue_inspection", "not_owner", "scrapped", "unknown_tag"} <= reasons
    names = [c["name"] for c in city["companies_by_anomalies"]]
    assert "测试燃气A公司" in names and "测试燃气B公司" in names
    assert {d["district"] for d in city["inspection_by_district"]} >= {"410105", "410103"}

    local = await _json(
        await client.get(
            "/big-screen/data/charts", headers=await login(client, "t_regulator_jinshui")
        )
    )
    assert {d["district"] for d in local["inspection_by_district"]} == {"410105"}
    # The ranking's scope is the alerts in the regulator's districts (server.kernel.scope):
    # A's alerts are in 金水区, B's are not; other tests' companies with an alert there may
    # rank too, but never one without.
    local_names = [c["name"] for c in local["companies_by_anomalies"]]
    assert "测试燃气A公司" in local_names and "测试燃气B公司" not in local_names
    in_district = {
        r["company_id"]
        for r in await pool.fetch(
            "SELECT DISTINCT company_id FROM alerts WHERE district_code = '410105'"
        )
    }
    assert {c["company_id"] for c in local["companies_by_anomalies"]} <= in_district
    # refusals at stations in the district only: A's (金水区) count there, B's (管城区) do
    # not; other tests' refusals at stations in the district may add to either
    city_denials = {d["reason"]: d["count"] for d in city["denials_by_reason"]}
    local_denials = {d["reason"]: d["count"] for d in local["denials_by_reason"]}
    assert local_denials.get("overdue_inspection", 0) >= 5
    assert local_denials.get("not_owner", 0) >= 3
    assert city_denials["scrapped"] - local_denials.get("scrapped", 0) >= 2
    assert city_denials["unknown_tag"] - local_denials.get("unknown_tag", 0) >= 4
    assert local["kpis"]["registered"] < city["kpis"]["registered"]
    assert local["kpis"]["overdue"] >= 1  # TAG-A-OVERDUE is in 金水区


async def test_feeds_are_cached_per_scope(client: Any, world: Any) -> None:
    app = client.server.app
    app[FEED_CACHE].reset(ttl_s=60.0)
    admin = await login(client, "t_admin")
    regulator = await login(client, "t_regulator")
    local = await login(client, "t_regulator_jinshui")
    for headers in (admin, regulator, admin, regulator):
        await _json(await client.get("/big-screen/data/charts", headers=headers))
    assert app[FEED_CACHE].computed == 1  # admin and a city-wide regulator share the city scope
    await _json(await client.get("/big-screen/data/charts", headers=local))
    assert app[FEED_CACHE].computed == 2


async def test_alerts_districts_vehicles(
    client: Any, world: Any, wall_data: dict[str, Any]
) -> None:
    h = await login(client, "t_regulator_jinshui")
    alerts = (await _json(await client.get("/big-screen/data/alerts", headers=h)))["items"]
    assert alerts and {a["district"] for a in alerts} == {"410105"}
    assert {"id", "kind", "severity", "lat", "lon", "company_name", "last_at"} <= set(alerts[0])
    fc = await _json(await client.get("/big-screen/data/districts", headers=h))
    assert fc["type"] == "FeatureCollection"
    assert {f["properties"]["code"] for f in fc["features"]} >= {"410105", "410103"}
    assert (await _json(await client.get("/big-screen/data/vehicles", headers=h)))["items"] == []


async def test_kiosk_token_trades_for_a_read_only_session(
    client: Any, world: Any, wall_user: int
) -> None:
    admin = await login(client, "t_admin")
    issued = await _json(
        await client.post("/api/v1/kiosk-tokens", json={"username": "bs_wall"}, headers=admin),
        201,
    )
    token = issued["token"]
    assert issued["url"].endswith(f"/big-screen?kiosk={token}")
    # issuing is admin-only and only for wall roles
    assert (
        await client.post(
            "/api/v1/kiosk-tokens",
            json={"username": "bs_wall"},
            headers=await login(client, "t_regulator"),
        )
    ).status == 403
    assert (
        await client.post("/api/v1/kiosk-tokens", json={"username": "t_officer"}, headers=admin)
    ).status == 400

    session = await _json(await client.post("/big-screen/session", json={"kiosk": token}))
    sid = session["token"]
    assert sid.startswith(kiosk.SESSION_ID_PREFIX)
    bearer = {"Authorization": f"Bearer {sid}", "Accept": "application/json"}
    await _json(await client.get("/big-screen/data/charts", headers=bearer))
    me = await _json(await client.get("/api/v1/auth/me", headers=bearer))
    assert me["user"]["username"] == "bs_wall"
    # read-only: any write with the kiosk session is refused, whatever the endpoint
    for path in ("/api/v1/alerts/1/ack", "/api/v1/kiosk-tokens", "/api/v1/auth/api-keys"):
        resp = await client.post(path, json={}, headers=bearer)
        assert resp.status == 403, (path, await resp.text())
        assert "read-only" in (await resp.json())["error"]["message"]

    # the page accepts the token without any cookie
    page = await client.get(f"/big-screen?kiosk={token}", allow_redirects=False)
    assert page.status == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"


async def test_kiosk_token_rejections(client: Any, world: Any, wall_user: int, pool: Any) -> None:
    token = (await kiosk_tokens.issue(pool, wall_user, 60)).token
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    officer = (await kiosk_tokens.issue(pool, world.users["t_officer"], 60)).token
    for bad in (
        forged,
        "k1.1.x",
        "k2.².xxxxxxxxxxxxxxxxxxxxxxxx",
        "garbage",
        officer,  # not a wall account
    ):
        resp = await client.post("/big-screen/session", json={"kiosk": bad})
        assert resp.status == 401, bad
        page = await client.get(f"/big-screen?kiosk={bad}", allow_redirects=False)
        assert page.status == 401
        assert 'http-equiv="refresh"' in await page.text()
    await pool.execute("UPDATE users SET active = false WHERE id = $1", wall_user)
    assert (await client.post("/big-screen/session", json={"kiosk": token})).status == 401


async def test_page_access(client: Any, world: Any) -> None:
    resp = await client.get("/big-screen", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login?next=")
    await client.post(
        "/api/v1/auth/login", json={"username": "t_regulator", "password": "correct-horse-42"}
    )
    resp = await client.get("/big-screen")
    assert resp.status == 200
    html = await resp.text()
    for needle in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/echarts/echarts.min.js",
        "/static/big-screen/big-screen.js",
        'data-kpi="open_alerts"',
        "气瓶安全追溯监管平台",
    ):
        assert needle in html
    english = await (await client.get("/big-screen?lang=en")).text()
    assert "Open alerts" in english
    client.session.cookie_jar.clear()
    await client.post(
        "/api/v1/auth/login", json={"username": "t_officer", "password": "correct-horse-42"}
    )
    assert (await client.get("/big-screen")).status == 403


async def test_static_assets(client: Any) -> None:
    js = await client.get("/static/big-screen/big-screen.js")
    assert js.status == 200 and "javascript" in js.headers["Content-Type"]
    css = await client.get("/static/big-screen/big-screen.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")


async def test_mobile_routes(client: Any) -> None:
    shell = await client.get("/m")
    assert shell.status == 200 and shell.headers["Content-Type"].startswith("text/html")
    html = await shell.text()
    assert '<link rel="manifest" href="/m/manifest.webmanifest">' in html
    sw = await client.get("/m/sw.js")
    assert sw.status == 200
    assert sw.headers["Content-Type"].startswith("application/javascript")
    assert sw.headers["Service-Worker-Allowed"] == "/m"
    assert "__VERSION__" not in await sw.text()
    man = await client.get("/m/manifest.webmanifest")
    assert man.headers["Content-Type"].startswith("application/manifest+json")
    data = await man.json(content_type=None)
    assert data["start_url"] == "/m" and data["scope"] == "/m" and data["display"] == "standalone"
    for icon in data["icons"]:
        png = await client.get(icon["src"])
        assert png.status == 200 and png.headers["Content-Type"] == "image/png"
        body = await png.read()
        assert body[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", body[16:24])
        assert icon["sizes"] == f"{w}x{h}"
    en = await (await client.get("/m/manifest.webmanifest?lang=en")).json(content_type=None)
    assert en["lang"] == "en" and en["name"] != data["name"]
