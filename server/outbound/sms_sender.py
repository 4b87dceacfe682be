"""The SMS sender: claims due messages, sends them to the gateway, records what happened
(docs/OUTBOUND.md "SMS").

Every `cylwatch serve` process runs one (``server.outbound.service``); they share the queue:

- **Claim.** One short transaction takes up to ``batch_size`` due messages with
  ``FOR UPDATE SKIP LOCKED`` (another sender skips them instead of waiting) and marks them
  ``sending`` with the claim time and one more attempt. A message left ``sending`` longer
  than ``claim_timeout_s`` belonged to a sender that died: it is due again.
- **Per-number limit.** Inside the claim, each number's advisory lock (taken in number
  order, so two senders cannot deadlock) serialises the count of its messages sent in the
  last hour or in flight; messages beyond ``rate_limit_per_hour`` stay queued until the
  oldest of that hour's sends is an hour old — deferred, never dropped, no attempt spent.
- **Send.** Outside any transaction. The request carries ``X-Client-Msg-Id`` (the same on
  every try of a message), so a gateway that accepted a message whose answer was lost
  accepts the repeat as the same message instead of texting the person twice, and
  ``X-Attempt``. It is signed with the API secret (``X-Signature``: HMAC-SHA256 of the
  timestamp and the body); the key and secret are never logged.
- **Record.** A 2xx answer naming the gateway's ``message_id`` is ``sent``. A 5xx, 408,
  429, timeout, broken connection or an answer that is not the expected JSON is tried again
  after a backoff (``server.outbound.delivery``) up to ``max_attempts``, then ``failed``;
  another 4xx is ``failed`` at once. The update only applies while this sender's claim
  still holds (same claim time), so a sender presumed dead cannot overwrite a newer try.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import aiohttp
import asyncpg
import msgspec

from server.kernel.settings import Sms
from server.outbound.delivery import (
    TRANSPORT_ERRORS,
    Counters,
    Verdict,
    backoff_s,
    describe,
    run_rounds,
    verdict_of,
)

__all__ = ["SmsSender", "client_msg_id", "sign"]

log = logging.getLogger(__name__)

RATE_WINDOW_S: Final = 3600
"""The per-number limit's window: ``rate_limit_per_hour`` counts the last hour."""
_LOCK_CLASS: Final = 0x5345
"""First key of the per-number advisory locks (the second is the number's hash)."""

_CLAIM = """
SELECT id, phone, body, attempts, state FROM sms_outbox
 WHERE (state = 'queued' AND next_attempt_at <= now())
    OR (state = 'sending' AND claimed_at < now() - make_interval(secs => $2))
 ORDER BY next_attempt_at, id
 LIMIT $1
 FOR UPDATE SKIP LOCKED
"""
_RECENT = """
SELECT count(*) AS used, min(sent_at) AS oldest FROM sms_outbox
 WHERE phone = $1
   AND ((state = 'sent' AND sent_at > now() - make_interval(secs => $2))
        OR (state = 'sending' AND id <> ALL($3::bigint[])))
"""


class GatewayAnswer(msgspec.Struct):
    """What a gateway answers when it takes a message (its own id for it)."""

    message_id: str = ""


def client_msg_id(row_id: int) -> str:
    """The id the gateway de-duplicates on: one per queued message, the same on every try."""
    return f"cylwatch-sms-{row_id}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Signature``: hex HMAC-SHA256 over ``timestamp + "\\n" + body`` with the API secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()


