"""Load generation for the benchmarks: pre-generated message mixes, a fast publisher, a
private broker, and a description of the machine the figures were taken on.

The benchmarks must measure the consumer, not the producer: on a 2-core machine a Python
publisher generating JSON on the fly competes with the broker, PostgreSQL and the worker
for the same cores. So messages are generated up front (``generate_mix``), published with
paho's raw client (no per-message await), and — for throughput — queued in the
consumers' persistent sessions before the consumer is started, so the consumer drains a
backlog as fast as it can.

Every figure is taken against a broker the benchmark starts itself on a spare loopback
port (``PrivateBroker``), with its own config: the machine's shared broker may serve
other work, and its default queue limit (1000 messages per offline session) would drop
most of a backlog.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS, SCAN_ACTION_NAMES

from .payloads import (
    fill_msg,
    new_msg_id,
    position_msg,
    scan_msg,
    telemetry_msg,
)
from .world import City

__all__ = [
    "BENCH_MIX",
    "Message",
    "PrivateBroker",
    "PublishResult",
    "free_port",
    "generate_mix",
    "machine_info",
    "publish_all",
]

BENCH_MIX: Final[dict[str, float]] = {
    "telemetry": 0.70,
    "position": 0.15,
    "scan": 0.10,
    "fill": 0.05,
}
"""Share of each kind in the ingest benchmark: valves dominate a real city's traffic,
vehicles report while driving, scans and fills are the rarer business events (and the
most expensive to store: they move cylinder state and evaluate rules)."""

BROKER_CONF: Final = """\
# written by device_sim.loadgen for a benchmark; loopback only
listener {port} 127.0.0.1
allow_anonymous true
persistence false
# a benchmark queues its whole backlog in offline persistent sessions
max_queued_messages 0
max_queued_bytes 0
# MQTT 3.1.1 clients (Node-RED) get no Receive Maximum: do not throttle them to 20
max_inflight_messages 0
# small request/reply packets (fill authorization) must not wait on Nagle + delayed ACKs,
# as in config/mosquitto.conf
set_tcp_nodelay true
"""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    kind: str
    msg_id: str


def generate_mix(
    city: City,
    n: int,
    *,
    seed: int,
    now_ms: int,
    mix: dict[str, float] | None = None,
    spread_ms: int = 60_000,
) -> list[Message]:
    """*n* valid messages from real devices and tags of *city*, kinds drawn by *mix*.

    Device timestamps spread over the last *spread_ms* (a backlog is recent traffic);
    every message has its own UUID4, so "rows stored == messages sent" is the no-loss
    check. Fills are of legal cylinders at a gun of the owner company's station (the
    platform would have allowed them).
    """
    weights = mix or BENCH_MIX
    rng = random.Random(seed)
    kinds = rng.choices(list(weights), list(weights.values()), k=n)
    valves = [c for c in city.legal if c.smart_valve] or city.legal
    guns = [g for g in city.guns if g.site_code]
    stations = {s.code: s for s in city.stations}
    out: list[Message] = []
    for i, kind in enumerate(kinds):
        ts = now_ms - spread_ms + (i * spread_ms) // max(1, n)
        mid = new_msg_id(rng)
        if kind == "telemetry":
            c = rng.choice(valves)
            m = telemetry_msg(
                c.tag,
                mid,
                ts,
                lat=c.lat,
                lon=c.lon if c.lat is not None else None,
                valve=rng.choice(("open", "closed")),
                leak_ppm=rng.uniform(0, 30),
                temp_c=rng.uniform(0, 35),
                battery_pct=rng.uniform(20, 100),
                rssi=rng.uniform(-110, -60),
            )
        elif kind == "position":
            v = rng.choice(city.vehicles)
            home = stations.get(v.site_code or "") or rng.choice(city.stations)
            m = position_msg(
                v.device_id,
                mid,
                ts,
                home.lat + rng.uniform(-0.03, 0.03),
                home.lon + rng.uniform(-0.03, 0.03),
                speed_kmh=rng.uniform(0, 50),
                heading=rng.uniform(0, 359),
                cargo=[c.tag for c in rng.sample(valves, 3)],
                qos=1,
            )
        elif kind == "scan":
            h = rng.choice(city.handhelds)
            c = rng.choice(city.cylinders_of(h.company_id or 0) or valves)
            action = rng.choice(SCAN_ACTION_NAMES)
            customers = city.customers_of(h.company_id or 0)
            cust = rng.choice(customers).account_no if customers and action == "deliver" else None
            m = scan_msg(h.device_id, mid, ts, c.tag, action, site=h.site_code, customer=cust)
        else:
            g = rng.choice(guns)
            st = stations.get(g.site_code or "")
            own = city.cylinders_of(st.company_id) if st else []
            c = rng.choice(own or valves)
            m = fill_msg(
                g.device_id,
                mid,
                ts,
                c.tag,
                rng.uniform(14.0, 14.9),
                ts_start=ts - 90_000,
                operator="BENCH-OP",
                tare_kg=c.tare_kg,
                pre_check=dict.fromkeys(PRE_CHECK_ITEMS, True),
                post_check=dict.fromkeys(POST_CHECK_ITEMS, True),
            )
        out.append(Message(m.topic, m.payload, kind, mid))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PrivateBroker:
    """A Mosquitto on a spare loopback port, stopped on exit."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="cylwatch-bench-mqtt-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(BROKER_CONF.format(port=self.port))
        with (Path(self._dir.name) / "mosquitto.log").open("wb") as log:
            # the child keeps its own copy of the descriptor; ours is closed at once
            self._proc = subprocess.Popen(  # noqa: S603 - our own config, fixed arguments
                [exe, "-c", str(conf)], stdout=log, stderr=log
            )
        wait_port(self.port)
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._dir.cleanup()

    def rss_mb(self) -> float | None:
        """The broker's resident memory (a backlog lives in it)."""
        if self._proc is None:
            return None
        try:
            import psutil

            return float(psutil.Process(self._proc.pid).memory_info().rss) / 2**20
        except Exception:  # informational only
            return None


