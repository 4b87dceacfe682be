"""Losing the broker and finding it again, at once: the liveness of an
:class:`ingest.transport.AiomqttTransport`'s socket and the workers' reconnect back-off.

Why both matter (docs/DEPLOY.md §10, docs/RELIABILITY.md "Chaos runs"): Mosquitto 2.0
(2.0.11 and 2.0.20 alike) does not save a session's *shared* subscription
(``$share/<group>/…``) with its state, so after the broker restarts, what devices publish
before the ingest workers subscribe again is acknowledged to them and dropped ("no matching
subscribers"). That window is the time the workers take to notice the broker is gone, plus
their wait before reconnecting.

The liveness check uses the same private access as the transport (docs/ARCHITECTURE.md §5
and ingest/transport.py's docstring): aiomqtt's ``_disconnected`` future and paho's
``_loop_rc_handle``, the path paho takes itself when a read fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any, Final

import aiomqtt
import paho.mqtt.client as paho

__all__ = ["BROKER_RETRY_MAX_S", "LINK_CHECK_S", "TCP_ESTABLISHED", "BrokerBackoff", "LinkWatch"]

log = logging.getLogger(__name__)

LINK_CHECK_S = 1.0
"""How often an aiomqtt connection's TCP state is looked at (:class:`_LinkWatch`): a dead
link is noticed within this, not at the keep-alive (30 s); one ``getsockopt`` a second."""

TCP_ESTABLISHED = 1
"""``tcpi_state`` of a live connection (Linux ``TCP_INFO``). Any other state while the
transport thinks it is connected means the peer closed or reset it."""


def _tcp_established(sock: Any) -> bool:
    """False once the kernel says the connection is no longer established (reset, closed
    by the peer, timed out); True where ``TCP_INFO`` is not available (not Linux)."""
    try:
        info: bytes = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except (AttributeError, OSError, ValueError):
        return True
    return info[0] == TCP_ESTABLISHED


class LinkWatch:
    """Notices a dead broker connection that paho's socket callbacks would not report.

    aiomqtt has the event loop watch paho's socket (``add_reader``/``add_writer``). Under
    uvloop, a socket with a pending error (the broker reset the connection) gets its reader
    called once more and then never again: libuv stops a poll handle on ``POLLERR``
    (measured: a reader taking 10 of 5,000 buffered bytes is not called for the rest). paho
    reads one packet per call, so with messages still buffered it never reaches the
    end-of-file or the error, and the loss surfaced only when the keep-alive ran out — 30 s
    during which the worker held no subscription (docs/RELIABILITY.md: a broker killed
    while ingest was stopped; the writer then failed with "UVPoll closed").

    Two checks end the connection the moment it is known dead, as paho itself does when a
    read fails (the socket closed, ``on_disconnect``, so :meth:`ingest.transport.AiomqttTransport.messages`
    raises ``TransportError``): the write callback is registered by us, so a poll handle
    that is gone fails that connection instead of logging an exception nobody acts on; and
    every :data:`LINK_CHECK_S` the kernel's TCP state is read."""

    def __init__(self, client: aiomqtt.Client, paho_client: paho.Client, name: str) -> None:
        self._client = client
        self._paho = paho_client
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        paho_client.on_socket_register_write = self._register_write
        paho_client.on_socket_unregister_write = self._unregister_write

    def start(self) -> None:
        self._task = self._loop.create_task(self._watch(), name=f"{self._name}-link")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # paho calls these from the connecting thread as well as from the loop
    def _register_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._start_writing, sock)

    def _unregister_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            self._loop.remove_writer(sock.fileno())

    def _start_writing(self, sock: Any) -> None:
        current = self._paho.socket()
        if current is None or current is not sock:
            return  # closed (or replaced) meanwhile: nothing to write on
        try:
            self._loop.add_writer(current.fileno(), self._write_ready)
        except (OSError, RuntimeError, ValueError) as exc:
            self.lose(f"the socket cannot be watched any more ({type(exc).__name__}: {exc})")

    def _write_ready(self) -> None:
        try:
            self._paho.loop_write()
        except Exception as exc:  # a broken pipe or reset: the link is gone
            self.lose(f"write failed ({type(exc).__name__}: {exc})")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(LINK_CHECK_S)
            sock = self._paho.socket()
            if sock is None:
                return
            if not _tcp_established(sock):
                self.lose("the TCP connection is no longer established")
                return

    def lose(self, reason: str) -> None:
        """End the connection as lost: paho closes the socket and reports the disconnect,
        and :meth:`ingest.transport.AiomqttTransport.messages` raises with *reason*."""
        if self._paho.socket() is None and self._client._disconnected.done():
            return
        log.warning("ingest %s: MQTT connection lost: %s", self._name, reason)
        with contextlib.suppress(Exception):  # paho's own teardown of a dead socket
            self._paho._loop_rc_handle(paho.MQTT_ERR_CONN_LOST)  # private: see the docstring
        disconnected = self._client._disconnected
        if not disconnected.done():
            disconnected.set_exception(aiomqtt.MqttError(reason))


BROKER_RETRY_MAX_S: Final = 1.0
"""The longest wait between two connection attempts to the broker, whatever ``[ingest]
reconnect_max_s`` says (that bound still paces PostgreSQL retries): a broker that comes back
after any outage must find the workers subscribed within a second, before devices publish
into a group with no subscription (module docstring). An attempt on a broker that is down is
one refused TCP connection."""


class BrokerBackoff:
    """Waits between MQTT connection attempts of one worker connection.

    After a connection that was up for :data:`BROKER_RETRY_MAX_S` or longer the first new
    attempt is immediate — the broker may be back already (a crash restarted by its
    supervisor, ingest resumed after a stop); then ``low`` doubling up to ``high``, capped at
    :data:`BROKER_RETRY_MAX_S`. A connection lost again at once (a session taken over by a
    second worker with the same id, a refused subscription) does not reset the wait, so two
    such workers do not spin."""

    def __init__(self, low: float, high: float) -> None:
        self._high = min(high, BROKER_RETRY_MAX_S)
        self._low = min(low, self._high)
        self._delay = self._low
        self._up_since: float | None = None

    def connected(self) -> None:
        """The connection is up and subscribed."""
        self._up_since = time.monotonic()

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (call once per lost or failed attempt)."""
        up_since, self._up_since = self._up_since, None
        if up_since is not None and time.monotonic() - up_since >= self._high:
            self._delay = self._low
            return 0.0
        delay = self._delay
        self._delay = min(self._delay * 2, self._high)
        return delay
