"""Fixtures for the ingest tests: a scratch database per module, a seeded little city, and
helpers to run workers and brokers.

Each test module gets its own database (created with the real migrations, dropped after),
its own MQTT shared-subscription group and client-id prefix, so modules cannot see each
other's messages or sessions on the machine's broker. Tests that kill or restart a broker
start their own Mosquitto on a spare port with ``config/mosquitto.conf``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import asyncpg
import orjson
import pytest

from tests.conftest import ADMIN_DSN

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO_CONF = ROOT / "config" / "mosquitto.conf"

# Two districts as simple squares (lon/lat), like the platform tests' world.
DISTRICTS = {
    "410105": (
        "金水区",
        [[113.60, 34.75], [113.70, 34.75], [113.70, 34.85], [113.60, 34.85], [113.60, 34.75]],
    ),
    "410103": (
        "二七区",
        [[113.60, 34.65], [113.70, 34.65], [113.70, 34.75], [113.60, 34.75], [113.60, 34.65]],
    ),
}
INSIDE = (34.80, 113.65)  # 金水区
INSIDE_2 = (34.70, 113.65)  # 二七区
OUTSIDE = (31.23, 121.47)  # Shanghai: outside the city


def now_ms() -> int:
    return int(time.time() * 1000)


def mid() -> str:
    return str(uuid.uuid4())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    companies: dict[str, int] = field(default_factory=dict)
    sites: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    cylinders: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    today: dt.date = field(default_factory=dt.date.today)


@dataclass
class Env:
    settings: Any
    dsn: str
    db_name: str
    pool: asyncpg.Pool
    world: World
    token: str
    env: dict[str, str]
    broker: Mosquitto

    @property
    def mqtt_url(self) -> str:
        return str(self.settings.services.mqtt_url)

    def with_mqtt(self, url: str, **ingest: Any) -> Any:
        """These settings with another broker URL (and [ingest] overrides)."""
        from server.kernel.settings import load_settings

        env = dict(self.env)
        env["CYL_MQTT_URL"] = url
        for key, value in ingest.items():
            env[f"CYL_INGEST__{key.upper()}"] = str(value)
        return load_settings(environ=env)


async def seed_world(conn: asyncpg.Connection) -> World:
    """Companies A, B, C; a licensed station of A with a gun, an unlicensed one, a store,
    a handheld, a vehicle, a customer, and cylinders in every state the rules care about."""
    w = World()
    today = w.today
    for code, (name, ring) in DISTRICTS.items():
        await conn.execute(
            "INSERT INTO districts (code, name, boundary) VALUES ($1, $2, $3)",
            code,
            name,
            {"type": "Polygon", "coordinates": [ring]},
        )
    for key, district in (("A", "410105"), ("B", "410103"), ("C", "410105")):
        w.companies[key] = await conn.fetchval(
            """INSERT INTO companies (code, name, district_code, licence_no, licence_expiry)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            f"CO-{key}",
            f"燃气{key}公司",
            district,
            f"LIC-{key}",
            today + dt.timedelta(days=400),
        )
    for code, kind, comp, district, lat, expiry, storage in (
        ("STA-A1", "filling_station", "A", "410105", 34.80, today + dt.timedelta(days=300), None),
        ("STA-AX", "filling_station", "A", "410105", 34.81, today - dt.timedelta(days=1), None),
        ("STA-B1", "filling_station", "B", "410103", 34.70, today + dt.timedelta(days=300), None),
        ("STORE-A1", "store", "A", "410105", 34.79, None, 2),
    ):
        w.sites[code] = await conn.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon,
                                  licence_no, licence_expiry, permitted_full_storage)
               VALUES ($1, $2, $3, $4, $5, $6, 113.65, $7, $8, $9) RETURNING id""",
            code,
            f"站点{code}",
            kind,
            w.companies[comp],
            district,
            lat,
            f"FL-{code}" if expiry else None,
            expiry,
            storage,
        )
    w.customers["CUST-A1"] = await conn.fetchval(
        """INSERT INTO customers (company_id, account_no, name, district_code, lat, lon)
           VALUES ($1, 'CUST-A1', '客户甲', '410103', 34.70, 113.65) RETURNING id""",
        w.companies["A"],
    )
    for device_id, kind, comp, site, active in (
        ("GUN-A1", "gun", "A", "STA-A1", True),
        ("GUN-AX", "gun", "A", "STA-AX", True),
        ("GUN-B1", "gun", "B", "STA-B1", True),
        ("GUN-OFF", "gun", "A", "STA-A1", False),
        ("HH-A1", "handheld", "A", "STORE-A1", True),
        ("VEH-A1", "vehicle", "A", None, True),
    ):
        w.devices[device_id] = await conn.fetchval(
            """INSERT INTO devices (device_id, kind, company_id, site_id, active)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            device_id,
            kind,
            w.companies[comp],
            w.sites.get(site or ""),
            active,
        )
    await conn.execute(
        """INSERT INTO entrustments (owner_company_id, filler_company_id, valid_from)
           VALUES ($1, $2, $3)""",
        w.companies["C"],
        w.companies["A"],
        today - dt.timedelta(days=10),
    )
    cylinders = [(f"TAG-A{i}", "A", "in_service", 500) for i in range(1, 21)]
    cylinders += [
        ("TAG-A-OVERDUE", "A", "in_service", -1),
        ("TAG-A-SCRAPPED", "A", "scrapped", 500),
        ("TAG-B1", "B", "in_service", 500),
        ("TAG-C1", "C", "in_service", 500),
    ]
    for tag, comp, status, days in cylinders:
        w.cylinders[tag] = await conn.fetchval(
            """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l,
                   tare_kg,
                   manufacture_date, next_inspection_date, scrap_date, status, district_code,
                   location_site_id)
               VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, $5, $6, $7, $8, '410105', $9)
               RETURNING id""",
            tag,
            f"ST-{tag}",
            f"BC-{tag}",
            w.companies[comp],
            today - dt.timedelta(days=3 * 365),
            today + dt.timedelta(days=days),
            today + dt.timedelta(days=5 * 365),
            status,
            w.sites["STA-A1"],
        )
    return w


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def env(fresh_databases: Any) -> AsyncIterator[Env]:
    """A migrated scratch database with the world seeded, a private broker (the machine's
    one carries other engineers' traffic), and settings pointing at both."""
    from server.db.pool import create_pool
    from server.kernel.settings import load_settings

    token = secrets.token_hex(3)
    name = f"cylwatch_ingest_{os.getpid()}_{token}"
    dsn = urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()
    broker = Mosquitto()
    broker.start()
    environ = dict(os.environ)
    environ.update(
        {
            "CYL_DATABASE_URL": dsn,
            "CYL_MQTT_URL": broker.url,
            "CYL_INGEST__SHARED_GROUP": f"test{token}",
            "CYL_INGEST__CLIENT_ID_PREFIX": f"test-{token}",
            # sessions of stopped test workers must not linger on the machine's broker
            "CYL_INGEST__SESSION_EXPIRY_S": "300",
            "CYL_INGEST__BATCH_MAX_MS": "50",
            "CYL_INGEST__HOUSEKEEPING_INTERVAL_S": "3600",
            "CYL_INGEST__RECONNECT_MIN_S": "0.2",
            "CYL_INGEST__RECONNECT_MAX_S": "2",
        }
    )
    settings = load_settings(environ=environ)
    await fresh_databases.create(name)
    pool = await create_pool(settings, dsn=dsn)
    try:
        async with pool.acquire() as conn, conn.transaction():
            world = await seed_world(conn)
        yield Env(settings, dsn, name, pool, world, token, environ, broker)
    finally:
        await pool.close()
        await _drop_database(name)
        broker.close()


