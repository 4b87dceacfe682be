"""A short run against a real Mosquitto: what the simulator says it sent is what a
subscriber receives, per topic kind, and the gun flow completes when someone answers.

The broker is a private one on a spare port with the project's queue settings
(`device_sim.loadgen.PrivateBroker`): the machine's shared broker keeps Mosquitto's default
of 1,000 queued messages per client and silently drops QoS 1 messages beyond it when the
listener falls behind on a loaded machine — a fact about that broker's configuration,
not about what the simulator sent.

No ingest here: the test plays the platform's part for fill authorization (allow every
known tag, deny the invented ones) so the whole auth → reply → fill cycle goes over the
broker. Device ids carry a per-session prefix; retained statuses are cleared afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import msgspec
import pytest

from device_sim.behaviour import UNKNOWN_PREFIX
from device_sim.config import SimConfig
from device_sim.loadgen import PrivateBroker
from device_sim.runner import run_sim
from device_sim.world import City

from .conftest import PREFIX


def _client(url: str, identifier: str) -> aiomqtt.Client:
    u = urlsplit(url)
    return aiomqtt.Client(
        u.hostname or "127.0.0.1",
        u.port or 1883,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
    )


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with PrivateBroker() as broker:
        yield broker.url


async def test_short_run_counts_match(settings: Any, city: City, broker_url: str) -> None:
    received: Counter[str] = Counter()
    statuses: set[str] = set()
    ready = asyncio.Event()
    refused = {c.tag for c in (*city.overdue, *city.scrapped)}

    async def listen_and_answer() -> None:
        async with _client(broker_url, f"{PREFIX}-listener") as c:
            await c.subscribe("cyl/v1/#", qos=1)
            ready.set()
            async for msg in c.messages:
                topic = msg.topic.value
                if PREFIX not in topic:
                    continue
                parts = topic.split("/")
                kind = parts[4] if len(parts) == 5 else "reply"
                received[kind] += 1
                if kind == "status":
                    statuses.add(topic)
                if kind == "auth":
                    assert isinstance(msg.payload, bytes)
                    body = msgspec.json.decode(msg.payload)
                    unknown = body["tag"].startswith(UNKNOWN_PREFIX) or body["tag"] in refused
                    reply = {
                        "msg_id": body["msg_id"],
                        "ts": body["ts"],
                        "decision": "deny" if unknown else "allow",
                        "reasons": ["unknown_tag"] if unknown else [],
                    }
                    await c.publish(f"{topic}/reply", msgspec.json.encode(reply), qos=1)

    listener = asyncio.create_task(listen_and_answer())
    await asyncio.wait_for(ready.wait(), 10)
    cfg = SimConfig(
        rate=300,
        duration=4,
        seed=21,
        fill_seconds=0.3,
        auth_timeout=2,
        offline_rate=0.005,
        offline_seconds=1.0,
        dup_rate=0.02,
        bad_rate=0.01,
        illegal_rate=0.5,
        connections=3,
        report_every=1,
    )
    lines: list[str] = []
    result = await run_sim(
        settings,
        cfg,
        city=city,
        mqtt_url=broker_url,
        out=lines.append,
        client_prefix=f"{PREFIX}-sim",
    )
    # let the listener drain: it answers each auth request with an awaited QoS 1 publish,
    # so on a loaded machine it can trail the simulator by more than a fixed second
    settled_for, last, deadline = 0.0, -1, asyncio.get_running_loop().time() + 15
    while settled_for < 1.0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        total = sum(received.values())
        settled_for = settled_for + 0.1 if total == last else 0.0
        last = total
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    try:
        stats = result.stats
        assert stats.total >= 300 * 4 * 0.9, lines
        # unknown-device bad payloads go to other topics (no prefix): count them out
        unknown = stats.labels["bad:unknown_device"]
        for kind in ("auth", "fill", "telemetry", "scan", "status"):
            assert received[kind] <= stats.sent[kind]
        sent_qos1 = sum(stats.sent[k] for k in ("auth", "fill", "telemetry", "scan", "status"))
        got_qos1 = sum(received[k] for k in ("auth", "fill", "telemetry", "scan", "status"))
        assert sent_qos1 - got_qos1 <= unknown
        assert received["position"] >= 0.95 * stats.sent["position"] - unknown
        assert received["fill"] == stats.sent["fill"] > 0
        assert received["auth"] == stats.sent["auth"] > 0
        assert stats.decisions["allow"] > 0 and stats.decisions["deny"] > 0
        assert stats.latencies_ms and max(stats.latencies_ms) < 2000
        assert any("p99" in line for line in lines)  # progress lines
        assert any("summary" in line for line in lines)  # final table
    finally:
        async with _client(broker_url, f"{PREFIX}-cleaner") as c:  # clear the retained statuses
            for topic in statuses:
                await c.publish(topic, b"", qos=1, retain=True)
