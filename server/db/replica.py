"""Where reads go: a streaming replica when one is configured, up and close enough to the
primary, else the primary (docs/DEPLOY.md "Read replica", docs/CONFIG.md "[services]").

Reports, their drill-downs and exports, and the wall's feeds only read; they may be a few
seconds behind (``[services] replica_max_lag_s``) and are the platform's heaviest queries,
so a replica takes them off the primary that ingest writes to. Writes never come here.

The replica's health is measured in the background every ``replica_check_interval_s``, not
per request. Its lag is measured against the primary's WAL position, not with
``now() - pg_last_xact_replay_timestamp()``: on an idle primary that timestamp ages with no
lag at all. Each check notes the primary's current LSN and when it was seen; the lag is the
age of the oldest noted LSN the replica has not replayed yet (zero when it has replayed
them all). A read that fails on the replica because it went away is run again, once, on
the primary: a replica going away never fails a request (docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypeVar

import asyncpg
from aiohttp import web

from server.db.pool import create_pool
from server.kernel.appkeys import POOL, SETTINGS, add_metrics_source
from server.kernel.errors import service_down
from server.kernel.settings import Settings
from server.kernel.tasks import stop_task

log = logging.getLogger(__name__)
T = TypeVar("T")

SAMPLES_KEPT: Final = 256
"""Primary LSNs remembered while the replica is behind: at one per check (2 s by default)
that spans minutes, far past any ``replica_max_lag_s`` that makes sense; when full the
second oldest goes, so the oldest — the one the lag is read from — stays exact."""

_PRIMARY_LSN = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
_REPLICA_STATE = """SELECT pg_is_in_recovery() AS standby,
                           (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed"""


def replica_failed(exc: BaseException) -> bool:
    """*exc* says the replica is away (or cancelled the query for a conflict with its
    recovery), so the same read may be answered by the primary. A statement timeout is not:
    the query would be as slow on the primary."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return False
    return service_down(exc) or isinstance(exc, (OSError, asyncpg.SerializationError))


class ReadRouter:
    """Hands the pool reads go to, measures the replica, counts the fallbacks."""

    def __init__(
        self, primary: asyncpg.Pool, replica: asyncpg.Pool | None, settings: Settings
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = settings.services.replica_max_lag_s
        self.timeout_s = settings.services.connect_timeout_s
        self.on_replica = False
        """Reads go to the replica (only after a check found it up and close enough)."""
        self.lag_s: float | None = None
        """The replica's lag at the last check; None when unknown (no replica, or away)."""
        self.fallbacks: dict[str, int] = {"down": 0, "lag": 0, "error": 0}
        self._samples: deque[tuple[float, int]] = deque()

    def pool(self) -> asyncpg.Pool:
        """The pool a read goes to now."""
        if self.on_replica and self.replica is not None:
            return self.replica
        return self.primary

    async def run(self, read: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """``read(pool)`` on the read pool; again on the primary if the replica failed it."""
        pool = self.pool()
        if pool is self.primary:
            return await read(pool)
        try:
            return await read(pool)
        except Exception as exc:
            if not replica_failed(exc):
                raise
            self._leave("error", exc)
        return await read(self.primary)

    async def iterate(self, rows: Callable[[asyncpg.Pool], AsyncIterator[T]]) -> AsyncIterator[T]:
        """A streamed read (an export): again on the primary if the replica failed it before
        its first row; after that the response is under way and cannot be taken back."""
        pool = self.pool()
        started = False
        try:
            async for row in rows(pool):
                started = True
                yield row
            return
        except Exception as exc:
            if started or pool is self.primary or not replica_failed(exc):
                raise
            self._leave("error", exc)
        async for row in rows(self.primary):
            yield row

    def _leave(self, reason: str, why: object) -> None:
        """Send reads to the primary, counting why (``cylwatch_db_replica_fallbacks_total``)."""
        self.fallbacks[reason] += 1
        if self.on_replica:
            log.warning("reads go to the primary: replica %s (%s)", reason, why)
        self.on_replica = False

    async def check(self) -> None:
        """Measure the replica once and choose where reads go until the next check."""
        if self.replica is None:
            return
        try:
            lsn = await self.primary.fetchval(_PRIMARY_LSN, timeout=self.timeout_s)
        except Exception as exc:  # the primary away: nothing to compare with, keep the choice
            if not replica_failed(exc):
                raise
            return
        now = time.monotonic()
        if not self._samples or lsn > self._samples[-1][1]:
            if len(self._samples) >= SAMPLES_KEPT:
                del self._samples[1]
            self._samples.append((now, lsn))
        try:
            row = await self.replica.fetchrow(_REPLICA_STATE, timeout=self.timeout_s)
        except Exception as exc:
            if not replica_failed(exc):
                raise
            self.lag_s = None
            if self.on_replica:
                self._leave("down", exc)
            return
        if not row["standby"] or row["replayed"] is None:
            self.lag_s = None  # promoted, or not a standby at all: not a copy of the primary
            if self.on_replica:
                self._leave("down", "not in recovery")
            return
        while self._samples and self._samples[0][1] <= row["replayed"]:
            self._samples.popleft()
        self.lag_s = now - self._samples[0][0] if self._samples else 0.0
        if self.lag_s > self.max_lag_s:
            if self.on_replica:
                self._leave("lag", f"{self.lag_s:.1f} s behind")
        elif not self.on_replica:
            log.info("reads go to the replica (%.1f s behind)", self.lag_s)
            self.on_replica = True

    def metrics(self) -> str:
        """Prometheus text for ``/metrics`` (docs/DEPLOY.md "What to monitor")."""
        lag = "NaN" if self.lag_s is None else f"{self.lag_s:.3f}"
        lines = [
            "# HELP cylwatch_db_reads_on_replica 1 when reports, exports and the wall's feeds"
            " read from the replica, 0 when from the primary.",
            "# TYPE cylwatch_db_reads_on_replica gauge",
            f"cylwatch_db_reads_on_replica {int(self.on_replica)}",
            "# HELP cylwatch_db_replica_lag_seconds The replica's replay lag at the last check"
            " (NaN: no replica, or away).",
            "# TYPE cylwatch_db_replica_lag_seconds gauge",
            f"cylwatch_db_replica_lag_seconds {lag}",
            "# HELP cylwatch_db_replica_fallbacks_total Times reads left the replica for the"
            " primary: down, lag over the bound, or a read failed on it and was run again.",
            "# TYPE cylwatch_db_replica_fallbacks_total counter",
        ]
        lines += [
            f'cylwatch_db_replica_fallbacks_total{{reason="{r}"}} {n}'
            for r, n in self.fallbacks.items()
        ]
        return "\n".join(lines) + "\n"


READS: web.AppKey[ReadRouter] = web.AppKey("reads", ReadRouter)


def reads(app: web.Application) -> ReadRouter:
    """The app's read router (the primary alone when the app was built without one)."""
    router = app.get(READS)
    return router if router is not None else ReadRouter(app[POOL], None, app[SETTINGS])


async def _watch(router: ReadRouter, interval_s: float) -> None:
    while True:
        try:
            await router.check()
        except Exception:  # a bug in a check must not stop the next ones
            log.exception("replica check failed")
        await asyncio.sleep(interval_s)


async def replica_ctx(app: web.Application) -> AsyncIterator[None]:
    """The read router as a ``cleanup_ctx`` (server/app.py): after the primary's pool opens.
    The replica's pool opens empty (``min_size=0``): a replica away at start-up delays
    nothing, reads go to the primary until a check finds it."""
    settings = app[SETTINGS]
    url = settings.services.database_replica_url
    replica = await create_pool(settings, dsn=url, min_size=0) if url else None
    router = ReadRouter(app[POOL], replica, settings)
    app[READS] = router
    add_metrics_source(app, router.metrics)
    task = None
    if replica is not None:
        interval = settings.services.replica_check_interval_s
        task = asyncio.create_task(_watch(router, interval), name="replica-check")
    try:
        yield
    finally:
        if task is not None:
            await stop_task(task, settings.services.shutdown_grace_s)
        if replica is not None:
            await replica.close()
