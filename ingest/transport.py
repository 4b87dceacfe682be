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

The private access either needs is kept in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
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
import gmqtt
import paho.mqtt.client as paho
from gmqtt.mqtt.constants import MQTTCommands, MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt_link import LinkWatch
from server.kernel.services import redact

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

    async def unsubscribe(self, topic: str) -> None:
        """Stop new messages for *topic* reaching this session; what it already holds is
        still delivered (``ingest.retire`` drains a worker's session that way)."""
        ...

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


class _GmqttClient(gmqtt.Client):  # type: ignore[misc]
    """gmqtt's client for one connection: no reconnects of its own, no late PUBACKs."""

    acks_enabled = True

    async def reconnect(self, delay: bool = False) -> None:
        """gmqtt reconnects (and resumes the session) on its own; here the worker does,
        with its own backoff and a fresh transport, so that no ack of this connection can
        reach the next one."""
        return

    def _send_command_with_mid(self, cmd: int, mid: int, dup: bool, reason_code: int = 0) -> None:
        if cmd == MQTTCommands.PUBACK and not self.acks_enabled:
            return  # a message of a dead connection: the broker redelivers it
        if self._connection is None or self._connection.is_closing():
            return
        super()._send_command_with_mid(cmd, mid, dup, reason_code=reason_code)


