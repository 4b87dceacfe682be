"""The city's traffic during a chaos run, and the fill-authorization probe.

``SteadyPublisher`` publishes the simulator's everyday mix (``device_sim.loadgen``) at a fixed
rate with QoS 1 and records which messages the broker acknowledged (PUBACK with a success
code): those, and only those, the platform promises to store (docs/ARCHITECTURE.md §10). A
message published while the broker is down waits in the client and counts once it is acked.

``AuthProbe`` is a gun asking for authorization every ``interval`` seconds on its own
connection and noting when each answer arrives, so that "answers resume within seconds" is a
measured time (docs/ARCHITECTURE.md §5: the request and its reply topic).

Both use paho in its own thread: a fault must not be hidden by the test's event loop
stalling, nor the measurement by a publisher that awaits each message.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sim.loadgen import Message
from device_sim.payloads import auth_msg

__all__ = ["AuthProbe", "BusProbe", "SteadyPublisher"]

INFLIGHT: Final = 1000
"""Messages awaiting PUBACK on the wire; more wait in the client (a device's own buffer)."""
RECONNECT_S: Final = 1
"""A device retries its connection every second (paho takes whole seconds), so recovery
times measure the platform, not a device's back-off."""
BUS_POLL_S: Final = 0.05
"""How often the bus listener looks for a message or retries Redis: finer than any recovery
time it measures."""
PUBACK_FAILURE: Final = 0x80
"""MQTT v5 reason codes from 0x80 up refuse the message."""


def _client(client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.reconnect_delay_set(RECONNECT_S, RECONNECT_S)
    c.max_inflight_messages_set(INFLIGHT)
    c.max_queued_messages_set(0)
    return c


class SteadyPublisher:
    """Publish *messages* at *rate* per second from a thread; ``acked`` holds the msg_ids the
    broker acknowledged, ``kinds`` each message's kind."""

    def __init__(self, port: int, messages: Sequence[Message], rate: float, client_id: str):
        self.port = port
        self.messages = messages
        self.rate = rate
        self.kinds = {m.msg_id: m.kind for m in messages}
        self.acked: set[str] = set()
        self.sent = 0
        self._pending: dict[int, str] = {}
        self._early: dict[int, bool] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client = _client(client_id)
        self._client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._run, name="chaos-publisher", daemon=True)

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        ok = int(getattr(rc, "value", rc) or 0) < PUBACK_FAILURE
        with self._lock:
            msg_id = self._pending.pop(mid, None)
            if msg_id is None:
                self._early[mid] = ok  # acked before publish() returned its mid
            elif ok:
                self.acked.add(msg_id)

    def start(self) -> None:
        self._client.connect("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        for i, m in enumerate(self.messages):
            if self._stop.is_set():
                break
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            info = self._client.publish(m.topic, m.payload, qos=1)
            self.sent += 1
            with self._lock:
                ok = self._early.pop(info.mid, None)
                if ok is None:
                    self._pending[info.mid] = m.msg_id
                elif ok:
                    self.acked.add(m.msg_id)

    def wait_acks(self, timeout: float) -> None:
        """Wait for the last message to be sent and the acks to stop arriving."""
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        # stop() from another thread ends the wait at once
        while time.monotonic() < deadline and not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    return
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class _Probe:
    sent_at: float
    answered_at: float | None = None


@dataclass
class AuthProbe:
    """A gun asking to fill *tag* every *interval* seconds; answers are timed."""

    port: int
    gun_id: str
    tag: str
    interval: float
    client_id: str
    probes: dict[str, _Probe] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client = _client(self.client_id)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._thread = threading.Thread(target=self._run, name="chaos-auth", daemon=True)

    @property
    def reply_topic(self) -> str:
        return f"cyl/v1/gun/{self.gun_id}/auth/reply"

    def _on_connect(self, client: mqtt.Client, *_a: Any) -> None:
        # subscribed again on every connection: a broker that crashed forgot the session
        client.subscribe(self.reply_topic, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        try:
            msg_id = str(orjson.loads(msg.payload)["msg_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        with self._lock:
            probe = self.probes.get(msg_id)
            if probe is not None and probe.answered_at is None:
                probe.answered_at = now

    def start(self) -> None:
        self._client.connect("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            msg_id = str(uuid.uuid4())
            m = auth_msg(self.gun_id, msg_id, time.time_ns() // 1_000_000, self.tag, "CHAOS")
            with self._lock:
                self.probes[msg_id] = _Probe(time.monotonic())
            self._client.publish(m.topic, m.payload, qos=1)

    def longest_gap(self, since: float) -> tuple[float, float] | None:
        """(start, end) of the longest stretch, ending after *since*, in which requests were
        waiting and no answer arrived: what a gun's user sees as the platform not answering.
        None if no request sent after *since* was ever answered."""
        with self._lock:
            probes = list(self.probes.values())
        arrivals = sorted(p.answered_at for p in probes if p.answered_at is not None)
        if not any(p.answered_at is not None and p.sent_at >= since for p in probes):
            return None
        best: tuple[float, float] | None = None
        prev = min(p.sent_at for p in probes)
        for t in arrivals:
            if t > since and (best is None or t - prev > best[1] - best[0]):
                best = (prev, t)
            prev = t
        return best

    def counts(self) -> tuple[int, int]:
        with self._lock:
            sent = len(self.probes)
            answered = sum(1 for p in self.probes.values() if p.answered_at is not None)
        return sent, answered

    def stop_asking(self) -> None:
        """No more requests; answers to those sent still arrive until :meth:`stop`."""
        self._stop.set()
        self._thread.join(5)

    def stop(self) -> None:
        self.stop_asking()
        self._client.disconnect()
        self._client.loop_stop()


class BusProbe:
    """A listener on the live bus's Redis channel (realtime.bridge: what every server process
    hears from ingest), resubscribing whenever Redis goes away; notes when each event came."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self.arrivals: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-bus", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import redis

        while not self._stop.is_set():
            client = redis.Redis.from_url(self.url, socket_timeout=BUS_POLL_S * 5)
            pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=BUS_POLL_S)
                    if msg is not None and msg.get("type") == "message":
                        self.arrivals.append(time.monotonic())
            except (redis.RedisError, OSError):
                self._stop.wait(BUS_POLL_S)
            finally:
                pubsub.close()
                client.close()

    def first_after(self, t: float) -> float | None:
        return next((a for a in list(self.arrivals) if a >= t), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
