"""Privacy and the small hardening items of issue 9 (docs/SECURITY.md "Privacy").

- inspectors get no coordinates (a cylinder's, a trajectory event's: a delivery's are a
  customer's door), no customers, and no live positions channel;
- a cylinder's last fill is shown in full only if the caller's fills scope holds it;
- a list page deep beyond ``http.page_offset_max`` rows is a 400, not a table scan;
- malformed ids in page paths and kiosk tokens are 4xx, never 500;
- HSTS is sent when the platform is served over HTTPS (``secure_cookies``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from realtime.scope import CHANNEL_ENTITY, NONE, rule_for
from server.kernel.appkeys import SETTINGS as SETTINGS_KEY
from server.kernel.principal import Principal
from server.kernel.scope import can_read
from tests.api.conftest import Fresh, call, unique
from tests.conftest import PASSWORD, World


async def _at_a_customer(pool: Any, world: World, cid: int) -> None:
    await pool.execute(
        """UPDATE cylinders SET location_kind = 'customer', location_customer_id = $2,
                  lat = 34.8123, lon = 113.6456, last_seen_at = now() WHERE id = $1""",
        cid,
        world.customers["A"],
    )
    await pool.execute(
        """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, company_id, customer_id,
                               lat, lon, district_code)
           SELECT now(), $2, id, tag, 'delivered', owner_company_id, $3, 34.8123, 113.6456,
                  district_code FROM cylinders WHERE id = $1""",
        cid,
        unique("ev"),
        world.customers["A"],
    )


async def test_inspectors_get_no_coordinates(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    await _at_a_customer(pool, world, cid)
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}", "t_inspector")
    assert status == 200
    assert body["lat"] is None and body["lon"] is None
    assert body["location"]["lat"] is None and body["location"]["customer_id"] is None
    assert "34.8123" not in str(body) and "CUST-A" not in str(body)
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}/trajectory", "t_inspector")
    assert status == 200 and body["items"]
    assert all(e["lat"] is None and e["lon"] is None for e in body["items"])
    status, body = await call(client, "GET", f"/api/v1/events?cylinder={cid}", "t_inspector")
    assert status == 200 and body["items"]
    assert "34.8123" not in str(body)
    status, _ = await call(client, "GET", "/api/v1/customers", "t_inspector")
    assert status == 403
    # those with a use for them still see them
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}", "t_company_a")
    assert body["location"]["lat"] == 34.8123
    status, body = await call(client, "GET", f"/api/v1/events?cylinder={cid}", "t_regulator")
    assert any(e["lat"] == 34.8123 for e in body["items"])


def test_inspectors_may_not_subscribe_to_live_positions() -> None:
    inspector = Principal(user_id=1, username="i", role="inspector", site_id=3)
    assert not can_read(inspector, CHANNEL_ENTITY["positions"])
    assert rule_for(inspector, CHANNEL_ENTITY["positions"]) == NONE
    operator = Principal(user_id=2, username="o", role="station_operator", company_id=1, site_id=3)
    assert rule_for(operator, CHANNEL_ENTITY["positions"]) == rule_for(operator, "cylinders")


async def test_last_fill_respects_the_fills_scope(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    """A station operator sees its company's cylinders, but only its own station's fills."""
    cid = await fresh.cylinder("A")
    ts = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    other = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
           VALUES ($1, '另一个站', 'filling_station', $2, '410105', 34.8, 113.6) RETURNING id""",
        unique("STA"),
        world.companies["A"],
    )
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, cylinder_id, tag, net_kg)
           VALUES ($1, $2, 'GUN-X', $3, $4, $5, 'x', 13.3)""",
        ts,
        unique("f"),
        other,
        world.companies["A"],
        cid,
    )
    await pool.execute(
        "UPDATE cylinders SET last_fill_at = $2, last_fill_site_id = $3 WHERE id = $1",
        cid,
        ts,
        other,
    )
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}", "t_operator_a")
    assert status == 200
    assert body["last_fill"] is not None and "net_kg" not in body["last_fill"]
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}", "t_company_a")
    assert body["last_fill"]["net_kg"] == 13.3


async def test_deep_pages_are_refused(client: Any, world: World) -> None:
    limit = client.app[SETTINGS_KEY].http.page_offset_max
    status, body = await call(client, "GET", f"/api/v1/cylinders?page_size=100&page={limit}")
    assert status == 400 and "page" in str(body["error"]), body
    last = limit // 100 + 1
    status, _ = await call(client, "GET", f"/api/v1/cylinders?page_size=100&page={last}")
    assert status == 200
    status, _ = await call(client, "GET", "/api/v1/events?page=1000000000")
    assert status == 400


async def test_odd_digits_in_paths_and_kiosk_tokens_are_not_500(client: Any, world: World) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "t_admin", "password": PASSWORD}
    )
    assert resp.status == 200  # the client's jar now holds the session cookie
    for path in ("/cylinders/²", "/cylinders/١٢", "/cylinders/9" + "9" * 30):
        resp = await client.get(path)
        assert resp.status == 404, path
    client.session.cookie_jar.clear()
    for token in ("k1.².x", "k2.².x", "k1.1.²"):
        resp = await client.post("/big-screen/session", json={"kiosk": token})
        assert 400 <= resp.status < 500, token


async def test_hsts_only_when_served_over_https(
    aiohttp_client: Any, settings: Any, world: World
) -> None:
    from server.app import create_app

    plain = await aiohttp_client(create_app(settings, with_pages=False))
    assert "Strict-Transport-Security" not in (await plain.get("/healthz")).headers
    auth = msgspec.structs.replace(settings.auth, secure_cookies=True, hsts_max_age_s=600)
    secure = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, auth=auth), with_pages=False)
    )
    for path in ("/healthz", "/api/v1/cylinders"):
        resp = await secure.get(path)
        assert resp.headers["Strict-Transport-Security"] == "max-age=600", path
