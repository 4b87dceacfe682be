"""One chaos run: the private services, the city's traffic, one fault at a time, the checks.

Each fault runs in its own round on the same services: steady traffic for ``warmup_s``, the
fault, steady traffic until ``duration_s`` is over, then a drain; the round's outcome is
what docs/RELIABILITY.md "Chaos runs" tabulates:

- *acked / stored / lost / duplicated*: of the messages the broker acknowledged, how many
  are stored, how many are missing, how many more rows than messages (by ``msg_id`` in the
  table of the message's kind) — the promise of docs/ARCHITECTURE.md §10 is lost = dup = 0;
- *auth gap*: the longest stretch around the fault in which fill-authorization requests
  waited and no answer arrived, and *auth resumed*: from the fault's end (the kill, the
  broker's or the database's return) to the end of that stretch (0 when answers never
  stopped past the fault's end);
- *unanswered*: authorization requests never answered (a gun retries; it is not a loss of
  data, but a fill that waited).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import asyncpg

from device_sim.world import City
from server.chaos.checks import alert_counts, alert_differences, plan, stored_counts
from server.chaos.faults import FAULTS, LOSSY, Services
from server.chaos.load import AuthProbe, BusProbe, SteadyPublisher
from server.chaos.services import (
    IngestProcess,
    PrivateMosquitto,
    PrivatePostgres,
    PrivateRedis,
    first_start,
)

__all__ = ["FAULTS", "ChaosConfig", "Outcome", "format_table", "run_chaos"]

log = logging.getLogger(__name__)

DB_NAME_PREFIX: Final = "cylwatch_scratch_chaos_"
SETTLE_S: Final = 1.0
"""After everything is stored, how long to wait for a late duplicate (and for the answer to
the last authorization request) before counting."""
STALL_S: Final = 40.0
"""After a fault that may lose messages, the drain ends when nothing more is stored for this
long: longer than the workers' longest reconnect back-off as shipped (``[ingest]
reconnect_max_s``, 30 s), so a worker still waiting to reconnect is not taken for a loss."""
READY_TIMEOUT_S: Final = 60.0
"""How long `cylwatch ingest` may take to subscribe (a spawned interpreter, a cold cache)."""
SMALL_CITY: Final = {"companies": 3, "stations": 4, "stores": 4, "customers": 40, "vehicles": 6}
"""The seeded city around the cylinders: every device kind of the mix present (guns at
licensed stations, handhelds at stores, vehicles), seeded in seconds; the load's size is
the rate, not the city."""
QUIET_GAPS: Final = 5
"""A stretch without answers up to this many request intervals is scheduling noise on a
loaded machine (a gap of 0.1–0.3 s at rest), not an outage."""
AUTH_READY_TEXT: Final = "-auth subscribed"
BATCH_READY_TEXT: Final = "subscribed to $share"


@dataclass
class ChaosConfig:
    """What to run; the defaults are the documented run of docs/RELIABILITY.md."""

    faults: list[str] = field(default_factory=lambda: list(FAULTS))
    rate: float = 300.0
    """Messages per second of the simulator's mix (a few hundred: a busy district)."""
    duration_s: float = 60.0
    """Traffic per round, fault included."""
    warmup_s: float = 10.0
    """Steady traffic before the fault."""
    fault_s: float = 30.0
    """How long a fault with a length lasts (a paused database)."""
    drain_timeout_s: float = 120.0
    """How long after the traffic every acknowledged message may take to be stored."""
    auth_interval_s: float = 0.1
    """A gun asks this often: answer gaps are measured to this resolution."""
    leaks_per_s: float = 1.0
    """Leaking valves a second, each a ``leak`` alert to be counted once."""
    workers: int = 1
    cylinders: int = 500
    """The seeded city's cylinders: enough distinct valves for a round's leaks; a small city
    seeds in seconds (the rest of it: ``SMALL_CITY``)."""
    autosave_interval: int | None = None
    """The broker's autosave (None: config/mosquitto.conf's own, the production value)."""
    mosquitto: str | None = None
    """The broker program (None: ``mosquitto`` on PATH)."""
    ingest_reconnect_s: tuple[float, float] | None = None
    """The workers' MQTT/PostgreSQL reconnect back-off (min, max); None: ``[ingest]
    reconnect_min_s`` / ``reconnect_max_s`` as shipped."""
    seed: int = 7
    keep_logs: Path | None = None


