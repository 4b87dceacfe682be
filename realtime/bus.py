"""A cheap in-process event bus (the habit of Home Assistant's EventBus and dispatcher).

Ingest publishes one `Event` per row worth showing live (a fill, an alert, a position...);
websocket subscriptions, the Redis bridge and push notification senders listen. Publishing
is synchronous and never waits on a listener: a listener must only enqueue work. Filters
run before the listener, and each listener is isolated in its own try/except so one broken
consumer cannot stop the others or the ingest worker that published.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from server.kernel.events import Event, Filter, Listener

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Subscription:
    listener: Listener
    event_filter: Filter | None


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[_Subscription]] = {}
        self._all: list[_Subscription] = []
        self.published = 0
        self.listener_errors = 0

    def listen(
        self, channel: str | None, listener: Listener, event_filter: Filter | None = None
    ) -> Callable[[], None]:
        """Register *listener* for *channel* (None: every channel). Returns the remover."""
        sub = _Subscription(listener, event_filter)
        bucket = self._all if channel is None else self._listeners.setdefault(channel, [])
        bucket.append(sub)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                bucket.remove(sub)

        return remove

    def publish(self, event: Event) -> None:
        self.published += 1
        for sub in (*self._listeners.get(event.channel, ()), *self._all):
            try:
                if sub.event_filter is None or sub.event_filter(event):
                    sub.listener(event)
            except Exception:
                self.listener_errors += 1
                log.exception("bus listener %r failed on %s event", sub.listener, event.channel)

    def listener_count(self, channel: str | None = None) -> int:
        if channel is None:
            return len(self._all) + sum(len(v) for v in self._listeners.values())
        return len(self._listeners.get(channel, ()))
