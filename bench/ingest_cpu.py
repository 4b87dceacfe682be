#!/usr/bin/env python3
"""The ingest worker's own cost per message and per batch, without the broker (issue 14).

Why: on the shared 2-core development machine wall-clock throughput moves with other
sessions' load by 2–3× (docs/BENCHMARKS.md "Ingest"), so a change to the worker cannot be
judged by ``bench/ingest.py`` alone. This script drives the real :class:`ingest.worker.IngestWorker`
— parse, batch, ``BatchStore.store``, ordered acks, live events on the bus, each event encoded
as the Redis bridge would (``realtime.bridge.encode``) — from an in-memory transport, against a
seeded bench database, every batch in a transaction that is **rolled back**, so rounds are
repeatable and the database does not drift. It reports:

- **instructions per message** (``--callgrind``: the script re-runs itself under
  ``valgrind --tool=callgrind`` with instrumentation switched on only around the measured
  rounds; instruction counts do not depend on the machine's load);
- CPU seconds of the worker's process and of its PostgreSQL backends per message
  (``/proc/<pid>/stat``; less load-sensitive than wall time, not immune);
- the worker's ``batch_phases_s`` per batch (wall time: PostgreSQL's share moves with load).

Messages are the bench mix of ``device_sim.loadgen.generate_mix`` (telemetry 70 %, positions
15 %, scans 10 %, fills 5 %; real devices and tags of the seeded city). All messages of a round
are handed to the worker at once, like a backlog drain, so batches fill to
``[ingest] batch_max_rows``. Staging tables are created (committed) once per connection
before measuring, as a long-lived worker has them, and the database is vacuumed before each
round (rolled-back row versions would otherwise pile up and slow the state phase).

Run: ``python bench/ingest_cpu.py [--messages 10000] [--rounds 3] [--callgrind]
[--profile out.pstats]``. Nothing is written to docs/BENCHMARKS.md: runs are recorded by hand
with the load average this prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/ingest.py is named like the `ingest` package: never let the script's folder shadow it
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

DEFAULT_DSN: Final = "postgresql://postgres@127.0.0.1:5432/cylwatch_bench_ingest"
FEED_CHUNK: Final = 100
"""Messages the in-memory transport hands over per event-loop turn (a socket read's worth)."""
BATCH_MAX_MS: Final = 600_000
"""``[ingest] batch_max_ms`` of the bench: every batch is cut by size (messages per round
should be a multiple of ``batch_max_rows``)."""
PHASES: Final = ("lookups", "rows", "insert", "rules", "state", "alerts", "commit")
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- in-memory transport


class MemoryTransport:
    """The worker's :class:`ingest.transport.Transport` fed from lists (no broker)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.acked = 0
        self.all_acked = asyncio.Event()
        self.expect = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def subscribe(self, topic: str, qos: int) -> None:
        return None

    async def messages(self) -> AsyncIterator[Any]:
        while True:
            batch = await self.queue.get()
            for i, incoming in enumerate(batch, 1):
                yield incoming
                if i % FEED_CHUNK == 0:
                    await asyncio.sleep(0)

    def ack(self, mid: int, qos: int) -> bool:
        self.acked += 1
        if self.acked >= self.expect:
            self.all_acked.set()
        return True

    async def publish(
        self, topic: str, payload: bytes, qos: int, *, correlation_data: bytes | None = None
    ) -> None:
        return None


class _RolledBack:
    """``conn.transaction()`` that always rolls back (the bench leaves the city as it was)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._tr: Any = None

    async def __aenter__(self) -> None:
        self._tr = self._conn.transaction()
        await self._tr.start()

    async def __aexit__(self, *exc: object) -> bool:
        await self._tr.rollback()
        return False


class _Conn:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def transaction(self) -> _RolledBack:
        return _RolledBack(self._conn)


class RollbackPool:
    """The worker's pool, every transaction rolled back; remembers the backends' pids."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.backends: set[int] = set()
        self._staged: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Conn]:
        from ingest.records import TABLES

        async with self._pool.acquire() as conn:
            pid = conn.get_server_pid()
            self.backends.add(pid)
            if pid not in self._staged:
                for spec in TABLES.values():
                    await conn.execute(spec.stage_ddl())
                self._staged.add(pid)
            yield _Conn(conn)


def proc_cpu_s(pid: int) -> float:
    """utime + stime of *pid* in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---------------------------------------------------------------- callgrind


def callgrind_toggle(on: bool) -> None:
    if os.environ.get("CYL_BENCH_UNDER_CALLGRIND") != "1":
        return
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        capture_output=True,
    )