class SmsSender:
    """One process's SMS sender; :meth:`run` until cancelled."""

    def __init__(self, pool: asyncpg.Pool, rules: Sms, counters: Counters | None = None) -> None:
        self.pool = pool
        self.rules = rules
        self.counters = counters or sms_counters()

    async def run(self) -> None:
        await run_rounds(
            "SMS sender",
            self.rules.timeout_s,
            self.rules.poll_interval_s,
            self.round,
            lambda _worked: self._gauge(),
        )

    async def round(self, http: aiohttp.ClientSession) -> bool:
        """Claim due messages and send them; False when nothing was due."""
        claimed = await self.claim()
        if not claimed:
            return False
        await asyncio.gather(*(self.deliver(http, row) for row in claimed))
        return True

    async def claim(self) -> list[asyncpg.Record]:
        """Due messages marked ``sending`` for this sender, within each number's limit."""
        rules = self.rules
        async with self.pool.acquire() as conn, conn.transaction():
            due = await conn.fetch(_CLAIM, rules.batch_size, rules.claim_timeout_s)
            if not due:
                return []
            ids = [r["id"] for r in due]
            send: list[int] = []
            for phone in sorted({r["phone"] for r in due}):
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, phone
                )
                recent = await conn.fetchrow(_RECENT, phone, RATE_WINDOW_S, ids)
                assert recent is not None
                room = max(rules.rate_limit_per_hour - recent["used"], 0)
                mine = [r["id"] for r in due if r["phone"] == phone]
                send += mine[:room]
                if mine[room:]:
                    await self._defer(conn, mine[room:], recent["oldest"])
            return list(
                await conn.fetch(
                    """UPDATE sms_outbox SET state = 'sending', attempts = attempts + 1,
                              claimed_at = now()
                        WHERE id = ANY($1::bigint[])
                    RETURNING id, phone, body, attempts, claimed_at""",
                    send,
                )
            )

    async def _defer(
        self, conn: asyncpg.Connection, ids: Sequence[int], oldest: datetime | None
    ) -> None:
        """Messages over their number's hourly limit wait for a slot (no attempt spent)."""
        self.counters.add("deferred_total", len(ids))
        await conn.execute(
            """UPDATE sms_outbox SET state = 'queued', claimed_at = NULL,
                      next_attempt_at = CASE WHEN $2::timestamptz IS NULL
                          THEN now() + make_interval(secs => $3)
                          ELSE $2::timestamptz + make_interval(secs => $4) END,
                      last_error = 'waiting: per-number hourly limit reached'
                WHERE id = ANY($1::bigint[])""",
            list(ids),
            oldest,
            self.rules.poll_interval_s,
            RATE_WINDOW_S,
        )

    def request(self, row: asyncpg.Record) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one try of *row* (``attempts`` already counts it)."""
        rules = self.rules
        msg_id = client_msg_id(row["id"])
        body = msgspec.json.encode(
            {
                "to": row["phone"],
                "text": row["body"],
                "sender": rules.sender_id,
                "client_msg_id": msg_id,
            }
        )
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Api-Key": rules.api_key,
            "X-Timestamp": stamp,
            "X-Signature": sign(rules.api_secret, stamp, body),
            "X-Client-Msg-Id": msg_id,
            "X-Attempt": str(row["attempts"]),
        }
        return body, headers

    async def deliver(self, http: aiohttp.ClientSession, row: asyncpg.Record) -> None:
        """Send one claimed message and record the outcome."""
        body, headers = self.request(row)
        try:
            async with http.post(self.rules.gateway_url, data=body, headers=headers) as resp:
                status, raw = resp.status, await resp.read()
        except TRANSPORT_ERRORS as exc:
            await self._retry_or_fail(row, describe(None, f"{type(exc).__name__}: {exc}"))
            return
        verdict = verdict_of(status)
        text = raw.decode("utf-8", errors="replace")
        if verdict is Verdict.DELIVERED:
            try:
                answer = msgspec.json.decode(raw, type=GatewayAnswer)
            except msgspec.DecodeError:
                answer = GatewayAnswer()
            if answer.message_id:
                await self._finish(row, "sent", None, answer.message_id)
                return
            # taken or not? The repeat carries the same client id: the gateway knows.
            await self._retry_or_fail(row, describe(status, "answer without message_id: " + text))
        elif verdict is Verdict.TRANSIENT:
            await self._retry_or_fail(row, describe(status, text))
        else:
            await self._finish(row, "failed", describe(status, text), None)

    async def _retry_or_fail(self, row: asyncpg.Record, error: str) -> None:
        rules = self.rules
        if row["attempts"] >= rules.max_attempts:
            await self._finish(row, "failed", error, None)
            return
        delay = backoff_s(row["attempts"], rules.backoff_min_s, rules.backoff_max_s)
        if await self._update(
            row,
            """UPDATE sms_outbox SET state = 'queued', claimed_at = NULL, last_error = $3,
                      next_attempt_at = now() + make_interval(secs => $4)
                WHERE id = $1 AND state = 'sending' AND claimed_at = $2""",
            error,
            delay,
        ):
            self.counters.add("retries_total")

    async def _finish(
        self, row: asyncpg.Record, state: str, error: str | None, provider_id: str | None
    ) -> None:
        if await self._update(
            row,
            """UPDATE sms_outbox SET state = $3, last_error = $4, provider_message_id = $5,
                      sent_at = CASE WHEN $3 = 'sent' THEN now() END, claimed_at = NULL
                WHERE id = $1 AND state = 'sending' AND claimed_at = $2""",
            state,
            error,
            provider_id,
        ):
            self.counters.add(f"{state}_total")
            if state == "failed":
                log.warning("SMS %s failed for good: %s", row["id"], error)

    async def _update(self, row: asyncpg.Record, sql: str, *args: Any) -> bool:
        """Apply *sql* to a message this sender still holds; False if its claim was lost
        (it was presumed dead and another sender took the message over)."""
        done = await self.pool.execute(sql, row["id"], row["claimed_at"], *args)
        if done.endswith(" 0"):
            log.warning("SMS %s: claim lost to another sender; outcome left to it", row["id"])
            return False
        return True

    async def _gauge(self) -> None:
        waiting = await self.pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE state IN ('queued', 'sending')"
        )
        self.counters.set("queued", int(waiting or 0))


def sms_counters() -> Counters:
    return Counters(
        "cylwatch_sms",
        {
            "queued": "Messages queued or being sent (all processes).",
            "sent_total": "Messages the gateway took (this process).",
            "failed_total": "Messages given up: refused by the gateway or out of attempts.",
            "retries_total": "Tries that failed and were scheduled again.",
            "deferred_total": "Claims put back because the number's hourly limit was reached.",
        },
    )
