#!/usr/bin/env python3
"""Soak (issue 10 item 3; docs/ARCHITECTURE.md §10, recorded in docs/BENCHMARKS.md "Soak").

The chain of ``bench/e2e.py`` (a private Mosquitto, ``cylwatch ingest --workers 1`` with its
reply process and Redis bridge, ``cylwatch serve --no-ingest``, websocket clients subscribed to
``positions`` and ``alerts``) run for a long time at a steady rate, sampled every
``--every`` seconds into a CSV:

- RSS, private memory (``RssAnon``) and CPU % of every process of the chain (server, ingest parent / worker / reply child,
  the database's backends together, Mosquitto, Redis), from psutil;
- the worker's figures from its ``/metrics``: messages received and stored, its backlog
  (received − stored − duplicates − ignored − dead letters), the Redis bridge's queue, the
  batch commit time — the interval's mean (Δsum / Δcount of the summary) and the p50 / p99
  of the worker's own window of recent batches (ingest/metrics.py ``WINDOW_SAMPLES``, many
  minutes at this rate: the summary exposes no per-interval quantile) — database retries;
- end-to-end latency of the interval (device publish → websocket frame), alerts and
  positions apart, p50 / p99; messages/s sent and stored; the load average.

The devices publish the everyday mix (``device_sim.loadgen.generate_mix``) plus leaking
valves, planned a minute at a time so that a long run holds only one minute of messages.
At the end the script plots the samples (``--png``) and decides, for every series, whether
it levels off: the mean of the last third of the run against the mean of the middle third
(``LEVEL_RATIO``) — a series still climbing at the end fails, a warm-up climb does not.

Run ``python bench/soak.py --dsn ... --rate 600 --duration 1800`` or, to replot a saved run,
``python bench/soak.py --plot-only samples.csv``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import multiprocessing as mp
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import time
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


DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_scratch_soak_1"
REALISTIC_RATE: Final = 200.0
"""Messages/s of one simulated city: ``cylwatch sim``'s default ``--rate`` (device_sim/
config.py ``SimConfig.rate``); the soak runs at a multiple of it (``--times``)."""
PLAN_S: Final = 60.0
"""The devices plan this many seconds of messages at a time (memory bounded by one chunk)."""
LEVEL_RATIO: Final = 1.10
"""A series levels off when the mean of the run's last third is at most 10 % above the mean of
its middle third (the first third is the warm-up: caches, pools, partitions being touched)."""
LEVEL_SLACK: Final = {"rss": 8.0, "ms": 20.0, "queue": 500.0, "cpu": 5.0}
"""Absolute slack per unit (MiB, ms, messages, % CPU) under which a difference is noise."""
PROCS: Final = ("server", "ingest", "worker", "reply", "postgres", "mosquitto", "redis")
"""``ingest`` is the supervisor; ``worker`` its worker process; ``reply`` the worker's reply
process (ingest.reply_child); ``redis`` is the machine's shared Redis (others use it too)."""


# ---------------------------------------------------------------------- devices