def run_under_callgrind(argv: list[str]) -> int:
    """Re-run this script under callgrind; print instructions per message."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="cyl-callgrind-")) / "callgrind.out"
    child = [a for a in argv if a != "--callgrind"]
    env = {**os.environ, "CYL_BENCH_UNDER_CALLGRIND": "1", "PYTHONHASHSEED": "0"}
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        *child,
    ]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        return proc.returncode
    m = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
    n = re.search(r"measured messages: (\d+)", proc.stdout)
    if not m or not n:
        sys.stderr.write(proc.stderr[-2000:])
        return 1
    ir, msgs = int(m.group(1)), int(n.group(1))
    print(f"callgrind: {ir:,} instructions in the measured rounds ({out})")
    print(f"callgrind: {ir / msgs:,.0f} instructions per message over {msgs:,} messages")
    return 0


# ---------------------------------------------------------------- the bench


async def load_city(dsn: str, seed: int) -> Any:
    import asyncpg

    from device_sim.world import load_city as load
    from server.kernel.clock import city_today
    from server.kernel.settings import load_settings

    settings = load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})
    conn = await asyncpg.connect(dsn)
    try:
        return await load(
            conn,
            today=city_today(settings),
            legal_cap=200_000,
            illegal_cap=10,
            customers_cap=500,
            seed=seed,
        )
    finally:
        await conn.close()


async def bench(args: argparse.Namespace) -> int:
    from bench.common import bench_settings, load_line, machine_line, prepare_city
    from device_sim.loadgen import generate_mix
    from ingest.runtime import tune_gc
    from ingest.transport import Incoming
    from ingest.worker import IngestWorker
    from realtime.bridge import encode
    from realtime.bus import EventBus
    from server.db.pool import create_pool

    if args.batch:
        os.environ["CYL_INGEST__BATCH_MAX_ROWS"] = str(args.batch)
    # batches cut by size only: under valgrind the reader is ~50× slower and the 200 ms cut
    # would change the number of batches, hence the per-batch share of the count
    os.environ["CYL_INGEST__BATCH_MAX_MS"] = str(BATCH_MAX_MS)
    settings = bench_settings(args.dsn)
    await prepare_city(settings, args.cylinders)
    city = await load_city(args.dsn, args.seed)
    msgs = generate_mix(
        city, args.messages, seed=args.seed, now_ms=int(time.time() * 1000), spread_ms=60_000
    )
    kinds = Counter(m.kind for m in msgs)
    # the sampled city (~10⁶ Python objects) is no part of a worker's heap: a full garbage
    # collection would walk it and charge the worker for it
    del city
    gc.collect()
    incoming = [Incoming(m.topic, m.payload, 1, i + 1, False) for i, m in enumerate(msgs)]
    pool = await create_pool(settings)
    async with pool.acquire() as conn:
        machine = await machine_line(conn)
        # steady state: a running city's devices are online; the seed leaves them offline,
        # and with every batch rolled back each round would announce them all coming online
        await conn.execute("UPDATE devices SET online = true WHERE active AND online IS NOT TRUE")
    rpool = RollbackPool(pool)
    bus = EventBus()
    encoded = [0, 0]
    channels: Counter[str] = Counter()

    def bridge(event: Any) -> None:  # what realtime.bridge's publisher does per event
        encoded[0] += 1
        encoded[1] += len(encode(event, "bench"))
        channels[event.channel] += 1

    bus.listen(None, bridge)
    transport = MemoryTransport()
    worker = IngestWorker(
        settings,
        rpool,
        bus,
        client_id="bench-cpu",
        transport_factory=lambda: transport,
    )
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 30)
    if args.gc_young is not None:
        os.environ["CYL_INGEST__GC_YOUNG_THRESHOLD"] = str(args.gc_young)
    # as `cylwatch ingest` does once its worker is ready (ingest/runtime.py)
    thresholds = tune_gc(bench_settings(args.dsn)) if args.gc_young != -1 else gc.get_threshold()
    print(machine, flush=True)
    print(f"garbage collector thresholds {thresholds}", flush=True)
    print(
        f"messages per round: {len(msgs):,} ({', '.join(f'{k} {v:,}' for k, v in kinds.items())});"
        f" batch_max_rows {settings.ingest.batch_max_rows}; rounds {args.rounds}"
        f" (+{args.warmup} warm-up)",
        flush=True,
    )
    profiler = cProfile.Profile() if args.profile else None
    rows: list[dict[str, Any]] = []
    measured = 0
    for r in range(args.warmup + args.rounds):
        warm = r < args.warmup
        # rolled-back batches leave dead row versions behind (29k on the 1,300-row devices
        # table after a dozen rounds): every round starts from a vacuumed database
        async with pool.acquire() as conn:
            await conn.execute("VACUUM")
        transport.expect = transport.acked + len(incoming)
        transport.all_acked.clear()
        phases0 = Counter(worker.metrics.batch_phases)
        batches0 = worker.metrics.batches
        events0 = encoded[0]
        channels.clear()
        pg0 = sum(proc_cpu_s(p) for p in rpool.backends)
        load0 = load_line()
        if not warm:
            callgrind_toggle(True)
            if profiler:
                profiler.enable()
        w0, c0 = time.perf_counter(), time.process_time()
        transport.queue.put_nowait(incoming)
        await transport.all_acked.wait()
        while worker._commits:  # the last batch's live events follow its acks
            await asyncio.wait(set(worker._commits))
        w1, c1 = time.perf_counter(), time.process_time()
        if not warm:
            if profiler:
                profiler.disable()
            callgrind_toggle(False)
            measured += len(incoming)
        pg1 = sum(proc_cpu_s(p) for p in rpool.backends)
        batches = worker.metrics.batches - batches0
        phases = Counter(worker.metrics.batch_phases)
        phases.subtract(phases0)
        row: dict[str, Any] = {
            "round": "warm-up" if warm else str(r - args.warmup + 1),
            "wall_s": w1 - w0,
            "cpu_s": c1 - c0,
            "pg_cpu_s": pg1 - pg0,
            "batches": batches,
            "events": encoded[0] - events0,
            "phases": {k: phases.get(k, 0.0) / max(batches, 1) for k in PHASES},
            "load": f"{load0} → {load_line().removeprefix('load average ')}",
        }
        rows.append(row)
        n = len(incoming)
        print(
            f"round {row['round']}: wall {row['wall_s']:.2f} s, worker CPU"
            f" {row['cpu_s'] * 1e6 / n:.1f} µs/msg, PostgreSQL CPU {row['pg_cpu_s'] * 1e6 / n:.1f}"
            f" µs/msg, {batches} batches, {row['events'] / n:.2f} live events/msg; phases ms per"
            " batch: "
            + ", ".join(f"{k} {v * 1000:.1f}" for k, v in row["phases"].items())
            + f"; {row['load']}; events {dict(channels)}",
            flush=True,
        )
    await worker.stop()
    await task
    await pool.close()
    done = [r for r in rows if r["round"] != "warm-up"]
    n = len(incoming)
    if done:
        med = statistics.median
        print(
            f"median of {len(done)} rounds: worker CPU {med(r['cpu_s'] for r in done) * 1e6 / n:.1f}"
            f" µs/msg, PostgreSQL CPU {med(r['pg_cpu_s'] for r in done) * 1e6 / n:.1f} µs/msg,"
            f" wall {med(r['wall_s'] for r in done) * 1e6 / n:.1f} µs/msg; phases ms per batch: "
            + ", ".join(f"{k} {med(r['phases'][k] for r in done) * 1000:.1f}" for k in PHASES)
        )
    print(f"measured messages: {measured}")
    if profiler and args.profile:
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dsn", default=DEFAULT_DSN, help="bench database (seeded if empty)")
    p.add_argument("--cylinders", type=int, default=100_000, help="seed size if empty")
    p.add_argument("--messages", type=int, default=10_000, help="messages per round")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds")
    p.add_argument("--warmup", type=int, default=1, help="rounds not measured")
    p.add_argument("--batch", type=int, default=0, help="override [ingest] batch_max_rows")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--callgrind", action="store_true", help="count instructions (valgrind)")
    p.add_argument(
        "--gc-young",
        type=int,
        help="override [ingest] gc_young_threshold (0: CPython's own; -1: no tuning at all,"
        " start-up objects not frozen either)",
    )
    p.add_argument("--profile", help="write a cProfile of the measured rounds here")
    args = p.parse_args(argv)
    if "127.0.0.1" not in args.dsn and "localhost" not in args.dsn:
        p.error("benchmarks run only against 127.0.0.1")
    if args.callgrind:
        return run_under_callgrind(argv)
    from bench.common import run

    result: list[int] = []

    async def go() -> None:
        result.append(await bench(args))

    run(go())
    return result[0] if result else 1


if __name__ == "__main__":
    sys.exit(main())
