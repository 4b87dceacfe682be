"""Faults on the serving side (issue 10 item 1): a `cylwatch serve` process as deployed,
killed with SIGKILL and started again on its port, and the live events a separate ingest
process would publish to it.

A server process holds no state of its own that a dashboard needs (docs/ARCHITECTURE.md
§6): sessions are in PostgreSQL, live rows arrive through Redis, and a page's
``LiveSocket`` (dashboard/static/js/lib/ws.js) sends its subscriptions again after any
reconnect, whose snapshot frames bring the state back. What a kill -9 may cost is the time
until the page is subscribed again — the systemd unit's ``RestartSec``, the process's start
and the page's reconnect back-off — which `tests/chaos/test_serving_faults.py` measures.

The process is started as an operator starts it (`cylwatch serve --no-ingest`,
docs/DEPLOY.md), on a database, a Redis database number and a Redis channel given by the
caller, so a fault never reaches another test's or the machine's own server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import aiohttp
import psutil
from redis.asyncio import Redis

from realtime.bridge import RedisPublisher, attach_publisher, bridge_channel
from realtime.bus import EventBus
from server.chaos.services import ROOT, START_TIMEOUT_S, STOP_TIMEOUT_S
from server.kernel.events import Event
from server.kernel.settings import Settings

__all__ = [
    "RESTART_DELAY_S",
    "LivePublisher",
    "ServeProcess",
    "login_token",
    "serve_env",
]

RESTART_DELAY_S: Final = 2.0
"""How long a killed server stays down before it is started again: ``RestartSec=2`` of
deploy/systemd/cylwatch-serve@.service, the unit that restarts it in production."""
POLL_S: Final = 0.05
"""How often readiness is asked: fine enough for the recovery times measured (seconds)."""
HEALTH_TIMEOUT_S: Final = 1.0
"""One ``/healthz`` request; a process that is still importing does not answer at all."""


def serve_env(
    base: Mapping[str, str], database_url: str, redis_url: str, channel: str
) -> dict[str, str]:
    """`cylwatch serve`'s environment: *base* (the caller's settings as environment
    variables) with the database, the Redis URL and the live channel of the fault."""
    env = dict(base)
    env.update(
        {
            "CYL_DATABASE_URL": database_url,
            "CYL_REDIS_URL": redis_url,
            "CYL_REALTIME__REDIS_CHANNEL": channel,
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


class ServeProcess:
    """`cylwatch serve --no-ingest` on a fixed loopback port, as an operator starts it."""

    def __init__(self, env: Mapping[str, str], port: int, log: Path) -> None:
        self.env = dict(env)
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        """``time.monotonic()`` of the last start (the Popen)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        command = [sys.executable, "-m", "server.cli", "serve", "--no-ingest"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    async def wait_ready(self, within_s: float = START_TIMEOUT_S) -> float:
        """Wait until ``/healthz`` answers 200; the ``time.monotonic()`` it first did."""
        deadline = time.monotonic() + within_s
        client_timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=client_timeout) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return time.monotonic()
                if self.proc is not None and self.proc.poll() is not None:
                    break
                await asyncio.sleep(POLL_S)
        raise RuntimeError(f"cylwatch serve on :{self.port} not ready:\n{self.log_tail()}")

    def kill(self) -> float:
        """SIGKILL: no shutdown handler runs, no socket is closed politely. The moment of
        the kill (``time.monotonic()``)."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("no running cylwatch serve to kill")
        at = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT_S)
        return at

    def rss(self) -> int:
        """The process's resident memory in bytes (0 when it is not running)."""
        if self.proc is None:
            return 0
        try:
            return int(psutil.Process(self.proc.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def peers(self) -> set[int]:
        """Local ports of the clients this process still holds a TCP connection to."""
        if self.proc is None:
            return set()
        try:
            conns = psutil.Process(self.proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return set()
        return {c.raddr.port for c in conns if c.raddr and c.laddr.port == self.port}

    async def metric(self, name: str) -> float:
        """One sample of this process's ``/metrics`` (open to loopback): the value of the
        unlabelled series *name* (0 when absent)."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.url}/metrics") as resp,
        ):
            text = await resp.text()
        for line in text.splitlines():
            series, _, value = line.partition(" ")
            if series == name:
                return float(value)
        return 0.0

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


async def login_token(url: str, username: str, password: str) -> str:
    """A bearer token of *username* (``POST /api/v1/auth/login``), for ``/ws?token=``."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/api/v1/auth/login", json={"username": username, "password": password}
        ) as resp,
    ):
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"login of {username} refused: {resp.status} {body}")
        return str(body["token"])


class LivePublisher:
    """Live events sent to every server process through Redis, as a separate `cylwatch
    ingest` sends them (`realtime.bridge.attach_publisher`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bus = EventBus()
        self._publisher: RedisPublisher | None = None

    async def start(self) -> None:
        self._publisher = await attach_publisher(self.bus, self.settings)

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    async def wait_subscribers(self, n: int, within_s: float = START_TIMEOUT_S) -> float:
        """Wait until *n* server processes listen on the channel (a restarted one has
        subscribed again); the ``time.monotonic()`` they did."""
        channel = bridge_channel(self.settings)
        redis = Redis.from_url(self.settings.services.redis_url)
        deadline = time.monotonic() + within_s
        try:
            while time.monotonic() < deadline:
                counts = dict(await redis.pubsub_numsub(channel))
                if counts.get(channel.encode(), 0) >= n:
                    return time.monotonic()
                await asyncio.sleep(POLL_S)
        finally:
            await redis.aclose()
        raise RuntimeError(f"{n} subscriber(s) never appeared on {channel}")

    async def aclose(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.aclose()
