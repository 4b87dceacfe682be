"""The credit recomputation round: ledger from the facts, then the monthly snapshots.

Why a round and not a query per page view (DOMAIN.md "Credit evaluation"): a score counts a
year of refusals, alerts, complaints and licence changes; summing them for every page view
would scan a year of rows each time. The round does it once — on a schedule in the server
processes (``[credit] interval_s``) and on demand (``POST /api/v1/credit/recompute``) — and
pages read ``credit_scores`` (docs/ARCHITECTURE.md §4).

One round is one transaction under a PostgreSQL advisory lock: several server processes
never run it at the same moment (a scheduled round that finds the lock taken skips; an
on-demand one waits its turn), and what a round writes appears whole or not at all. It is
idempotent: the ledger is upserted by each entry's source, so a second round over the same
facts changes nothing. The round's time and counts are kept in ``credit_rounds``, so the
schedule survives restarts and is shared by every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import asyncpg
import orjson

from server.db import credit as sql
from server.domain.credit import (
    DERIVED_KINDS,
    STICKY_KINDS,
    KindTotal,
    event_points,
    grade_all,
    ranks,
    score,
    snapshot_days,
    window_start,
)
from server.domain.localtime import city_date, city_zone
from server.kernel.settings import Settings

__all__ = ["LOCK_KEY", "RoundResult", "credit_schedule", "last_round", "recompute"]

log = logging.getLogger(__name__)

LOCK_KEY: Final = 0x43524544_4954  # "CREDIT": this round's advisory lock, one per database


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round did (also the answer of ``POST /api/v1/credit/recompute``)."""

    round: int
    as_of: dt.date
    inserted: int
    updated: int
    deleted: int
    companies: int
    duration_ms: int

    def as_dict(self) -> dict[str, object]:
        return {
            "round": self.round,
            "as_of": self.as_of,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "companies": self.companies,
            "duration_ms": self.duration_ms,
        }


async def recompute(
    pool: asyncpg.Pool, settings: Settings, *, trigger: str, wait: bool = True
) -> RoundResult | None:
    """One round. *wait*: queue behind a running round (on demand); otherwise return None
    when another process holds the lock (the schedule: that process is doing this round)."""
    cfg = settings.credit
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    today = city_date(now, settings.alerts)
    snapshots = snapshot_days(today, cfg)
    since = window_start(snapshots[0][1], cfg)
    zone = city_zone(settings.alerts)
    since_at = dt.datetime.combine(since, dt.time(), zone)
    async with pool.acquire() as conn, conn.transaction():
        if wait:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return None
        number = await conn.fetchval(
            """UPDATE credit_rounds SET round = round + 1, started_at = $1, trigger = $2
                WHERE name = 'credit' RETURNING round""",
            now,
            trigger,
        )
        inserted, updated, deleted = await _ledger(conn, settings, since, since_at, today)
        companies = await _snapshots(conn, settings, snapshots)
        duration = int((time.monotonic() - started) * 1000)
        await conn.execute(
            """UPDATE credit_rounds SET finished_at = clock_timestamp(), as_of = $1,
                      inserted = $2, updated = $3, deleted = $4, companies = $5,
                      duration_ms = $6
                WHERE name = 'credit'""",
            today,
            inserted,
            updated,
            deleted,
            companies,
            duration,
        )
    result = RoundResult(int(number), today, inserted, updated, deleted, companies, duration)
    log.info("credit round %s (%s): %s", result.round, trigger, result.as_dict())
    return result