@dataclass
class Outcome:
    fault: str
    sent: int
    acked: int
    stored: int
    lost: int
    duplicated: int
    dead_letters: int
    leaks: int
    """Leak messages acknowledged (each one rise of a ``leak`` alert's count)."""
    alerts_lost: int
    alerts_doubled: int
    auth_gap_s: float | None
    auth_resumed_s: float | None
    live_resumed_s: float | None
    """From the fault's end to the first live event on the Redis bus (what every server
    process forwards to the dashboards); None if none came."""
    auth_sent: int
    auth_unanswered: int
    drain_s: float
    note: str = ""
    loss_bound: int = 0
    """Losses the fault may cause by design: a broker crash loses what it accepted since its
    last autosave (config/mosquitto.conf), at most rate × (``autosave_interval`` + 1 s)
    messages: Mosquitto counts whole seconds and saves once *more* than the interval has
    passed (src/loop.c, ``last_backup + autosave_interval < now``), so every interval + 1 s."""

    @property
    def ok(self) -> bool:
        return (
            self.lost <= self.loss_bound
            and self.alerts_lost <= self.loss_bound
            and self.duplicated == self.alerts_doubled == 0
            and self.auth_resumed_s is not None
            and self.live_resumed_s is not None
        )


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _round(name: str, cfg: ChaosConfig, s: Services, city: City, round_no: int) -> Outcome:
    token = secrets.token_hex(3)
    traffic = plan(city, cfg.rate, cfg.duration_s, cfg.leaks_per_s, cfg.seed + round_no)
    pub = SteadyPublisher(s.broker.port, traffic.messages, cfg.rate, f"chaos-dev-{token}")
    gun, tag = _auth_target(city)
    probe = AuthProbe(s.broker.port, gun, tag, cfg.auth_interval_s, f"chaos-gun-{token}")
    dead_before = await _count(s.dsn, "SELECT count(*) FROM dead_letters")
    alerts_before = await alert_counts(s.dsn)
    bus = BusProbe(s.redis.url, s.bus_channel)
    bus.start()
    pub.start()
    probe.start()
    try:
        await asyncio.sleep(cfg.warmup_s)
        log.info("chaos: %s", name)
        fault_start = time.monotonic()
        note = await FAULTS[name](s)
        fault_end = time.monotonic()
        await asyncio.to_thread(pub.wait_acks, cfg.duration_s + cfg.drain_timeout_s)
        t_drain = time.monotonic()
        deadline = t_drain + cfg.drain_timeout_s
        stored, extra = 0, 0
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                before = stored
                stored, extra = await stored_counts(s.dsn, pub.acked, traffic.kinds)
                if stored >= len(pub.acked):
                    break
                if stored != before:
                    last_change = time.monotonic()
                elif name in LOSSY and time.monotonic() - last_change > STALL_S:
                    break  # what the crash lost will not come
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - t_drain
        probe.stop_asking()
        await asyncio.sleep(SETTLE_S)
        stored, extra = await stored_counts(s.dsn, pub.acked, traffic.kinds)
        gap = probe.longest_gap(fault_start)
        live = bus.first_after(fault_end)
    finally:
        probe.stop()
        pub.stop()
        bus.stop()
    dead = await _count(s.dsn, "SELECT count(*) FROM dead_letters") - dead_before
    alerts_lost, alerts_doubled = alert_differences(
        alerts_before, await alert_counts(s.dsn), traffic, pub.acked, pub.sent
    )
    auth_sent, auth_answered = probe.counts()
    return Outcome(
        fault=name,
        sent=pub.sent,
        acked=len(pub.acked),
        stored=stored,
        lost=len(pub.acked) - stored,
        duplicated=extra,
        dead_letters=dead,
        leaks=sum(1 for mid in traffic.leaks if mid in pub.acked),
        alerts_lost=alerts_lost,
        alerts_doubled=alerts_doubled,
        auth_gap_s=None if gap is None else gap[1] - gap[0],
        auth_resumed_s=_resumed(gap, fault_end, cfg.auth_interval_s),
        live_resumed_s=None if live is None else live - fault_end,
        auth_sent=auth_sent,
        auth_unanswered=auth_sent - auth_answered,
        drain_s=drain_s,
        note=note,
        loss_bound=int(cfg.rate * (s.broker.autosave_interval + 1)) if name in LOSSY else 0,
    )


def _resumed(gap: tuple[float, float] | None, fault_end: float, interval: float) -> float | None:
    """From the fault's end to the end of the longest answer gap; 0 when answers never
    stopped (the longest gap no longer than ``QUIET_GAPS`` request intervals)."""
    if gap is None:
        return None
    if gap[1] - gap[0] <= QUIET_GAPS * interval:
        return 0.0
    return max(0.0, gap[1] - fault_end)


def _auth_target(city: City) -> tuple[str, str]:
    """A gun at a licensed station and a cylinder of that station's company."""
    guns = [g for g in city.guns if g.site_code]
    stations = {st.code: st for st in city.stations}
    gun = guns[0]
    own = city.cylinders_of(stations[gun.site_code or ""].company_id)
    tag = (own or city.legal)[0].tag
    return str(gun.device_id), str(tag)


def _ingest_env(
    dsn: str, mqtt_url: str, redis_url: str, token: str, cfg: ChaosConfig
) -> dict[str, str]:
    """`cylwatch ingest`'s environment: the private services, its own MQTT group and client
    ids, its own Redis channel (the machine's Redis carries other work's live events); the
    reconnect back-off of config/default.toml unless ``cfg`` sets one."""
    env = {
        **os.environ,
        "CYL_DATABASE_URL": dsn,
        "CYL_MQTT_URL": mqtt_url,
        "CYL_REDIS_URL": redis_url,
        "CYL_REALTIME__REDIS_CHANNEL": f"cylwatch:chaos:{token}",
        "CYL_INGEST__SHARED_GROUP": f"chaos{token}",
        "CYL_INGEST__CLIENT_ID_PREFIX": f"chaos-{token}",
        "CYL_INGEST__HOUSEKEEPING_INTERVAL_S": "3600",
    }
    if cfg.ingest_reconnect_s is not None:
        low, high = cfg.ingest_reconnect_s
        env["CYL_INGEST__RECONNECT_MIN_S"] = str(low)
        env["CYL_INGEST__RECONNECT_MAX_S"] = str(high)
    return env


