"""The one seam between ingest and an MQTT client library.

DESIGN §5 measured aiomqtt (21.5k msg/s) and gmqtt (33.3k msg/s) as ingest clients and
sanctions gmqtt should aiomqtt's manual ack prove fragile. Everything ingest needs from a
client is therefore in :class:`Transport`: connect with a persistent MQTT v5 session,
subscribe, iterate messages, acknowledge a message *later* (after its batch is
committed), publish a reply. A gmqtt transport implements the same five methods.

aiomqtt acknowledges every QoS 1 message as soon as paho hands it over, which would tell
the broker "stored" before it is. Manual ack needs paho's ``manual_ack_set(True)`` on the
client aiomqtt wraps (``client._client``) — the only private access in ingest, kept here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from server.services import redact

__all__ = [
    "AiomqttTransport",
    "BrokerAddress",
    "Incoming",
    "Transport",
    "TransportError",
    "parse_mqtt_url",
]

log = logging.getLogger(__name__)

TransportError = aiomqtt.MqttError
"""Raised when the broker cannot be reached or the connection drops."""

SUBSCRIBE_TIMEOUT_S = 300.0
"""SUBACK wait: it queues behind a resumed session's whole backlog (see ``subscribe``)."""

OUTGOING_INFLIGHT = 1000
"""QoS 1 replies in flight at once. paho's default (20) would queue auth replies behind
each other under a burst of requests; the broker's own receive maximum still applies."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    url: str
    """The URL with any password hidden, for logs."""


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS, port 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"not an MQTT URL: {redact(url)}")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        url=redact(url),
    )


@dataclass(frozen=True, slots=True)
class Incoming:
    """A received message, independent of the client library."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


class Transport(Protocol):
    """What an ingest worker needs from an MQTT client (one connection's lifetime)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def subscribe(self, topic: str, qos: int) -> None: ...

    def messages(self) -> AsyncIterator[Incoming]:
        """Messages in arrival order; raises :data:`TransportError` when the link drops.
        Must be consumed by one long-lived task (cancelling a pending read may drop a
        message)."""
        ...

    def ack(self, mid: int, qos: int) -> bool:
        """Acknowledge a message of *this* connection. False if the link is gone."""
        ...

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        correlation_data: bytes | None = None,
    ) -> None: ...


class AiomqttTransport:
    """aiomqtt (paho) with MQTT v5, a persistent session and manual acknowledgement."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        session_expiry_s: int,
        receive_maximum: int,
        keepalive_s: int = 30,
        timeout_s: float = 10.0,
    ) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry_s
        props.ReceiveMaximum = receive_maximum
        tls_context = ssl.create_default_context() if address.tls else None
        self._client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=keepalive_s,
            timeout=timeout_s,
            max_inflight_messages=OUTGOING_INFLIGHT,
            tls_context=tls_context,
            # auth replies are tiny and latency-bound: never let Nagle hold them back
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
            logger=logging.getLogger("ingest.mqtt"),
        )
        self._paho: paho.Client = self._client._client  # private: see module docstring
        self._paho.manual_ack_set(True)
        self._paho.on_message = self._on_paho_message
        self._inbox: deque[Incoming] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._connected = False

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        self._connected = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._connected = False
        try:
            await self._client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as err:
            log.debug("MQTT disconnect: %s", err)

    async def subscribe(self, topic: str, qos: int) -> None:
        # On a resumed session the broker sends the queued backlog *before* the SUBACK;
        # with a backlog of 100k messages that can take seconds, so no short timeout.
        await self._client.subscribe(topic, qos, timeout=SUBSCRIBE_TIMEOUT_S)

    def _on_paho_message(self, _client: Any, _userdata: Any, m: paho.MQTTMessage) -> None:
        """paho's callback, in place of aiomqtt's: one deque append per message.

        aiomqtt's iterator creates a task and an ``asyncio.wait`` per message, which
        capped a worker at ~5k msg/s here; this path keeps the same arrival order."""
        rt: str | None = None
        cd: bytes | None = None
        props = getattr(m, "properties", None)
        if props is not None:
            rt = getattr(props, "ResponseTopic", None)
            cd = getattr(props, "CorrelationData", None)
        self._inbox.append(Incoming(m.topic, bytes(m.payload), m.qos, m.mid, m.retain, rt, cd))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def messages(self) -> AsyncIterator[Incoming]:
        disconnected = self._client._disconnected  # private: see module docstring
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self._inbox:
                    yield self._inbox.popleft()
                if disconnected.done():
                    exc = disconnected.exception() if not disconnected.cancelled() else None
                    raise TransportError("Disconnected during message iteration") from exc
                self._waiter = loop.create_future()
                try:
                    await asyncio.wait(
                        (self._waiter, disconnected), return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    self._waiter = None
        finally:
            self._connected = False

    def ack(self, mid: int, qos: int) -> bool:
        if qos == 0 or not self._connected:
            return qos == 0
        rc = self._paho.ack(mid, qos)
        return rc == paho.MQTT_ERR_SUCCESS

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        correlation_data: bytes | None = None,
    ) -> None:
        props: Properties | None = None
        if correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation_data
        await self._client.publish(topic, payload, qos=qos, properties=props)
