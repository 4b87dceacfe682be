"""Websocket fan-out benchmark (docs/ARCHITECTURE.md §10): many clients, positions at a high rate, alerts.

What it does, and why this way:

1. Migrates a database of its own (``cylwatch_bench_ws`` by default, never real or test
   data) and makes an admin user there; logs in once for a token.
2. Starts the real server, ``python -m server.cli serve --no-ingest``, as a subprocess on a
   private Redis channel, so its CPU can be measured alone (psutil, over the whole run).
3. Starts ``--client-procs`` processes holding ``--clients`` websockets between them; each
   subscribes ``positions`` (city-wide, no filter: the heaviest case) and ``alerts``. The
   clients count frames and bytes and parse only alert frames (a browser would parse all;
   here parsing positions would only measure the bench's own CPU).
4. Acts as the ingest process: PUBLISHes to the Redis channel, exactly as
   `realtime.bridge.RedisPublisher` does, ``--rate`` positions/s over ``--objects``
   vehicles and ``--alert-rate`` alerts/s for ``--duration`` seconds. Each alert carries
   its publish time; clients record publish → frame latency (same machine clock).
5. Prints the figures (and ``--json``). It stops itself: every wait has a deadline.

Run: ``python bench/ws_fanout.py`` (defaults: 1,000 clients, 2,000 positions/s, 10
alerts/s, 30 s). Figures go to docs/BENCHMARKS.md, "Websocket fan-out".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.bridge import bridge_channel, encode  # noqa: E402
from server.kernel.events import Event  # noqa: E402
from server.kernel.settings import load_settings  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench_ws"
USER = "bench_ws_admin"
PASSWORD = "bench-ws-password-42"
TICK_S = 0.01  # the injector publishes in 10 ms slices
CONNECT_BATCH = 50  # websockets opened concurrently per client process
START_TIMEOUT_S = 60.0
CITY_BBOX = (113.45, 34.60, 113.85, 34.95)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def machine_line() -> str:
    freq = psutil.cpu_freq()
    mhz = f" @ {freq.max or freq.current:.0f} MHz" if freq else ""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{psutil.cpu_count()} CPU ({model}{mhz}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}"
    )


async def prepare(settings: Any) -> None:
    from server.db.migrate import migrate
    from server.db.pool import connect
    from server.kernel.passwords import hash_password

    await migrate(settings)
    conn = await connect(settings)
    try:
        await conn.execute(
            """INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'admin')
               ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash""",
            USER,
            hash_password(settings.auth, PASSWORD),
        )
    finally:
        await conn.close()


# ------------------------------------------------------------------ client processes


def tile(i: int, tiles: int) -> list[float] | None:
    """The i-th viewport of a tiles×tiles grid over the city (None: the whole city)."""
    if tiles <= 0:
        return None
    w, s, e, n = CITY_BBOX
    col, row = i % tiles, (i // tiles) % tiles
    dx, dy = (e - w) / tiles, (n - s) / tiles
    return [w + col * dx, s + row * dy, w + (col + 1) * dx, s + (row + 1) * dy]


async def _clients(
    url: str,
    token: str,
    n: int,
    duration: float,
    start_at: float,
    tiles: int,
    offset: int,
    out: Any,
) -> None:
    stats = {
        "connected": 0,
        "failed": 0,
        "frames": 0,
        "position_frames": 0,
        "bytes": 0,
        "alerts": 0,
        "closed": 0,
        "close_codes": {},
    }
    latencies: list[float] = []
    alert_marker = b'"channel":"alerts"'
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            try:
                ws = await session.ws_connect(
                    f"{url}/ws?token={token}", decode_text=False, max_msg_size=0, heartbeat=None
                )
            except (aiohttp.ClientError, OSError):
                stats["failed"] += 1
                return
            stats["connected"] += 1
            sub: dict[str, Any] = {"id": 1, "type": "subscribe", "channel": "positions"}
            bbox = tile(offset + i, tiles)
            if bbox is not None:
                sub["filter"] = {"bbox": bbox}
            await ws.send_str(orjson.dumps(sub).decode())
            await ws.send_str('{"id":2,"type":"subscribe","channel":"alerts"}')
            deadline = start_at + duration + 5
            try:
                while True:
                    left = deadline - time.time()
                    if left <= 0:
                        break
                    try:
                        msg = await ws.receive(timeout=left)
                    except TimeoutError:
                        break
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        data: bytes = msg.data
                        stats["frames"] += 1
                        stats["bytes"] += len(data)
                        if alert_marker in data[:60]:
                            now = time.time()
                            frame = orjson.loads(data)
                            if frame.get("type") == "event" and not frame.get("snapshot"):
                                for row in frame["data"]:
                                    sent = row.get("details", {}).get("bench_ts")
                                    if sent is not None:
                                        latencies.append((now - sent) * 1000)
                                        stats["alerts"] += 1
                        else:
                            stats["position_frames"] += 1
                    else:
                        stats["closed"] += 1
                        code = str(ws.close_code)
                        stats["close_codes"][code] = stats["close_codes"].get(code, 0) + 1
                        break
            finally:
                await ws.close()

        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(one(i)))
            if i % CONNECT_BATCH == CONNECT_BATCH - 1:
                await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
    out.put({"stats": stats, "latencies": latencies})


def client_proc(
    url: str,
    token: str,
    n: int,
    duration: float,
    start_at: float,
    tiles: int,
    offset: int,
    out: Any,
) -> None:
    import uvloop

    uvloop.run(_clients(url, token, n, duration, start_at, tiles, offset, out))


# ------------------------------------------------------------------ the injector


async def inject(
    settings: Any, rate: float, alert_rate: float, objects: int, duration: float
) -> dict[str, int]:
    """PUBLISH like an ingest process: encoded events, pipelined, paced in 10 ms slices."""
    redis = Redis.from_url(settings.services.redis_url)
    channel = bridge_channel(settings)
    origin = f"bench-ingest:{os.getpid()}"
    rng = random.Random(7)
    w, s, e, n = CITY_BBOX
    positions = alerts = 0
    alert_id = 10**12 + rng.randrange(10**9)
    started = time.perf_counter()
    next_alert = started
    ticks = 0
    try:
        while (now := time.perf_counter()) - started < duration:
            ticks += 1
            due = int(rate * (now - started)) - positions
            pipe = redis.pipeline(transaction=False)
            for _ in range(max(0, due)):
                v = rng.randrange(objects)
                lat, lon = rng.uniform(s, n), rng.uniform(w, e)
                data = {
                    "kind": "vehicle",
                    "id": f"V{v:05d}",
                    "lat": lat,
                    "lon": lon,
                    "ts": int(time.time() * 1000),
                    "speed_kmh": 40.0,
                    "heading": 90.0,
                }
                pipe.publish(
                    channel,
                    encode(
                        Event(
                            "positions",
                            data,
                            district="410105",
                            company_id=1,
                            lat=lat,
                            lon=lon,
                            key=f"vehicle:V{v:05d}",
                        ),
                        origin,
                    ),
                )
                positions += 1
            while alert_rate and now >= next_alert:
                alert_id += 1
                data = {
                    "id": alert_id,
                    "kind": "leak",
                    "severity": "critical",
                    "subject_type": "cylinder",
                    "subject_id": f"T{alert_id}",
                    "company_id": 1,
                    "site_id": None,
                    "district": "410105",
                    "state": "open",
                    "count": 1,
                    "details": {"bench_ts": time.time()},
                }
                pipe.publish(
                    channel, encode(Event("alerts", data, district="410105", company_id=1), origin)
                )
                alerts += 1
                next_alert += 1 / alert_rate
            await pipe.execute()
            await asyncio.sleep(max(0.0, started + ticks * TICK_S - time.perf_counter()))
    finally:
        await redis.aclose()
    return {"positions": positions, "alerts": alerts}


# ------------------------------------------------------------------ main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    log_path: str, port: int, env: dict[str, str]
) -> tuple[Any, subprocess.Popen[bytes]]:
    log = open(log_path, "wb")  # noqa: SIM115 - the caller closes it
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--no-ingest",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return log, server


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit("server did not start")


async def login(url: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/v1/auth/login", json={"username": USER, "password": PASSWORD}
        ) as resp,
    ):
        body = await resp.json()
        return str(body["token"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    channel = f"cylwatch:bench:{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "CYL_DATABASE_URL": args.database_url,
        "CYL_REALTIME__REDIS_CHANNEL": channel,
    }
    settings = load_settings(environ=env)
    await prepare(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log, server = start_server(args.server_log, port, env)
    procs: list[Any] = []
    try:
        await wait_ready(url, server)
        token = await login(url)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        per = [
            args.clients // args.client_procs + (1 if i < args.clients % args.client_procs else 0)
            for i in range(args.client_procs)
        ]
        connect_s = max(5.0, args.clients / 200)
        start_at = time.time() + connect_s
        offset = 0
        for n in per:
            p = ctx.Process(
                target=client_proc,
                args=(url, token, n, args.duration, start_at, args.tiles, offset, out),
            )
            p.start()
            procs.append(p)
            offset += n
        await asyncio.sleep(max(0.0, start_at - time.time()))
        ps = psutil.Process(server.pid)
        ps.cpu_percent(None)
        cpu0 = ps.cpu_times()
        t0 = time.perf_counter()
        sent = await inject(settings, args.rate, args.alert_rate, args.objects, args.duration)
        elapsed = time.perf_counter() - t0
        cpu1 = ps.cpu_times()
        server_cores = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / elapsed
        rss_mb = ps.memory_info().rss / 2**20
        results = []
        for _ in procs:
            results.append(
                await asyncio.get_running_loop().run_in_executor(
                    None, out.get, True, args.duration + 60
                )
            )
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    stats: dict[str, Any] = {
        "connected": 0,
        "failed": 0,
        "frames": 0,
        "position_frames": 0,
        "bytes": 0,
        "alerts": 0,
        "closed": 0,
        "close_codes": {},
    }
    latencies: list[float] = []
    for r in results:
        for k, v in r["stats"].items():
            if k == "close_codes":
                for code, count in v.items():
                    stats["close_codes"][code] = stats["close_codes"].get(code, 0) + count
            else:
                stats[k] += v
        latencies += r["latencies"]
    connected = max(1, stats["connected"])
    expected_alerts = sent["alerts"] * stats["connected"]
    return {
        "machine": machine_line(),
        "clients": args.clients,
        "viewport": f"1/{args.tiles**2} of the city" if args.tiles else "whole city",
        "connected": stats["connected"],
        "failed": stats["failed"],
        "duration_s": round(elapsed, 1),
        "positions_sent": sent["positions"],
        "positions_per_s": round(sent["positions"] / elapsed),
        "objects": args.objects,
        "alerts_sent": sent["alerts"],
        "alerts_received": stats["alerts"],
        "alerts_expected": expected_alerts,
        "alert_latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies, default=float("nan")), 1),
        },
        "position_frames_per_client_per_s": round(
            stats["position_frames"] / connected / args.duration, 2
        ),
        "frames_per_client": round(stats["frames"] / connected, 1),
        "mb_received": round(stats["bytes"] / 2**20, 1),
        "closed_by_server": stats["closed"],
        "close_codes": stats["close_codes"],
        "server_cpu_cores": round(server_cores, 2),
        "server_rss_mb": round(rss_mb, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--rate", type=float, default=2000, help="position updates per second")
    ap.add_argument("--objects", type=int, default=5000, help="distinct vehicles moving")
    ap.add_argument("--alert-rate", type=float, default=10, help="alerts per second")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument(
        "--tiles",
        type=int,
        default=0,
        help="clients view one tile of a TILES×TILES grid over the city (0: all)",
    )
    ap.add_argument("--database-url", default=os.environ.get("CYL_BENCH_WS_DSN", DEFAULT_DSN))
    ap.add_argument("--server-log", default="/tmp/cylwatch-bench-ws-server.log")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = ap.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"machine: {result['machine']}")
    for k, v in result.items():
        if k != "machine":
            print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
