"""Devices registered and deactivated through the API, on a real Mosquitto.

Two brokers, because the machine's broker (``/etc/mosquitto/mosquitto.conf``: anonymous, no
plugin loaded) cannot show the first half:

- a private broker with the production authentication — the dynamic-security plugin
  (``config/mosquitto.conf``, its file made by ``mosquitto_ctrl dynsec init``) — on a spare
  port: registering a device creates its broker client with the password the API shows once;
  deactivating disables the client and closes its connection; with the broker down the
  change stands in the registry (ingest refuses the device at once) and broker-sync applies
  it when the broker is back;
- a private anonymous broker like the machine's (no ``[services] mqtt_admin_url``: the
  platform manages no broker client): what still holds there is the platform's own refusal —
  a deactivated gun's fill request is answered ``deny`` / ``unknown_station`` over MQTT by a
  real ingest worker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import msgspec
import orjson
import pytest

from ingest.broker_sync import DeviceEntry, sync_broker
from ingest.credentials import verify_mosquitto_hash
from ingest.dynsec import BrokerControl
from tests.api.conftest import call, unique
from tests.api.fill_auth import fill_outcome
from tests.conftest import World
from tests.gun_mqtt import ADMIN, CUT_OFF_S, ask_gun, closed_within, refused, start_secure_broker
from tests.ingest.conftest import Mosquitto, running_worker

INGEST = "cylwatch-ingest"
V5 = aiomqtt.ProtocolVersion.V5


@dataclass
class Secured:
    broker: Mosquitto
    admin_url: str
    settings: Any


@contextlib.contextmanager
def _secured_broker(settings: Any) -> Iterator[Secured]:
    """A dynamic-security broker with the platform's admin client, the settings pointing at it."""
    broker, password = start_secure_broker()
    admin_url = f"mqtt://{ADMIN}:{password}@127.0.0.1:{broker.port}"
    services = msgspec.structs.replace(settings.services, mqtt_admin_url=admin_url)
    try:
        yield Secured(broker, admin_url, msgspec.structs.replace(settings, services=services))
    finally:
        broker.close()


@pytest.fixture(scope="module")
def secured(settings: Any, database: str) -> Iterator[Secured]:
    with _secured_broker(settings) as s:
        yield s


async def _app_client(aiohttp_client: Any, settings: Any) -> Any:
    from server.app import create_app

    return await aiohttp_client(create_app(settings, with_pages=False))


