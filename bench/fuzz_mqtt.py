#!/usr/bin/env python3
"""MQTT fuzzer at scale (issue 10 item 2): ≥ 100,000 bad payloads over every topic, with
good traffic interleaved, against a real ingest worker; then every message accounted for.

What it does, all on 127.0.0.1:

1. a database of its own (``cylwatch_fuzz_mqtt_<pid>`` by default, dropped at the end unless
   ``--keep``), migrated, with the little city of ``tests/ingest/conftest.py`` (the devices
   and tags the good messages name);
2. a private Mosquitto on a spare port with ``config/mosquitto.conf`` (the machine's broker
   carries other people's traffic);
3. an in-process :class:`ingest.worker.IngestWorker` (with its fill-authorization reply
   process), as ``cylwatch ingest`` runs it;
4. the payloads of ``tests/ingest/fuzz_payloads.py`` — random bytes, mutated valid
   messages, huge (100–200 KB), nested thousands deep, wrong encodings, wrong types — and
   good messages, shuffled, published at QoS 1;
5. checks (``tests/ingest/fuzz_run.py``): every good message stored exactly once, every bad
   one exactly one dead letter, nothing else dead-lettered, the worker still storing.

Also tried: ``--oversize`` packets past the broker's ``max_packet_size`` (262,144 bytes),
each on its own connection: the broker must refuse them (disconnect) before any worker.

Run: ``nice -n 19 python bench/fuzz_mqtt.py`` (``--help`` for sizes). Prints one JSON
summary; exit status 1 when anything was lost, doubled or the worker died.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

ADMIN_DSN = os.environ.get("CYL_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
OVERSIZE_BYTES = 300_000
"""A packet this big is past config/mosquitto.conf's max_packet_size (262,144)."""


async def _oversize(url: str, count: int) -> int:
    """Publish *count* oversize packets, each on its own connection; how many the broker
    refused (the connection dropped, nothing acknowledged)."""
    import aiomqtt

    from ingest.transport import parse_mqtt_url

    addr = parse_mqtt_url(url)
    refused = 0
    for i in range(count):
        try:
            async with aiomqtt.Client(
                addr.host, addr.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=5
            ) as client:
                body = f'{{"fz":"oversize-{i}","pad":"'.encode() + b"x" * OVERSIZE_BYTES + b'"}'
                await client.publish("cyl/v1/gun/GUN-A1/fill", body, qos=1)
        except aiomqtt.MqttError:
            refused += 1
    return refused


async def main(args: argparse.Namespace) -> int:
    import asyncpg

    from server.db.migrate import migrate
    from server.db.pool import create_pool
    from server.kernel.settings import load_settings
    from tests.ingest.conftest import Mosquitto, running_worker, seed_world
    from tests.ingest.fuzz_payloads import traffic
    from tests.ingest.fuzz_run import run, worker_task

    name = args.database or f"cylwatch_fuzz_mqtt_{os.getpid()}"
    dsn = urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()
    broker = Mosquitto()
    broker.start()
    environ = dict(os.environ)
    environ.update(
        {
            "CYL_DATABASE_URL": dsn,
            "CYL_MQTT_URL": broker.url,
            "CYL_INGEST__SHARED_GROUP": f"fuzz{os.getpid()}",
            "CYL_INGEST__CLIENT_ID_PREFIX": f"fuzz-{os.getpid()}",
            "CYL_INGEST__HOUSEKEEPING_INTERVAL_S": "3600",
        }
    )
    settings = load_settings(environ=environ)
    summary: dict[str, object] = {"database": name, "seed": args.seed}
    try:
        await migrate(settings, dsn)
        pool = await create_pool(settings, dsn=dsn)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await seed_world(conn)
            t0 = time.monotonic()
            messages = traffic(args.bad, args.good, args.seed)
            summary["generate_s"] = round(time.monotonic() - t0, 1)
            print(f"{len(messages):,} messages generated; publishing ...", flush=True)
            async with running_worker(settings, pool) as worker:
                task = worker_task()
                assert task is not None
                out = await run(
                    broker.url, pool, worker, task, messages, args.settle_timeout, progress=True
                )
                summary.update(out.summary())
                if args.oversize:
                    summary["oversize_tried"] = args.oversize
                    summary["oversize_refused_by_broker"] = await _oversize(
                        broker.url, args.oversize
                    )
                    summary["worker_alive_after_oversize"] = not task.done() and bool(
                        worker.metrics.connected
                    )
                summary["rejected_metric"] = worker.metrics.dead_letters.total()
            examples = [
                {"family": m.family, "topic": m.topic, "head": m.payload[:80].hex()}
                for m in out.bad_missing[:5]
            ]
            if examples:
                summary["bad_missing_examples"] = examples
            if out.unexpected_dead_letters:
                summary["unexpected_examples"] = out.unexpected_dead_letters[:5]
        finally:
            await pool.close()
    finally:
        broker.close()
        if not args.keep:
            conn = await asyncpg.connect(ADMIN_DSN)
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            finally:
                await conn.close()
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    ok = out.ok() and summary.get("worker_alive_after_oversize", True)
    return 0 if ok else 1


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bad", type=int, default=100_000, help="bad payloads (default 100,000)")
    ap.add_argument("--good", type=int, default=10_000, help="good messages mixed in")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--oversize", type=int, default=20, help="packets past the broker's limit")
    ap.add_argument("--database", help="database name (default cylwatch_fuzz_mqtt_<pid>)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument(
        "--settle-timeout", type=float, default=900.0, help="seconds to wait for the worker"
    )
    return ap.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
