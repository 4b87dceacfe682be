"""gmqtt behind ingest's transport seam (``ingest.transport``; docs/ARCHITECTURE.md §5):
``optimistic_acknowledgement=False`` sends a QoS 1 message's PUBACK when its ``async
on_message`` returns; ours awaits a future that :meth:`GmqttTransport.ack` resolves, so the
PUBACK follows the commit. gmqtt's own reconnect is switched off (a transport is one
connection's lifetime, as with aiomqtt) and PUBACKs of a dead connection are suppressed —
the broker redelivers those messages. The private access it needs is kept in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import gmqtt
from gmqtt.mqtt.constants import MQTTCommands, MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError

from ingest.transport_types import (
    SUBSCRIBE_TIMEOUT_S,
    BrokerAddress,
    Incoming,
    TransportError,
)

__all__ = ["GmqttTransport"]

log = logging.getLogger(__name__)


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
