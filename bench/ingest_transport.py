#!/usr/bin/env python3
"""Ingest drain throughput per MQTT transport (aiomqtt/paho vs gmqtt), 1 and N workers.

A focused companion of ``bench/ingest.py`` (which also measures the broker ceiling and
Node-RED): it answers one question — which ``[ingest] transport`` drains a queued backlog
into PostgreSQL faster, with nothing lost — and shows where the machine's CPU goes.

For every (transport, workers) pair a persistent MQTT session group is created on a
private Mosquitto, then the backlog (``device_sim.loadgen.generate_mix``: telemetry 70 %,
positions 15 %, scans 10 %, fills 5 %, all QoS 1, real devices and tags of the seeded bench
city) is published once — the broker queues a copy per group — and each group in turn
drains its copy while the row counts are polled. Reported per run: sustained rows/s
(10 %→90 % of the backlog), overall rows/s, lost messages (rows per kind vs sent), batch
commit latency p50/p99/max and rows per batch from the workers' own metrics, and the CPU
seconds spent by the workers, PostgreSQL and Mosquitto during the drain.

``--profile DIR`` attaches py-spy (``pip install py-spy``) to worker 0 of every run and
writes its collapsed stacks plus a short self/inclusive-time summary.

It uses its own database (default ``cylwatch_bench_transport``, a copy of the seeded bench
city of ``bench/ingest.py`` without its time series) because it truncates the time-series
tables between runs and must not disturb another benchmark using ``cylwatch_bench``.

Run: ``python bench/ingest_transport.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# this folder holds bench/ingest.py, named like the `ingest` package: never shadow it
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench_transport"
TABLES = ("telemetry", "positions", "fills", "events", "dead_letters", "alerts")
SCAN_KINDS = ("dispatch", "deliver", "return", "transfer", "receive")
POLL_S = 0.25


# ---------------------------------------------------------------------- database


async def _connect(dsn: str) -> Any:
    import asyncpg

    return await asyncpg.connect(dsn)


async def check_city(dsn: str) -> int:
    conn = await _connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM cylinders"))
    finally:
        await conn.close()


async def load_city(dsn: str, seed: int) -> Any:
    from device_sim.runner import city_today
    from device_sim.world import load_city as _load
    from server.kernel.settings import load_settings

    settings = load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})
    conn = await _connect(dsn)
    try:
        return await _load(
            conn,
            today=city_today(settings),
            legal_cap=200_000,
            illegal_cap=10,
            customers_cap=500,
            seed=seed,
        )
    finally:
        await conn.close()


async def truncate(dsn: str) -> None:
    conn = await _connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        await conn.execute("VACUUM ANALYZE cylinders")
    finally:
        await conn.close()


async def counts(conn: Any) -> dict[str, int]:
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM telemetry) AS telemetry,
                  (SELECT count(*) FROM positions) AS position,
                  (SELECT count(*) FROM fills) AS fill,
                  (SELECT count(*) FROM events WHERE kind = ANY($1::text[])) AS scan,
                  (SELECT count(*) FROM dead_letters) AS dead_letters""",
        list(SCAN_KINDS),
    )
    return dict(row)


# ---------------------------------------------------------------------- workers


def _worker_child(env: dict[str, str], index: int, ready: Any, stop: Any, results: Any) -> None:
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
    os.environ.update(env)
    import logging

    logging.basicConfig(level=logging.WARNING)
    import uvloop

    uvloop.run(_worker_async(index, ready, stop, results))


