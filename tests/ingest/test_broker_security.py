"""The production broker (config/mosquitto.conf + dynamic security) really keeps devices apart.

A private Mosquitto on spare ports runs the shipped configuration — no anonymous client,
the dynamic-security plugin (its file made by ``mosquitto_ctrl dynsec init``), the TLS
listener with a throw-away CA — and ``cylwatch devices broker-sync`` fills it from the
module's device registry (docs/SECURITY.md "Broker").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import ipaddress
import secrets
import shutil
import ssl
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingest.credentials import verify_mosquitto_hash
from ingest.dynsec import (
    PLATFORM_ROLE,
    BrokerControl,
    device_acls,
    device_role,
)
from server.cli_devices import cmd_broker_sync
from tests.conftest import World, login
from tests.gun_mqtt import ADMIN, CUT_OFF_S, closed_within, refused, start_secure_broker
from tests.ingest.conftest import Env, Mosquitto, mid, now_ms, running_worker

INGEST = "cylwatch-ingest"
V5 = aiomqtt.ProtocolVersion.V5


@dataclass
class Secure:
    broker: Mosquitto
    settings: Any
    admin_url: str
    ingest_password: str
    passwords: dict[str, str]
    ca: Path
    out: Path


def _certificates(where: Path) -> dict[str, Path]:
    """A throw-away CA and a broker certificate for 127.0.0.1, readable by mosquitto."""
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = cert("test CA", ca_key, ca_name, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    broker = cert("127.0.0.1", key, ca_name, ca_key, False)
    files = {
        "cafile": (where / "ca.crt", ca.public_bytes(serialization.Encoding.PEM)),
        "certfile": (where / "broker.crt", broker.public_bytes(serialization.Encoding.PEM)),
        "keyfile": (
            where / "broker.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    }
    for path, data in files.values():
        path.write_bytes(data)
        path.chmod(0o644)
    return {name: path for name, (path, _) in files.items()}


def _sync_args(out: Path, **over: Any) -> argparse.Namespace:
    values = {"out": out, "rotate": False, "ingest_user": None, "admin_url": None, **over}
    return argparse.Namespace(**values)


def _read_csvs(out: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(out.glob("new-credentials-*.csv")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with path.open() as fh:
            found |= {row["device_id"]: row["password"] for row in csv.DictReader(fh)}
        path.unlink()
    return found


def _start_secure_broker() -> tuple[Mosquitto, dict[str, Path], str]:
    """The shipped configuration, its dynamic-security file initialised with the admin
    client as an operator would (``mosquitto_ctrl dynsec init``), TLS with a fresh CA."""
    cert_dir = Path(tempfile.mkdtemp(prefix="cyl-tls-"))
    cert_dir.chmod(0o755)  # the broker runs as the mosquitto user
    tls = _certificates(cert_dir)
    broker, admin_password = start_secure_broker(tls)
    return broker, tls, admin_password


@pytest.fixture(scope="module")
async def secure(env: Env, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secure]:
    from server.kernel.settings import load_settings

    broker, tls, admin_password = _start_secure_broker()
    cert_dir = tls["cafile"].parent
    admin_url = f"mqtt://{ADMIN}:{admin_password}@127.0.0.1:{broker.port}"
    ingest_password = secrets.token_urlsafe(12)
    environ = dict(env.env)
    environ["CYL_MQTT_URL"] = f"mqtt://{INGEST}:{ingest_password}@127.0.0.1:{broker.port}"
    environ["CYL_SERVICES__MQTT_ADMIN_URL"] = admin_url
    settings = load_settings(environ=environ)
    out = tmp_path_factory.mktemp("broker-sync")
    try:
        assert await cmd_broker_sync(_sync_args(out), settings) == 0
        passwords = _read_csvs(out)
        yield Secure(broker, settings, admin_url, ingest_password, passwords, tls["cafile"], out)
    finally:
        broker.close()
        shutil.rmtree(cert_dir, ignore_errors=True)


def _client(s: Secure, username: str | None, password: str | None, **kw: Any) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", s.broker.port, username=username, password=password, protocol=V5, **kw
    )


async def _receive(client: aiomqtt.Client, seconds: float) -> list[str]:
    got: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for m in client.messages:
                got.append(m.topic.value)
    return got


# ----------------------------------------------------------------------------- tests


async def test_sync_gives_active_devices_a_password_and_stores_its_hash(
    env: Env, secure: Secure
) -> None:
    assert {"GUN-A1", "GUN-B1", "HH-A1", "VEH-A1"} <= set(secure.passwords)
    assert "GUN-OFF" not in secure.passwords  # an inactive device gets no client
    assert INGEST not in secure.passwords  # its password came from CYL_MQTT_URL
    stored = await env.pool.fetchval(
        "SELECT mqtt_password_hash FROM devices WHERE device_id = 'GUN-A1'"
    )
    assert verify_mosquitto_hash(secure.passwords["GUN-A1"], stored)  # the file fallback agrees


async def test_anonymous_clients_are_refused_on_both_listeners(secure: Secure) -> None:
    assert await refused(_client(secure, None, None))
    assert await refused(_client(secure, "GUN-A1", "guess"))
    context = ssl.create_default_context(cafile=str(secure.ca))
    port = secure.broker.tls_port
    anonymous = aiomqtt.Client("127.0.0.1", port, protocol=V5, tls_context=context)
    assert await refused(anonymous)
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        username="GUN-A1",
        password=secure.passwords["GUN-A1"],
        protocol=V5,
        tls_context=context,
    ) as gun:
        await gun.publish("cyl/v1/gun/GUN-A1/status", b'{"online": true}', qos=1)


async def test_a_device_publishes_only_its_own_topics(secure: Secure) -> None:
    group = secure.settings.ingest.shared_group
    async with _client(secure, INGEST, secure.ingest_password) as ingest:
        await ingest.subscribe(f"$share/{group}/cyl/v1/#", 1)
        async with _client(secure, "GUN-A1", secure.passwords["GUN-A1"]) as gun:
            body = orjson.dumps({"msg_id": mid(), "ts": now_ms(), "tag": "TAG-A1"})
            await gun.publish("cyl/v1/gun/GUN-B1/auth", body, qos=1)  # posing as GUN-B1
            await gun.publish("cyl/v1/gun/GUN-A1/auth/reply", body, qos=1)  # forging a reply
            await gun.publish("cyl/v1/handheld/GUN-A1/scan", body, qos=1)  # another kind
            await gun.publish("cyl/v1/gun/GUN-A1/auth", body, qos=1)  # its own: allowed
        got = await _receive(ingest, 1.5)
    assert got == ["cyl/v1/gun/GUN-A1/auth"]


async def test_a_gun_hears_only_its_own_replies(secure: Secure) -> None:
    async with _client(secure, "GUN-B1", secure.passwords["GUN-B1"]) as other:
        await other.subscribe("cyl/v1/gun/GUN-A1/auth/reply/#", 1)  # refused
        await other.subscribe("cyl/v1/gun/+/auth/reply/#", 1)  # refused: wider than its own
        await other.subscribe("cyl/v1/#", 1)  # refused
        await other.subscribe("cyl/v1/gun/GUN-B1/auth/reply/#", 1)
        async with _client(secure, INGEST, secure.ingest_password) as platform:
            await platform.publish("cyl/v1/gun/GUN-A1/auth/reply", b"{}", qos=1)
            await platform.publish("cyl/v1/valve/V1/telemetry", b"{}", qos=1)
            await platform.publish("cyl/v1/gun/GUN-B1/auth/reply", b"{}", qos=1)
        heard = await _receive(other, 1.0)
    assert heard == ["cyl/v1/gun/GUN-B1/auth/reply"]


async def test_the_admin_client_manages_access_but_reads_no_device_data(secure: Secure) -> None:
    async with BrokerControl(secure.admin_url, 5.0) as control:
        (response,) = await control.check([{"command": "getClient", "username": ADMIN}])
    assert [r["rolename"] for r in response["data"]["client"]["roles"]] == [PLATFORM_ROLE]
    admin_password = secure.admin_url.split(":")[2].split("@")[0]
    async with _client(secure, ADMIN, admin_password) as admin:
        await admin.subscribe("cyl/v1/#", 1)
        async with _client(secure, "HH-A1", secure.passwords["HH-A1"]) as handheld:
            await handheld.publish("cyl/v1/handheld/HH-A1/status", b"{}", qos=1)
        assert await _receive(admin, 1.0) == []


async def test_the_ingest_worker_consumes_and_answers_through_its_role(
    env: Env, secure: Secure
) -> None:
    async with (
        running_worker(secure.settings, env.pool),
        _client(secure, "GUN-B1", secure.passwords["GUN-B1"]) as gun,
    ):
        await gun.subscribe("cyl/v1/gun/GUN-B1/auth/reply", 1)
        request = {"msg_id": mid(), "ts": now_ms(), "tag": "TAG-B1"}
        await gun.publish("cyl/v1/gun/GUN-B1/auth", orjson.dumps(request), qos=1)
        async with asyncio.timeout(15):
            message = await anext(aiter(gun.messages))
    reply = orjson.loads(message.payload)
    assert message.topic.value == "cyl/v1/gun/GUN-B1/auth/reply"
    assert reply["msg_id"] == request["msg_id"] and reply["decision"] == "allow"


async def test_sync_is_idempotent_and_follows_the_registry(
    env: Env, secure: Secure, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, out = secure.settings, secure.out
    async with _client(secure, INGEST, secure.ingest_password) as ingest:
        assert await cmd_broker_sync(_sync_args(out), settings) == 0
        assert _read_csvs(out) == {}  # nothing changed, no password handed out twice
        printed = capsys.readouterr().out
        assert "created" not in printed and "password set" not in printed, printed
        await ingest.publish("cyl/v1/gun/GUN-A1/auth/reply", b"{}", qos=1)  # not cut off
    await env.pool.execute(
        "INSERT INTO devices (device_id, kind, company_id) VALUES ('HH-TMP', 'handheld', $1)",
        env.world.companies["A"],
    )
    await env.pool.execute("UPDATE devices SET active = false WHERE device_id = 'VEH-A1'")
    try:
        assert await cmd_broker_sync(_sync_args(out), settings) == 0
        assert set(_read_csvs(out)) == {"HH-TMP"}
        vehicle = _client(secure, "VEH-A1", secure.passwords["VEH-A1"])
        assert await refused(vehicle)  # deactivated in the registry: disabled
    finally:
        await env.pool.execute("DELETE FROM devices WHERE device_id = 'HH-TMP'")
        await env.pool.execute("UPDATE devices SET active = true WHERE device_id = 'VEH-A1'")
    assert await cmd_broker_sync(_sync_args(out), settings) == 0
    async with BrokerControl(secure.admin_url, 5.0) as control:
        gone, back = await control.run(
            [
                {"command": "getClient", "username": "HH-TMP"},
                {"command": "getClient", "username": "VEH-A1"},
            ]
        )
    assert gone.get("error") == "Client not found"  # its device is no longer registered
    assert not back["data"]["client"].get("disabled", False)  # re-activated: enabled again
    async with _client(secure, "VEH-A1", secure.passwords["VEH-A1"]):
        pass  # its password survived the disable/enable


async def test_deactivating_through_the_api_cuts_the_device_off_at_once(
    aiohttp_client: Any, settings: Any, database: str, world: World, secure: Secure
) -> None:
    from server.app import create_app

    services = msgspec.structs.replace(settings.services, mqtt_admin_url=secure.admin_url)
    app = create_app(msgspec.structs.replace(settings, services=services), with_pages=False)
    client = await aiohttp_client(app)
    headers = await login(client, "t_admin")
    url = f"/api/v1/devices/{world.devices['GUN-A']}"
    resp = await client.get(url, headers=headers)
    gun_id = (await resp.json())["device_id"]
    password = secrets.token_urlsafe(12)
    async with BrokerControl(secure.admin_url, 5.0) as control:
        await control.check(
            [
                {
                    "command": "createRole",
                    "rolename": device_role(gun_id),
                    "acls": [a.as_json() for a in device_acls("gun", gun_id)],
                },
                {
                    "command": "createClient",
                    "username": gun_id,
                    "password": password,
                    "roles": [{"rolename": device_role(gun_id)}],
                },
            ]
        )
    try:
        async with _connection(_client(secure, gun_id, password)) as gun:
            await gun.subscribe(f"cyl/v1/gun/{gun_id}/auth/reply", 1)
            started = time.monotonic()
            resp = await client.patch(url, json={"active": False}, headers=headers)
            assert resp.status == 200, await resp.text()
            assert await closed_within(gun, f"cyl/v1/gun/{gun_id}/status", started + CUT_OFF_S)
        assert await refused(_client(secure, gun_id, password))
    finally:
        resp = await client.patch(url, json={"active": True}, headers=headers)
        assert resp.status == 200
    async with _client(secure, gun_id, password):
        pass  # re-activated through the API: let in again


@contextlib.asynccontextmanager
async def _connection(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """Connected *client*; leaving it after the broker has closed it is not a failure."""
    await client.__aenter__()
    try:
        yield client
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