def _devices(
    port: int,
    dsn: str,
    rate: float,
    leak_rate: float,
    seconds: float,
    seed: int,
    sent: Any,
    stop: Any,
) -> None:  # pragma: no cover - a spawned process
    """Publish the mix at *rate* for *seconds*, one planned minute at a time; *sent* counts."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    e2e = _bench_module("e2e")
    from bench.common import load_sim_city

    city = asyncio.run(
        load_sim_city(dsn, seed, legal_cap=100_000, illegal_cap=1_000, customers_cap=10)
    )
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-soak-dev", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    t0 = time.perf_counter()
    chunk = 0
    while chunk * PLAN_S < seconds and not stop.value:
        span = min(PLAN_S, seconds - chunk * PLAN_S)
        msgs = e2e.plan(city, rate, leak_rate, span, seed + chunk)
        base = chunk * PLAN_S
        i = 0
        while i < len(msgs) and not stop.value:
            now = time.perf_counter() - t0
            while i < len(msgs) and base + msgs[i][0] <= now:
                _, topic, payload, _, _ = msgs[i]
                stamp = b'"ts":%d' % int(time.time() * 1000)
                c.publish(topic, e2e._TS.sub(stamp, payload, count=1), qos=1)
                i += 1
                sent.value += 1
            time.sleep(e2e.TICK_S)
        chunk += 1
    time.sleep(2)
    c.disconnect()
    c.loop_stop()


# ---------------------------------------------------------------------- clients


async def _clients(url: str, token: str, n: int, until: float, out: Any) -> None:
    """*n* websockets on positions and alerts; every second, their latencies go to *out*."""
    from datetime import datetime

    import aiohttp
    import orjson

    buf: list[tuple[str, float]] = []

    async def one() -> None:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{url}/ws?token={token}", max_msg_size=0)
            await ws.send_str('{"id":1,"type":"subscribe","channel":"positions"}')
            await ws.send_str('{"id":2,"type":"subscribe","channel":"alerts"}')
            while (left := until - time.time()) > 0:
                try:
                    msg = await ws.receive(timeout=min(left, 1.0))
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    buf.append(("closed", 0.0))
                    return
                now = time.time()
                frame = orjson.loads(msg.data)
                if frame.get("type") != "event" or frame.get("snapshot"):
                    continue
                alerts = frame.get("channel") == "alerts"
                for row in frame.get("data") or []:
                    if alerts and row.get("kind") == "leak" and row.get("last_at"):
                        at = datetime.fromisoformat(row["last_at"]).timestamp()
                        buf.append(("alert", (now - at) * 1000))
                    elif not alerts and isinstance(row.get("ts"), int):
                        buf.append(("position", now * 1000 - row["ts"]))

    async def flush() -> None:
        while time.time() < until:
            await asyncio.sleep(1.0)
            if buf:
                out.put(buf[:])
                buf.clear()

    await asyncio.gather(flush(), *(one() for _ in range(n)), return_exceptions=True)


def _client_proc(url: str, token: str, n: int, until: float, out: Any) -> None:
    import uvloop  # pragma: no cover - a spawned process

    uvloop.run(_clients(url, token, n, until, out))


# ---------------------------------------------------------------------- sampling


async def _metrics(url: str) -> dict[str, float]:
    """Every sample line of a Prometheus text page (name with labels → value)."""
    import aiohttp

    out: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return out
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def _sum(m: dict[str, float], prefix: str, label: str = "") -> float:
    return sum(v for k, v in m.items() if k.startswith(prefix) and label in k)


class Procs:
    """The chain's processes, found again at every sample (children come and go)."""

    def __init__(self, server: int, ingest: int, broker: int, db: str) -> None:
        import psutil

        self.psutil = psutil
        self.server = psutil.Process(server)
        self.ingest = psutil.Process(ingest)
        self.broker = psutil.Process(broker)
        self.db = db
        self.cache: dict[int, Any] = {}

    def _p(self, proc: Any) -> Any:
        return self.cache.setdefault(proc.pid, proc)

    def groups(self) -> dict[str, list[Any]]:
        ps = self.psutil
        g: dict[str, list[Any]] = {k: [] for k in PROCS}
        g["server"] = [self._p(self.server)] + [
            self._p(c) for c in self.server.children(recursive=True)
        ]
        g["ingest"] = [self._p(self.ingest)]
        for c in self.ingest.children(recursive=True):
            try:
                cmd = " ".join(c.cmdline())
            except ps.Error:
                continue
            if "reply_child" in cmd:
                g["reply"].append(self._p(c))
            elif "resource_tracker" not in cmd:
                g["worker"].append(self._p(c))
        g["mosquitto"] = [self._p(self.broker)]
        for p in ps.process_iter(["name", "cmdline"]):
            name = p.info["name"] or ""
            cmd = " ".join(p.info["cmdline"] or [])
            if name.startswith("redis-server"):
                g["redis"].append(self._p(p))
            elif name.startswith("postgres") and f" {self.db} " in f" {cmd} ":
                g["postgres"].append(self._p(p))
        return g

    def sample(self) -> dict[str, float]:
        """RSS, private memory and CPU % since the last sample, summed per group."""
        out: dict[str, float] = {}
        for key, procs in self.groups().items():
            rss = anon = cpu = 0.0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    cpu += p.cpu_percent(None)
                    anon += _anon_bytes(p.pid)
                except (self.psutil.Error, OSError):
                    continue
            out[f"{key}_rss_mib"] = rss / 2**20
            out[f"{key}_anon_mib"] = anon / 2**20
            out[f"{key}_cpu_pct"] = cpu
        return out


