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
LISTEN_AFTER_S: Final = 30.0
"""Clients keep listening this long after the planned end of publishing, so a late frame is
counted late rather than missing (one run at load 11–14 had alerts 7–10 s behind)."""
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
    url: str, token: str, n: int, timed: int, until: float, out: Any
) -> None:  # pragma: no cover - run in a spawned process
    import aiohttp
    import orjson

    stats = {"connected": 0, "failed": 0, "position_frames": 0, "alert_rows": 0, "closed": 0}
    alert_ms: list[float] = []
    position_ms: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            try:
                ws = await session.ws_connect(
                    f"{url}/ws?token={token}", decode_text=False, max_msg_size=0
                )
            except (aiohttp.ClientError, OSError):
                stats["failed"] += 1
                return
            stats["connected"] += 1
            await ws.send_str('{"id":1,"type":"subscribe","channel":"positions"}')
            await ws.send_str('{"id":2,"type":"subscribe","channel":"alerts"}')
            try:
                while (left := until - time.time()) > 0:
                    try:
                        msg = await ws.receive(timeout=left)
                    except TimeoutError:
                        break
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        stats["closed"] += 1  # closed by the server (a slow client) or gone
                        break
                    data: bytes = msg.data
                    alert = b'"channel":"alerts"' in data[:80]
                    if not alert:
                        stats["position_frames"] += 1
                        if i >= timed:
                            continue
                    now = time.time()
                    frame = orjson.loads(data)
                    if frame.get("type") != "event" or frame.get("snapshot"):
                        continue
                    for row in frame.get("data") or []:
                        if alert and row.get("kind") == "leak" and row.get("last_at"):
                            sent = datetime.fromisoformat(row["last_at"]).timestamp()
                            alert_ms.append((now - sent) * 1000)
                            stats["alert_rows"] += 1
                        elif not alert and isinstance(row.get("ts"), int):
                            position_ms.append(now * 1000 - row["ts"])
            finally:
                await ws.close()

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.gather(*tasks)
    out.put({"stats": stats, "alert_ms": alert_ms, "position_ms": position_ms})


def _client_proc(url: str, token: str, n: int, timed: int, until: float, out: Any) -> None:
    import uvloop

    uvloop.run(_clients(url, token, n, timed, until, out))


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
    city = await _load_city(args.dsn, args.seed)
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
        ingest = subprocess.Popen(  # noqa: ASYNC220 - started once, before the run
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
            stdout=ingest_log,
            stderr=subprocess.STDOUT,
        )
        port = wsf.free_port()
        url = f"http://127.0.0.1:{port}"
        server_log, server = wsf.start_server(str(logs / "server.log"), port, env)
        procs: list[Any] = []
        try:
            await wsf.wait_ready(url, server)
            await _wait_for(logs / "ingest.log", b"-auth subscribed", ingest)
            token = await wsf.login(url)
            results: Any = ctx.Queue()
            until = time.time() + 8 + args.duration + LISTEN_AFTER_S
            per = [
                args.clients // args.client_procs + (i < args.clients % args.client_procs)
                for i in range(args.client_procs)
            ]
            timed_left = args.timed_clients
            for n in per:
                timed = min(n, timed_left)
                timed_left -= timed
                p = ctx.Process(target=_client_proc, args=(url, token, n, timed, until, results))
                p.start()
                procs.append(p)
            await asyncio.sleep(8)  # clients connected and subscribed
            load_start = "/".join(f"{x:.1f}" for x in os.getloadavg())
            devices_out: Any = ctx.Queue()
            dev = ctx.Process(target=_devices, args=(broker.port, messages, devices_out))
            stop = asyncio.Event()
            t0 = time.time()
            dev.start()
            poller = asyncio.create_task(poll_committed(args.dsn, sampled, t0, stop))
            report = await asyncio.to_thread(devices_out.get, True, args.duration + 120)
            stop.set()
            seen = await poller
            worker = await _scrape(f"http://127.0.0.1:{metrics_port}/metrics")
            load_end = "/".join(f"{x:.1f}" for x in os.getloadavg())
            clients = [
                await asyncio.to_thread(results.get, True, max(10.0, until - time.time() + 30))
                for _ in procs
            ]
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
    p99 = sorted(alert_ms)[int(0.99 * (len(alert_ms) - 1))] if alert_ms else None
    met = p99 is not None and p99 <= TARGET_ALERT_P99_MS
    lines = [
        f"| {args.rate:,.0f} + {args.leak_rate:g} leaks | {report['sent']:,} "
        f"({report['acked']:,} acked; {report['behind']} ticks late) | {connected} / "
        f"{args.clients} ({closed} closed by the server) | {load_start} → {load_end} | "
        f"{_pct(alert_ms, 0.5)} / "
        f"{_pct(alert_ms, 0.99)} / {_pct(alert_ms, 1.0)} ({len(alert_ms):,} of "
        f"{leaks * connected:,}) | {_pct(position_ms, 0.5)} / {_pct(position_ms, 0.99)} "
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
        f" --clients {args.clients} --duration {args.duration:.0f}` ({info['date']}); database"
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
    return "\n".join(header + lines) + "\n"


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


async def _wait_for(log: Path, needle: bytes, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"cylwatch ingest exited ({proc.returncode}); see {log}")
        if log.exists() and needle in log.read_bytes():  # noqa: ASYNC240 - a small log
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"cylwatch ingest not subscribed within 90 s; see {log}")


async def _load_city(dsn: str, seed: int) -> Any:
    import asyncpg

    from device_sim.runner import city_today  # type: ignore[attr-defined]
    from device_sim.world import load_city
    from server.kernel.settings import load_settings

    settings = load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})
    conn = await asyncpg.connect(dsn)
    try:
        return await load_city(
            conn,
            today=city_today(settings),
            legal_cap=100_000,
            illegal_cap=1_000,
            customers_cap=10,
            seed=seed,
        )
    finally:
        await conn.close()


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
