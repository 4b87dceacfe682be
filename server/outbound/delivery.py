"""What an HTTP delivery attempt's outcome means, and when to try again (docs/OUTBOUND.md).

One rule for both outbound feeds, so that the SMS gateway and the provincial platform are
treated alike:

- a 2xx answer is delivered (the SMS sender further demands the gateway's message id);
- 5xx, 408, 429, a timeout, a refused or broken connection are *transient*: the same request
  is tried again later, with a delay that doubles from ``backoff_min_s`` to ``backoff_max_s``
  (half of it random, so that many messages failing together do not come back together);
- any other 4xx is *permanent*: the receiver refuses this request as it is, and sending it
  again cannot change that.

Error texts kept in the database are short and never hold a request's headers, where the
credentials are.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import asyncpg

__all__ = [
    "ERROR_MAX_CHARS",
    "Counters",
    "Verdict",
    "backoff_s",
    "describe",
    "verdict_of",
]

ERROR_MAX_CHARS: Final = 300
"""How much of a receiver's answer is kept as ``last_error`` (enough to read, not a dump)."""
_TRANSIENT_4XX: Final = frozenset({408, 429})
TRANSPORT_ERRORS: Final = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
"""A request that got no HTTP answer: timeout, refused, reset, DNS — all transient."""


log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


def verdict_of(status: int) -> Verdict:
    """The meaning of an HTTP status answered by the receiver."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if 400 <= status < 500 and status not in _TRANSIENT_4XX:
        return Verdict.PERMANENT
    return Verdict.TRANSIENT


def backoff_s(attempts: int, low: float, high: float, rng: random.Random | None = None) -> float:
    """Delay before the next try after *attempts* failed ones: ``low · 2^(attempts-1)``
    capped at *high*, of which the upper half is random (jitter)."""
    exponent = max(attempts - 1, 0)
    delay = high if exponent >= 64 else min(high, low * 2**exponent)
    return delay / 2 + (rng or random).random() * delay / 2


def describe(status: int | None, text: str) -> str:
    """A ``last_error`` text: the status (or the transport error) and the answer's start."""
    head = f"HTTP {status}: " if status is not None else ""
    return (head + " ".join(text.split()))[:ERROR_MAX_CHARS]


@dataclass
class Counters:
    """Per-process figures of one sender, rendered for ``/metrics`` (Prometheus text): a
    name ending in ``_total`` is a counter, any other a gauge."""

    prefix: str
    help: dict[str, str]
    values: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n

    def set(self, name: str, value: int) -> None:
        self.values[name] = value

    def render(self) -> str:
        lines = []
        for name, text in self.help.items():
            metric = f"{self.prefix}_{name}"
            kind = "counter" if name.endswith("_total") else "gauge"
            lines += [
                f"# HELP {metric} {text}",
                f"# TYPE {metric} {kind}",
                f"{metric} {self.values.get(name, 0)}",
            ]
        return "\n".join(lines) + "\n"


DB_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
"""The database going away under a round: log one line and try again, never stop."""


async def run_rounds(
    name: str,
    timeout_s: float,
    poll_interval_s: float,
    round_: Callable[[aiohttp.ClientSession], Awaitable[bool]],
    after_round: Callable[[bool], Awaitable[None]],
) -> None:
    """A sender's life until cancelled: rounds back to back while there is work, a pause of
    ``poll_interval_s`` when a round found none or failed. ``after_round(worked)`` runs after
    each successful round (gauges, housekeeping). A failed round is logged, never fatal: a
    bug must not stop delivery for good, and the database coming back resumes it."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        while True:
            worked = False
            try:
                worked = await round_(http)
                await after_round(worked)
            except DB_ERRORS as exc:
                log.warning("%s: database unavailable (%s); retrying", name, exc)
            except Exception:
                log.exception("%s: round failed; retrying", name)
            if not worked:
                await asyncio.sleep(poll_interval_s)
