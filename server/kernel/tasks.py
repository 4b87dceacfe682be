"""Stopping a process's background work within a bound (docs/ARCHITECTURE.md §3, docs/DEPLOY.md
"Upgrades and rollbacks").

Every periodic round of a server process — the report scheduler, the rollup refresh, the
reminder and rectification rounds, the queue gauges, the replica check — runs as a task that
the application's cleanup cancels and waits for. Waiting without a bound turned one lost
cancellation (a round that caught it in an ``except`` and went back to sleep, or a database
connection never handed back) into a process that never stops: systemd kills it after
``TimeoutStopSec`` instead of a clean stop, and a test run hung in an app's teardown for good.
So the wait is bounded by ``[services] shutdown_grace_s`` and what did not stop is named in
the log, and the pool is terminated instead of closed when its connections do not come back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

__all__ = ["close_pool", "stop_task"]


async def stop_task(task: asyncio.Task[Any], grace_s: float) -> None:
    """Cancel *task* and wait for it to end, at most *grace_s*; log it if it did not."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        log.error(
            "background task %r did not stop within %.1f s of its cancellation; left behind",
            task.get_name(),
            grace_s,
        )
        return
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "background task %r ended with an error", task.get_name(), exc_info=task.exception()
        )


async def close_pool(pool: asyncpg.Pool, grace_s: float) -> None:
    """Close *pool*, waiting at most *grace_s* for its connections to come back, then
    terminate it (a connection held by work that never ends must not hold the process)."""
    try:
        await asyncio.wait_for(pool.close(), grace_s)
    except TimeoutError:
        log.error(
            "database pool not closed within %.1f s (a connection was not released); terminated",
            grace_s,
        )
        pool.terminate()
