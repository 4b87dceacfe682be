"""``cylwatch ingest --workers N`` and ``cylwatch ingest-retire --index K`` (the device
registry's broker commands are in ``server.cli_devices``).

``ingest`` runs N worker processes (multiprocessing *spawn*: a clean interpreter each, with
its own asyncpg pool and uvloop) and supervises them: a worker that dies — a crash, an
OOM kill, ``kill -9`` — is restarted with the same index, hence the same MQTT client id,
so it resumes its persistent broker session and receives the messages it had not
acknowledged. SIGTERM/SIGINT stop the workers gracefully (commit, ack, disconnect).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import signal
import sys
import time
from typing import Any, Final

from server.kernel.request_ids import configure_logging
from server.kernel.services import ServiceUnavailable, redact
from server.kernel.settings import Settings, load_settings

__all__ = ["add_commands"]

log = logging.getLogger(__name__)

RESTART_MIN_S: Final = 1.0
RESTART_MAX_S: Final = 30.0
STABLE_AFTER_S: Final = 60.0
"""A worker that ran this long before dying is restarted at once, not backed off."""
STOP_TIMEOUT_S: Final = 20.0


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="run MQTT ingest worker processes",
        description="Consume device messages (shared subscription), store them, answer fill "
        "authorization requests and raise alerts. Workers are supervised and restarted.",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--first-index",
        type=int,
        default=0,
        help="index of the first worker (client id suffix) when several machines "
        "run workers against one broker",
    )
    p.add_argument("--mqtt-url", help="override CYL_MQTT_URL")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus /metrics on PORT+index (0: off)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "ingest-retire",
        help="empty and retire the broker sessions of ingest workers no longer run",
        description="Run this after starting `cylwatch ingest` with fewer workers, once per"
        " removed index: the removed worker's sessions are members of the shared"
        " subscription, and the broker keeps queueing their share of the city's messages"
        " for [ingest] session_expiry_s, then drops it. Each session is resumed,"
        " unsubscribed, and what it held is stored like any batch (docs/DEPLOY.md §10).",
    )
    p.add_argument(
        "--index",
        type=int,
        action="append",
        required=True,
        help="a removed worker's index (repeat for several)",
    )
    p.add_argument("--mqtt-url", help="override CYL_MQTT_URL")
    p.set_defaults(func=cmd_ingest_retire)


# ---------------------------------------------------------------------- ingest


def _worker_process(
    config: str | None, index: int, mqtt_url: str | None, verbose: bool, metrics_port: int
) -> None:
    """Entry point of a spawned worker process."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s [ingest-{index}] %(levelname)s %(name)s: %(message)s",
    )
    settings = load_settings(config)
    configure_logging(
        settings.logging.format,
        level=logging.DEBUG if verbose else logging.INFO,
        tag=f"ingest-{index}",
    )
    try:
        import uvloop

        uvloop.run(_worker_main(settings, index, mqtt_url, metrics_port))
    except KeyboardInterrupt:
        pass


