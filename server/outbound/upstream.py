"""Upload to the provincial / national platform: the outbox sender (docs/OUTBOUND.md "Upload").

Database triggers (migration 0080) write every archive change of a cylinder (created,
updated, scrapped) and every fill into ``upstream_outbox`` in the writer's own transaction —
the API, the archive import, an ingest worker's batch, a console — whenever the switch
``outbound_switch.upstream`` is on. The server writes its ``[upstream] enabled`` setting
there at start-up (:func:`write_switch`).

Every `cylwatch serve` process runs an :class:`UpstreamSender`; they share the work:

- **Batch.** One short transaction either re-claims the oldest batch whose retry is due (or
  whose sender died: ``sending`` for longer than ``claim_timeout_s``), or takes up to
  ``batch_size`` changes not yet in a batch, with ``FOR UPDATE SKIP LOCKED``, and makes them
  a new batch. A batch's content never changes, so each try sends the same thing.
- **Send.** ``POST endpoint_url`` with ``{"source", "batch_id", "records": [{"outbox_id",
  "entity", "op", "changed_at", "data"}]}``, ``Authorization: Bearer <api_key>`` and
  ``Idempotency-Key``. Delivery is at least once: after a lost answer or a restart the same
  batch comes again, so the receiver drops the ``outbox_id``\\ s it already has. Ids of one
  cylinder's changes grow in the order of the changes: keep the highest.
- **Outcome.** 2xx: delivered. 5xx, 408, 429, no answer: tried again after a backoff; after
  ``max_attempts`` tries the batch is ``dead`` (dead letter) — ``GET
  /api/v1/outbound/upstream`` lists it and ``POST …/{id}/retry`` (:func:`retry_batch`)
  queues it again. Another 4xx: dead at once — the platform refuses this content.
- **Retention.** Delivered batches and their changes are deleted ``retention_days`` after
  delivery, a bounded number per idle round.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import asyncpg
import msgspec

from server.kernel.settings import Upstream
from server.outbound.delivery import (
    TRANSPORT_ERRORS,
    Counters,
    Verdict,
    backoff_s,
    describe,
    run_rounds,
    verdict_of,
)

__all__ = ["SWITCH", "UpstreamSender", "retry_batch", "upstream_counters", "write_switch"]

log = logging.getLogger(__name__)

SWITCH: Final = "upstream"
"""The row of ``outbound_switch`` the triggers read."""

_DUE_BATCH = """
SELECT id FROM upstream_batches
 WHERE (state = 'pending' AND next_attempt_at <= now())
    OR (state = 'sending' AND claimed_at < now() - make_interval(secs => $1))
 ORDER BY id
 LIMIT 1
 FOR UPDATE SKIP LOCKED
"""
_NEW_CHANGES = """
SELECT id FROM upstream_outbox WHERE batch_id IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_RECORDS = """
SELECT o.id, o.entity, o.op, o.changed_at, o.record, co.code AS company_code,
       st.code AS station_code
  FROM upstream_outbox o
  LEFT JOIN companies co
         ON co.id = coalesce(o.record ->> 'owner_company_id', o.record ->> 'company_id')::bigint
  LEFT JOIN sites st ON st.id = (o.record ->> 'station_id')::bigint
 WHERE o.batch_id = $1
 ORDER BY o.id
"""
_PRUNE = """
DELETE FROM upstream_batches WHERE id IN (
    SELECT id FROM upstream_batches
     WHERE state = 'delivered' AND delivered_at < now() - make_interval(days => $1)
     ORDER BY delivered_at LIMIT $2)
"""


async def write_switch(conn: asyncpg.Pool | asyncpg.Connection, enabled: bool) -> None:
    """Tell the triggers whether to write the outbox (a no-op when it already says so)."""
    await conn.execute(
        """INSERT INTO outbound_switch (name, enabled) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, set_at = now()
           WHERE outbound_switch.enabled IS DISTINCT FROM EXCLUDED.enabled""",
        SWITCH,
        enabled,
    )


