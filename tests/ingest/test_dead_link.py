"""A broker connection that died while the worker's event loop stood still is noticed at once.

The chaos round ``crash-broker-backlog`` (docs/RELIABILITY.md "Chaos runs") stops `cylwatch
ingest` with SIGSTOP, kills Mosquitto with SIGKILL, starts it again and resumes ingest. The
worker then went on for 30 s — one keep-alive — on a connection that no longer existed,
holding no subscription, while the broker acknowledged and dropped what devices sent: under
uvloop (the loop every ingest process runs) a socket with a pending reset gets its reader
called once more and then never again, so paho, which reads one packet per call, never saw
the end of the connection (ingest/transport.py, ``_LinkWatch``).

Here the same happens in miniature, on the production loop (uvloop, in a thread of its own)
and a private Mosquitto with config/mosquitto.conf: a transport receives messages; its loop
is blocked (the SIGSTOP) while more messages land in its socket and the broker is killed and
started again; the block outlasts the keep-alive, so on resume paho's first act is a PINGREQ
into the dead connection — the reset that silences the reader, as in the chaos round. The
keep-alive is shortened to keep the test short; without the fix the loss is seen only when
it runs out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import time
from collections.abc import AsyncIterator
from typing import Final

import paho.mqtt.client as paho_client
import paho.mqtt.publish as paho_publish
import pytest
import uvloop

from ingest.mqtt_link import BROKER_RETRY_MAX_S, BrokerBackoff
from ingest.transport import TRANSPORTS, Incoming, Transport, TransportError, parse_mqtt_url
from tests.ingest.conftest import Mosquitto, mid, publish

KEEPALIVE_S: Final = 5
"""The production keep-alive (30 s) scaled down: without the fix, the time to notice."""
FROZEN_S: Final = KEEPALIVE_S + 1.5
"""The loop stands still longer than the keep-alive, as ingest did in the chaos round
(stopped 30 s): on resume paho writes a PINGREQ first."""
NOTICE_WITHIN_S: Final = 2.0
"""The loss must be seen well inside one keep-alive (ingest.transport.LINK_CHECK_S is 1 s;
the write that fails is seen at once)."""
FIRST: Final = 5
"""Messages received before the fault (the connection is up and delivering)."""
BACKLOG: Final = 20
"""Messages landing in the socket while the loop stands still: paho reads one packet per
callback, so with a backlog it never reaches the end of the connection."""


def _transport(name: str, port: int, client_id: str) -> Transport:
    cls = TRANSPORTS[name]
    return cls(
        parse_mqtt_url(f"mqtt://127.0.0.1:{port}"),
        client_id=client_id,
        session_expiry_s=300,
        receive_maximum=65535,
        keepalive_s=KEEPALIVE_S,
    )


async def _consume(it: AsyncIterator[Incoming], into: list[Incoming], first: asyncio.Event) -> None:
    async for m in it:
        into.append(m)
        if len(into) == FIRST:
            first.set()


async def _scenario(name: str, broker: Mosquitto) -> tuple[float, float]:
    """(seconds from the resume to the transport's TransportError, to a new subscription)."""
    cid = f"dead-link-{name}-{mid()[:8]}"
    topic = f"seam/{cid}"
    got: list[Incoming] = []
    t = _transport(name, broker.port, cid)
    async with t:
        await t.subscribe(f"$share/{cid}/{topic}/#", 1)
        first = asyncio.Event()
        reader = asyncio.create_task(_consume(t.messages(), got, first))
        await publish(broker.url, [(f"{topic}/x", b"before")] * FIRST)
        await asyncio.wait_for(first.wait(), 10)
        # the loop stands still (SIGSTOP; the sleep below is the point): a backlog lands,
        # the broker dies and comes back
        frozen_at = time.monotonic()
        paho_publish.multiple(
            [(f"{topic}/x", b"backlog", 1, False)] * BACKLOG,
            port=broker.port,
            protocol=paho_client.MQTTv5,
        )
        time.sleep(max(0.0, FROZEN_S - (time.monotonic() - frozen_at)))  # noqa: ASYNC251
        broker.stop(signal.SIGKILL)
        broker.start()
        resumed = time.monotonic()
        with pytest.raises(TransportError):
            await asyncio.wait_for(reader, KEEPALIVE_S * 3)
        noticed = time.monotonic() - resumed
    async with _transport(name, broker.port, cid) as t2:
        await t2.subscribe(f"$share/{cid}/{topic}/#", 1)
        resubscribed = time.monotonic() - resumed
    return noticed, resubscribed


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
def test_a_connection_the_broker_dropped_while_the_loop_stood_still_is_noticed_at_once(
    name: str, mosquitto: Mosquitto
) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        noticed, resubscribed = pool.submit(uvloop.run, _scenario(name, mosquitto)).result()
    assert noticed < NOTICE_WITHIN_S, (
        f"{name}: the dead connection was noticed {noticed:.1f} s after the resume"
        f" (keep-alive {KEEPALIVE_S} s)"
    )
    assert resubscribed < NOTICE_WITHIN_S + 1.0, f"{name}: resubscribed after {resubscribed:.1f} s"


def test_a_worker_retries_the_broker_at_once_then_at_most_every_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the shipped back-off (0.5 s doubling to 30 s) a broker back after a minute
    would wait up to 30 s for the workers' subscription; the MQTT retries are capped at
    BROKER_RETRY_MAX_S, and a connection that was up retries at once."""
    clock = [1000.0]
    monkeypatch.setattr("ingest.mqtt_link.time.monotonic", lambda: clock[0])
    backoff = BrokerBackoff(0.5, 30.0)
    # the broker away from the start: 0.5, then doubling, never more than a second
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    backoff.connected()
    clock[0] += 60
    assert backoff.next_delay() == 0.0  # lost after a minute up: the broker may be back
    assert [backoff.next_delay() for _ in range(3)] == [0.5, 1.0, 1.0]
    backoff.connected()
    clock[0] += 0.1
    assert backoff.next_delay() == 1.0  # lost again at once: no spinning
    assert BROKER_RETRY_MAX_S == 1.0