async def _worker_main(
    settings: Settings, index: int, mqtt_url: str | None, metrics_port: int
) -> None:
    from ingest.worker import IngestWorker
    from realtime.bus import EventBus
    from server.db.pool import create_pool

    delay = settings.ingest.reconnect_min_s
    while True:
        try:
            pool = await create_pool(settings)
            break
        except ServiceUnavailable as exc:
            log.warning("%s; retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.ingest.reconnect_max_s)
    bus = EventBus()
    bridge = await _start_bridge(settings, bus)
    worker = IngestWorker(settings, pool, bus, worker_index=index, mqtt_url=mqtt_url)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
    runner = await _serve_metrics(worker, bridge, metrics_port + index) if metrics_port else None
    gc_tuned = asyncio.create_task(_tune_gc_when_ready(worker, settings))
    try:
        await worker.run()
    finally:
        gc_tuned.cancel()
        if runner is not None:
            await runner.cleanup()
        await bridge.aclose()
        await pool.close()


async def _tune_gc_when_ready(worker: Any, settings: Settings) -> None:
    """Once the worker has connected and loaded what it keeps (ingest/runtime.py)."""
    from ingest.runtime import tune_gc

    await worker.ready.wait()
    log.info("garbage collector thresholds %s, start-up objects frozen", tune_gc(settings))


async def _start_bridge(settings: Settings, bus: Any) -> Any:
    """Forward this process's bus to Redis (realtime's bridge) so server processes see it.

    Returns the publisher (close it with ``aclose``). A worker without Redis still stores
    everything; only live views in other processes miss its events (the bridge itself
    retries Redis, counts what it drops, and the servers resync their clients).
    """
    from realtime.bridge import attach_publisher

    return await attach_publisher(bus, settings)


async def _serve_metrics(worker: Any, publisher: Any, port: int) -> Any:
    """The worker's figures and its publisher's (docs/WEBSOCKET.md "Resync": what it could not
    send to Redis) on ``/metrics``."""
    from aiohttp import web

    from realtime.metrics import publisher_lines

    async def metrics(_request: web.Request) -> web.Response:
        text = worker.metrics.render_prometheus() + publisher_lines(publisher)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    log.info("metrics on http://127.0.0.1:%d/metrics", port)
    return runner


class _Supervisor:
    """Keeps N spawned worker processes alive."""

    def __init__(self, args: argparse.Namespace, count: int, first: int) -> None:
        self.args = args
        self.ctx = multiprocessing.get_context("spawn")
        self.indexes = list(range(first, first + count))
        self.procs: dict[int, multiprocessing.process.BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.backoff: dict[int, float] = dict.fromkeys(self.indexes, RESTART_MIN_S)
        self.due: dict[int, float] = {}

    def start(self, index: int) -> None:
        proc = self.ctx.Process(
            target=_worker_process,
            args=(
                self.args.config,
                index,
                self.args.mqtt_url,
                self.args.verbose,
                self.args.metrics_port,
            ),
            name=f"cylwatch-ingest-{index}",
            daemon=False,
        )
        proc.start()
        self.procs[index] = proc
        self.started[index] = time.monotonic()
        log.info("ingest worker %d started (pid %s)", index, proc.pid)

    def check(self) -> None:
        now = time.monotonic()
        for index in self.indexes:
            proc = self.procs.get(index)
            if proc is not None and proc.is_alive():
                continue
            if proc is not None:
                ran = now - self.started[index]
                self.backoff[index] = (
                    RESTART_MIN_S
                    if ran > STABLE_AFTER_S
                    else min(self.backoff[index] * 2, RESTART_MAX_S)
                )
                log.warning(
                    "ingest worker %d (pid %s) exited with %s after %.0f s; restarting in %.0f s",
                    index,
                    proc.pid,
                    proc.exitcode,
                    ran,
                    self.backoff[index],
                )
                proc.close()
                del self.procs[index]
                self.due[index] = now + self.backoff[index]
            if now >= self.due.get(index, 0):
                self.due.pop(index, None)
                self.start(index)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker commits, acks and disconnects
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("ingest worker pid %s did not stop; killing it", proc.pid)
                proc.kill()
                proc.join(5)


async def cmd_ingest_retire(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.retire import retire_index
    from realtime.bus import EventBus
    from server.db.pool import create_pool

    if any(i < 0 for i in args.index):
        print("cylwatch ingest-retire: --index must be 0 or more", file=sys.stderr)
        return 2
    pool = await create_pool(settings)
    bus = EventBus()
    bridge = await _start_bridge(settings, bus)  # what it stores is live as from any worker
    try:
        for index in args.index:
            for drained in await retire_index(settings, pool, bus, index, args.mqtt_url):
                print(
                    f"{drained.client_id}: unsubscribed; {drained.messages} messages it held"
                    f" stored in {drained.seconds:.1f} s"
                )
    finally:
        await bridge.aclose()
        await pool.close()
    return 0


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from server.db.pool import connect

    if args.workers < 1:
        print("cylwatch ingest: --workers must be at least 1", file=sys.stderr)
        return 2
    conn = await connect(settings)  # a down database is one clear line, not N tracebacks
    await conn.close()
    url = args.mqtt_url or settings.services.mqtt_url
    log.info("ingest: %d worker(s) for %s", args.workers, redact(url))
    sup = _Supervisor(args, args.workers, args.first_index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            sup.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await asyncio.get_running_loop().run_in_executor(None, sup.stop)
    return 0
