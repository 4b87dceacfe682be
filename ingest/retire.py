"""Retiring an ingest worker's broker sessions when a deployment runs fewer workers
(``cylwatch ingest-retire``; docs/DEPLOY.md §10 "Fewer workers").

Why it is needed: a worker's session is persistent (``[ingest] session_expiry_s``) and is a
member of the shared subscription, and Mosquitto keeps handing an *offline* member its
round-robin share, queued until the session expires (measured on Mosquitto 2.0.11: an
offline member of a two-member group was given 20 of 40 messages). So going from N workers
to N − 1 by restarting with ``--workers N-1`` leaves the removed index's session collecting
1/N of the city's messages — fill-authorization requests included, on its reply session —
and losing them when it expires. A session that has *unsubscribed* gets nothing new, while
what it already holds is still delivered to it (measured the same way).

So retiring index *k* resumes each of its two sessions (the batch one, ``<prefix>-k``, and
the reply one, ``<prefix>-k-auth``) with a worker that unsubscribes instead of subscribing,
stores what the session held through the same pipeline as any batch (requests are answered
on the worker's own loop; a request the batch path also stored is absorbed by its
``msg_id``), and stops once nothing has arrived for ``[ingest] retire_idle_s`` and nothing
is waiting for a commit. The emptied session then expires with nothing in it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import asyncpg

from ingest.replies import reply_subscription
from ingest.transport import Incoming, Transport, make_transport, parse_mqtt_url
from ingest.worker import IngestWorker, subscription_topic
from server.kernel.events import Bus
from server.kernel.settings import Settings

__all__ = ["Drained", "retire_index", "retire_session"]

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often the drain looks whether the session is empty; a small part of retire_idle_s."""


@dataclass
class Drained:
    """What one session held: messages delivered to the retiring worker, and how long."""

    client_id: str
    messages: int = 0
    seconds: float = 0.0
    unsubscribed: bool = False
    last_at: float = field(default_factory=time.monotonic)


class _Unsubscribing:
    """A transport that, asked to subscribe, unsubscribes *topic* instead: the worker then
    receives only what the session already held."""

    def __init__(self, inner: Transport, topic: str, drained: Drained) -> None:
        self._inner = inner
        self._topic = topic
        self._drained = drained

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def subscribe(self, topic: str, qos: int) -> None:
        await self._inner.unsubscribe(self._topic)
        self._drained.unsubscribed = True
        self._drained.last_at = time.monotonic()

    async def unsubscribe(self, topic: str) -> None:
        await self._inner.unsubscribe(topic)

    async def messages(self) -> AsyncIterator[Incoming]:
        async for incoming in self._inner.messages():
            self._drained.messages += 1
            self._drained.last_at = time.monotonic()
            yield incoming

    def ack(self, mid: int, qos: int) -> bool:
        return self._inner.ack(mid, qos)

    async def publish(
        self, topic: str, payload: bytes, qos: int, *, correlation_data: bytes | None = None
    ) -> None:
        await self._inner.publish(topic, payload, qos, correlation_data=correlation_data)


async def retire_session(
    settings: Settings,
    pool: asyncpg.Pool,
    bus: Bus,
    client_id: str,
    topic: str,
    mqtt_url: str | None = None,
) -> Drained:
    """Resume session *client_id*, unsubscribe it from *topic*, store what it held; return
    when nothing has come for ``[ingest] retire_idle_s`` and everything received is
    committed and acknowledged."""
    address = parse_mqtt_url(mqtt_url or settings.services.mqtt_url)
    drained = Drained(client_id)
    started = time.monotonic()

    def transport() -> Transport:
        inner = make_transport(
            settings.ingest.transport,
            address,
            client_id=client_id,
            session_expiry_s=settings.ingest.session_expiry_s,
            receive_maximum=settings.ingest.receive_maximum,
            timeout_s=settings.services.connect_timeout_s,
        )
        return _Unsubscribing(inner, topic, drained)

    worker = IngestWorker(settings, pool, bus, client_id=client_id, transport_factory=transport)
    task = asyncio.create_task(worker.run(), name=f"retire-{client_id}")
    try:
        idle = settings.ingest.retire_idle_s
        while not task.done():
            quiet = time.monotonic() - drained.last_at >= idle
            if (
                drained.unsubscribed
                and quiet
                and worker.metrics.pending() == 0
                and worker.metrics.unacked() == 0
            ):
                break
            await asyncio.sleep(POLL_S)
    finally:
        await worker.stop()
        await task
    drained.seconds = time.monotonic() - started
    log.info(
        "retired session %s: %d messages it held stored in %.1f s; it receives nothing more",
        client_id,
        drained.messages,
        drained.seconds,
    )
    return drained


async def retire_index(
    settings: Settings, pool: asyncpg.Pool, bus: Bus, index: int, mqtt_url: str | None = None
) -> list[Drained]:
    """Both sessions of worker *index*: its batch session, then its reply session."""
    client_id = f"{settings.ingest.client_id_prefix}-{index}"
    return [
        await retire_session(
            settings, pool, bus, client_id, subscription_topic(settings), mqtt_url
        ),
        await retire_session(
            settings, pool, bus, f"{client_id}-auth", reply_subscription(settings), mqtt_url
        ),
    ]
