#!/usr/bin/env python3
"""Fill authorization latency (docs/ARCHITECTURE.md §10: p99 ≤ 50 ms publish-to-reply at 500 requests/s
with 1M cylinders).

On 127.0.0.1 only, bounded in time:

1. a database with 1,000,000 seeded cylinders (default ``cylwatch_bench_1m``; seeded with
   ``server.seed.seed_city`` when empty — a few minutes, once);
2. a private Mosquitto on a spare port and one ingest worker process (``IngestWorker``)
   subscribed to it, as in production;
3. an open-loop load generator: requests are published on a fixed schedule (``--rate``
   per second for ``--duration`` seconds) whatever the replies do — a closed loop would
   slow down with the system and hide its queueing. Each request is a real gun of a
   seeded station and, ``--deny-share`` of the time, a cylinder that must be refused
   (another company's, overdue, scrapped, or an unknown tag), else one of the station's
   company in date;
4. replies are matched by ``msg_id``; latency is publish → reply received, both stamped in
   the generator's process. A request with no reply within ``--lost-after`` seconds is
   lost. The first ``--warmup`` seconds are sent but not counted.

``--background-rate N`` adds the worker's everyday work (issue 14 item 3): a second process
publishes N valve telemetry messages/s (QoS 1, real tags of the city, paced every 20 ms) to the
same broker for the whole run, so the worker answering the guns is also storing N messages/s in
batches. The report adds what was published, stored and the worker's batch latency.

Where a reply's time goes (issue 14 item 3) is printed at the end of every run: the worker's
own phases (queued behind the event loop, waiting for an authorizer connection, the query,
the publish) and its event-loop lag, from its metrics (``ingest.metrics``); and, from a
separate process so that the worker's loop is not in the figure, the same query
(``AUTH_SQL``) timed on a connection of its own (``--probe-rate`` per second) while
``pg_stat_activity`` is sampled for what the authorizer's backends wait on (their
``wait_event``, e.g. a row lock held by a batch).

Run ``python bench/fill_auth.py [--background-rate N] [--record]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

_spec = importlib.util.spec_from_file_location("bench_ingest", HERE / "ingest.py")
assert _spec is not None and _spec.loader is not None
bi = importlib.util.module_from_spec(_spec)
sys.modules["bench_ingest"] = bi
_spec.loader.exec_module(bi)

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench_1m"
TARGET_P99_MS = 50.0
MARK = "cylwatch-bench:fill-auth"


def plan_requests(city: Any, n: int, deny_share: float, seed: int) -> list[tuple[str, str, str]]:
    """(gun id, tag, expected) for *n* requests."""
    from device_sim.behaviour import UNKNOWN_PREFIX

    rng = random.Random(seed)
    stations = {s.code: s for s in city.stations}
    guns = [g for g in city.guns if g.site_code in stations]
    out: list[tuple[str, str, str]] = []
    for i in range(n):
        gun = rng.choice(guns)
        company = stations[gun.site_code].company_id
        if rng.random() < deny_share:
            kind = rng.choice(("not_owner", "overdue_inspection", "scrapped", "unknown_tag"))
            if kind == "not_owner":
                cands = [
                    c
                    for c in rng.sample(city.legal, 20)
                    if not city.may_fill(c.company_id, company)
                ]
                if cands:
                    out.append((gun.device_id, cands[0].tag, kind))
                    continue
            if kind == "overdue_inspection" and city.overdue:
                out.append((gun.device_id, rng.choice(city.overdue).tag, kind))
                continue
            if kind == "scrapped" and city.scrapped:
                out.append((gun.device_id, rng.choice(city.scrapped).tag, kind))
                continue
            out.append((gun.device_id, f"{UNKNOWN_PREFIX}{i:08d}", "unknown_tag"))
        else:
            own = city.cylinders_of(company)
            out.append((gun.device_id, rng.choice(own).tag, "allow"))
    return out


def run_load(
    port: int, plan: list[tuple[str, str, str]], rate: float, lost_after: float
) -> tuple[list[float], dict[str, Any], dict[str, float], dict[str, Any]]:
    """Publish *plan* open-loop at *rate*; returns send times, replies, receive times, stats."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from device_sim.payloads import auth_msg, new_msg_id

    rng = random.Random(7)
    ids = [new_msg_id(rng) for _ in plan]
    sent_at: list[float] = [0.0] * len(plan)
    replies: dict[str, Any] = {}
    recv_at: dict[str, float] = {}
    lock = threading.Lock()
    ready = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        now = time.perf_counter()
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with lock:
            mid = body.get("msg_id")
            if mid not in recv_at:
                recv_at[mid] = now
                replies[mid] = body

    def on_subscribe(*a: Any) -> None:
        ready.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-auth-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.on_subscribe = on_subscribe
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("cyl/v1/gun/+/auth/reply", qos=1)
    ready.wait(10)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-auth-pub", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.5)
    t0 = time.perf_counter() + 0.1
    late = 0
    for i, (gun, tag, _) in enumerate(plan):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.005:
            late += 1
        m = auth_msg(gun, ids[i], time.time_ns() // 10**6, tag, "BENCH-OP")
        sent_at[i] = time.perf_counter()
        pub.publish(m.topic, m.payload, qos=1)
    span = time.perf_counter() - t0
    time.sleep(lost_after + 0.5)
    pub.disconnect()
    pub.loop_stop()
    sub.disconnect()
    sub.loop_stop()
    return (
        sent_at,
        {"ids": ids, "replies": replies},
        recv_at,
        {"late_sends": late, "send_span_s": span},
    )


BACKGROUND_TICK_S = 0.02
"""The background publisher sends rate × 20 ms messages per tick: steady at the scale of a
batch (≤ 200 ms), without one ``sleep`` per message."""


def background_messages(
    city: Any, rate: float, seconds: float, seed: int
) -> list[tuple[str, bytes]]:
    """Valve telemetry of real tags for *seconds* at *rate*, device times around now."""
    from device_sim.loadgen import generate_mix

    n = int(rate * seconds)
    msgs = generate_mix(
        city,
        n,
        seed=seed + 1,
        now_ms=int(time.time() * 1000) + int(seconds * 1000),
        mix={"telemetry": 1.0},
        spread_ms=int(seconds * 1000),
    )
    return [(m.topic, m.payload) for m in msgs]


def _background_child(
    port: int, messages: list[tuple[str, bytes]], rate: float, stop: Any, out: Any
) -> None:
    """Publish *messages* at *rate* per second until they run out or *stop* is set."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    acked = 0
    lock = threading.Lock()

    def on_publish(*a: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-auth-bg", protocol=mqtt.MQTTv5)
    # 0: no limit — with a limit paho walks every queued message on each PUBACK (quadratic
    # at thousands a second: the publisher fell behind and never finished)
    c.max_inflight_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    per_tick = max(1, round(rate * BACKGROUND_TICK_S))
    t0 = time.perf_counter()
    sent = behind = 0
    tick = 0
    while sent < len(messages) and not stop.is_set():
        due = t0 + tick * BACKGROUND_TICK_S
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -BACKGROUND_TICK_S:
            behind += 1
        for topic, payload in messages[sent : sent + per_tick]:
            c.publish(topic, payload, qos=1)
        sent = min(len(messages), sent + per_tick)
        tick += 1
    span = time.perf_counter() - t0
    deadline = time.monotonic() + 10
    while acked < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    out.put({"sent": sent, "acked": acked, "seconds": span, "ticks_behind": behind})


PROBE_SAMPLE_S = 0.02
"""``pg_stat_activity`` is read every 20 ms: 50 samples a second see a wait of a few ms often
enough to count it, at a cost the database does not notice."""


def _probe_child(dsn: str, asks: list[tuple[str, str]], rate: float, stop: Any, out: Any) -> None:
    """The authorizer's query from a process of its own, and its backends' wait events."""
    asyncio.run(_probe(dsn, asks, rate, stop, out))


async def _probe(dsn: str, asks: list[tuple[str, str]], rate: float, stop: Any, out: Any) -> None:
    import datetime as dt

    import asyncpg

    from ingest.auth import AUTH_SQL

    query_conn = await asyncpg.connect(dsn)
    watch_conn = await asyncpg.connect(dsn)
    times: list[float] = []
    waits: dict[str, int] = {}
    samples = busy = 0

    async def ask() -> None:
        rng = random.Random(3)
        today = dt.date.today()
        while not stop.is_set():
            gun, tag = rng.choice(asks)
            t = time.perf_counter()
            await query_conn.fetchrow(AUTH_SQL, gun, tag, today)
            times.append(time.perf_counter() - t)
            await asyncio.sleep(1 / rate)

    async def watch() -> None:
        nonlocal samples, busy
        own = (query_conn.get_server_pid(), watch_conn.get_server_pid())
        while not stop.is_set():
            rows = await watch_conn.fetch(
                "SELECT pid, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'active' AND query LIKE '%FROM (VALUES (1)) AS one%'"
            )
            samples += 1
            for r in rows:
                if r["pid"] in own:
                    continue
                busy += 1
                waits[r["w"]] = waits.get(r["w"], 0) + 1
            await asyncio.sleep(PROBE_SAMPLE_S)

    await asyncio.gather(ask(), watch())
    await query_conn.close()
    await watch_conn.close()
    out.put({"times": times, "waits": waits, "samples": samples, "busy": busy})


class _WorkerCpu:
    """CPU seconds of the worker processes and of their children (the reply process), all
    threads, from start to :meth:`read`."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.procs = [psutil.Process(pid) for pid in pids]
        self.t0 = time.perf_counter()
        self.cpu0 = self._cpu()

    def _cpu(self) -> dict[tuple[int, bool], float]:
        """(pid, is a child) → CPU seconds so far."""
        out: dict[tuple[int, bool], float] = {}
        for proc in self.procs:
            try:
                family = [(proc, False)] + [(c, True) for c in proc.children(recursive=True)]
            except Exception:  # gone: nothing more to count
                continue
            for member, child in family:
                try:
                    times = member.cpu_times()
                except Exception:
                    continue
                out[(member.pid, child)] = times.user + times.system
        return out

    def read(self) -> tuple[float, float, float]:
        """(worker CPU s, its children's CPU s, wall s)."""
        now = self._cpu()
        used = {False: 0.0, True: 0.0}
        for key, v in now.items():
            used[key[1]] += v - self.cpu0.get(key, 0.0)
        return used[False], used[True], time.perf_counter() - self.t0


def percentile(values: list[float], q: float) -> float | None:
    from device_sim.behaviour import percentile as p

    return p(values, q)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dsn", default=DEFAULT_DSN)
    ap.add_argument("--cylinders", type=int, default=1_000_000, help="seed size if empty")
    ap.add_argument("--rate", type=float, default=500.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds not counted")
    ap.add_argument("--deny-share", type=float, default=0.2)
    ap.add_argument("--lost-after", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--background-rate",
        type=float,
        default=0.0,
        help="valve telemetry messages/s the same worker ingests meanwhile (issue 14)",
    )
    ap.add_argument(
        "--probe-rate",
        type=float,
        default=20.0,
        help="the authorizer's query per second from a separate process (0: off)",
    )
    ap.add_argument("--record", nargs="?", const=str(ROOT / "docs" / "BENCHMARKS.md"), default=None)
    args = ap.parse_args(argv)
    if "127.0.0.1" not in args.dsn and "localhost" not in args.dsn:
        ap.error("benchmarks run only against 127.0.0.1")

    from device_sim.loadgen import PrivateBroker, machine_info

    asyncio.run(bi.ensure_city(args.dsn, args.cylinders))
    from bench.common import load_sim_city

    city = asyncio.run(
        load_sim_city(args.dsn, args.seed, legal_cap=100_000, illegal_cap=5_000, customers_cap=10)
    )
    n_cyl = asyncio.run(_count(args.dsn))
    total = int(args.rate * (args.duration + args.warmup))
    plan = plan_requests(city, total, args.deny_share, args.seed)
    background: list[tuple[str, bytes]] = []
    if args.background_rate > 0:
        background = background_messages(
            city, args.background_rate, args.duration + args.warmup + 2, args.seed
        )
    del city
    info = machine_info(asyncio.run(bi.pg_version(args.dsn)))
    bg_result: dict[str, Any] = {}
    probe_result: dict[str, Any] = {}
    with PrivateBroker() as broker:
        group = bi.WorkerGroup(1, args.dsn, broker.url, f"auth{random.randrange(10**6)}")
        group.start()
        worker_cpu = _WorkerCpu([proc.pid for proc in group.procs])
        bg_proc = None
        try:
            print(
                f"1 ingest worker on {broker.url}; {total:,} requests at {args.rate:.0f}/s "
                f"({n_cyl:,} cylinders); background telemetry {args.background_rate:,.0f}/s",
                flush=True,
            )
            if background:
                ctx = mp.get_context("spawn")
                bg_stop, bg_out = ctx.Event(), ctx.Queue()
                bg_proc = ctx.Process(
                    target=_background_child,
                    args=(broker.port, background, args.background_rate, bg_stop, bg_out),
                    daemon=True,
                )
                bg_proc.start()
                time.sleep(1.0)  # the worker reaches its steady state before guns ask
            probe_proc = None
            if args.probe_rate > 0:
                ctx = mp.get_context("spawn")
                probe_stop, probe_out = ctx.Event(), ctx.Queue()
                asks = [(g, t) for g, t, _ in plan[:: max(1, len(plan) // 2000)]]
                probe_proc = ctx.Process(
                    target=_probe_child,
                    args=(args.dsn, asks, args.probe_rate, probe_stop, probe_out),
                    daemon=True,
                )
                probe_proc.start()
            run_started_ms = int(time.time() * 1000) - 1000
            sent_at, rep, recv_at, load = run_load(broker.port, plan, args.rate, args.lost_after)
            if probe_proc is not None:
                probe_stop.set()
                try:
                    probe_result = probe_out.get(timeout=30)
                except Exception:  # a bench reports what it has
                    probe_result = {}
                probe_proc.join(5)
                if probe_proc.is_alive():
                    probe_proc.kill()
            if bg_proc is not None:
                bg_stop.set()
                try:
                    bg_result = bg_out.get(timeout=60)
                except Exception:  # a bench reports what it has
                    bg_result = {"note": "the background publisher did not report within 60 s"}
                bg_proc.join(10)
                if bg_proc.is_alive():
                    bg_proc.kill()
                time.sleep(2.0)  # the worker commits what it received
        finally:
            cpu_s, child_cpu_s, wall_s = worker_cpu.read()
            metrics = group.finish()
    skip = int(args.rate * args.warmup)
    lat: list[float] = []
    lost = late_replies = 0
    wrong = 0
    decisions: dict[str, int] = {}
    ids = rep["ids"]
    for i in range(skip, len(plan)):
        mid = ids[i]
        t = recv_at.get(mid)
        if t is None or t - sent_at[i] > args.lost_after:
            lost += 1
            late_replies += t is not None
            continue
        lat.append((t - sent_at[i]) * 1000)
        body = rep["replies"][mid]
        decisions[body.get("decision", "?")] = decisions.get(body.get("decision", "?"), 0) + 1
        exp = plan[i][2]
        ok = (
            body.get("decision") == "allow"
            if exp == "allow"
            else (body.get("decision") == "deny" and exp in (body.get("reasons") or []))
        )
        wrong += not ok
    counted = len(plan) - skip
    p = {q: percentile(lat, q) for q in (0.5, 0.95, 0.99)}
    mx = max(lat) if lat else None
    met = p[0.99] is not None and p[0.99] <= TARGET_P99_MS and lost == 0
    m = metrics[0] if metrics else {}

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    srv99 = m.get("auth_p99_s")
    load_end = "/".join(f"{x:.1f}" for x in os.getloadavg())

    def trio(d: dict[str, Any] | None) -> str:
        d = d or {}
        return " / ".join(
            "-" if d.get(k) is None else f"{d[k] * 1000:.1f}" for k in ("p50", "p99", "max")
        )

    phases = m.get("auth_phases_s") or {}
    decided = asyncio.run(_decision_ms(args.dsn, ids[skip:], run_started_ms))
    cpu_note = (
        f" CPU in {wall_s:.1f} s: worker {cpu_s:.1f} s ({cpu_s / wall_s:.0%} of one core),"
        f" reply process {child_cpu_s:.1f} s ({child_cpu_s / wall_s:.0%})."
        if wall_s
        else ""
    )
    where = [
        f"- Receipt → decision in the worker, as stored with each counted request "
        f"({len(decided):,} found): p50 {ms(percentile(decided, 0.5))}, p99 "
        f"{ms(percentile(decided, 0.99))}, max {ms(max(decided) if decided else None)}.",
        "- Where a reply's time went (worker's metrics, ms p50 / p99 / max over its last "
        "4,096 samples): "
        + "; ".join(f"{name} {trio(phases.get(name))}" for name in phases)
        + f"; event-loop lag {trio(m.get('loop_lag_s'))} (a 10 ms sleep's overshoot)"
        + (
            f", on the reply process's loop {trio(m.get('reply_loop_lag_s'))}."
            if m.get("reply_loop_lag_s")
            else "."
        )
        + cpu_note,
    ]
    if probe_result.get("times"):
        pt = [t * 1000 for t in probe_result["times"]]
        waits = probe_result.get("waits") or {}
        busy = probe_result.get("busy", 0)
        where.append(
            f"- The same query from a separate process ({len(pt):,} at "
            f"{args.probe_rate:g}/s, its own connection): p50 {ms(percentile(pt, 0.5))}, p99 "
            f"{ms(percentile(pt, 0.99))}, max {ms(max(pt))}. The worker's authorizer "
            f"backends seen active in {busy:,} of {probe_result.get('samples', 0):,} "
            "samples of pg_stat_activity, waiting on: "
            + (
                ", ".join(f"{k} {v:,}" for k, v in sorted(waits.items(), key=lambda kv: -kv[1]))
                or "nothing"
            )
            + "."
        )
    lines = [
        "## Fill authorization",
        "",
        f"Command: `python bench/fill_auth.py --rate {args.rate:.0f} --duration "
        f"{args.duration:.0f}"
        + (f" --background-rate {args.background_rate:.0f}" if args.background_rate else "")
        + f"` ({info['date']})",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; "
        f"{info['postgresql']}; {info['mosquitto']} (private instance); load average at "
        f"start {info['load']}, at the end {load_end}; one ingest worker "
        "process; generator, broker, worker and PostgreSQL on the same 2 cores.",
        "",
        f"Load: {n_cyl:,} cylinders; open loop, {args.rate:.0f} requests/s for "
        f"{args.duration:.0f} s after a {args.warmup:.0f} s warm-up (not counted); "
        f"{args.deny_share:.0%} must be refused (other company's, overdue, scrapped, unknown "
        f"tag); real guns of seeded stations. Sending took {load['send_span_s']:.1f} s for "
        f"{len(plan):,} requests ({load['late_sends']:,} sent > 5 ms behind schedule).",
        "",
        "| requests counted | replies | p50 | p95 | p99 | max | lost (> "
        f"{args.lost_after:g} s) | wrong decision | target p99 ≤ {TARGET_P99_MS:.0f} ms |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {counted:,} | {len(lat):,} ({', '.join(f'{k} {v:,}' for k, v in decisions.items())})"
        f" | {ms(p[0.5])} | {ms(p[0.95])} | {ms(p[0.99])} | {ms(mx)} | {lost:,}"
        f"{f' ({late_replies:,} answered late)' if late_replies else ''} | {wrong:,} | "
        f"{'met' if met else 'MISSED'} |",
        "",
        *(
            [
                f"- Background: {bg_result.get('sent', 0):,} valve telemetry messages published"
                f" at {args.background_rate:,.0f}/s over {bg_result.get('seconds', 0):.1f} s "
                f"({bg_result.get('acked', 0):,} acknowledged by the broker, "
                f"{bg_result.get('ticks_behind', 0)} publisher ticks behind schedule); the worker"
                f" stored {m.get('stored', 0):,} messages in {m.get('batches', 0):,} batches"
                f" (batch commit p50 {ms((m.get('batch_p50_s') or 0) * 1000)}, p99 "
                f"{ms((m.get('batch_p99_s') or 0) * 1000)}, max "
                f"{ms((m.get('batch_max_s') or 0) * 1000)}; phases s "
                f"{m.get('batch_phases_s', {})})."
            ]
            if bg_result
            else []
        ),
        "- Worker's own view (receipt → PUBACK of its reply, its window of recent "
        f"samples): p99 {ms(srv99 * 1000 if srv99 is not None else None)}; "
        f"{m.get('auth_requests', 0):,} requests answered, {m.get('auth_denied', 0):,} "
        "denied; requests are also stored through the normal batches.",
        *where,
    ]
    if not met:
        lines.append(
            "- **Falls short of docs/ARCHITECTURE.md §10** on this run: see the figures above."
        )
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    if args.record:
        _record(Path(args.record), report)
        print(f"recorded in {args.record}")
    return 0


def _record(path: Path, section: str) -> None:
    bi.record(path, section, MARK)


async def _decision_ms(dsn: str, msg_ids: list[str], since_ms: int) -> list[float]:
    """The worker's receipt → decision time of each request, as stored with it."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT (details->>'latency_ms')::float8 AS ms FROM events"
            " WHERE msg_id = ANY($1::text[]) AND ts >= to_timestamp($2 / 1000.0)"
            " AND kind IN ('fill_authorized', 'fill_refused')",
            msg_ids,
            since_ms,
        )
    finally:
        await conn.close()
    return [r["ms"] for r in rows if r["ms"] is not None]


async def _count(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM cylinders"))
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
