"""The one seam between ingest and an MQTT client library.

docs/ARCHITECTURE.md §5 measured aiomqtt (21.5k msg/s) and gmqtt (33.3k msg/s) as ingest clients and
sanctions gmqtt should aiomqtt's manual ack prove fragile or the ingest target be missed.
Everything ingest needs from a client is therefore in :class:`Transport`: connect with a
persistent MQTT v5 session, subscribe, iterate messages, acknowledge a message *later*
(after its batch is committed), publish a reply. Two implementations, chosen by
``[ingest] transport`` (:func:`make_transport`):

- :class:`AiomqttTransport`: aiomqtt acknowledges every QoS 1 message as soon as paho hands
  it over, which would tell the broker "stored" before it is. Manual ack needs paho's
  ``manual_ack_set(True)`` on the client aiomqtt wraps (``client._client``). It also
  watches its own socket (:class:`ingest.mqtt_link.LinkWatch`): under uvloop a connection the broker reset
  can go unnoticed until the keep-alive (docs/RELIABILITY.md, the broker-crash rows).
- :class:`GmqttTransport`: gmqtt with ``optimistic_acknowledgement=False`` sends a QoS 1
  message's PUBACK when its ``async on_message`` returns; ours awaits a future that
  :meth:`~GmqttTransport.ack` resolves, so the PUBACK follows the commit. gmqtt's own
  reconnect is switched off (a transport is one connection's lifetime, as with aiomqtt) and
  PUBACKs of a dead connection are suppressed — the broker redelivers those messages.

The seam's types are in ``ingest.transport_types`` and gmqtt's implementation in
``ingest.transport_gmqtt``; every name is importable from here. The private access
aiomqtt needs is kept in this module.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt_link import LinkWatch
from ingest.transport_gmqtt import GmqttTransport
from ingest.transport_types import (
    OUTGOING_INFLIGHT,
    SUBSCRIBE_TIMEOUT_S,
    BrokerAddress,
    Incoming,
    Transport,
    TransportError,
    parse_mqtt_url,
)

__all__ = [
    "TRANSPORTS",
    "AiomqttTransport",
    "BrokerAddress",
    "GmqttTransport",
    "Incoming",
    "Transport",
    "TransportError",
    "make_transport",
    "parse_mqtt_url",
]

log = logging.getLogger(__name__)


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
        # replies wait for their PUBACKs concurrently by design (up to OUTGOING_INFLIGHT):
        # aiomqtt's default of 10 logs a warning for every publish beyond that, which under a
        # burst of answers cost a log line (and a write to stderr) per reply
        self._client.pending_calls_threshold = OUTGOING_INFLIGHT
        self._paho: paho.Client = self._client._client  # private: see module docstring
        self._paho.manual_ack_set(True)
        self._paho.on_message = self._on_paho_message
        self._link = LinkWatch(self._client, self._paho, client_id)
        self._inbox: deque[Incoming] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._connected = False

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        self._connected = True
        self._link.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._connected = False
        self._link.stop()
        try:
            await self._client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as err:
            log.debug("MQTT disconnect: %s", err)

    async def subscribe(self, topic: str, qos: int) -> None:
        # On a resumed session the broker sends the queued backlog *before* the SUBACK;
        # with a backlog of 100k messages that can take seconds, so no short timeout.
        await self._client.subscribe(topic, qos, timeout=SUBSCRIBE_TIMEOUT_S)

    async def unsubscribe(self, topic: str) -> None:
        # the UNSUBACK, too, follows a resumed session's backlog
        await self._client.unsubscribe(topic, timeout=SUBSCRIBE_TIMEOUT_S)

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


TRANSPORTS: dict[str, type[AiomqttTransport] | type[GmqttTransport]] = {
    "aiomqtt": AiomqttTransport,
    "gmqtt": GmqttTransport,
}


def make_transport(
    name: str,
    address: BrokerAddress,
    *,
    client_id: str,
    session_expiry_s: int,
    receive_maximum: int,
    timeout_s: float,
) -> Transport:
    """The transport ``[ingest] transport`` names (``aiomqtt`` or ``gmqtt``)."""
    try:
        cls = TRANSPORTS[name]
    except KeyError:
        raise ValueError(
            f"[ingest] transport must be one of {', '.join(TRANSPORTS)}, not {name!r}"
        ) from None
    return cls(
        address,
        client_id=client_id,
        session_expiry_s=session_expiry_s,
        receive_maximum=receive_maximum,
        timeout_s=timeout_s,
    )
