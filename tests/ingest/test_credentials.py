"""Device credentials: the generated Mosquitto files really stop a device posing as another."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import shutil
import stat
import tempfile
from pathlib import Path

import aiomqtt
import orjson

from ingest.credentials import acl_lines, mosquitto_hash, verify_mosquitto_hash
from server.cli_devices import cmd_mosquitto_config
from tests.ingest.conftest import Env, Mosquitto, mid, now_ms


def test_hash_is_mosquittos_pbkdf2_sha512_format() -> None:
    h = mosquitto_hash("s3cret", salt=b"0123456789ab")
    _, seven, iterations, salt, digest = h.split("$")
    assert (seven, iterations, salt) == ("7", "101", "MDEyMzQ1Njc4OWFi")
    assert len(digest) == 88  # base64 of 64 bytes
    assert verify_mosquitto_hash("s3cret", h) and not verify_mosquitto_hash("other", h)


def test_a_gun_may_write_only_its_own_topics() -> None:
    lines = acl_lines("gun", "G7")
    assert "topic write cyl/v1/gun/G7/auth" in lines
    assert "topic read cyl/v1/gun/G7/auth/reply/#" in lines
    assert not [x for x in lines if "+" in x or x.endswith("cyl/v1/#")]


def _readable_copy(out: Path) -> Path:
    """The broker drops root for its own user: copies it can read, outside pytest's 0700 tmp."""
    conf_dir = Path(tempfile.mkdtemp(prefix="cyl-acl-"))
    conf_dir.chmod(0o755)
    for name in ("passwd", "acl"):
        shutil.copy(out / name, conf_dir / name)
        (conf_dir / name).chmod(0o644)
    return conf_dir


async def _receive(client: aiomqtt.Client, seconds: float) -> list[str]:
    got: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for m in client.messages:
                got.append(m.topic.value)
    return got


async def test_generated_files_keep_devices_in_their_own_topics(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "mq"
    settings = env.with_mqtt("mqtt://cylwatch-ingest:ingest-pw@127.0.0.1:1")
    args = argparse.Namespace(out=out, rotate=False, ingest_user=None)
    assert await cmd_mosquitto_config(args, settings) == 0
    assert stat.S_IMODE((out / "new-credentials.csv").stat().st_mode) == 0o600
    with (out / "new-credentials.csv").open() as fh:
        creds = {row["device_id"]: row["password"] for row in csv.DictReader(fh)}
    assert {"GUN-A1", "GUN-B1", "HH-A1", "VEH-A1"} <= set(creds)
    assert "GUN-OFF" not in creds  # an inactive device gets no credential
    assert "cylwatch-ingest" not in creds  # its password came from the configured URL
    stored = await env.pool.fetchval(
        "SELECT mqtt_password_hash FROM devices WHERE device_id = 'GUN-A1'"
    )
    assert verify_mosquitto_hash(creds["GUN-A1"], stored)
    assert creds["GUN-A1"] not in (out / "passwd").read_text()
    # regenerating keeps the installed devices' passwords
    out2 = tmp_path / "mq2"
    args2 = argparse.Namespace(out=out2, rotate=False, ingest_user=None)
    assert await cmd_mosquitto_config(args2, settings) == 0
    assert (out2 / "new-credentials.csv").read_text().strip() == "device_id,password"
    passwd_1 = dict(x.split(":", 1) for x in (out / "passwd").read_text().split())
    passwd_2 = dict(x.split(":", 1) for x in (out2 / "passwd").read_text().split())
    assert passwd_1["GUN-A1"] == passwd_2["GUN-A1"]

    conf_dir = _readable_copy(out)
    broker = Mosquitto(
        f"allow_anonymous false\npassword_file {conf_dir}/passwd\nacl_file {conf_dir}/acl\n"
    )
    broker.start()
    try:
        port = broker.port
        v5 = aiomqtt.ProtocolVersion.V5
        async with aiomqtt.Client(
            "127.0.0.1", port, username="cylwatch-ingest", password="ingest-pw", protocol=v5
        ) as ingest:
            await ingest.subscribe("$share/ingest/cyl/v1/#", 1)
            async with aiomqtt.Client(
                "127.0.0.1", port, username="GUN-A1", password=creds["GUN-A1"], protocol=v5
            ) as gun:
                body = orjson.dumps({"msg_id": mid(), "ts": now_ms(), "tag": "TAG-A1"})
                await gun.publish("cyl/v1/gun/GUN-B1/auth", body, qos=1)  # posing as GUN-B1
                await gun.publish("cyl/v1/gun/GUN-A1/auth/reply", body, qos=1)  # forging a reply
                await gun.publish("cyl/v1/gun/GUN-A1/auth", body, qos=1)  # its own: allowed
            got = await _receive(ingest, 1.5)
        assert got == ["cyl/v1/gun/GUN-A1/auth"]
        # a wrong password is refused outright
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port, username="GUN-A1", password="guess", protocol=v5
            ):
                raise AssertionError("connected with a wrong password")
        except aiomqtt.MqttError:
            pass
        # a gun hears only its own replies
        async with aiomqtt.Client(
            "127.0.0.1", port, username="GUN-B1", password=creds["GUN-B1"], protocol=v5
        ) as other:
            await other.subscribe("cyl/v1/gun/+/auth/reply/#", 1)
            async with aiomqtt.Client(
                "127.0.0.1", port, username="cylwatch-ingest", password="ingest-pw", protocol=v5
            ) as platform:
                await platform.publish("cyl/v1/gun/GUN-A1/auth/reply", b"{}", qos=1)
                await platform.publish("cyl/v1/gun/GUN-B1/auth/reply", b"{}", qos=1)
            heard = await _receive(other, 1.0)
        assert heard == ["cyl/v1/gun/GUN-B1/auth/reply"]
    finally:
        broker.close()
        shutil.rmtree(conf_dir, ignore_errors=True)