class GmqttTransport:
    """gmqtt with MQTT v5, a persistent session and PUBACK after commit.

    gmqtt runs ``on_message`` as a task per message and sends its PUBACK when the task
    returns. Each task waits on a future of its own, keyed by a local sequence number (the
    :attr:`Incoming.mid` the worker hands back to :meth:`ack`); the worker resolves them in
    arrival order, the tasks finish in that order and gmqtt writes the PUBACKs in that
    order (tests/ingest/test_transport.py checks it on the wire)."""

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
        self._address = address
        self._keepalive = keepalive_s
        self._timeout = timeout_s
        self._client = _GmqttClient(
            client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            logger=logging.getLogger("ingest.mqtt"),
            session_expiry_interval=session_expiry_s,
            receive_maximum=receive_maximum,
        )
        if address.username is not None:
            self._client.set_auth_credentials(address.username, address.password)
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = self._on_unsubscribe
        self._inbox: deque[Incoming] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._seq = 0
        self._unacked: dict[int, asyncio.Future[bool]] = {}
        self._releasing: set[asyncio.Future[bool]] = set()
        self._suback: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._unsuback: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._closed: asyncio.Future[None] | None = None
        self._connected = False

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        ssl_arg: ssl.SSLContext | bool = (
            ssl.create_default_context() if self._address.tls else False
        )
        try:
            await asyncio.wait_for(
                self._client.connect(
                    self._address.host,
                    self._address.port,
                    ssl=ssl_arg,
                    keepalive=self._keepalive,
                    version=MQTTv50,
                ),
                self._timeout,
            )
        except (OSError, TimeoutError, MQTTConnectError) as exc:
            await self._shutdown()
            raise TransportError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
        if self._closed.done():
            await self._shutdown()
            raise TransportError("connection lost right after CONNACK")
        self._connected = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # acks given before leaving (the worker's last commit) must reach the broker
        # before the DISCONNECT: gmqtt writes a PUBACK when the released task finishes
        if self._releasing and self._connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._releasing), self._timeout)
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._connected = False
        self._client.acks_enabled = False
        try:
            if self._client._connection is not None:  # private: see module docstring
                await self._client.disconnect()
        except Exception as err:  # a dead socket: nothing left to tell the broker
            log.debug("MQTT disconnect: %s", err)
        self._release_all()

    def _release_all(self) -> None:
        """Let every waiting on_message task finish; their PUBACKs are suppressed."""
        self._client.acks_enabled = False
        for fut in self._unacked.values():
            if not fut.done():
                fut.set_result(False)
        self._unacked.clear()

    # ------------------------------------------------------------------ gmqtt callbacks

    async def _on_message(
        self, _client: Any, topic: str, payload: bytes, qos: int, properties: dict[str, Any]
    ) -> int:
        rt = properties.get("response_topic")
        cd = properties.get("correlation_data")
        retain = bool(properties.get("retain"))
        if qos == 0:
            self._push(
                Incoming(topic, payload, 0, 0, retain, rt[0] if rt else None, cd[0] if cd else None)
            )
            return 0
        if not self._connected and self._closed is not None and self._closed.done():
            return 0  # PUBACK suppressed: redelivered on the next connection
        self._seq += 1
        token = self._seq
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._unacked[token] = fut
        self._push(
            Incoming(
                topic, payload, qos, token, retain, rt[0] if rt else None, cd[0] if cd else None
            )
        )
        await fut
        return 0  # reason code "success"; sent only if acks are still enabled

    def _push(self, incoming: Incoming) -> None:
        self._inbox.append(incoming)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_disconnect(self, _client: Any, _packet: Any, _exc: Any = None) -> None:
        self._client.acks_enabled = False
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        for fut in (*self._suback.values(), *self._unsuback.values()):
            if not fut.done():
                fut.set_exception(TransportError("disconnected before SUBACK"))

    def _on_subscribe(
        self, _client: Any, mid: int, granted: tuple[int, ...], _properties: Any
    ) -> None:
        fut = self._suback.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(tuple(granted))

    def _on_unsubscribe(
        self, _client: Any, mid: int, codes: tuple[int, ...], _properties: Any = None
    ) -> None:
        fut = self._unsuback.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(tuple(codes))

    # ------------------------------------------------------------------ the seam

    async def subscribe(self, topic: str, qos: int) -> None:
        # the SUBACK queues behind a resumed session's backlog: no short timeout
        if self._closed is None or self._closed.done():
            raise TransportError("not connected")
        fut: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
        mid = self._client.subscribe(topic, qos=qos)
        self._suback[mid] = fut
        try:
            granted = await asyncio.wait_for(fut, SUBSCRIBE_TIMEOUT_S)
        except TimeoutError as exc:
            raise TransportError(f"no SUBACK for {topic} within {SUBSCRIBE_TIMEOUT_S} s") from exc
        finally:
            self._suback.pop(mid, None)
        if not granted or granted[0] >= 0x80:
            raise TransportError(f"subscription to {topic} refused: {granted}")

    async def unsubscribe(self, topic: str) -> None:
        if self._closed is None or self._closed.done():
            raise TransportError("not connected")
        fut: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
        mid = self._client.unsubscribe(topic)
        self._unsuback[mid] = fut
        try:
            codes = await asyncio.wait_for(fut, SUBSCRIBE_TIMEOUT_S)
        except TimeoutError as exc:
            raise TransportError(f"no UNSUBACK for {topic} within {SUBSCRIBE_TIMEOUT_S} s") from exc
        finally:
            self._unsuback.pop(mid, None)
        # 0x11 "no subscription existed": the session had none to end, which is what we want
        if codes and codes[0] >= 0x80:
            raise TransportError(f"unsubscribe from {topic} refused: {codes}")

    async def messages(self) -> AsyncIterator[Incoming]:
        closed = self._closed
        assert closed is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self._inbox:
                    yield self._inbox.popleft()
                if closed.done():
                    raise TransportError("Disconnected during message iteration")
                self._waiter = loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        finally:
            self._connected = False
            self._client.acks_enabled = False

    def ack(self, mid: int, qos: int) -> bool:
        if qos == 0:
            return True
        fut = self._unacked.pop(mid, None)
        if fut is None or not self._connected or fut.done():
            return False
        fut.set_result(True)
        self._releasing.add(fut)
        fut.add_done_callback(self._releasing.discard)
        return True

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        correlation_data: bytes | None = None,
    ) -> None:
        """Written to the socket (gmqtt keeps a QoS 1 reply until its PUBACK and resends
        it on a resumed session); unlike aiomqtt it does not wait for the PUBACK."""
        if not self._connected:
            raise TransportError("not connected")
        kwargs: dict[str, Any] = {}
        if correlation_data is not None:
            kwargs["correlation_data"] = correlation_data
        self._client.publish(topic, payload, qos=qos, **kwargs)


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
