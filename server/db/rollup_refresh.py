"""Refreshing the report rollups (migration 0220; ``server.db.rollups``; docs/ARCHITECTURE.md
§9 "Reports"): a round in every server process every ``[reports] rollup_refresh_s``, and
``cylwatch reports refresh`` (``server.cli_reports``) on demand.

A refresh is one call of ``cyl_rollups_refresh`` (SECURITY DEFINER: the server's role owns
no view, migration 0072): every materialized rollup is refreshed CONCURRENTLY — reports keep
reading the previous rows meanwhile — fills only for the last ``RECENT_DAYS`` closed days but
once a day (migration 0221) — and the watermark moves to the day it closed, in one
transaction, so a report sees old rows with the old watermark or new rows with the new.
The function takes a transaction-scoped advisory lock: when several processes are up, one
refreshes and the others find the lock taken and wait for the next turn (the lock is in
PostgreSQL, not in memory, so it holds across processes and hosts). A zone setting other
than the rollups' rebuilds them in the same call. The abnormal circulation rollup (migration
0227, ``server.db.rollup_abnormal``) is refreshed right after, the same way, with its own
watermark, and so is the fill-day rollup (migration 0230, ``server.db.rollup_fill_days``),
then the recovery census made from it and the cylinder census (migration 0233,
``server.db.rollup_recovery``) and in-use-distribution's counts of the census (migration
0234, ``server.db.census.in_use_day``).
The deliveries rollup of ``sales`` and ``real-name-progress`` (migration 0229,
``server.db.rollup_deliveries``) comes next, and the safety-inspection rollup of
``safety-inspections`` (migration 0231, ``server.db.rollup_safety``) last, the same way.

On the TimescaleDB path the fills rollup is a real-time continuous aggregate refreshed by
TimescaleDB's own policy; the round refreshes the other three, moves the watermark, then has
the policy run now and waits for that run (migration 0224: only the aggregate's owner may
refresh it, outside a transaction, so the owner's job does it), so a refresh holds every fill
stored before it on both paths (docs/BENCHMARKS.md "TimescaleDB path (issue 14 item 6)").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import asyncpg
from aiohttp import web

from server.db.rollups import RECENT_DAYS, closed_until, refresh_own, watermark
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.settings import Settings
from server.kernel.tasks import stop_task

__all__ = ["REFRESH_TIMEOUT_S", "RollupJobError", "refresh", "rollup_schedule", "rollups_ctx"]

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_S: Final = 3600.0
"""Bound on one refresh: a year of a 1M-cylinder city refreshes in minutes on the 2-core
development machine (docs/BENCHMARKS.md "Reports"); an hour means it hangs, not that it is slow
(the pool's usual two-minute command bound would cut an honest one)."""


class RollupJobError(RuntimeError):
    """The TimescaleDB policy that refreshes the fills aggregate failed, is paused or never
    started: the round logs it, ``cylwatch reports refresh`` prints it in one line."""


JOB_START_TIMEOUT_S: Final = 120.0
"""How long the TimescaleDB path waits for the scheduler to start the fills aggregate's
policy once it is due: the scheduler wakes for a job set to start now within seconds (~4 s
measured, docs/BENCHMARKS.md "TimescaleDB path (issue 14 item 6)"), and after a server
restart within ~10 s; two minutes without a start means it is not running."""

JOB_POLL_S: Final = 0.25
"""How often the wait asks whether the policy's run has finished: a few cheap catalogue reads
a second, against a run that takes seconds."""


OWN_WATERMARK: Final[tuple[tuple[str, Callable[[Settings], tuple[Any, ...]]], ...]] = (
    # abnormal circulation (migration 0227): overdue is judged with the inspection interval
    ("cyl_abnormal_refresh", lambda s: (s.dates.inspection_interval_years,)),
    # recovery-rate's fill days (migration 0230)
    ("cyl_fill_days_refresh", lambda s: ()),
    # recovery-rate's census with its fill days (migration 0233): made from the two above
    ("cyl_recovery_refresh", lambda s: ()),
    # in-use-distribution's counts of today (migration 0234): made from the census
    ("cyl_in_use_refresh", lambda s: ()),
    # sales' and real-name-progress's deliveries (migration 0229)
    ("cyl_deliveries_refresh", lambda s: ()),
    # safety-inspections' records and answers (migration 0231)
    ("cyl_safety_refresh", lambda s: ()),
)
"""The rollups that keep their own watermark, refreshed in this order after the others:
their own refresh function and the arguments it takes beyond (upto, zone, wait, split,
full)."""


async def refresh(
    db: asyncpg.Pool | asyncpg.Connection,
    settings: Settings,
    *,
    wait: bool,
    now: dt.datetime | None = None,
    full: bool = False,
) -> bool:
    """Refresh the rollups up to the day closed at *now*; False when another process holds
    the lock and *wait* is false (that process is doing this round). On the native path the
    fills of the days before the last ``RECENT_DAYS`` are refreshed once a day, or now when
    *full*; TimescaleDB's aggregate refreshes every day with changes at every round."""
    upto = closed_until(now or dt.datetime.now(dt.UTC), settings)
    done = await db.fetchval(
        "SELECT cyl_rollups_refresh($1, $2, $3, $4, $5)",
        upto,
        settings.alerts.timezone,
        wait,
        upto - dt.timedelta(days=RECENT_DAYS),
        full,
        timeout=REFRESH_TIMEOUT_S,
    )
    if done:
        await _fills_aggregate_refreshed(db)
    # the rollups that keep their own watermark, each right after, under the same lock, in
    # its own transaction (OWN_WATERMARK)
    for function, extra in OWN_WATERMARK:
        if not done:
            break
        done = await refresh_own(
            db,
            function,
            settings,
            *extra(settings),
            upto=upto,
            split=upto - dt.timedelta(days=RECENT_DAYS),
            wait=wait,
            full=full,
            bound_s=REFRESH_TIMEOUT_S,
        )
    return bool(done)


async def _fills_aggregate_refreshed(db: asyncpg.Pool | asyncpg.Connection) -> None:
    """On the TimescaleDB path, run the fills aggregate's policy now and wait until a run
    begun after this call has finished (``cyl_rollup_fills_refreshed``, migration 0224);
    nothing on the native path."""
    since = await db.fetchval("SELECT clock_timestamp()")
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        state = await db.fetchval("SELECT cyl_rollup_fills_refreshed($1)", since)
        if state in ("native", "done"):
            return
        if state in ("failed", "paused"):
            job = await db.fetchval("SELECT cyl_rollup_fills_job()")
            raise RollupJobError(
                f"the fills rollup's TimescaleDB policy (job {job}) {state}: see"
                " timescaledb_information.job_errors and the PostgreSQL log"
            )
        waited = loop.time() - started
        if state == "waiting" and waited > JOB_START_TIMEOUT_S:
            raise RollupJobError(
                f"TimescaleDB's scheduler did not start the fills rollup's policy within"
                f" {JOB_START_TIMEOUT_S:.0f} s: are timescaledb.max_background_workers > 0"
                " and the database's scheduler running (timescaledb_information.job_stats)?"
            )
        if waited > REFRESH_TIMEOUT_S:
            raise RollupJobError(f"the fills rollup's policy ran for over {REFRESH_TIMEOUT_S} s")
        await asyncio.sleep(JOB_POLL_S)


async def _loop(pool: asyncpg.Pool, settings: Settings, interval: float) -> None:
    tz = settings.alerts.timezone
    while True:
        try:
            state = await watermark(pool)
            now = dt.datetime.now(dt.UTC)
            due_in = 0.0
            if state is not None and state.tz == tz and state.refreshed_at is not None:
                due_in = (state.refreshed_at + dt.timedelta(seconds=interval) - now).total_seconds()
            if due_in > 0:
                await asyncio.sleep(min(due_in, interval))
                continue
            started = asyncio.get_running_loop().time()
            if await refresh(pool, settings, wait=False):
                log.info(
                    "report rollups refreshed in %.1f s",
                    asyncio.get_running_loop().time() - started,
                )
            else:
                await asyncio.sleep(interval)  # another process is refreshing
        except asyncio.CancelledError:
            raise
        except Exception:  # an outage must not end the round: try at the next turn
            log.exception("report rollup refresh failed; next attempt in %s s", interval)
            await asyncio.sleep(interval)


async def rollup_schedule(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[None]:
    """Refresh every ``[reports] rollup_refresh_s`` after the last refresh (by any process)
    for as long as the iterator is open; 0 turns the round off (a read replica's server)."""
    interval = settings.reports.rollup_refresh_s
    task = (
        asyncio.create_task(_loop(pool, settings, interval), name="report-rollups")
        if interval
        else None
    )
    try:
        yield
    finally:
        if task is not None:
            await stop_task(task, settings.services.shutdown_grace_s)


async def rollups_ctx(app: web.Application) -> AsyncIterator[None]:
    """The round as a ``cleanup_ctx`` of the application (server/app.py)."""
    async for _ in rollup_schedule(app[POOL], app[SETTINGS]):
        yield