# ----------------------------------------------------------------------------- workers


@contextlib.asynccontextmanager
async def running_worker(
    settings: Any, pool: asyncpg.Pool, bus: Any = None, **kwargs: Any
) -> AsyncIterator[Any]:
    """An in-process IngestWorker, subscribed, stopped (commit + ack) on exit."""
    from ingest.worker import IngestWorker
    from realtime.bus import EventBus

    worker = IngestWorker(settings, pool, bus if bus is not None else EventBus(), **kwargs)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 15)
        yield worker
    finally:
        await worker.stop()
        await asyncio.wait_for(task, 30)


async def publish(
    url: str,
    messages: list[tuple[str, Any]],
    *,
    qos: int = 1,
    properties: Any = None,
    client_id: str | None = None,
) -> None:
    """Publish (topic, payload) pairs; dict payloads are JSON-encoded, bytes sent as they are."""
    from ingest.transport import parse_mqtt_url

    addr = parse_mqtt_url(url)
    async with aiomqtt.Client(
        addr.host,
        addr.port,
        username=addr.username,
        password=addr.password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=1000,
    ) as client:
        client.pending_calls_threshold = 100_000  # a burst is the point here
        pending = []
        for topic, payload in messages:
            body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            pending.append(client.publish(topic, body, qos=qos, properties=properties))
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)


