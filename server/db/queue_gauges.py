"""Queue depths and ages for ``/metrics``: the SMS outbox, the upstream outbox and its batches,
and the scheduled reports' runs (docs/DEPLOY.md "What to monitor", docs/OUTBOUND.md).

These are facts of the database shared by every process, not of one process, so they are
read, not counted. Each server process re-reads them every ``[http] metrics_refresh_s`` in a
background task and a scrape renders the last figures: a scrape then costs no query and
answers while PostgreSQL is away (``cylwatch_queue_gauges_age_seconds`` grows instead, so a
stale figure is visible). Reading at scrape time would make ``/metrics`` hang with the
database and multiply the queries by the scrapers.

Every count runs over a partial index whose predicate is the count's (``sms_outbox_due_idx``,
``upstream_outbox_unbatched_idx``, ``upstream_batches_due_idx``): its cost is the queue's
depth, not the table's history. ``report_runs`` has one row per schedule and period, pruned
to the newest few, so its scan stays small.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Final

import asyncpg
from aiohttp import web

from server.kernel.appkeys import POOL, SETTINGS, add_metrics_source
from server.kernel.tasks import stop_task

__all__ = ["QueueGauges", "queue_gauges_ctx"]

log = logging.getLogger(__name__)

QUEUES: Final = ("sms", "upstream_outbox", "upstream_batches")
"""``sms``: messages queued or being sent; ``upstream_outbox``: changes not yet in a batch;
``upstream_batches``: batches waiting for (or in) delivery."""

_SQL: Final = """
SELECT
  (SELECT count(*) FROM sms_outbox WHERE state IN ('queued', 'sending')) AS sms_depth,
  (SELECT extract(epoch FROM now() - min(created_at)) FROM sms_outbox
    WHERE state IN ('queued', 'sending')) AS sms_age,
  (SELECT count(*) FROM upstream_outbox WHERE batch_id IS NULL) AS upstream_outbox_depth,
  (SELECT extract(epoch FROM now() - changed_at) FROM upstream_outbox
    WHERE batch_id IS NULL ORDER BY id LIMIT 1) AS upstream_outbox_age,
  (SELECT count(*) FROM upstream_batches
    WHERE state IN ('pending', 'sending')) AS upstream_batches_depth,
  (SELECT extract(epoch FROM now() - min(created_at)) FROM upstream_batches
    WHERE state IN ('pending', 'sending')) AS upstream_batches_age,
  (SELECT count(*) FROM report_runs WHERE state = 'running') AS runs_running,
  (SELECT count(*) FROM report_runs WHERE state = 'failed') AS runs_failed,
  (SELECT extract(epoch FROM max(finished_at)) FROM report_runs
    WHERE state = 'done') AS runs_last_done
"""


def _num(value: float | None) -> str:
    return "NaN" if value is None or math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")


class QueueGauges:
    """The last figures read, and when."""

    def __init__(self) -> None:
        self.depth: dict[str, int] = dict.fromkeys(QUEUES, 0)
        self.oldest_s: dict[str, float | None] = dict.fromkeys(QUEUES)
        self.runs: dict[str, int] = {"running": 0, "failed": 0}
        self.last_done: float | None = None
        self.read_at: float | None = None
        """``time.monotonic()`` of the last successful read (``None``: never)."""

    async def refresh(self, pool: asyncpg.Pool) -> None:
        row = await pool.fetchrow(_SQL)
        assert row is not None
        for queue in QUEUES:
            self.depth[queue] = int(row[f"{queue}_depth"])
            age = row[f"{queue}_age"]
            self.oldest_s[queue] = None if age is None else max(0.0, float(age))
        self.runs = {"running": int(row["runs_running"]), "failed": int(row["runs_failed"])}
        done = row["runs_last_done"]
        self.last_done = None if done is None else float(done)
        self.read_at = time.monotonic()

    def render(self) -> str:
        age = None if self.read_at is None else time.monotonic() - self.read_at
        lines = [
            "# HELP cylwatch_queue_depth Items waiting in a delivery queue (all processes):"
            " sms, upstream_outbox (changes not yet batched), upstream_batches.",
            "# TYPE cylwatch_queue_depth gauge",
            *(f'cylwatch_queue_depth{{queue="{q}"}} {n}' for q, n in self.depth.items()),
            "# HELP cylwatch_queue_oldest_age_seconds Age of the oldest waiting item of a queue"
            " (NaN: the queue is empty).",
            "# TYPE cylwatch_queue_oldest_age_seconds gauge",
            *(
                f'cylwatch_queue_oldest_age_seconds{{queue="{q}"}} {_num(s)}'
                for q, s in self.oldest_s.items()
            ),
            "# HELP cylwatch_report_runs Scheduled report runs by state (all processes):"
            " running (claimed, or died and awaiting the stale rule), failed (retried up to"
            " [reports] schedule_max_attempts).",
            "# TYPE cylwatch_report_runs gauge",
            *(f'cylwatch_report_runs{{state="{k}"}} {n}' for k, n in self.runs.items()),
            "# HELP cylwatch_report_last_done_timestamp_seconds When the newest scheduled report"
            " run finished (Unix time, NaN: none yet).",
            "# TYPE cylwatch_report_last_done_timestamp_seconds gauge",
            f"cylwatch_report_last_done_timestamp_seconds {_num(self.last_done)}",
            "# HELP cylwatch_queue_gauges_age_seconds Seconds since the queue gauges were read"
            " (NaN: never; growing: the database does not answer).",
            "# TYPE cylwatch_queue_gauges_age_seconds gauge",
            f"cylwatch_queue_gauges_age_seconds {_num(age)}",
        ]
        return "\n".join(lines) + "\n"


async def _watch(gauges: QueueGauges, pool: asyncpg.Pool, interval_s: float) -> None:
    while True:
        try:
            await gauges.refresh(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("queue gauges not read: %s", exc)  # the age gauge shows it
        except Exception:  # a bug here must not stop the next reads
            log.exception("queue gauges not read")
        await asyncio.sleep(interval_s)


async def queue_gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    """Read the gauges every ``[http] metrics_refresh_s`` while the app runs."""
    gauges = QueueGauges()
    add_metrics_source(app, gauges.render)
    task = asyncio.create_task(
        _watch(gauges, app[POOL], app[SETTINGS].http.metrics_refresh_s), name="queue-gauges"
    )
    try:
        yield
    finally:
        await stop_task(task, app[SETTINGS].services.shutdown_grace_s)
