"""The outgoing queues under faults: the SMS outbox and the upload to the provincial / national
platform deliver what they held once their receivers and the database are back
(docs/OUTBOUND.md, docs/RELIABILITY.md "Chaos runs", issue 10 item 1).

What a chaos test of those queues needs besides the senders themselves
(``server.outbound.sms_sender``, ``server.outbound.upstream``) and a private PostgreSQL
(``server.chaos.services``):

- :class:`PeerHost` — a receiver's HTTP endpoint on a fixed loopback port that can be *down*
  (nothing listens: the sender's connection is refused), in *maintenance* (it answers 503 to
  every request) or *up* (the receiver's own application answers). It notes every request that
  reached it — the message or batch it carried, its attempt number, when — which is how the
  back-off is measured from the receiver's side, as the receiver would see it;
- :func:`queue_state` and :func:`drained` — the queues' depths by state, read from the tables
  every process shares (``sms_outbox``, ``upstream_outbox``, ``upstream_batches``);
- :func:`backoff_breaches` — tries of one message that came sooner than the configured
  back-off allows (``server.outbound.delivery.backoff_s``: ``min(max, min·2^(n-1))``, of which
  the upper half is random), or, away from a database fault, later than it plus one request
  and one poll.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import asyncpg
from aiohttp import web

__all__ = [
    "PeerHost",
    "QueueState",
    "Try",
    "backoff_breaches",
    "drained",
    "queue_state",
    "sms_key",
    "upstream_key",
]

MODES: Final = ("down", "maintenance", "up")
ROUND_SLACK_S: Final = 0.5
"""What a try may come later than its back-off, one request and one poll allow: the claim's
transaction and the scheduling of a loaded 2-core machine."""
TIMING_TOLERANCE_S: Final = 0.02
"""Clock reads on either side of a back-off: an earlier try by less is rounding, not a breach."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Try:
    """One request as the receiver saw it arrive."""

    key: str
    """The message or batch it carried (the same on every try of it)."""
    attempt: int | None
    """The sender's attempt number when the request says it (the SMS ``X-Attempt``)."""
    at: float
    """``time.monotonic()`` on arrival."""
    status: int | None
    """What was answered; None when the answer never left (the receiver hung past the
    sender's timeout, or the sender gave up first)."""


def sms_key(request: web.Request) -> tuple[str, int | None]:
    """An SMS gateway request's message (``X-Client-Msg-Id``) and try (``X-Attempt``)."""
    attempt = request.headers.get("X-Attempt", "")
    return request.headers.get("X-Client-Msg-Id", "?"), int(attempt) if attempt else None


def upstream_key(request: web.Request) -> tuple[str, int | None]:
    """An upload's batch (``Idempotency-Key``); the request does not number its tries."""
    return request.headers.get("Idempotency-Key", "?"), None


class PeerHost:
    """A receiver's application behind a switch: down, in maintenance, or up (module doc)."""

    def __init__(
        self, app: web.Application, key: Callable[[web.Request], tuple[str, int | None]]
    ) -> None:
        self.mode = "up"
        self.tries: list[Try] = []
        self.on_request: Callable[[], None] | None = None
        """Called as a request arrives, before it is answered: a test breaks something
        exactly while a request is in flight (then its sender cannot record the answer)."""
        self._key = key
        app.middlewares.append(self._note)
        self._runner = web.AppRunner(app, handle_signals=False)
        self._site: web.TCPSite | None = None
        self.port = 0

    @web.middleware
    async def _note(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.on_request is not None:
            self.on_request()
        key, attempt = self._key(request)
        at = time.monotonic()
        status: int | None = None
        try:
            if self.mode == "maintenance":
                status = 503
                return web.json_response({"error": "down for maintenance"}, status=503)
            response = await handler(request)
            status = response.status
            return response
        finally:
            self.tries.append(Try(key, attempt, at, status))

    async def start(self, mode: str = "up") -> str:
        """Serve on a spare loopback port (kept across ``down``/``up``); the base URL."""
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        server = self._site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        await self.switch(mode)
        return f"http://127.0.0.1:{self.port}"

    async def switch(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: one of {MODES}")
        if mode == "down" and self._site is not None:
            await self._site.stop()
            self._site = None
        elif mode != "down" and self._site is None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await self._site.start()
        self.mode = mode

    async def close(self) -> None:
        await self._runner.cleanup()


@dataclass
class QueueState:
    sms: dict[str, int] = field(default_factory=dict)
    """Messages by state (queued, sending, sent, failed)."""
    unbatched: int = 0
    """Changes to upload not yet in a batch."""
    batches: dict[str, int] = field(default_factory=dict)
    """Upload batches by state (pending, sending, delivered, dead)."""


async def queue_state(conn: asyncpg.Connection | asyncpg.Pool) -> QueueState:
    sms = await conn.fetch("SELECT state, count(*) AS n FROM sms_outbox GROUP BY state")
    batches = await conn.fetch("SELECT state, count(*) AS n FROM upstream_batches GROUP BY state")
    unbatched = await conn.fetchval("SELECT count(*) FROM upstream_outbox WHERE batch_id IS NULL")
    return QueueState(
        {r["state"]: int(r["n"]) for r in sms},
        int(unbatched),
        {r["state"]: int(r["n"]) for r in batches},
    )


def drained(state: QueueState) -> bool:
    """Nothing waiting or in flight in either queue (given up counts as not waiting: the
    callers check that nothing was)."""
    return (
        state.sms.get("queued", 0) + state.sms.get("sending", 0) == 0
        and state.unbatched == 0
        and state.batches.get("pending", 0) + state.batches.get("sending", 0) == 0
    )


def _delay(attempts: int, low: float, high: float) -> float:
    """The full back-off after *attempts* failed tries (``server.outbound.delivery``)."""
    return min(high, low * 2.0 ** max(attempts - 1, 0))


def backoff_breaches(
    tries: Sequence[Try],
    low: float,
    high: float,
    timeout_s: float,
    poll_s: float,
    calm: Sequence[tuple[float, float]] = (),
) -> list[str]:
    """Pairs of successive tries of one message that break the back-off: sooner than half
    its delay (the random part is the upper half), or — when both fell in one *calm* window
    (the database up, the receiver answering at once: no outcome waits for a claim to time
    out, no round for a hung request) — later than the delay plus one request (*timeout_s*)
    and one poll. Tries that do not number themselves are ranked by arrival: fewer seen
    than made only lowers the bound, so the check stays sound."""
    by_key: dict[str, list[Try]] = defaultdict(list)
    for t in tries:
        by_key[t.key].append(t)
    out = []
    for key, seen in by_key.items():
        seen.sort(key=lambda t: t.at)
        for rank, (a, b) in enumerate(itertools.pairwise(seen), start=1):
            n = a.attempt if a.attempt is not None else rank
            if b.attempt is not None and b.attempt != n + 1:
                continue  # a try in between never reached the receiver
            delay = _delay(n, low, high)
            gap = b.at - a.at
            if gap < delay / 2 - TIMING_TOLERANCE_S:
                out.append(
                    f"{key}: try {n + 1} {gap:.2f} s after try {n} (back-off ≥ {delay / 2:.2f} s)"
                )
            quiet = any(s <= a.at and b.at <= e for s, e in calm)
            late = delay + timeout_s + poll_s + ROUND_SLACK_S
            if quiet and a.attempt is not None and gap > late:
                out.append(
                    f"{key}: try {n + 1} {gap:.2f} s after try {n} (back-off ≤ {late:.2f} s)"
                )
    return out
