#!/usr/bin/env python3
"""End to end (issue 14 item 4; docs/ARCHITECTURE.md §10: alert p99 ≤ 250 ms from the device's
publish to a websocket client's frame).

Everything real, on 127.0.0.1, bounded in time:

1. the bench city's database (default ``cylwatch_bench_ingest``, 100,000 cylinders; seeded by
   ``bench/ingest.py``'s helper when empty) with an admin user for the clients;
2. a private Mosquitto; ``cylwatch ingest --workers 1`` (its worker, reply process and Redis
   bridge, as deployed); ``cylwatch serve --no-ingest`` on a private Redis channel;
3. ``--clients`` websockets (in ``--client-procs`` processes) subscribed to ``positions``
   (city-wide) and ``alerts``. Every client times alert frames; the first
   ``--timed-clients`` also parse and time position frames (the rest only count them, so the
   bench's own parsing does not crowd the machine);
4. a device process publishing the city's everyday mix (``device_sim.loadgen.generate_mix``:
   telemetry 70 %, positions 15 %, scans 10 %, fills 5 %) at ``--rate`` messages/s plus
   ``--leak-rate`` leaking valves/s (each a ``leak`` alert), QoS 1, every message stamped with
   its publish time as its device ``ts`` (same machine clock as the clients);
5. meanwhile a poller looks, every ``POLL_S``, for one message in ``SAMPLE_EVERY`` (telemetry
   and positions) in PostgreSQL: publish → committed row, to within the poll period.

Latencies: alert = frame received − the alert's ``last_at`` (the leaking message's ``ts``);
position = frame received − the fix's ``ts`` (includes the hub's 250 ms coalescing, docs/
ARCHITECTURE.md §6); committed = first seen by the poller − published.

Run ``python bench/e2e.py [--rate N] [--record]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import os
import queue
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Final

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]


def _bench_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = module
    spec.loader.exec_module(module)
    return module


wsf = _bench_module("ws_fanout")  # server start, login, admin user
bi = _bench_module("ingest")  # ensure_city, pg_version, record

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench_ingest"
MARK = "cylwatch-bench:e2e"
TARGET_ALERT_P99_MS = 250.0
TICK_S: Final = 0.02
"""The device process publishes what is due every 20 ms: steady at the scale of a batch."""
SAMPLE_EVERY: Final = 20
"""One telemetry or position message in 20 is followed to its committed row."""
POLL_S: Final = 0.05
"""The committed-row poller's period: the figure is exact to within it."""
LEAK_PPM: Final = 5000.0
WATCH_S: Final = 0.25
"""How often the bench looks at its server's Redis subscriber connection."""
SUBSCRIBE_WAIT_S: Final = 180.0
"""The devices start once every client has its subscriptions, or after this long."""
LISTEN_AFTER_S: Final = 240.0
"""Clients keep listening until the chain has drained (`_drain`), at most this long after the
planned end of publishing, so a late frame is counted late rather than missing (loaded runs
had alerts 7–80 s behind)."""
DRAIN_QUIET_S: Final = 3.0
"""Drained: the worker stored nothing new for this long, its queue for Redis is empty and
the server has read from Redis every message the worker sent."""
FANOUT_GRACE_S: Final = 15.0
"""After the drain, the clients listen this much longer (the websockets' own queues). A leak
alert committed by the drain is expected at every client (live, or in a snapshot)."""
_TS = re.compile(rb'"ts":\d+')


# ---------------------------------------------------------------------- the devices


