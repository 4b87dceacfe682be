"""``cylwatch ingest --workers N``, ``cylwatch devices broker-sync`` and
``cylwatch devices mosquitto-config --out DIR``.

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
import getpass
import logging
import multiprocessing
import multiprocessing.process
import signal
import sys
import time
from pathlib import Path
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

    d = sub.add_parser("devices", help="device registry tools")
    dsub = d.add_subparsers(dest="devices_command", metavar="ACTION")
    dsub.required = True
    p = dsub.add_parser(
        "mosquitto-config",
        help="write Mosquitto password and ACL files for every registered device",
        description="Writes DIR/passwd, DIR/acl and DIR/new-credentials.csv (passwords "
        "generated in this run, mode 0600: give it to the installer, then delete it). "
        "Existing devices keep their password unless --rotate.",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--rotate", action="store_true", help="new passwords for every device")
    p.add_argument(
        "--ingest-user",
        help="username of the ingest workers "
        "(default: the user in CYL_MQTT_URL, else cylwatch-ingest)",
    )
    p.set_defaults(func=cmd_mosquitto_config)
    p = dsub.add_parser(
        "broker-sync",
        help="bring the broker's clients and roles in line with the device registry",
        description="Through the broker's dynamic-security plugin ([services] mqtt_admin_url;"
        ' docs/SECURITY.md "Broker"): every active device gets a client holding only its own'
        " role, inactive ones are disabled and disconnected, clients of devices no longer"
        " registered are deleted; the ingest client gets the ingest role and the admin client"
        " the platform role. Idempotent: run it after setting up the broker, after a broker"
        " outage, and from a timer. Passwords it sets go to DIR/new-credentials-<time>.csv"
        " (mode 0600: give it to the installer, then delete it).",
    )
    p.add_argument("--out", required=True, type=Path, help="directory of the installers' CSV")
    p.add_argument("--rotate", action="store_true", help="new passwords for every device")
    p.add_argument(
        "--ingest-user",
        help="username of the ingest workers "
        "(default: the user in CYL_MQTT_URL, else cylwatch-ingest)",
    )
    p.add_argument("--admin-url", help="override [services] mqtt_admin_url")
    p.set_defaults(func=cmd_broker_sync)


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


# ---------------------------------------------------------------------- credentials


async def audit_device_credentials(
    conn: Any, device_ids: list[str], rotate: bool, command: str = "devices mosquitto-config"
) -> None:
    """One audit row per device given a new MQTT password, in the transaction that stores
    it (docs/SECURITY.md "Audit log"): who ran the command, which device, never the password."""
    if not device_ids:
        return
    await conn.execute(
        "INSERT INTO audit_log (username, action, entity, entity_id, details)"
        " SELECT 'cli', 'device.credentials', 'device', d,"
        " jsonb_build_object('command', $4::text, 'rotate', $2::boolean,"
        " 'os_user', $3::text)"
        " FROM unnest($1::text[]) AS d",
        device_ids,
        rotate,
        getpass.getuser(),
        command,
    )


async def cmd_mosquitto_config(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.credentials import (
        DeviceCredential,
        is_safe_id,
        mosquitto_hash,
        new_password,
        write_files,
    )
    from ingest.transport import parse_mqtt_url
    from server.db.pool import connect

    address = parse_mqtt_url(settings.services.mqtt_url)
    ingest_user = args.ingest_user or address.username or "cylwatch-ingest"
    ingest_password = address.password if ingest_user == address.username else None
    generated_ingest = ingest_password is None
    if ingest_password is None:
        ingest_password = new_password()
    conn = await connect(settings)
    try:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT id, device_id, kind, mqtt_password_hash FROM devices"
                " WHERE active ORDER BY device_id FOR UPDATE"
            )
            creds: list[DeviceCredential] = []
            skipped = []
            for r in rows:
                if not is_safe_id(r["device_id"]) or r["device_id"] == ingest_user:
                    skipped.append(r["device_id"])
                    continue
                if r["mqtt_password_hash"] and not args.rotate:
                    creds.append(
                        DeviceCredential(r["device_id"], r["kind"], r["mqtt_password_hash"])
                    )
                    continue
                password = new_password()
                hashed = mosquitto_hash(password)
                await conn.execute(
                    "UPDATE devices SET mqtt_password_hash = $2, updated_at = now() WHERE id = $1",
                    r["id"],
                    hashed,
                )
                creds.append(DeviceCredential(r["device_id"], r["kind"], hashed, password))
            await audit_device_credentials(
                conn, [c.device_id for c in creds if c.password is not None], args.rotate
            )
            paths = write_files(
                args.out,
                creds,
                ingest_user,
                mosquitto_hash(ingest_password),
                ingest_password if generated_ingest else None,
            )
    finally:
        await conn.close()
    fresh = sum(1 for c in creds if c.password is not None)
    print(
        f"wrote {paths['passwd']} and {paths['acl']} for {len(creds)} device(s);"
        f" {fresh} new password(s) in {paths['csv']} (mode 0600: hand it over, then delete)"
    )
    if skipped:
        print(
            f"skipped {len(skipped)} device id(s) unusable as MQTT usernames/topic levels:"
            f" {', '.join(skipped[:10])}",
            file=sys.stderr,
        )
    if generated_ingest:
        print(
            f"ingest user {ingest_user!r} got a new password (in the CSV): put it in"
            f" CYL_MQTT_URL as mqtt://{ingest_user}:<password>@host:port"
        )
    return 0


async def cmd_broker_sync(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.broker_sync import DeviceEntry, sync_broker
    from ingest.credentials import mosquitto_hash, write_installer_csv
    from ingest.dynsec import BrokerControl
    from ingest.transport import parse_mqtt_url
    from server.db.pool import connect

    admin_url = args.admin_url or settings.services.mqtt_admin_url
    if not admin_url:
        print(
            "cylwatch devices broker-sync: no admin client: set [services] mqtt_admin_url"
            " (CYL_SERVICES__MQTT_ADMIN_URL) or --admin-url",
            file=sys.stderr,
        )
        return 2
    address = parse_mqtt_url(settings.services.mqtt_url)
    ingest_user = args.ingest_user or address.username or "cylwatch-ingest"
    ingest_password = address.password if ingest_user == address.username else None
    conn = await connect(settings)
    try:
        rows = await conn.fetch("SELECT device_id, kind, active FROM devices ORDER BY device_id")
        devices = [DeviceEntry(r["device_id"], r["kind"], bool(r["active"])) for r in rows]
        async with BrokerControl(admin_url, settings.services.connect_timeout_s) as control:
            report = await sync_broker(
                control,
                devices,
                ingest_user=ingest_user,
                ingest_password=ingest_password,
                shared_group=settings.ingest.shared_group,
                admin_user=parse_mqtt_url(admin_url).username,
                rotate=args.rotate,
            )
        if report.passwords:
            # the file first: a password set on the broker but lost here locks a device out
            stamp = time.strftime("%Y%m%dT%H%M%S")
            args.out.mkdir(parents=True, exist_ok=True)
            csv_path = args.out / f"new-credentials-{stamp}.csv"
            write_installer_csv(csv_path, sorted(report.passwords.items()))
            # the same password's file-fallback hash, so both ways accept it
            await conn.executemany(
                "UPDATE devices SET mqtt_password_hash = $2, updated_at = now()"
                " WHERE device_id = $1",
                [(d, mosquitto_hash(pw)) for d, pw in report.passwords.items()],
            )
            await audit_device_credentials(
                conn, sorted(report.passwords), args.rotate, "devices broker-sync"
            )
            print(
                f"{len(report.passwords)} new password(s) in {csv_path}"
                " (mode 0600: hand it over, then delete)"
            )
    finally:
        await conn.close()
    for label, names in (
        ("created", report.created),
        ("enabled", report.enabled),
        ("disabled (and disconnected)", report.disabled),
        ("deleted", report.deleted),
        ("roles repaired", report.repaired),
    ):
        if names:
            print(
                f"{label}: {len(names)} ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"
            )
    if ingest_user in report.passwords:
        print(
            f"ingest client {ingest_user!r} got a new password (in the CSV): put it in"
            f" CYL_MQTT_URL as mqtt://{ingest_user}:<password>@host:port"
        )
    if report.ingest_password_set:
        print(f"ingest client {ingest_user!r}: password set from CYL_MQTT_URL")
    if report.admin_changed:
        print("the admin client now holds only the platform role (control topic, no data)")
    if report.skipped:
        print(
            f"skipped {len(report.skipped)} device id(s) unusable as MQTT usernames/topic"
            f" levels: {', '.join(report.skipped[:10])}",
            file=sys.stderr,
        )
    print(f"broker in line with {len(devices)} registered device(s)")
    return 0
