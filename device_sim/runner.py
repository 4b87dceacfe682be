"""Drives a :class:`~device_sim.behaviour.CitySim` over real MQTT connections.

A real city has one connection per device; a simulator of thousands of devices spreads
them over a few connections (``--connections``), each device always on the same one
(hash of its id) so per-device order holds. MQTT v5, QoS 1 except vehicle positions
(QoS 0, docs/ARCHITECTURE.md §5). Each connection carries a last will — retained ``online: false`` on
the status topic of the first device it serves — the closest a shared connection can
come to a device's own will; simulated per-device outages publish the same retained
status explicitly.

Pacing is a token bucket over wall time: every tick the simulator is asked for
``rate × elapsed − sent`` messages. Publishes are issued without waiting for each PUBACK
(bounded by :data:`MAX_IN_FLIGHT`), so a slow acknowledgement lowers the achieved rate,
which the report shows, instead of silently shifting the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from server.kernel.clock import city_today

from .behaviour import CitySim
from .config import Rules, SimConfig
from .payloads import Outgoing, status_msg
from .report import progress_line, render_summary
from .stats import SimStats
from .world import City, load_city

__all__ = ["MAX_IN_FLIGHT", "REPLY_TOPIC", "SimResult", "load_city_from_db", "run_sim"]

log = logging.getLogger(__name__)

REPLY_TOPIC = "cyl/v1/gun/+/auth/reply"
MAX_IN_FLIGHT = 5000
"""Publishes awaiting their PUBACK before the pacer waits."""
TICK_S = 0.01
"""Pacer resolution: 10 ms keeps bursts small at any rate a 2-core machine can feed."""
DRAIN_S = 2.0
"""At the end, how long to wait for replies still in flight."""


@dataclass
class SimResult:
    stats: SimStats
    elapsed_s: float


def _broker(url: str) -> tuple[str, int, str | None, str | None]:
    p = urlsplit(url)
    if p.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"the simulator speaks plain MQTT (mqtt://host:port), not {p.scheme}://")
    return (
        p.hostname or "127.0.0.1",
        p.port or 1883,
        unquote(p.username) if p.username else None,
        unquote(p.password) if p.password else None,
    )


async def load_city_from_db(settings: Any, cfg: SimConfig, dsn: str | None = None) -> City:
    import asyncpg

    from server.kernel.services import ServiceUnavailable

    url = dsn or settings.services.database_url
    try:
        conn = await asyncpg.connect(url, timeout=settings.services.connect_timeout_s)
    except (TimeoutError, OSError) as exc:
        raise ServiceUnavailable("PostgreSQL", url, str(exc) or type(exc).__name__) from None
    try:
        return await load_city(
            conn,
            today=city_today(settings),
            stations=cfg.stations,
            legal_cap=cfg.legal_cap,
            illegal_cap=cfg.illegal_cap,
            customers_cap=cfg.customers_cap,
            seed=cfg.seed,
        )
    finally:
        await conn.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _lead_devices(city: City, n: int) -> list[tuple[str, str] | None]:
    leads: list[tuple[str, str] | None] = [None] * n
    for d in (*city.guns, *city.handhelds, *city.vehicles):
        i = zlib.crc32(f"{d.kind}/{d.device_id}".encode()) % n
        if leads[i] is None:
            leads[i] = (d.kind, d.device_id)
    return leads


async def run_sim(
    settings: Any,
    cfg: SimConfig,
    *,
    city: City | None = None,
    mqtt_url: str | None = None,
    out: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    client_prefix: str = "cylwatch-sim",
) -> SimResult:
    """Run the simulated city for ``cfg.duration`` seconds (or until *stop* is set)."""
    from server.kernel.services import ServiceUnavailable

    if city is None:
        city = await load_city_from_db(settings, cfg)
    if not city.stations and not city.legal:
        raise RuntimeError("the database holds no city to simulate: run `cylwatch seed` first")
    url = mqtt_url or settings.services.mqtt_url
    host, port, user, password = _broker(url)
    sim = CitySim(city, cfg, Rules.from_settings(settings), start_ms=_now_ms())
    n_conn = max(1, cfg.connections)
    leads = _lead_devices(city, n_conn)
    stack = contextlib.AsyncExitStack()
    clients: list[aiomqtt.Client] = []
    run_id = f"{_now_ms() % 1_000_000_000:x}"
    try:
        for i in range(n_conn):
            lead = leads[i]
            will = None
            if lead is not None:
                w = status_msg(lead[0], lead[1], False, _now_ms())
                will = aiomqtt.Will(w.topic, w.payload, qos=1, retain=True)
            client = aiomqtt.Client(
                host,
                port,
                username=user,
                password=password,
                identifier=f"{client_prefix}-{run_id}-{i}",
                protocol=aiomqtt.ProtocolVersion.V5,
                will=will,
                keepalive=30,
                max_inflight_messages=MAX_IN_FLIGHT,
                timeout=settings.services.connect_timeout_s,
            )
            # a simulated city has thousands of QoS 1 publishes in flight by design (the
            # retained statuses at start-up alone); aiomqtt's warning above 10 is noise here
            client.pending_calls_threshold = MAX_IN_FLIGHT * 4
            try:
                await stack.enter_async_context(client)
            except aiomqtt.MqttError as exc:
                raise ServiceUnavailable("Mosquitto", url, str(exc)) from None
            clients.append(client)
        await clients[0].subscribe(REPLY_TOPIC, qos=1)
        return await _drive(sim, cfg, clients, out, stop)
    finally:
        await stack.aclose()


async def _drive(
    sim: CitySim,
    cfg: SimConfig,
    clients: list[aiomqtt.Client],
    out: Callable[[str], None],
    stop: asyncio.Event | None,
) -> SimResult:
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []

    async def publish(m: Outgoing) -> None:
        client = clients[zlib.crc32(m.device.encode()) % len(clients)]
        try:
            await client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
        except aiomqtt.MqttError as exc:
            errors.append(exc)
        finally:
            in_flight.release()

    async def send(batch: list[Outgoing]) -> None:
        for m in batch:
            await in_flight.acquire()
            if m.kind == "auth" and m.label == "":
                sim.mark_sent(m.msg_id, time.time_ns() / 1e6)
            t = asyncio.create_task(publish(m))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    async def read_replies() -> None:
        async for msg in clients[0].messages:
            payload = msg.payload
            if isinstance(payload, bytes | bytearray):
                sim.on_reply(time.time_ns() / 1e6, bytes(payload))

    reader = asyncio.create_task(read_replies())
    t0 = time.monotonic()
    await send(sim.devices_online(_now_ms()))
    base = sim.stats.total
    next_report = t0 + cfg.report_every
    try:
        while True:
            now = time.monotonic()
            elapsed = now - t0
            if cfg.duration > 0 and elapsed >= cfg.duration:
                break
            if stop is not None and stop.is_set():
                break
            due = int(cfg.rate * elapsed) - (sim.stats.total - base)
            if due > 0:
                await send(sim.produce(_now_ms(), due))
            if errors:
                raise errors[0]
            if cfg.report_every > 0 and now >= next_report:
                out(progress_line(sim.stats, elapsed, sim.pending_auths))
                next_report += cfg.report_every
            await asyncio.sleep(TICK_S)
        if tasks:
            await asyncio.wait(list(tasks), timeout=10)
        deadline = time.monotonic() + min(DRAIN_S, cfg.auth_timeout)
        while sim.pending_auths and time.monotonic() < deadline:  # noqa: ASYNC110 - replies
            await asyncio.sleep(0.05)  # arrive on the reader task; polling keeps it simple
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await reader
    elapsed = time.monotonic() - t0
    sim.stats.auth_lost += sim.pending_auths
    render_summary(sim.stats, elapsed, out)
    return SimResult(sim.stats, elapsed)
