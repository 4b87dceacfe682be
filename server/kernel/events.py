"""The live-event type every package shares (docs/ARCHITECTURE.md "Live events").

Ingest and the API publish `Event`s; `realtime` carries them to websockets, the Redis bridge
and push senders. The type lives in the kernel so that a publisher needs nothing of
`realtime` but a `Bus` to publish on (the in-process `realtime.bus.EventBus` is one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """One live row with the attributes subscriptions are filtered and scoped by.

    `data` is the row as sent to clients. `district`, `company_id`, `site_id` repeat the
    scope keys so that filtering never has to look inside `data`. `origin` names the
    process that published it (the Redis bridge uses it to avoid echoing events back).
    """

    channel: str
    data: Mapping[str, Any]
    district: str | None = None
    company_id: int | None = None
    site_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    key: str | None = None
    """Identity for coalescing (e.g. a vehicle id: the latest position per key wins)."""
    ts: float = field(default_factory=time.time)
    origin: str | None = None
    raw: bytes | None = field(default=None, compare=False, repr=False)
    """`data` already encoded as JSON, when it is at hand (the Redis bridge sets it for
    events from other processes), so the websocket hub does not encode it again."""


Listener = Callable[[Event], None]
Filter = Callable[[Event], bool]


class Bus(Protocol):
    """What the app's bus offers (`server.kernel.appkeys.BUS`): publish, listen, count."""

    published: int
    listener_errors: int

    def publish(self, event: Event) -> None: ...

    def listen(
        self, channel: str | None, listener: Listener, event_filter: Filter | None = None
    ) -> Callable[[], None]: ...

    def listener_count(self, channel: str | None = None) -> int: ...