async def retry_batch(conn: asyncpg.Connection, batch_id: int) -> asyncpg.Record | None:
    """Queue a dead batch again with a fresh count of attempts; None unless it was dead."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """UPDATE upstream_batches SET state = 'pending', attempts = 0, next_attempt_at = now(),
                  claimed_at = NULL
            WHERE id = $1 AND state = 'dead'
        RETURNING *""",
        batch_id,
    )
    return row


class UpstreamSender:
    """One process's upload sender; :meth:`run` until cancelled."""

    def __init__(
        self, pool: asyncpg.Pool, rules: Upstream, counters: Counters | None = None
    ) -> None:
        self.pool = pool
        self.rules = rules
        self.counters = counters or upstream_counters()

    async def run(self) -> None:
        await run_rounds(
            "upload sender",
            self.rules.timeout_s,
            self.rules.poll_interval_s,
            self.round,
            self._after_round,
        )

    async def _after_round(self, worked: bool) -> None:
        if not worked:  # idle: prune delivered batches past their retention
            await self.pool.execute(_PRUNE, self.rules.retention_days, self.rules.batch_size)
        await self._gauge()

    async def round(self, http: aiohttp.ClientSession) -> bool:
        """Claim one batch and send it; False when there was nothing to send."""
        batch = await self.claim()
        if batch is None:
            return False
        await self.deliver(http, batch)
        return True

    async def claim(self) -> asyncpg.Record | None:
        """A batch marked ``sending`` for this sender: a due retry first, else a new one."""
        async with self.pool.acquire() as conn, conn.transaction():
            batch_id = await conn.fetchval(_DUE_BATCH, self.rules.claim_timeout_s)
            if batch_id is None:
                changes = [r["id"] for r in await conn.fetch(_NEW_CHANGES, self.rules.batch_size)]
                if not changes:
                    return None
                batch_id = await conn.fetchval(
                    "INSERT INTO upstream_batches (records) VALUES ($1) RETURNING id", len(changes)
                )
                await conn.execute(
                    "UPDATE upstream_outbox SET batch_id = $1 WHERE id = ANY($2::bigint[])",
                    batch_id,
                    changes,
                )
            row: asyncpg.Record | None = await conn.fetchrow(
                """UPDATE upstream_batches SET state = 'sending', attempts = attempts + 1,
                          claimed_at = now()
                    WHERE id = $1 RETURNING id, attempts, claimed_at""",
                batch_id,
            )
            return row

    async def payload(self, batch_id: int) -> bytes:
        """The batch as the platform receives it (the same bytes on every try but ``sent_at``)."""
        records = []
        for r in await self.pool.fetch(_RECORDS, batch_id):
            data = dict(r["record"])  # jsonb arrives decoded (server.db.pool's codec)
            data["company_code"] = r["company_code"]
            if r["entity"] == "fill":
                data["station_code"] = r["station_code"]
            records.append(
                {
                    "outbox_id": r["id"],
                    "entity": r["entity"],
                    "op": r["op"],
                    "changed_at": r["changed_at"],
                    "data": data,
                }
            )
        return msgspec.json.encode(
            {
                "source": self.rules.source_id,
                "batch_id": batch_id,
                "sent_at": datetime.now(UTC),
                "records": records,
            }
        )

    async def deliver(self, http: aiohttp.ClientSession, batch: asyncpg.Record) -> None:
        rules = self.rules
        body = await self.payload(batch["id"])
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {rules.api_key}",
            "Idempotency-Key": f"{rules.source_id}-batch-{batch['id']}",
        }
        try:
            async with http.post(rules.endpoint_url, data=body, headers=headers) as resp:
                status, raw = resp.status, await resp.read()
        except TRANSPORT_ERRORS as exc:
            await self._retry_or_bury(batch, describe(None, f"{type(exc).__name__}: {exc}"))
            return
        verdict = verdict_of(status)
        error = describe(status, raw.decode("utf-8", errors="replace"))
        if verdict is Verdict.DELIVERED:
            if await self._update(
                batch,
                """UPDATE upstream_batches SET state = 'delivered', delivered_at = now(),
                          claimed_at = NULL, last_error = NULL
                    WHERE id = $1 AND state = 'sending' AND claimed_at = $2""",
            ):
                self.counters.add("batches_delivered_total")
        elif verdict is Verdict.TRANSIENT:
            await self._retry_or_bury(batch, error)
        else:
            await self._bury(batch, error)

    async def _retry_or_bury(self, batch: asyncpg.Record, error: str) -> None:
        rules = self.rules
        if batch["attempts"] >= rules.max_attempts:
            await self._bury(batch, error)
            return
        delay = backoff_s(batch["attempts"], rules.backoff_min_s, rules.backoff_max_s)
        if await self._update(
            batch,
            """UPDATE upstream_batches SET state = 'pending', claimed_at = NULL, last_error = $3,
                      next_attempt_at = now() + make_interval(secs => $4)
                WHERE id = $1 AND state = 'sending' AND claimed_at = $2""",
            error,
            delay,
        ):
            self.counters.add("retries_total")

    async def _bury(self, batch: asyncpg.Record, error: str) -> None:
        if await self._update(
            batch,
            """UPDATE upstream_batches SET state = 'dead', claimed_at = NULL, last_error = $3
                WHERE id = $1 AND state = 'sending' AND claimed_at = $2""",
            error,
        ):
            self.counters.add("batches_dead_total")
            log.warning("upload batch %s dead-lettered: %s", batch["id"], error)

    async def _update(self, batch: asyncpg.Record, sql: str, *args: Any) -> bool:
        """Apply *sql* to a batch this sender still holds; False if its claim was lost."""
        done = await self.pool.execute(sql, batch["id"], batch["claimed_at"], *args)
        if done.endswith(" 0"):
            log.warning("upload batch %s: claim lost to another sender", batch["id"])
            return False
        return True

    async def _gauge(self) -> None:
        waiting = await self.pool.fetchval(
            """SELECT (SELECT count(*) FROM upstream_outbox WHERE batch_id IS NULL)
                    + (SELECT coalesce(sum(records), 0) FROM upstream_batches
                        WHERE state IN ('pending', 'sending'))"""
        )
        self.counters.set("pending", int(waiting or 0))


def upstream_counters() -> Counters:
    return Counters(
        "cylwatch_upstream",
        {
            "pending": "Changes waiting for delivery to the platform (all processes).",
            "batches_delivered_total": "Batches the platform took (this process).",
            "batches_dead_total": "Batches dead-lettered (this process).",
            "retries_total": "Batch tries that failed and were scheduled again.",
        },
    )