def _anon_bytes(pid: int) -> int:
    """``RssAnon`` of /proc/<pid>/status: the process's private memory. A PostgreSQL backend's
    RSS also counts the shared buffers it has touched (``RssShmem``), which grows towards
    ``shared_buffers`` as it reads more pages: growth of RSS, not of memory used."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def _pq(values: list[float], q: float) -> float | str:
    if not values:
        return ""
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 1)


async def sample_loop(
    path: Path,
    every: float,
    procs: Procs,
    ingest_url: str,
    server_url: str,
    sent: Any,
    lat: Any,
    end: float,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    prev_sent = 0.0
    prev_stored = 0.0
    prev_batch = (0.0, 0.0)
    procs.sample()  # primes cpu_percent
    with path.open("w", newline="") as fh:
        writer: Any = None
        while time.time() < end:
            await asyncio.sleep(every - ((time.time() - t0) % every))
            m = await _metrics(ingest_url)
            s = await _metrics(server_url)
            got: list[tuple[str, float]] = []
            while True:
                try:
                    got += lat.get_nowait()
                except queue.Empty:
                    break
            alerts = [x for k, x in got if k == "alert"]
            positions = [x for k, x in got if k == "position"]
            stored = _sum(m, "cylwatch_ingest_stored_total")
            received = _sum(m, "cylwatch_ingest_received_total")
            settled = stored + sum(
                _sum(m, f"cylwatch_ingest_{k}_total")
                for k in ("duplicates", "ignored", "dead_letters")
            )
            batch = (
                _sum(m, "cylwatch_ingest_batch_latency_seconds_sum"),
                _sum(m, "cylwatch_ingest_batch_latency_seconds_count"),
            )
            batches = batch[1] - prev_batch[1]
            row: dict[str, Any] = {
                "t_s": round(time.time() - t0, 1),
                "load1": os.getloadavg()[0],
                "sent_per_s": round((sent.value - prev_sent) / every, 1),
                "stored_per_s": round((stored - prev_stored) / every, 1),
                "sent_total": sent.value,
                "received_total": received,
                "stored_total": stored,
                "backlog": max(0.0, received - settled),
                "bridge_queue": _sum(m, "cylwatch_realtime_bridge_publish_queue"),
                "server_bridge_received": _sum(s, "cylwatch_realtime_bridge_received_total"),
                "batches": batches,
                "batch_mean_ms": round((batch[0] - prev_batch[0]) / batches * 1000, 1)
                if batches
                else "",
                "batch_p50_ms": round(
                    _sum(m, "cylwatch_ingest_batch_latency_seconds{", 'quantile="0.5"') * 1000, 1
                ),
                "batch_p99_ms": round(
                    _sum(m, "cylwatch_ingest_batch_latency_seconds{", 'quantile="0.99"') * 1000, 1
                ),
                "db_retries": _sum(m, "cylwatch_ingest_db_retries_total"),
                "alert_p50_ms": _pq(alerts, 0.5),
                "alert_p99_ms": _pq(alerts, 0.99),
                "alert_n": len(alerts),
                "position_p50_ms": _pq(positions, 0.5),
                "position_p99_ms": _pq(positions, 0.99),
                "position_n": len(positions),
                "ws_closed": sum(1 for k, _ in got if k == "closed"),
                **{k: round(v, 1) for k, v in procs.sample().items()},
            }
            prev_sent, prev_stored, prev_batch = sent.value, stored, batch
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            fh.flush()
            rows.append(row)
            print(
                f"{row['t_s']:>6.0f} s  load {row['load1']:.1f}  sent {row['sent_per_s']:.0f}/s"
                f" stored {row['stored_per_s']:.0f}/s backlog {row['backlog']:.0f}  batch p99"
                f" {row['batch_p99_ms']} ms mean {row['batch_mean_ms']} ms  alert p99 {row['alert_p99_ms']} ms  position p99"
                f" {row['position_p99_ms']} ms  worker RSS"
                f" {row['worker_rss_mib']:.0f} MiB",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------------- run


async def run(args: argparse.Namespace) -> None:
    from device_sim.loadgen import PrivateBroker
    from server.kernel.settings import load_settings

    wsf = _bench_module("ws_fanout")
    bi = _bench_module("ingest")
    e2e = _bench_module("e2e")
    await bi.ensure_city(args.dsn, args.cylinders)
    tok = secrets.token_hex(3)
    env = {
        **os.environ,
        "CYL_DATABASE_URL": args.dsn,
        "CYL_REALTIME__REDIS_CHANNEL": f"cylwatch:bench-soak:{tok}",
        "CYL_INGEST__SHARED_GROUP": f"soak{tok}",
        "CYL_INGEST__CLIENT_ID_PREFIX": f"bench-soak-{tok}",
        "CYL_REALTIME__WS_CONNECTIONS_PER_USER_MAX": str(args.clients + 10),
    }
    await wsf.prepare(load_settings(environ=env))
    logs = Path(tempfile.mkdtemp(prefix="cylwatch-soak-"))
    print(f"logs in {logs}; samples in {args.csv}", flush=True)
    ctx = mp.get_context("spawn")
    rate = args.rate or REALISTIC_RATE * args.times
    with PrivateBroker() as broker:
        env["CYL_MQTT_URL"] = broker.url
        mport = wsf.free_port()
        ilog = (logs / "ingest.log").open("wb")
        ingest = e2e.start_ingest(env, mport, ilog)
        port = wsf.free_port()
        url = f"http://127.0.0.1:{port}"
        slog, server = wsf.start_server(str(logs / "server.log"), port, env)
        others: list[Any] = []
        stop: Any = ctx.Value("b", False)
        try:
            await wsf.wait_ready(url, server)
            await e2e._wait_for(logs / "ingest.log", b"-auth subscribed", ingest)
            token = await wsf.login(url)
            lat: Any = ctx.Queue()
            sent: Any = ctx.Value("d", 0.0)
            end = time.time() + args.duration + 20
            cl = ctx.Process(target=_client_proc, args=(url, token, args.clients, end, lat))
            cl.start()
            others.append(cl)
            await asyncio.sleep(3)
            dev = ctx.Process(
                target=_devices,
                args=(
                    broker.port,
                    args.dsn,
                    rate,
                    args.leak_rate,
                    args.duration,
                    args.seed,
                    sent,
                    stop,
                ),
            )
            dev.start()
            others.append(dev)
            assert broker._proc is not None
            procs = Procs(server.pid, ingest.pid, broker._proc.pid, args.dsn.rsplit("/", 1)[1])
            await sample_loop(
                Path(args.csv),
                args.every,
                procs,
                f"http://127.0.0.1:{mport}/metrics",
                f"{url}/metrics",
                sent,
                lat,
                end,
            )
        finally:
            stop.value = True
            for p in others:
                p.join(10)
                if p.is_alive():
                    p.kill()
            for proc in (server, ingest):
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            slog.close()
            ilog.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dsn", default=DEFAULT_DSN)
    ap.add_argument("--cylinders", type=int, default=100_000, help="seed size if empty")
    ap.add_argument("--times", type=float, default=3.0, help="multiple of REALISTIC_RATE")
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s (overrides --times)")
    ap.add_argument("--leak-rate", type=float, default=0.5, help="leaking valves per second")
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds of traffic")
    ap.add_argument("--every", type=float, default=10.0, help="sampling period, seconds")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--csv", default=str(Path(tempfile.gettempdir()) / "cylwatch-soak.csv"))
    ap.add_argument("--png", default=str(ROOT / "docs" / "soak.png"))
    ap.add_argument("--plot-only", default=None, help="replot a saved CSV and judge it")
    args = ap.parse_args(argv)
    if args.plot_only is None:
        if "127.0.0.1" not in args.dsn and "localhost" not in args.dsn:
            ap.error("benchmarks run only against 127.0.0.1")
        asyncio.run(run(args))
    soak_report = _bench_module("soak_report")
    rows = soak_report.load(Path(args.plot_only or args.csv))
    soak_report.plot(rows, Path(args.png))
    print(soak_report.summary(rows))
    print(soak_report.verdicts(rows, LEVEL_RATIO, LEVEL_SLACK))
    return 0


if __name__ == "__main__":
    sys.exit(main())