async def _worker_async(index: int, ready: Any, stop: Any, results: Any) -> None:
    from ingest.worker import IngestWorker
    from realtime.bus import EventBus
    from server.db.pool import create_pool
    from server.kernel.settings import load_settings

    settings = load_settings()
    pool = await create_pool(settings)
    worker = IngestWorker(settings, pool, EventBus(), worker_index=index)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 60)
    ready.set()
    await asyncio.to_thread(stop.wait)
    await worker.stop()
    await task
    snap = worker.metrics.snapshot()
    lat = sorted(worker.metrics.batch_latency._samples)
    snap["batch_max_s"] = lat[-1] if lat else None
    snap["batch_p50_s"] = lat[len(lat) // 2] if lat else None
    snap["batch_p99_s"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    snap["batch_rows"] = worker.metrics.batch_rows
    snap["batches"] = worker.metrics.batches
    results.put((index, snap))
    await pool.close()


@dataclass
class Group:
    transport: str
    n: int
    dsn: str
    mqtt_url: str
    extra_env: dict[str, str]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    procs: list[Any] = field(default_factory=list)
    stop: Any = None
    results: Any = None

    @property
    def name(self) -> str:
        return f"{self.transport}, {self.n} worker{'s' if self.n > 1 else ''}"

    def env(self) -> dict[str, str]:
        return {
            "CYL_DATABASE_URL": self.dsn,
            "CYL_MQTT_URL": self.mqtt_url,
            "CYL_INGEST__TRANSPORT": self.transport,
            "CYL_INGEST__CLIENT_ID_PREFIX": f"bt-{self.tag}",
            "CYL_INGEST__SHARED_GROUP": f"bt{self.tag}",
            "CYL_INGEST__HOUSEKEEPING_INTERVAL_S": "3600",
            **self.extra_env,
        }

    def start(self, timeout: float = 120) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.results = ctx.Queue()
        readies = []
        self.procs = []
        for i in range(self.n):
            ready = ctx.Event()
            p = ctx.Process(
                target=_worker_child,
                args=(self.env(), i, ready, self.stop, self.results),
                daemon=True,
            )
            p.start()
            self.procs.append(p)
            readies.append(ready)
        for r in readies:
            if not r.wait(timeout):
                raise TimeoutError("an ingest worker did not subscribe in time")

    def finish(self, timeout: float = 120) -> list[dict[str, Any]]:
        self.stop.set()
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < self.n and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                out.append(self.results.get(timeout=1)[1])
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
        self.procs = []
        return out


# ---------------------------------------------------------------------- CPU accounting


def _cpu_of(pred: Any) -> float:
    import psutil

    total = 0.0
    for p in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if pred(p):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def cpu_snapshot(worker_pids: list[int], broker_pid: int | None, db: str) -> dict[str, float]:
    """CPU seconds so far of the workers, the PostgreSQL backends serving database *db*
    (other databases' work on a shared machine is not counted) and the broker."""
    import psutil

    out = {"workers": 0.0, "postgres": 0.0, "mosquitto": 0.0}
    for pid in worker_pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out["workers"] += t.user + t.system
    out["postgres"] = _cpu_of(lambda p: f" {db} " in " ".join(p.info["cmdline"] or ()))
    if broker_pid:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(broker_pid).cpu_times()
            out["mosquitto"] = t.user + t.system
    return out


# ---------------------------------------------------------------------- profile


def summarize_collapsed(path: Path, top: int = 40) -> str:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n_s = line.rpartition(" ")
        if not stack:
            continue
        n = int(n_s)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    lines = [f"samples: {total}", "", "self %  function"]
    for f, n in self_c.most_common(top):
        lines.append(f"{100 * n / total:5.1f}  {f}")
    lines += ["", "incl %  function"]
    for f, n in incl.most_common(top * 2):
        lines.append(f"{100 * n / total:5.1f}  {f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- drain


@dataclass
class Result:
    name: str
    sent: dict[str, int]
    samples: list[tuple[float, int]] = field(default_factory=list)
    final: dict[str, int] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def stored(self) -> int:
        return sum(v for k, v in self.final.items() if k != "dead_letters")

    def sustained(self) -> float | None:
        n = self.total
        a = next(((t, c) for t, c in self.samples if c >= 0.1 * n), None)
        b = next(((t, c) for t, c in self.samples if c >= 0.9 * n), None)
        if a and b and b[0] > a[0]:
            return (b[1] - a[1]) / (b[0] - a[0])
        return None

    def overall(self) -> float | None:
        nz = [(t, c) for t, c in self.samples if c > 0]
        if len(nz) < 2:
            return None
        last = next(i for i, (_, c) in enumerate(nz) if c == nz[-1][1])
        (t0, c0), (t1, c1) = nz[0], nz[last]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def lost(self) -> dict[str, int]:
        return {
            k: self.sent[k] - self.final.get(k, 0)
            for k in self.sent
            if self.sent[k] != self.final.get(k, 0)
        }


async def watch(dsn: str, r: Result, bound_s: float) -> None:
    conn = await _connect(dsn)
    t0 = time.perf_counter()
    stalled: float | None = None
    last = -1
    try:
        while (now := time.perf_counter() - t0) < bound_s:
            c = await counts(conn)
            total = sum(v for k, v in c.items() if k != "dead_letters")
            r.samples.append((now, total))
            r.final = c
            if total >= r.total:
                break
            if total == last and total > 0:
                stalled = stalled or now
                if now - stalled > 20:
                    r.note += f" stalled at {total:,} for 20 s"
                    break
            else:
                stalled = None
            last = total
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()


def drain(
    g: Group,
    dsn: str,
    sent: dict[str, int],
    bound_s: float,
    broker_pid: int | None,
    profile_dir: Path | None,
) -> Result:
    asyncio.run(truncate(dsn))
    r = Result(g.name, dict(sent))
    g.start()
    pids = [p.pid for p in g.procs]
    spy: subprocess.Popen[bytes] | None = None
    raw: Path | None = None
    if profile_dir is not None and shutil.which("py-spy"):
        profile_dir.mkdir(parents=True, exist_ok=True)
        raw = profile_dir / f"{g.transport}-{g.n}w.collapsed"
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pids[0]),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    db = dsn.rsplit("/", 1)[-1].split("?")[0]
    before = cpu_snapshot(pids, broker_pid, db)
    t0 = time.perf_counter()
    asyncio.run(watch(dsn, r, bound_s))
    r.seconds = time.perf_counter() - t0
    after = cpu_snapshot(pids, broker_pid, db)
    r.cpu = {k: after[k] - before[k] for k in after}
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
    r.metrics = g.finish()
    phases: Counter[str] = Counter()
    for m in r.metrics:
        phases.update(m.get("batch_phases_s") or {})
    r.phases = dict(phases)
    if raw is not None and raw.exists():
        summary = summarize_collapsed(raw)
        (raw.with_suffix(".txt")).write_text(summary)
    return r


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def ms(v: Any) -> str:
    return "-" if v is None else f"{float(v) * 1000:.0f}"


def render(
    results: list[Result],
    info: dict[str, str],
    args: argparse.Namespace,
    sent: dict[str, int],
    payload: float,
) -> str:
    lines = [
        f"`python bench/ingest_transport.py --messages {args.messages} "
        f"--workers {','.join(map(str, args.workers))} --transports {','.join(args.transports)}`"
        + (
            f" (env: {' '.join(f'{k}={v}' for k, v in sorted(args.extra_env.items()))})"
            if args.extra_env
            else ""
        ),
        "",
        f"Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('ram')}; "
        f"{info.get('python', '')}; {info.get('postgresql', '')}; {info.get('mosquitto', '')}; "
        f"load at start {info.get('load', '?')}.",
        f"Backlog: {sum(sent.values()):,} QoS 1 messages "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(sent.items()))}), "
        f"{payload:.0f} bytes average payload, queued in each group's persistent session.",
        "",
        "| transport, workers | sustained msg/s | overall msg/s | lost | batch p50 / p99 / max ms"
        " | rows/batch | CPU s: workers / PostgreSQL / Mosquitto | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.metrics
        p50 = max((x.get("batch_p50_s") or 0 for x in m), default=None)
        p99 = max((x.get("batch_p99_s") or 0 for x in m), default=None)
        mx = max((x.get("batch_max_s") or 0 for x in m), default=None)
        rows = sum(x.get("batch_rows", 0) for x in m)
        batches = sum(x.get("batches", 0) for x in m)
        lost = r.lost()
        lost_s = "none" if not lost else ", ".join(f"{k} {v:,}" for k, v in lost.items())
        lines.append(
            f"| {r.name} | {fmt(r.sustained())} | {fmt(r.overall())} | {lost_s}{r.note} | "
            f"{ms(p50)} / {ms(p99)} / {ms(mx)} | {rows / batches if batches else 0:,.0f} | "
            f"{r.cpu.get('workers', 0):.1f} / {r.cpu.get('postgres', 0):.1f} / "
            f"{r.cpu.get('mosquitto', 0):.1f} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from device_sim.loadgen import PrivateBroker, generate_mix, machine_info, publish_all

    have = asyncio.run(check_city(args.dsn))
    if not have:
        print(
            f"{args.dsn} holds no cylinders: clone the seeded bench city, e.g.\n"
            "  createdb cylwatch_bench_transport && pg_dump -d cylwatch_bench"
            " --exclude-table-data='telemetry*' --exclude-table-data='positions*'"
            " --exclude-table-data='fills*' --exclude-table-data='events*'"
            " --exclude-table-data='alert*' --exclude-table-data=dead_letters"
            " | psql -q -d cylwatch_bench_transport",
            file=sys.stderr,
        )
        return 1
    city = asyncio.run(load_city(args.dsn, args.seed))
    msgs = generate_mix(city, args.messages, seed=args.seed, now_ms=time.time_ns() // 10**6)
    sent: dict[str, int] = {}
    for m in msgs:
        sent[m.kind] = sent.get(m.kind, 0) + 1
    payload = sum(len(m.payload) for m in msgs) / len(msgs)
    conn_v = asyncio.run(_pg_version(args.dsn))
    info = machine_info(conn_v)
    print(json.dumps(info, ensure_ascii=False), flush=True)
    results: list[Result] = []
    with PrivateBroker() as broker:
        broker_pid = broker._proc.pid if broker._proc else None
        groups = [
            Group(t, n, args.dsn, broker.url, args.extra_env)
            for t in args.transports
            for n in args.workers
        ]
        for g in groups:  # create every group's persistent session, then go offline
            g.start()
            g.finish()
        t0 = time.perf_counter()
        res = publish_all(
            broker.port, [(m.topic, m.payload) for m in msgs], client_id="bt-pub", timeout=900
        )
        print(f"published {res.acked:,} in {time.perf_counter() - t0:.1f} s", flush=True)
        for g in groups:
            r = drain(
                g,
                args.dsn,
                sent,
                args.timeout,
                broker_pid,
                Path(args.profile) if args.profile else None,
            )
            results.append(r)
            print(
                f"{r.name}: stored {r.stored:,}/{r.total:,} sustained {fmt(r.sustained())} "
                f"overall {fmt(r.overall())} lost {r.lost() or 'none'} cpu {r.cpu} "
                f"batch phases s { ({k: round(v, 1) for k, v in r.phases.items()}) } "
                f"{r.note}",
                flush=True,
            )
    print()
    print(render(results, info, args, sent, payload))
    return 0


async def _pg_version(dsn: str) -> str:
    conn = await _connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dsn", default=DEFAULT_DSN, help="seeded bench database")
    p.add_argument("--messages", type=int, default=100_000, help="backlog size")
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    p.add_argument("--transports", type=lambda s: s.split(","), default=["aiomqtt", "gmqtt"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120, help="bound per drain, seconds")
    p.add_argument("--profile", metavar="DIR", help="py-spy worker 0 of each run into DIR")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra [ingest] setting for the workers, e.g. batch_max_rows=2000",
    )
    args = p.parse_args(argv)
    args.extra_env = {}
    for kv in args.sets:
        k, _, v = kv.partition("=")
        args.extra_env[f"CYL_INGEST__{k.upper()}"] = v
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