async def _station(pool: Any, world: World) -> int:
    """A licensed filling station of company A of this test alone (the world's may be
    suspended by a licence test running in the same session)."""
    return int(
        await pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon,
                                  licence_no, licence_expiry, licence_status)
               VALUES ($1, '设备测试站', 'filling_station', $2, '410105', 34.8, 113.65,
                       $3, $4, 'valid') RETURNING id""",
            unique("DST"),
            world.companies["A"],
            unique("FL"),
            world.today + dt.timedelta(days=300),
        )
    )


async def _register_gun(client: Any, site_id: int) -> dict[str, Any]:
    body = {"device_id": unique("GUN"), "kind": "gun", "site_id": site_id, "name": "1号枪"}
    status, dev = await call(client, "POST", "/api/v1/devices", "t_company_a", body)
    assert status == 201, dev
    return dict(dev)


def _device(port: int, username: str, password: str | None) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=username, password=password, protocol=V5)


# ------------------------------------------------------------------- dynamic security


async def test_registering_creates_the_client_and_shows_the_password_once(
    aiohttp_client: Any, secured: Secured, world: World, pool: Any
) -> None:
    client = await _app_client(aiohttp_client, secured.settings)
    dev = await _register_gun(client, await _station(pool, world))
    password = dev["mqtt_password"]
    assert dev["broker"] == "applied" and isinstance(password, str) and len(password) == 24
    stored = await pool.fetchval("SELECT mqtt_password_hash FROM devices WHERE id = $1", dev["id"])
    assert verify_mosquitto_hash(password, stored)  # the file fallback accepts the same one
    status, again = await call(client, "GET", f"/api/v1/devices/{dev['id']}", "t_company_a")
    assert status == 200 and "mqtt_password" not in again and "mqtt_password_hash" not in again
    status, page = await call(client, "GET", f"/api/v1/devices?q={dev['device_id']}", "t_admin")
    assert password not in orjson.dumps(page).decode()
    gun = dev["device_id"]
    async with _device(secured.broker.port, gun, password) as device:
        await device.publish(f"cyl/v1/gun/{gun}/status", b'{"online": true}', qos=1)
    assert await refused(_device(secured.broker.port, gun, "not-" + password))
    rows = await pool.fetch(
        "SELECT action, username, details::text AS d FROM audit_log"
        " WHERE entity = 'device' AND entity_id IN ($1, $2) ORDER BY id",
        gun,
        str(dev["id"]),
    )
    assert [(r["action"], r["username"]) for r in rows] == [
        ("device.create", "t_company_a"),
        ("device.credentials", "t_company_a"),
    ]
    assert all(password not in r["d"] and "$7$" not in r["d"] for r in rows)


async def test_deactivating_closes_the_connection_and_the_platform_refuses(
    aiohttp_client: Any, secured: Secured, world: World, pool: Any, fresh: Any
) -> None:
    client = await _app_client(aiohttp_client, secured.settings)
    station = await _station(pool, world)
    tag = (
        await pool.fetchrow("SELECT tag FROM cylinders WHERE id = $1", await fresh.cylinder("A"))
    )["tag"]
    dev = await _register_gun(client, station)
    gun, password = dev["device_id"], dev["mqtt_password"]
    assert (await fill_outcome(secured.settings, pool, gun, tag)).decision.decision == "allow"
    url = f"/api/v1/devices/{dev['id']}"
    device = _device(secured.broker.port, gun, password)
    await device.__aenter__()
    try:
        started = time.monotonic()
        status, off = await call(client, "PATCH", url, "t_company_a", {"active": False})
        assert status == 200 and off["active"] is False and off["broker"] == "applied", off
        assert await closed_within(device, f"cyl/v1/gun/{gun}/status", started + CUT_OFF_S)
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await device.__aexit__(None, None, None)
    assert await refused(_device(secured.broker.port, gun, password))
    outcome = await fill_outcome(secured.settings, pool, gun, tag)
    assert outcome.decision.decision == "deny"
    assert "unknown_station" in outcome.decision.reason_codes
    status, on = await call(client, "PATCH", url, "t_company_a", {"active": True})
    assert status == 200 and on["broker"] == "applied"
    async with _device(secured.broker.port, gun, password):
        pass  # back, with the password shown at registration


async def test_broker_down_nothing_is_lost_and_broker_sync_applies_it(
    aiohttp_client: Any, settings: Any, world: World, pool: Any, fresh: Any
) -> None:
    with _secured_broker(settings) as s:
        client = await _app_client(aiohttp_client, s.settings)
        station = await _station(pool, world)
        tag = (
            await pool.fetchrow(
                "SELECT tag FROM cylinders WHERE id = $1", await fresh.cylinder("A")
            )
        )["tag"]
        dev = await _register_gun(client, station)
        gun, password = dev["device_id"], dev["mqtt_password"]
        s.broker.stop()
        status, off = await call(
            client, "PATCH", f"/api/v1/devices/{dev['id']}", "t_company_a", {"active": False}
        )
        assert status == 200 and off["broker"] == "pending", off
        assert await pool.fetchval("SELECT active FROM devices WHERE id = $1", dev["id"]) is False
        outcome = await fill_outcome(s.settings, pool, gun, tag)  # the platform refuses at once
        assert outcome.decision.decision == "deny"
        assert "unknown_station" in outcome.decision.reason_codes
        late = await _register_gun(client, station)  # registered while the broker is down
        assert late["broker"] == "pending" and late["mqtt_password"] is None
        hashed = await pool.fetchval(
            "SELECT mqtt_password_hash FROM devices WHERE id = $1", late["id"]
        )
        assert hashed is None  # no password was handed out, none is kept
        s.broker.start()
        # the broker came back as it was: the deactivated gun would still get in ...
        async with _device(s.broker.port, gun, password):
            pass
        # ... until broker-sync (a timer in production) brings it in line with the registry;
        # the command reads every device, here only this test's two
        rows = await pool.fetch(
            "SELECT device_id, kind, active FROM devices WHERE device_id = ANY($1::text[])",
            [gun, late["device_id"]],
        )
        async with BrokerControl(s.admin_url, 5.0) as control:
            report = await sync_broker(
                control,
                [DeviceEntry(r["device_id"], r["kind"], r["active"]) for r in rows],
                ingest_user=INGEST,
                ingest_password=secrets.token_urlsafe(12),
                shared_group=s.settings.ingest.shared_group,
                admin_user=None,
            )
        assert report.disabled == [gun] and report.created == [INGEST, late["device_id"]]
        assert await refused(_device(s.broker.port, gun, password))
        async with _device(s.broker.port, late["device_id"], report.passwords[late["device_id"]]):
            pass


# ------------------------------------------------------------------- anonymous broker


@pytest.fixture
async def anonymous_broker() -> AsyncIterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


async def test_unmanaged_broker_the_platform_still_refuses_a_deactivated_gun(
    aiohttp_client: Any,
    settings: Any,
    world: World,
    pool: Any,
    fresh: Any,
    anonymous_broker: Mosquitto,
) -> None:
    token = secrets.token_hex(3)
    services = msgspec.structs.replace(settings.services, mqtt_url=anonymous_broker.url)
    ingest = msgspec.structs.replace(
        settings.ingest,
        shared_group=f"dev{token}",
        client_id_prefix=f"dev-{token}",
        session_expiry_s=60,
        batch_max_ms=50,
    )
    local = msgspec.structs.replace(settings, services=services, ingest=ingest)
    assert not local.services.mqtt_admin_url  # as on the machine's broker
    client = await _app_client(aiohttp_client, local)
    station = await _station(pool, world)
    tag = (
        await pool.fetchrow("SELECT tag FROM cylinders WHERE id = $1", await fresh.cylinder("A"))
    )["tag"]
    dev = await _register_gun(client, station)
    assert dev["broker"] == "unmanaged" and dev["mqtt_password"]  # for the password file
    async with running_worker(local, pool):
        before = await ask_gun(anonymous_broker.url, dev["device_id"], tag)
        assert before["decision"] == "allow", before
        status, off = await call(
            client, "PATCH", f"/api/v1/devices/{dev['id']}", "t_company_a", {"active": False}
        )
        assert status == 200 and off["broker"] == "unmanaged"
        after = await ask_gun(anonymous_broker.url, dev["device_id"], tag)
    assert after["decision"] == "deny" and "unknown_station" in after["reasons"], after