async def _prepare_database(pg: PrivatePostgres, name: str, cfg: ChaosConfig) -> City:
    """A migrated database in the private cluster with a small seeded city; the simulator's
    view of it."""
    from device_sim.world import load_city
    from server.db.migrate import migrate
    from server.kernel.clock import city_today
    from server.kernel.settings import load_settings
    from server.seed import seed_city

    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = pg.dsn(name)
    settings = load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})
    await migrate(settings, dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await seed_city(
            conn,
            settings,
            cylinders=cfg.cylinders,
            companies=SMALL_CITY["companies"],
            stations=SMALL_CITY["stations"],
            stores=SMALL_CITY["stores"],
            customers=SMALL_CITY["customers"],
            vehicles=SMALL_CITY["vehicles"],
            random_seed=cfg.seed,
            history_months=0,
            progress=False,
        )
        return await load_city(
            conn,
            today=city_today(settings),
            legal_cap=cfg.cylinders,
            illegal_cap=0,
            customers_cap=SMALL_CITY["customers"],
            seed=cfg.seed,
        )
    finally:
        await conn.close()


async def run_chaos(cfg: ChaosConfig, out: Callable[[str], None] = print) -> list[Outcome]:
    """Start the private services, run one round per fault, remove everything."""
    unknown = [f for f in cfg.faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    token = secrets.token_hex(3)
    pg = PrivatePostgres()
    broker = PrivateMosquitto(cfg.autosave_interval, cfg.mosquitto)
    redis = PrivateRedis()
    logs = cfg.keep_logs or pg.dir
    ingest: IngestProcess | None = None
    outcomes: list[Outcome] = []
    try:
        t0 = time.monotonic()
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(first_start, pg)
        name = f"{DB_NAME_PREFIX}{token}"
        city = await _prepare_database(pg, name, cfg)
        await asyncio.to_thread(first_start, broker)
        await asyncio.to_thread(first_start, redis)
        ingest = IngestProcess(
            _ingest_env(pg.dsn(name), broker.url, redis.url, token, cfg),
            cfg.workers,
            Path(logs) / "ingest.log",
        )
        ingest.start()
        # realtime.bridge: the configured channel + ":" + the database's name
        channel = f"cylwatch:chaos:{token}:{name}"
        s = Services(pg, broker, ingest, pg.dsn(name), cfg.fault_s, redis, channel)
        await asyncio.to_thread(ingest.wait_log, AUTH_READY_TEXT, cfg.workers, READY_TIMEOUT_S)
        await asyncio.to_thread(ingest.wait_log, BATCH_READY_TEXT, cfg.workers, READY_TIMEOUT_S)
        out(
            f"chaos: services ready in {time.monotonic() - t0:.1f} s "
            f"(PostgreSQL :{pg.port}, {broker.version()} :{broker.port}, "
            f"{cfg.workers} ingest worker(s))"
        )
        for i, name_ in enumerate(cfg.faults):
            outcome = await _round(name_, cfg, s, city, i)
            outcomes.append(outcome)
            out(format_row(outcome))
    finally:
        if ingest is not None:
            ingest.stop()
            if cfg.keep_logs:
                (Path(cfg.keep_logs) / "mosquitto.log").write_bytes(
                    broker.log.read_bytes() if broker.log.exists() else b""
                )
        broker.close()
        redis.close()
        pg.close()
    return outcomes


HEADER: Final = (
    "| fault | outcome | auth gap | auth resumed after | live resumed after | sent | acked | "
    "stored | lost | dup | "
    "leaks / alerts lost / doubled | auth unanswered | drain | note |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def format_row(o: Outcome) -> str:
    gap = "never answered" if o.auth_gap_s is None else f"{o.auth_gap_s:.2f} s"
    rec = "never" if o.auth_resumed_s is None else f"{o.auth_resumed_s:.2f} s"
    live = "never" if o.live_resumed_s is None else f"{o.live_resumed_s:.2f} s"
    verdict = "ok" if o.ok else "FAIL"
    if o.loss_bound:
        verdict += f" (may lose ≤ {o.loss_bound})"
    return (
        f"| {o.fault} | {verdict} | {gap} | {rec} | {live} | {o.sent} | {o.acked} | {o.stored} | {o.lost} | "
        f"{o.duplicated} | {o.leaks} / {o.alerts_lost} / {o.alerts_doubled} | {o.auth_unanswered}/{o.auth_sent} | {o.drain_s:.1f} s | {o.note} |"
    )


def format_table(outcomes: list[Outcome]) -> str:
    return "\n".join([HEADER, *(format_row(o) for o in outcomes)])
