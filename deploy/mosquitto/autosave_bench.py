"""What Mosquitto's autosave settings cost: QoS 1 publish throughput under each choice.

    python deploy/mosquitto/autosave_bench.py [--messages 20000]

Why (docs/DEPLOY.md §10): a broker killed with SIGKILL loses the
messages it accepted since its last save that no worker had acknowledged. Mosquitto 2.0
saves its whole in-memory state to one file each time, either every ``autosave_interval``
seconds or — with ``autosave_on_changes true`` — after that many changes (messages queued,
subscriptions, retained messages). This starts a throw-away broker per setting on a spare
loopback port (persistence in a temporary directory), publishes QoS 1 messages as fast as
one client can while the ingest-like subscriber (a persistent session) is online, and again
while it is offline so that every message is queued, and prints messages per second and the
size of the saved state. Nothing else on the machine is touched.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

VARIANTS = (
    ("every 30 s", "autosave_interval 30"),
    ("every 5 s", "autosave_interval 5"),
    ("on every change", "autosave_on_changes true\nautosave_interval 1"),
    ("every 100 changes", "autosave_on_changes true\nautosave_interval 100"),
    ("every 1000 changes", "autosave_on_changes true\nautosave_interval 1000"),
)
PAYLOAD = b'{"msg_id":"x","ts":1700000000000,"v":1.23456,"device":"VALVE-000123"}'
EVERY_CHANGE_MAX = 3000
"""Messages for the every-change setting: at ~100 msg/s more would take minutes."""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: str, port: int, setting: str) -> subprocess.Popen[bytes]:
    """A broker with persistence in *tmp*, the production queue limits and *setting*."""
    conf = Path(tmp) / "m.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {os.environ.get('USER', 'root')}\n"
        f"persistence true\npersistence_location {tmp}/\nmax_inflight_messages 0\n"
        f"max_queued_messages 1000000\nmax_queued_bytes 0\n{setting}\n"
    )
    broker = subprocess.Popen(  # noqa: S603 - the broker under test, our own arguments
        ["mosquitto", "-c", str(conf)],  # noqa: S607 - mosquitto from PATH
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return broker


def _ingest_session(port: int) -> mqtt.Client:
    """The ingest worker's persistent session, subscribed to every device topic."""
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ingest", clean_session=False)
    sub.connect("127.0.0.1", port)
    sub.subscribe("cyl/#", 1)
    return sub


def _publish(port: int, messages: int) -> float:
    """Publish *messages* QoS 1 telemetry messages as one device; seconds until all acked."""
    acked = 0
    done = threading.Event()

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1
        if acked == messages:
            done.set()

    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="device")
    pub.max_inflight_messages_set(1000)
    pub.on_publish = on_publish
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    t0 = time.perf_counter()
    for i in range(messages):
        pub.publish(f"cyl/v1/valve/{i % 100}/telemetry", PAYLOAD, qos=1)
    done.wait(900)
    seconds = time.perf_counter() - t0
    pub.loop_stop()
    pub.disconnect()
    return seconds if acked == messages else float("inf")


def _saved_bytes(tmp: str) -> int:
    saved = Path(tmp) / "mosquitto.db"
    return saved.stat().st_size if saved.exists() else 0


def run(setting: str, messages: int, online: bool) -> tuple[float, int]:
    """(messages per second acknowledged, bytes of the saved state) for one setting."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        broker = _start(tmp, port, setting)
        try:
            sub = _ingest_session(port)
            sub.loop_start()
            time.sleep(0.3)
            if not online:
                sub.loop_stop()
                sub.disconnect()
                time.sleep(0.2)
            rate = messages / _publish(port, messages)
            size = _saved_bytes(tmp)
            if online:
                sub.loop_stop()
                sub.disconnect()
            return rate, size
        finally:
            broker.terminate()
            broker.wait(30)


def save_seconds(queued: int) -> tuple[float, int]:
    """(seconds one save of the whole state takes, its bytes) with *queued* messages waiting
    for an offline ingest session: the broker is stopped with SIGTERM, which saves once and
    exits, and timed. Mosquitto is single-threaded: every periodic save stalls all clients —
    fill-authorization replies included — for this long."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        broker = _start(tmp, port, "autosave_interval 86400")
        try:
            sub = _ingest_session(port)
            sub.loop(1.0)
            sub.disconnect()
            _publish(port, queued)
            time.sleep(0.5)
            t0 = time.perf_counter()
            broker.terminate()
            broker.wait(300)
            return time.perf_counter() - t0, _saved_bytes(tmp)
        finally:
            if broker.poll() is None:
                broker.kill()
                broker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument(
        "--save-time",
        type=int,
        nargs="+",
        metavar="QUEUED",
        help="instead: time one save of the state with these many messages queued",
    )
    args = parser.parse_args()
    if args.save_time:
        print("| messages queued | one save | saved state |")
        print("|---:|---:|---:|")
        for queued in args.save_time:
            seconds, size = save_seconds(queued)
            print(f"| {queued:,} | {seconds:.2f} s | {size / 1e6:.1f} MB |", flush=True)
        return
    print("| autosave | subscriber | messages | QoS 1 msg/s | saved state |")
    print("|---|---|---:|---:|---:|")
    for label, setting in VARIANTS:
        n = (
            min(args.messages, EVERY_CHANGE_MAX)
            if "interval 1\n" in setting + "\n"
            else args.messages
        )
        for online in (True, False):
            rate, size = run(setting, n, online)
            who = "online" if online else "offline (all queued)"
            print(f"| {label} | {who} | {n:,} | {rate:,.0f} | {size / 1e6:.1f} MB |", flush=True)


if __name__ == "__main__":
    main()