async def _ledger(
    conn: asyncpg.Connection,
    settings: Settings,
    since: dt.date,
    since_at: dt.datetime,
    today: dt.date,
) -> tuple[int, int, int]:
    """Derive every kind's entries since *since*, upsert them, drop the ones whose fact went."""
    cfg = settings.credit
    await conn.execute(sql.DERIVED_TABLE)
    for kind in DERIVED_KINDS:
        if kind not in sql.DERIVE:
            continue  # no fact yet (rectification_overdue: issue 8)
        statement, extra = sql.DERIVE[kind]
        args: list[object] = [settings.alerts.timezone, since_at, since, event_points(kind, 1, cfg)]
        if extra == "reasons":
            args.append(list(cfg.denied_reasons))
        elif extra == "kind":
            args.append(kind)
        elif extra == "today":
            args.append(today)
        await conn.execute(statement, *args)
    await conn.execute("ANALYZE credit_derived")
    written = await conn.fetch(sql.UPSERT)
    inserted = sum(1 for r in written if r["inserted"])
    status = await conn.execute(sql.PRUNE, since, sorted(STICKY_KINDS))
    deleted = int(status.split()[-1])
    return inserted, len(written) - inserted, deleted


async def _snapshots(
    conn: asyncpg.Connection, settings: Settings, snapshots: list[tuple[dt.date, dt.date]]
) -> int:
    """Score, grade and rank every company as of each snapshot day; returns the companies."""
    cfg = settings.credit
    firsts = [window_start(as_of, cfg) for _, as_of in snapshots]
    sums: dict[dt.date, dict[int, dict[str, KindTotal]]] = defaultdict(lambda: defaultdict(dict))
    for r in await conn.fetch(
        sql.SUMS,
        [m for m, _ in snapshots],
        firsts,
        [a for _, a in snapshots],
        min(firsts),
        max(a for _, a in snapshots),
    ):
        sums[r["month"]][r["company_id"]][r["kind"]] = KindTotal(int(r["count"]), r["points"])
    companies = await conn.fetch(sql.COMPANIES, settings.alerts.timezone)
    cols: tuple[list[object], ...] = ([], [], [], [], [], [], [], [])
    for month, as_of in snapshots:
        existing = [c["id"] for c in companies if c["since"] <= as_of]
        scored = {cid: score(sums[month].get(cid, {}), cfg) for cid in existing}
        values: dict[int, Decimal] = {cid: s.score for cid, s in scored.items()}
        grades = grade_all(values, cfg)
        ranked = ranks(values)
        for cid, s in scored.items():
            row = (
                cid,
                month,
                as_of,
                s.score,
                grades[cid],
                ranked[cid],
                len(scored),
                orjson.dumps([line.as_dict() for line in s.lines]).decode(),
            )
            for col, value in zip(cols, row, strict=True):
                col.append(value)
    await conn.execute(sql.WRITE_SCORES, *cols)
    return len(companies)


async def last_round(db: asyncpg.Pool | asyncpg.Connection) -> asyncpg.Record | None:
    return await db.fetchrow(
        """SELECT round, started_at, finished_at, trigger, as_of, inserted, updated, deleted,
                  companies, duration_ms
             FROM credit_rounds WHERE name = 'credit'"""
    )


async def credit_schedule(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[None]:
    """Run the round every ``[credit] interval_s`` after the last one (by any process), for as
    long as the iterator is open — a ``cleanup_ctx`` body (``server.api.credit.setup``)."""
    interval = settings.credit.interval_s
    task = (
        asyncio.create_task(_loop(pool, settings, interval), name="credit-round")
        if interval
        else None
    )
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _loop(pool: asyncpg.Pool, settings: Settings, interval: float) -> None:
    while True:
        try:
            finished = await pool.fetchval(
                "SELECT finished_at FROM credit_rounds WHERE name = 'credit'"
            )
            now = dt.datetime.now(dt.UTC)
            due_in = (
                0.0
                if finished is None
                else (finished + dt.timedelta(seconds=interval) - now).total_seconds()
            )
            if due_in > 0:
                await asyncio.sleep(min(due_in, interval))
                continue
            if await recompute(pool, settings, trigger="schedule", wait=False) is None:
                # another process holds the lock: it is doing this round; look again after it
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database outage must not end the schedule: try at the next turn
            log.exception("credit round failed; next attempt in %s s", interval)
            await asyncio.sleep(interval)
