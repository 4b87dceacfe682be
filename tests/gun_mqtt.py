"""A filling gun over MQTT and the brokers it asks through: the helpers of the tests that go
through a real Mosquitto (the companies, inspections and devices pages, the device broker and
broker security tests), so that a gun's request, the private broker with a worker answering
it, and the production-authentication broker are made one way (docs/ARCHITECTURE.md §5).

What a gun would be told without a broker is ``tests.api.fill_auth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import msgspec
import orjson

from tests.ingest.conftest import Mosquitto, mid, now_ms, running_worker

__all__ = [
    "ADMIN",
    "CUT_OFF_S",
    "REPLY_TIMEOUT_S",
    "answering_guns",
    "ask_gun",
    "closed_within",
    "refused",
    "start_secure_broker",
]

ADMIN = "cylwatch-admin"
"""The platform's client on a dynamic-security broker (``[services] mqtt_admin_url``)."""
CUT_OFF_S = 1.0
"""A deactivated device is disconnected within this (issue: "cut off within a second")."""
REPLY_TIMEOUT_S = 15.0
"""A reply is due within 50 ms (docs/ARCHITECTURE.md §10); this only bounds a broken run (a
worker just started on a loaded machine)."""


async def ask_gun(
    url: str,
    gun_id: str,
    tag: str,
    *,
    username: str | None = None,
    password: str | None = None,
    operator: str | None = None,
) -> dict[str, Any]:
    """A gun's fill request over the broker at *url* (``mqtt://host:port``), as the gun sends
    it (with its own credentials on a secured broker), and the platform's reply."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    request: dict[str, Any] = {"msg_id": mid(), "ts": now_ms(), "tag": tag}
    if operator is not None:
        request["operator"] = operator
    async with aiomqtt.Client(
        host, int(port), username=username, password=password, protocol=aiomqtt.ProtocolVersion.V5
    ) as device:
        await device.subscribe(f"cyl/v1/gun/{gun_id}/auth/reply", 1)
        await device.publish(f"cyl/v1/gun/{gun_id}/auth", orjson.dumps(request), qos=1)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            async for message in device.messages:
                reply = orjson.loads(message.payload)
                if reply.get("msg_id") == request["msg_id"]:
                    return dict(reply)
    raise AssertionError("no reply")  # pragma: no cover - the loop returns or times out


@contextlib.asynccontextmanager
async def answering_guns(settings: Any, pool: asyncpg.Pool, name: str) -> AsyncIterator[str]:
    """A private anonymous broker and an ingest worker on the session database, answering
    guns; yields the broker's URL. *name* keeps this worker's MQTT group and client ids apart
    from other tests' workers."""
    broker = Mosquitto()
    broker.start()
    token = secrets.token_hex(3)
    ingest = msgspec.structs.replace(
        settings.ingest,
        shared_group=f"{name}{token}",
        client_id_prefix=f"{name}-{token}",
        housekeeping_interval_s=3600.0,  # no periodic rule runs on the shared database
        batch_max_ms=50,
    )
    try:
        async with running_worker(
            msgspec.structs.replace(settings, ingest=ingest), pool, mqtt_url=broker.url
        ):
            yield broker.url
    finally:
        broker.close()


def start_secure_broker(tls: dict[str, Path] | None = None) -> tuple[Mosquitto, str]:
    """A private broker with the shipped authentication (and TLS, given *tls*), its
    dynamic-security file made with the platform's admin client as an operator would
    (``mosquitto_ctrl dynsec init``); returns the broker and the admin's password."""
    broker = Mosquitto(secure=True, tls=tls)
    admin_password = secrets.token_urlsafe(12)
    subprocess.run(
        ["mosquitto_ctrl", "dynsec", "init", str(broker.dynsec_file), ADMIN, admin_password],
        check=True,
        capture_output=True,
    )
    broker.dynsec_file.chmod(0o666)  # the broker (its own user) saves every change into it
    broker.start()
    return broker, admin_password


async def refused(client: aiomqtt.Client) -> bool:
    """Whether the broker refuses *client*'s connection."""
    try:
        async with client:
            return False
    except aiomqtt.MqttError:
        return True


async def closed_within(client: aiomqtt.Client, own_topic: str, deadline: float) -> bool:
    """Whether the broker has closed *client*'s connection by *deadline* (monotonic): a
    publish on a closed connection fails at once (qos 0: nothing is queued)."""
    while time.monotonic() < deadline:
        try:
            await client.publish(own_topic, b'{"online": true}', qos=0)
        except aiomqtt.MqttError:
            return True
        await asyncio.sleep(0.02)
    return False