async def eventually(
    check: Callable[[], Awaitable[Any]],
    timeout: float = 20.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    interval: float = 0.1,
) -> Any:
    """Poll *check* until it returns a truthy value; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last = exc  # a service restarting under the test: poll again
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


# ----------------------------------------------------------------------------- brokers


TLS_KEYS = frozenset({"cafile", "certfile", "keyfile", "tls_version"})
"""Settings of config/mosquitto.conf's TLS listener."""
SECURITY_KEYS = frozenset({"allow_anonymous", "plugin", "plugin_opt_config_file"})
"""Its authentication: the dynamic-security plugin, no anonymous client."""


class Mosquitto:
    """A private Mosquitto on a spare port: config/mosquitto.conf with persistence in a
    temp dir (so it can be restarted without losing queued messages).

    By default open to anonymous clients like the machine's broker: the shipped plugin
    lines and the TLS listener are left out (*extra* may add other security settings).
    ``secure=True`` keeps the production authentication, its dynamic-security file in the
    temp dir (:attr:`dynsec_file`, to be created before :meth:`start`), and, given *tls*
    (cafile/certfile/keyfile paths), the TLS listener on a second spare port
    (:attr:`tls_port`)."""

    def __init__(
        self,
        extra: str = "",
        *,
        port: int | None = None,
        secure: bool = False,
        tls: dict[str, Path] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.tls_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cyl-mosq-"))
        os.chmod(self.dir, 0o777)  # mosquitto drops root privileges to its own user
        self.conf = self.dir / "mosquitto.conf"
        self.dynsec_file = self.dir / "dynamic-security.json"
        lines = []
        listeners = 0
        for line in MOSQUITTO_CONF.read_text().splitlines():
            key = line.split(" ", 1)[0]
            if key == "listener":
                listeners += 1
                if listeners > 1 and tls is None:
                    continue
                line = f"listener {self.port if listeners == 1 else self.tls_port} 127.0.0.1"
            elif key in TLS_KEYS:
                if tls is None:
                    continue
                line = f"{key} {tls[key]}" if key in tls else line
            elif key in SECURITY_KEYS and (not secure or key in extra):
                continue
            elif key == "plugin_opt_config_file":
                line = f"{key} {self.dynsec_file}"
            elif key == "persistence_location":
                line = f"persistence_location {self.dir}/"
            elif key == "autosave_interval":
                line = "autosave_interval 1"
            lines.append(line)
        if not secure and "allow_anonymous" not in extra:
            extra = "allow_anonymous true\n" + extra
        self.conf.write_text("\n".join(lines) + "\n" + extra + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a graceful restart (state saved); SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


async def count(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    return int(await pool.fetchval(sql, *args) or 0)