def plan(
    city: Any, rate: float, leak_rate: float, seconds: float, seed: int
) -> list[tuple[float, str, bytes, str, str]]:
    """(due offset s, topic, payload, kind, msg_id): the mix at *rate* plus leaks."""
    from device_sim.loadgen import generate_mix
    from device_sim.payloads import new_msg_id, telemetry_msg

    now_ms = int(time.time() * 1000)
    n = int(rate * seconds)
    out = [
        (i / rate, m.topic, m.payload, m.kind, m.msg_id)
        for i, m in enumerate(generate_mix(city, n, seed=seed, now_ms=now_ms, spread_ms=0))
    ]
    rng = random.Random(seed + 7)
    valves = [c for c in city.legal if c.smart_valve and c.lat is not None] or city.legal
    leakers = rng.sample(valves, min(len(valves), int(leak_rate * seconds)))
    for j, c in enumerate(leakers):
        m = telemetry_msg(
            c.tag,
            new_msg_id(rng),
            now_ms,
            lat=c.lat,
            lon=c.lon,
            valve="open",
            leak_ppm=LEAK_PPM,
            temp_c=20.0,
            battery_pct=80.0,
            rssi=-80.0,
        )
        out.append((j / leak_rate, m.topic, m.payload, "leak", m.msg_id or ""))
    out.sort(key=lambda r: r[0])
    return out


