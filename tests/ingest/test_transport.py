"""Both MQTT transports behind ingest's seam, watched on the wire.

A QoS 1 message may be acknowledged to the broker only after the batch holding it is
committed, in arrival order (docs/ARCHITECTURE.md §5). A small TCP proxy between the transport and a
private Mosquitto decodes the packets: the PUBLISH packet ids the broker sends and the
PUBACK packet ids the client returns. gmqtt runs one ``on_message`` task per message and
sends its PUBACK when the task returns — these tests hold thousands of such tasks open and
check that nothing is acknowledged early and that PUBACKs leave in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ingest.transport import (
    TRANSPORTS,
    Incoming,
    Transport,
    TransportError,
    make_transport,
    parse_mqtt_url,
)
from tests.ingest.conftest import Mosquitto, eventually, mid, publish

TRANSPORT_NAMES = sorted(TRANSPORTS)


@dataclass
class Wire:
    """Packet ids seen by the proxy, per direction."""

    published: list[int] = field(default_factory=list)  # broker → client, QoS 1 PUBLISH
    pubacks: list[int] = field(default_factory=list)  # client → broker PUBACK


def _packets(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete MQTT packets at the head of *buf* (consumed): (first byte, body)."""
    out = []
    while len(buf) >= 2:
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(buf):
                return out
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(buf) < i + length:
            return out
        out.append((buf[0], bytes(buf[i : i + length])))
        del buf[: i + length]
    return out


class Proxy:
    """Forward 127.0.0.1:port ↔ broker, recording PUBLISH and PUBACK packet ids."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.wire = Wire()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        br, bw = await asyncio.open_connection("127.0.0.1", self.broker_port)
        up = asyncio.create_task(self._pump(cr, bw, upstream=True))
        down = asyncio.create_task(self._pump(br, cw, upstream=False))
        self._tasks |= {up, down}
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for t in (up, down):
            t.cancel()
        for w in (cw, bw):
            w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        buf = bytearray()
        while data := await reader.read(65536):
            buf += data
            for first, body in _packets(buf):
                kind, qos = first >> 4, (first >> 1) & 3
                if upstream and kind == 4:  # PUBACK
                    self.wire.pubacks.append(int.from_bytes(body[:2], "big"))
                elif not upstream and kind == 3 and qos == 1:  # PUBLISH
                    tlen = int.from_bytes(body[:2], "big")
                    self.wire.published.append(int.from_bytes(body[2 + tlen : 4 + tlen], "big"))
            writer.write(data)
            await writer.drain()


@pytest.fixture
async def proxy(mosquitto: Mosquitto) -> AsyncIterator[Proxy]:
    p = Proxy(mosquitto.port)
    await p.start()
    try:
        yield p
    finally:
        await p.close()


def _transport(name: str, port: int, client_id: str) -> Transport:
    return make_transport(
        name,
        parse_mqtt_url(f"mqtt://127.0.0.1:{port}"),
        client_id=client_id,
        session_expiry_s=300,
        receive_maximum=65535,
        timeout_s=10,
    )


async def _take(it: AsyncIterator[Incoming], n: int, within: float = 30) -> list[Incoming]:
    out: list[Incoming] = []

    async def run() -> None:
        while len(out) < n:
            out.append(await anext(it))

    await asyncio.wait_for(run(), within)
    return out


@pytest.mark.parametrize("name", TRANSPORT_NAMES)
async def test_puback_only_after_ack_and_in_arrival_order(
    name: str, proxy: Proxy, mosquitto: Mosquitto
) -> None:
    n, acked = 3000, 2000
    cid = f"seam-{name}-{mid()[:8]}"
    topic = f"seam/{cid}"
    payloads = [f"m{i}".encode() for i in range(n)]
    async with _transport(name, proxy.port, cid) as t:
        await t.subscribe(f"{topic}/#", 1)
        await publish(mosquitto.url, [(f"{topic}/x", p) for p in payloads])
        it = t.messages().__aiter__()
        got = await _take(it, n)
        assert [m.payload for m in got] == payloads  # arrival order = publish order
        await asyncio.sleep(0.3)
        assert proxy.wire.pubacks == [], "nothing may be acknowledged before ack()"
        for m in got[:acked]:
            assert t.ack(m.mid, m.qos)
        await eventually(lambda: asyncio.sleep(0, len(proxy.wire.pubacks) >= acked), 10, 0.02)
        assert proxy.wire.pubacks == proxy.wire.published[:acked]
        await asyncio.sleep(0.5)  # let the proxy hand the PUBACKs on before the DISCONNECT
    # the rest were never acknowledged: a new connection of the same session gets them again
    async with _transport(name, proxy.port, cid) as t:
        it = t.messages().__aiter__()
        again = await _take(it, n - acked)
        assert [m.payload for m in again] == payloads[acked:]
        for m in again:
            t.ack(m.mid, m.qos)
        with contextlib.suppress(TimeoutError):
            extra = await _take(it, 1, within=1.0)
            pytest.fail(f"acknowledged messages were redelivered: {extra}")


@pytest.mark.parametrize("name", TRANSPORT_NAMES)
async def test_acks_of_a_dead_connection_are_not_sent(name: str, mosquitto: Mosquitto) -> None:
    """After the link drops, ack() of its messages is refused (the worker then lets the
    broker redeliver them to the next connection)."""
    cid = f"seam-dead-{name}-{mid()[:8]}"
    topic = f"seam/{cid}"
    t = _transport(name, mosquitto.port, cid)
    got: list[Incoming] = []
    with pytest.raises(TransportError):
        async with t:
            await t.subscribe(f"{topic}/#", 1)
            await publish(mosquitto.url, [(f"{topic}/x", b"a"), (f"{topic}/x", b"b")])
            it = t.messages().__aiter__()
            got = await _take(it, 2)
            mosquitto.stop()
            await _take(it, 1, within=15)  # raises TransportError when the drop is seen
    assert not t.ack(got[0].mid, got[0].qos)
    mosquitto.start()
    async with _transport(name, mosquitto.port, cid) as t2:
        it2 = t2.messages().__aiter__()
        again = await _take(it2, 2)
        assert [m.payload for m in again] == [b"a", b"b"]


@pytest.mark.parametrize("name", TRANSPORT_NAMES)
async def test_reply_properties_and_publish(name: str, mosquitto: Mosquitto) -> None:
    """response_topic / correlation_data arrive; a reply carries the correlation data."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    cid = f"seam-props-{name}-{mid()[:8]}"
    topic = f"seam/{cid}"
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = f"{topic}/reply"
    props.CorrelationData = b"corr-1"
    async with _transport(name, mosquitto.port, cid) as t:
        await t.subscribe(f"{topic}/req", 1)
        async with aiomqtt.Client(
            "127.0.0.1", mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as listener:
            await listener.subscribe(f"{topic}/reply", 1)
            await publish(mosquitto.url, [(f"{topic}/req", b"{}")], properties=props)
            it = t.messages().__aiter__()  # kept: closing the iterator ends the connection
            (m,) = await _take(it, 1)
            assert m.response_topic == f"{topic}/reply"
            assert m.correlation_data == b"corr-1"
            await t.publish(m.response_topic, b"ok", 1, correlation_data=m.correlation_data)
            reply: Any = await asyncio.wait_for(anext(aiter(listener.messages)), 10)
            assert reply.payload == b"ok"
            assert reply.properties.CorrelationData == b"corr-1"
            assert t.ack(m.mid, m.qos)


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be one of"):
        _transport("mqttjs", 1883, "x")