@dataclass(frozen=True, slots=True)
class PublishResult:
    sent: int
    acked: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds > 0 else 0.0


def publish_all(
    port: int,
    messages: Sequence[tuple[str, bytes]],
    *,
    client_id: str,
    qos: int = 1,
    inflight: int = 1000,
    timeout: float = 300.0,
) -> PublishResult:
    """Publish everything as fast as the broker acknowledges it (paho, its own thread)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    acked = 0
    lock = threading.Lock()
    window = threading.Semaphore(inflight)
    total = len(messages)

    def on_publish(client: object, userdata: object, mid: int, rc: object, props: object) -> None:
        nonlocal acked
        with lock:
            acked += 1
        window.release()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    # our own window keeps paho's internal queue empty: with a deep queue paho was seen to
    # stop sending after ~65k messages, leaving the rest unacknowledged
    c.max_inflight_messages_set(inflight + 10)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        for topic, payload in messages:
            if qos and not window.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
            c.publish(topic, payload, qos=qos)
        while qos and acked < total and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
    finally:
        c.disconnect()
        c.loop_stop()
    return PublishResult(total, acked if qos else total, elapsed)


def machine_info(pg_version: str | None = None) -> dict[str, str]:
    """CPU model, cores, RAM, OS, Python, PostgreSQL, Mosquitto, date, and the load average
    when the run started (other work on a shared machine skews every figure)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(Exception):
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    mosq = "unknown"
    with contextlib.suppress(Exception):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        out = subprocess.run(  # noqa: S603 - fixed arguments
            [exe, "-h"], capture_output=True, text=True, timeout=5, check=False
        )
        mosq = (out.stdout or out.stderr).splitlines()[0].strip()
    pg = f"PostgreSQL {pg_version}" if pg_version else "PostgreSQL (version unknown)"
    load = "unknown"
    with contextlib.suppress(OSError):
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return {
        "load": load,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": pg,
        "mosquitto": mosq,
    }