def _devices(port: int, messages: list[tuple[float, str, bytes, str, str]], out: Any) -> None:
    """Publish *messages* on schedule, each stamped with its publish time."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    acked = 0
    lock = threading.Lock()

    def on_publish(*_a: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-e2e-dev", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(0)  # no limit: with one, paho walks its queue on every PUBACK
    c.on_publish = on_publish
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    published: dict[str, float] = {}
    t0 = time.perf_counter()
    i = behind = 0
    while i < len(messages):
        now = time.perf_counter() - t0
        if now - TICK_S > messages[i][0]:
            behind += 1
        while i < len(messages) and messages[i][0] <= now:
            _, topic, payload, _, msg_id = messages[i]
            stamp = time.time()
            c.publish(topic, _TS.sub(b'"ts":%d' % int(stamp * 1000), payload, count=1), qos=1)
            published[msg_id] = stamp
            i += 1
        time.sleep(max(0.0, TICK_S - ((time.perf_counter() - t0) % TICK_S)))
    deadline = time.monotonic() + 15
    while acked < len(messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    out.put({"sent": len(messages), "acked": acked, "behind": behind, "published": published})


# ---------------------------------------------------------------------- the clients


async def _clients(
    url: str, token: str, n: int, timed: int, until: Any, ready: Any, out: Any
) -> None:  # pragma: no cover - run in a spawned process
    import aiohttp
    import orjson

    stats = {
        "connected": 0,
        "failed": 0,
        "position_frames": 0,
        "alert_rows": 0,
        "closed": 0,
        "subscribed": 0,
        "subscribe_failed": 0,
        "resyncs": 0,
    }
    alert_ms: list[float] = []
    position_ms: list[float] = []
    # leak alert versions (id@last_at) → clients that have it: live, or live or by a snapshot
    live: dict[str, int] = {}
    have: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            try:
                ws = await session.ws_connect(
                    f"{url}/ws?token={token}", decode_text=False, max_msg_size=0
                )
            except (aiohttp.ClientError, OSError):
                stats["failed"] += 1
                ready.put(0)
                return
            stats["connected"] += 1
            await ws.send_str('{"id":1,"type":"subscribe","channel":"positions"}')
            await ws.send_str('{"id":2,"type":"subscribe","channel":"alerts"}')
            mine_live: set[str] = set()
            mine: set[str] = set()
            try:
                while (left := until.value - time.time()) > 0:
                    try:
                        msg = await ws.receive(timeout=min(left, 1.0))
                    except TimeoutError:
                        continue
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        stats["closed"] += 1  # closed by the server (a slow client) or gone
                        break
                    data: bytes = msg.data
                    other = b'"type":"event"' not in data[:40]  # results, resync notices
                    alert = not other and b'"channel":"alerts"' in data[:80]
                    if not alert and not other:
                        stats["position_frames"] += 1
                        if i >= timed:
                            continue
                    now = time.time()
                    frame = orjson.loads(data)
                    if other:  # results and resync notices
                        if frame.get("type") == "result" and frame.get("id") == 2:
                            ok = bool(frame.get("success"))
                            stats["subscribed" if ok else "subscribe_failed"] += 1
                            ready.put(1 if ok else 0)
                        elif frame.get("type") == "resync":
                            stats["resyncs"] += 1
                        continue
                    if frame.get("type") != "event":
                        continue
                    snapshot = bool(frame.get("snapshot"))
                    for row in frame.get("data") or []:
                        if alert and row.get("kind") == "leak" and row.get("last_at"):
                            tag = f"{row.get('id')}@{row['last_at']}"
                            mine.add(tag)
                            if snapshot:
                                continue
                            mine_live.add(tag)
                            sent = datetime.fromisoformat(row["last_at"]).timestamp()
                            alert_ms.append((now - sent) * 1000)
                            stats["alert_rows"] += 1
                        elif not alert and not snapshot and isinstance(row.get("ts"), int):
                            position_ms.append(now * 1000 - row["ts"])
            finally:
                await ws.close()
                for tag in mine_live:
                    live[tag] = live.get(tag, 0) + 1
                for tag in mine:
                    have[tag] = have.get(tag, 0) + 1

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.gather(*tasks)
    out.put(
        {
            "stats": stats,
            "alert_ms": alert_ms,
            "position_ms": position_ms,
            "live": live,
            "have": have,
        }
    )


def _client_proc(
    url: str, token: str, n: int, timed: int, until: Any, ready: Any, out: Any
) -> None:
    import uvloop

    uvloop.run(_clients(url, token, n, timed, until, ready, out))


# ---------------------------------------------------------------------- committed rows


async def poll_committed(
    dsn: str, sampled: dict[str, tuple[str, float]], t0: float, stop: asyncio.Event
) -> dict[str, float]:
    """msg_id → the wall time it was first seen committed (telemetry and positions)."""
    import asyncpg

    seen: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    since = datetime.fromtimestamp(t0 - 60).astimezone()
    stopped_at: float | None = None
    try:
        while len(seen) < len(sampled):
            if stop.is_set():
                stopped_at = stopped_at or time.time()
                if time.time() - stopped_at > 20:  # what is not there by now was lost
                    break
            elapsed = time.time() - t0
            due = [m for m, (_, at) in sampled.items() if at <= elapsed and m not in seen]
            if due:
                rows = await conn.fetch(
                    "SELECT msg_id FROM telemetry WHERE msg_id = ANY($1::text[]) AND ts >= $2"
                    " UNION ALL SELECT msg_id FROM positions"
                    " WHERE msg_id = ANY($1::text[]) AND ts >= $2",
                    due,
                    since,
                )
                now = time.time()
                for r in rows:
                    seen.setdefault(r["msg_id"], now)
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()
    return seen


async def _drain(url: str, metrics_port: int, deadline: float) -> float:
    """Wait until the chain has delivered all it will (`DRAIN_QUIET_S`) or *deadline*;
    return when. Read from the worker's and the server's ``/metrics``."""
    ingest_url = f"http://127.0.0.1:{metrics_port}/metrics"
    last_rows = -1.0
    quiet_since = time.time()
    while (now := time.time()) < deadline:
        rows = (await _scrape(ingest_url)).get("rows", 0.0)
        ingest = await _scrape_realtime(ingest_url)
        server = await _scrape_realtime(f"{url}/metrics")
        sent = ingest.get("cylwatch_realtime_bridge_published_total", 0.0)
        queued = ingest.get("cylwatch_realtime_bridge_publish_queue", 0.0)
        read = server.get("cylwatch_realtime_bridge_received_total", 0.0)
        if rows != last_rows or queued or read < sent:
            last_rows = rows
            quiet_since = now
        elif now - quiet_since >= DRAIN_QUIET_S:
            return now
        await asyncio.sleep(0.5)
    return deadline


async def _wait_subscribed(ready: Any, clients: int) -> int:
    """Wait until every client has its ``alerts`` subscription (or gave up): a leak
    published before a client subscribes reaches it in its snapshot, not live."""
    answered = subscribed = 0
    deadline = time.monotonic() + SUBSCRIBE_WAIT_S
    while answered < clients and (left := deadline - time.monotonic()) > 0:
        try:
            subscribed += await asyncio.to_thread(ready.get, True, left)
        except queue.Empty:
            break
        answered += 1
    return subscribed


async def poll_alerts(dsn: str, t0: float, done: asyncio.Event) -> dict[str, float]:
    """Leak alert versions of this run (``id@last_at``, as clients see them) → when first
    seen committed; the clients are expected to have those committed well before they stop."""
    import asyncpg

    seen: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    since = datetime.fromtimestamp(t0 - 1).astimezone()
    try:
        while not done.is_set():
            rows = await conn.fetch(
                "SELECT id, last_at FROM alerts WHERE kind = 'leak' AND last_at >= $1", since
            )
            now = time.time()
            for r in rows:
                seen.setdefault(f"{r['id']}@{r['last_at'].isoformat()}", now)
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()
    return seen


# ---------------------------------------------------------------------- main


def _pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    s = sorted(values)
    return f"{s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]:.0f} ms"


async def run(args: argparse.Namespace) -> str:
    from device_sim.loadgen import PrivateBroker, machine_info
    from server.kernel.settings import load_settings

    await bi.ensure_city(args.dsn, args.cylinders)
    token_ = secrets.token_hex(3)
    env = {
        **os.environ,
        "CYL_DATABASE_URL": args.dsn,
        "CYL_REALTIME__REDIS_CHANNEL": f"cylwatch:bench-e2e:{token_}",
        "CYL_INGEST__SHARED_GROUP": f"e2e{token_}",
        "CYL_INGEST__CLIENT_ID_PREFIX": f"bench-e2e-{token_}",
        # every client is the bench's one admin: lift the per-user cap for this server only
        "CYL_REALTIME__WS_CONNECTIONS_PER_USER_MAX": str(args.clients + 10),
    }
    settings = load_settings(environ=env)
    await wsf.prepare(settings)
    from bench.common import load_sim_city

    city = await load_sim_city(
        args.dsn, args.seed, legal_cap=100_000, illegal_cap=1_000, customers_cap=10
    )
    messages = plan(city, args.rate, args.leak_rate, args.duration, args.seed)
    del city
    sampled: dict[str, tuple[str, float]] = {}
    for k, (at, _, _, kind, msg_id) in enumerate(messages):
        if kind in ("telemetry", "position") and k % SAMPLE_EVERY == 0:
            sampled[msg_id] = (kind, at)
    info = machine_info(await bi.pg_version(args.dsn))
    logs = Path(tempfile.mkdtemp(prefix="cylwatch-e2e-"))
    ctx = mp.get_context("spawn")
    with PrivateBroker() as broker:
        env["CYL_MQTT_URL"] = broker.url
        metrics_port = wsf.free_port()
        ingest_log = (logs / "ingest.log").open("wb")
        ingest_env = dict(env)
        if args.bridge_queue_max:  # provoke the publisher's drops (docs/WEBSOCKET.md "Resync")
            ingest_env["CYL_REALTIME__BRIDGE_QUEUE_MAX"] = str(args.bridge_queue_max)
        ingest = start_ingest(ingest_env, metrics_port, ingest_log)
        port = wsf.free_port()
        url = f"http://127.0.0.1:{port}"
        server_log, server = wsf.start_server(str(logs / "server.log"), port, env)
        procs: list[Any] = []
        try:
            await wsf.wait_ready(url, server)
            await _wait_for(logs / "ingest.log", b"-auth subscribed", ingest)
            token = await wsf.login(url)
            results: Any = ctx.Queue()
            ready: Any = ctx.Queue()
            until: Any = ctx.Value("d", time.time() + 3600)  # set when the devices start
            per = [
                args.clients // args.client_procs + (i < args.clients % args.client_procs)
                for i in range(args.client_procs)
            ]
            timed_left = args.timed_clients
            for n in per:
                timed = min(n, timed_left)
                timed_left -= timed
                p = ctx.Process(
                    target=_client_proc, args=(url, token, n, timed, until, ready, results)
                )
                p.start()
                procs.append(p)
            subscribed = await _wait_subscribed(ready, args.clients)
            load_start = "/".join(f"{x:.1f}" for x in os.getloadavg())
            devices_out: Any = ctx.Queue()
            dev = ctx.Process(target=_devices, args=(broker.port, messages, devices_out))
            stop = asyncio.Event()
            done = asyncio.Event()
            t0 = time.time()
            until.value = t0 + args.duration + LISTEN_AFTER_S
            dev.start()
            poller = asyncio.create_task(poll_committed(args.dsn, sampled, t0, stop))
            alerts_poller = asyncio.create_task(poll_alerts(args.dsn, t0, done))
            watcher = asyncio.create_task(watch_subscriber(server.pid, done))
            report = await asyncio.to_thread(devices_out.get, True, args.duration + 120)
            stop.set()
            seen = await poller
            worker = await _scrape(f"http://127.0.0.1:{metrics_port}/metrics")
            load_end = "/".join(f"{x:.1f}" for x in os.getloadavg())
            drained = await _drain(url, metrics_port, until.value)
            until.value = min(until.value, drained + FANOUT_GRACE_S)
            await asyncio.sleep(max(0.0, until.value - time.time()))
            done.set()
            committed_alerts = await alerts_poller
            redis_seen = await watcher
            realtime_metrics = {
                **await _scrape_realtime(f"{url}/metrics"),
                **{
                    f"ingest:{k.removeprefix('cylwatch_realtime_')}": v
                    for k, v in (
                        await _scrape_realtime(f"http://127.0.0.1:{metrics_port}/metrics")
                    ).items()
                },
            }
            clients = [await asyncio.to_thread(results.get, True, 60) for _ in procs]
            dev.join(10)
        finally:
            for p in procs:
                p.join(5)
                if p.is_alive():
                    p.kill()
            for proc in (server, ingest):
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            server_log.close()
            ingest_log.close()
    published: dict[str, float] = report["published"]
    committed = [(seen[m] - published[m]) * 1000 for m in sampled if m in seen and m in published]
    alert_ms = [x for c in clients for x in c["alert_ms"]]
    position_ms = [x for c in clients for x in c["position_ms"]]
    connected = sum(c["stats"]["connected"] for c in clients)
    position_frames = sum(c["stats"]["position_frames"] for c in clients)
    closed = sum(c["stats"]["closed"] for c in clients)
    leaks = sum(1 for m in messages if m[3] == "leak")
    acc = account(clients, committed_alerts, drained)
    p99 = sorted(alert_ms)[int(0.99 * (len(alert_ms) - 1))] if alert_ms else None
    met = p99 is not None and p99 <= TARGET_ALERT_P99_MS
    lines = [
        f"| {args.rate:,.0f} + {args.leak_rate:g} leaks | {report['sent']:,} "
        f"({report['acked']:,} acked; {report['behind']} ticks late) | {connected} / "
        f"{args.clients} ({closed} closed by the server) | {load_start} → {load_end} | "
        f"{_pct(alert_ms, 0.5)} / "
        f"{_pct(alert_ms, 0.99)} / {_pct(alert_ms, 1.0)} ({acc['live']:,} live +"
        f" {acc['snapshot']:,} by snapshot of {acc['expected']:,} expected;"
        f" **{acc['missing']:,} missing**) | {_pct(position_ms, 0.5)} / {_pct(position_ms, 0.99)} "
        f"({len(position_ms):,} fixes in {args.timed_clients} clients;"
        f" {position_frames / max(1, connected) / args.duration:.1f} frames/s a client) | "
        f"{_pct(committed, 0.5)} / "
        f"{_pct(committed, 0.99)} / {_pct(committed, 1.0)} ({len(committed):,} of "
        f"{len(sampled):,}) | {'met' if met else 'MISSED'} |"
    ]
    header = [
        "## End to end: device → broker → ingest → PostgreSQL → Redis → server → websockets",
        "",
        f"Command: `python bench/e2e.py --rate {args.rate:.0f} --leak-rate {args.leak_rate:g}"
        f" --clients {args.clients} --duration {args.duration:.0f}"
        + (f" --bridge-queue-max {args.bridge_queue_max}" if args.bridge_queue_max else "")
        + f"` ({info['date']}); database"
        f" `{args.dsn.rsplit('/', 1)[1]}`. Machine: {info['cpu']}, {info['cores']} cores,"
        f" {info['ram']}; {info['postgresql']}; {info['mosquitto']}; everything on the same"
        " cores.",
        "",
        "| msg/s | published | clients | load start → end | alert publish → frame p50 / p99"
        " / max | position publish → frame p50 / p99 | publish → committed row p50 / p99 / max"
        f" (±{POLL_S * 1000:.0f} ms) | alert p99 ≤ {TARGET_ALERT_P99_MS:.0f} ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if worker:
        lines += [
            "",
            f"- The ingest worker (its `/metrics`): {worker.get('batches', 0):,.0f} batches of"
            f" {worker.get('rows', 0) / max(1.0, worker.get('batches', 0)):,.0f} messages on"
            f" average, commit p50 {worker.get('batch_p50', 0) * 1000:,.0f} ms, p99"
            f" {worker.get('batch_p99', 0) * 1000:,.0f} ms; its loop's lag p99"
            f" {worker.get('lag_p99', 0) * 1000:,.0f} ms, max"
            f" {worker.get('lag_max', 0) * 1000:,.0f} ms.",
        ]
    lines += [
        "",
        delivery(acc, leaks, subscribed, len(committed_alerts), redis_seen, realtime_metrics, logs),
    ]
    return "\n".join(header + lines) + "\n"


def account(
    clients: list[dict[str, Any]], committed: dict[str, float], due: float
) -> dict[str, int]:
    """Leak alerts every open client should have (committed by *due*) against what each has:
    live frames, or rows of a snapshot (its first, or one after a resync notice)."""
    live: dict[str, int] = {}
    have: dict[str, int] = {}
    for c in clients:
        for tag, n in c["live"].items():
            live[tag] = live.get(tag, 0) + n
        for tag, n in c["have"].items():
            have[tag] = have.get(tag, 0) + n
    expected_tags = [tag for tag, at in committed.items() if at <= due]
    stats = [c["stats"] for c in clients]
    listening = sum(s["subscribed"] for s in stats) - sum(s["closed"] for s in stats)
    got_live = sum(min(listening, live.get(t, 0)) for t in expected_tags)
    got = sum(min(listening, have.get(t, 0)) for t in expected_tags)
    return {
        "alerts": len(expected_tags),
        "clients": listening,
        "expected": len(expected_tags) * listening,
        "live": got_live,
        "snapshot": got - got_live,
        "missing": len(expected_tags) * listening - got,
        "missing_everywhere": sum(1 for t in expected_tags if not have.get(t)),
        "resyncs": sum(s["resyncs"] for s in stats),
        "refused": sum(s["subscribe_failed"] for s in stats),
    }


def delivery(
    acc: dict[str, int],
    leaks: int,
    subscribed: int,
    committed: int,
    redis_seen: dict[str, Any],
    realtime: dict[str, float],
    logs: Path,
) -> str:
    """Where the alert frames went, and the counters of every place that could lose one."""
    warnings = [
        line.decode(errors="replace").strip()
        for name in ("server.log", "ingest.log")
        for line in (logs / name).read_bytes().splitlines()
        if b"WARNING" in line and (b"realtime" in line or b"websocket" in line)
    ]
    counters = ", ".join(
        f"{k.removeprefix('cylwatch_realtime_')} {v:,.0f}" for k, v in sorted(realtime.items())
    )
    return (
        f"- Alert delivery: {leaks:,} leaks published, {committed:,} leak alerts committed while"
        f" the clients listened, {acc['alerts']:,} of them before the chain drained (expected at"
        f" each of the {acc['clients']} clients subscribed and not closed;"
        f" {subscribed} subscribed before the first publish, {acc['refused']} refused):"
        f" {acc['live']:,} received live, {acc['snapshot']:,} in a snapshot,"
        f" {acc['missing']:,} missing ({acc['missing_everywhere']} alerts at no client);"
        f" {acc['resyncs']} resync notices. Redis saw the server's subscriber on"
        f" {redis_seen.get('connections', 0)} connection(s), at most"
        f" {redis_seen.get('omem_max', 0):,} bytes queued for it. Counters (server and ingest"
        f" `/metrics`): {counters or 'none'}; {len(warnings)} realtime warning(s) logged"
        + (f" (first: `{warnings[0][:160]}`)" if warnings else "")
        + "."
    )


async def watch_subscriber(server_pid: int, stop: asyncio.Event) -> dict[str, Any]:
    """The bench server's Redis subscriber as Redis sees it, every ``WATCH_S``: its
    connection ids (a new one is a reconnect: Redis dropped it, e.g. its output buffer past
    ``client-output-buffer-limit pubsub``) and the most bytes Redis held for it unsent."""
    from redis.asyncio import Redis

    ids: list[str] = []
    omem_max = 0
    samples = 0
    redis = Redis.from_url(os.environ.get("CYL_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        while not stop.is_set():
            for fields in await redis.client_list(_type="pubsub"):
                name = str(fields.get("name", ""))
                if not name.startswith("cylwatch:sub:") or f":{server_pid}:" not in name:
                    continue
                if fields["id"] not in ids:
                    ids.append(fields["id"])
                omem_max = max(omem_max, int(fields.get("omem", 0)))
            samples += 1
            await asyncio.sleep(WATCH_S)
    finally:
        await redis.aclose()
    return {"connections": len(ids), "omem_max": omem_max, "samples": samples}


async def _scrape_realtime(url: str) -> dict[str, float]:
    """The server's realtime counters (``cylwatch_realtime_*`` of its ``/metrics``)."""
    import aiohttp

    out: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return out
    for line in text.splitlines():
        if line.startswith("cylwatch_realtime_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def _scrape(url: str) -> dict[str, float]:
    """The ingest worker's own figures (its ``/metrics``): batch commit time, loop lags."""
    import aiohttp

    wanted = {
        ("cylwatch_ingest_batch_latency_seconds{", 'quantile="0.5"'): "batch_p50",
        ("cylwatch_ingest_batch_latency_seconds{", 'quantile="0.99"'): "batch_p99",
        ("cylwatch_ingest_loop_lag_seconds{", 'quantile="0.99"'): "lag_p99",
        ("cylwatch_ingest_loop_lag_max_seconds{", ""): "lag_max",
        ("cylwatch_ingest_batch_rows_total{", ""): "rows",
        ("cylwatch_ingest_batches_total{", ""): "batches",
    }
    out: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return out
    for line in text.splitlines():
        for (prefix, label), name in wanted.items():
            if line.startswith(prefix) and label in line:
                out[name] = float(line.rsplit(" ", 1)[1])
    return out


def start_ingest(env: dict[str, str], metrics_port: int, log: Any) -> subprocess.Popen[bytes]:
    """One `cylwatch ingest` worker with its /metrics on *metrics_port*, writing to *log*
    (this bench's and bench/soak.py's)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "ingest",
            "--workers",
            "1",
            "--metrics-port",
            str(metrics_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def _wait_for(log: Path, needle: bytes, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"cylwatch ingest exited ({proc.returncode}); see {log}")
        if log.exists() and needle in log.read_bytes():  # noqa: ASYNC240 - a small log
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"cylwatch ingest not subscribed within 90 s; see {log}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dsn", default=DEFAULT_DSN)
    ap.add_argument("--cylinders", type=int, default=100_000, help="seed size if empty")
    ap.add_argument("--rate", type=float, default=500.0, help="device messages per second")
    ap.add_argument("--leak-rate", type=float, default=2.0, help="leaking valves per second")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of traffic")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--timed-clients", type=int, default=10, help="clients timing positions")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--bridge-queue-max",
        type=int,
        default=0,
        help="the ingest process's [realtime] bridge_queue_max (0: as configured); a small one"
        " makes it drop events, to see that no alert is lost unnoticed",
    )
    ap.add_argument("--record", nargs="?", const=str(ROOT / "docs" / "BENCHMARKS.md"), default=None)
    args = ap.parse_args(argv)
    if "127.0.0.1" not in args.dsn and "localhost" not in args.dsn:
        ap.error("benchmarks run only against 127.0.0.1")
    section = asyncio.run(run(args))
    print()
    print(section)
    if args.record:
        bi.record(Path(args.record), section, MARK)
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
