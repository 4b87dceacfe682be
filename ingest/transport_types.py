"""What ingest needs of an MQTT client, whatever the library (docs/ARCHITECTURE.md §5): the
broker's address, a received message, the :class:`Transport` protocol and its error. The two
implementations (``ingest.transport``: aiomqtt; ``ingest.transport_gmqtt``: gmqtt) and the
choice between them (``ingest.transport.make_transport``) import it; ``ingest.transport``
re-exports every name, which is where the rest of ingest takes them from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import unquote, urlsplit

import aiomqtt

from server.kernel.services import redact

__all__ = [
    "OUTGOING_INFLIGHT",
    "SUBSCRIBE_TIMEOUT_S",
    "BrokerAddress",
    "Incoming",
    "Transport",
    "TransportError",
    "parse_mqtt_url",
]

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
