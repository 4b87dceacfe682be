"""Noticing a dead broker connection of :class:`ingest.transport.AiomqttTransport` at once.

Kept apart from the transport (one concern: the liveness of paho's socket under the
event loop); the same private access as the transport's (docs/ARCHITECTURE.md §5 and
ingest/transport.py's docstring): aiomqtt's ``_disconnected`` future and paho's
``_loop_rc_handle``, the path paho takes itself when a read fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

__all__ = ["LINK_CHECK_S", "TCP_ESTABLISHED", "LinkWatch"]

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
