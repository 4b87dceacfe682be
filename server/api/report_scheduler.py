"""Scheduled reports: the round that runs them (docs/API.md "Scheduled reports"; docs/CONFIG.md
"[reports]").

A schedule names a report of the frame (``server.api.report_frame``), its filters, a
frequency and a format. Each round, every active schedule's last closed period
(``server.domain.report_periods.last_closed``: yesterday, last ISO week, last month) is run
unless it already was: the report is computed as the schedule's owner (their role scope,
their language for the header), written as CSV or XLSX (``server.kernel.tabular.table_bytes``),
kept like an upload (``server.kernel.uploads.store_generated``) and delivered to the owner's
inbox with the file attached (``server.db.messages.deliver_system_message``).

Why it cannot run twice, and survives restarts:

- **The claim is a row.** A run starts by inserting ``(schedule_id, period_first)`` into
  ``report_runs``, which is UNIQUE: of several server processes only one inserts; the others
  see the conflict and move on. No lock lives in memory.
- **A lost run is taken again.** A run still ``running`` after ``schedule_stale_s`` died with
  its process; a ``failed`` one is retried up to ``schedule_max_attempts``. Both re-claims are
  one conditional UPDATE, so again only one process wins.
- **The file, the run's state and the message commit together.** A process killed before
  the commit leaves the run ``running``; the stale rule picks it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
from aiohttp import web

from server.api.report_frame import Report, build_context, compute_report, label_header
from server.api.reports import SPEC_BY_NAME
from server.db.messages import deliver_system_message
from server.domain.report_periods import last_closed, period_label
from server.kernel.appkeys import POOL, SETTINGS, add_metrics_source
from server.kernel.clock import city_today
from server.kernel.errors import ApiError
from server.kernel.principal import Principal
from server.kernel.settings import Settings
from server.kernel.tabular import table_bytes
from server.kernel.tasks import stop_task
from server.kernel.uploads import (
    GENERATED_TYPES,
    REPORT_RUN,
    discard_report_files,
    store_generated,
)

__all__ = ["MIME", "Round", "SchedulerCounters", "run_query", "schedule_round", "setup"]

log = logging.getLogger(__name__)

MIME: Final = dict(zip(("csv", "xlsx"), GENERATED_TYPES, strict=True))
ERROR_MAX_CHARS: Final = 500
"""Of a failed run's error kept for the page: the message, not a traceback."""


@dataclass
class Round:
    """What one round did (for the log and the tests)."""

    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def run_query(
    spec: Report, params: Mapping[str, Any], first: dt.date, last: dt.date
) -> dict[str, str]:
    """The query a run computes: the schedule's filters and, for a report over a period,
    the period itself."""
    query = {k: str(v) for k, v in params.items() if v not in (None, "")}
    if "period" in spec.filters:
        query["from"] = first.isoformat()
        query["to"] = last.isoformat()
    return query


_CLAIM = """
INSERT INTO report_runs AS r (schedule_id, period_first, period_last)
VALUES ($1, $2, $3)
ON CONFLICT (schedule_id, period_first) DO UPDATE
   SET state = 'running', attempts = r.attempts + 1, claimed_at = now(), error = NULL
 WHERE (r.state = 'failed' AND r.attempts < $4)
    OR (r.state = 'running' AND r.claimed_at < now() - make_interval(secs => $5))
RETURNING r.id
"""

_SCHEDULES = """
SELECT s.id, s.report, s.params, s.frequency, s.format, s.title,
       u.id AS user_id, u.username, u.role, u.company_id, u.site_id, u.districts,
       u.display_name, u.language
  FROM report_schedules s JOIN users u ON u.id = s.owner_id
 WHERE s.active AND u.active AND ($1::bigint IS NULL OR s.id = $1)
 ORDER BY s.id
"""


def _principal(row: Mapping[str, Any]) -> Principal:
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        role=row["role"],
        company_id=row["company_id"],
        site_id=row["site_id"],
        districts=tuple(row["districts"] or ()),
        display_name=row["display_name"],
        language=row["language"] or "zh-CN",
        via="schedule",
    )


async def _run_one(
    pool: asyncpg.Pool,
    settings: Settings,
    row: Mapping[str, Any],
    run_id: int,
    first: dt.date,
    last: dt.date,
) -> None:
    spec = SPEC_BY_NAME.get(row["report"])
    if spec is None:
        raise ValueError(f"no report {row['report']!r} any more")
    who = _principal(row)
    if who.role not in spec.roles:
        raise ValueError(f"role {who.role} may no longer run {spec.name}")
    ctx = build_context(pool, settings, who, spec, run_query(spec, row["params"], first, last))
    body = await compute_report(ctx, spec)
    keys = [c.key for c in spec.columns]
    label = period_label(row["frequency"], first, last)
    fmt = row["format"]
    data = await asyncio.to_thread(
        table_bytes,
        fmt,
        spec.name,
        label_header(spec.columns, who.language),
        [[r.get(k) for k in keys] for r in body["rows"]],
    )
    title = row["title"] or (spec.title_en if who.language.startswith("en") else spec.title)
    async with pool.acquire() as conn, conn.transaction():
        f = await store_generated(
            conn,
            settings.uploads,
            data,
            mime=MIME[fmt],
            filename=f"{spec.name}-{label}.{fmt}",
            purpose=REPORT_RUN,
            owner=who.user_id,
        )
        message = await deliver_system_message(
            conn,
            [who.user_id],
            f"定期报表：{title}（{label}）",
            f"定期报表《{title}》{first.isoformat()} 至 {last.isoformat()} 已生成，共 "
            f"{len(body['rows'])} 行，见附件。",
            [f.id],
        )
        await conn.execute(
            """UPDATE report_runs SET state = 'done', upload_id = $2, row_count = $3,
                      message_id = $4, finished_at = now() WHERE id = $1""",
            run_id,
            f.id,
            len(body["rows"]),
            message,
        )
        await _prune(conn, row["id"], settings.reports.schedule_keep_runs)


async def _prune(conn: asyncpg.Connection, schedule_id: int, keep: int) -> None:
    """Drop runs past the newest *keep*; their files go unless an inbox message holds them."""
    gone = await conn.fetch(
        """DELETE FROM report_runs WHERE schedule_id = $1 AND id NOT IN (
               SELECT id FROM report_runs WHERE schedule_id = $1
                ORDER BY period_first DESC LIMIT $2)
           RETURNING upload_id""",
        schedule_id,
        keep,
    )
    files = [r["upload_id"] for r in gone if r["upload_id"] is not None]
    if files:
        await discard_report_files(conn, files)


async def schedule_round(
    pool: asyncpg.Pool, settings: Settings, today: dt.date | None = None, only: int | None = None
) -> Round:
    """One round: every active schedule's (or schedule *only*'s) last closed period, claimed
    and run once."""
    today = today or city_today(settings)
    rs = settings.reports
    done = Round()
    for row in await pool.fetch(_SCHEDULES, only):
        first, last = last_closed(row["frequency"], today)
        run_id = await pool.fetchval(
            _CLAIM, row["id"], first, last, rs.schedule_max_attempts, rs.schedule_stale_s
        )
        if run_id is None:
            continue
        try:
            await _run_one(pool, settings, row, run_id, first, last)
        except (ApiError, ValueError) as exc:  # a filter the report no longer takes, a role
            await _fail(pool, run_id, str(exc))
            done.failed.append(run_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("scheduled report %d: run %d failed (%s)", row["id"], run_id, exc)
            await _fail(pool, run_id, type(exc).__name__)
            done.failed.append(run_id)
        else:
            done.done.append(run_id)
    if done.done or done.failed:
        log.info("scheduled reports: %d run(s) done, %d failed", len(done.done), len(done.failed))
    return done


async def _fail(pool: asyncpg.Pool, run_id: int, error: str) -> None:
    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        await pool.execute(
            "UPDATE report_runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
            run_id,
            error[:ERROR_MAX_CHARS],
        )


@dataclass
class SchedulerCounters:
    """This process's rounds and the runs it claimed, for ``/metrics`` (docs/DEPLOY.md "What
    to monitor"); the runs of all processes by state are ``server.db.queue_gauges``."""

    rounds: int = 0
    rounds_failed: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0
    last_round: float | None = None
    """Unix time the last round ended, whether it ran anything or not."""

    def count(self, result: Round) -> None:
        self.rounds += 1
        self.claimed += len(result.done) + len(result.failed)
        self.done += len(result.done)
        self.failed += len(result.failed)

    def render(self) -> str:
        p = "cylwatch_report_scheduler_"
        lines: list[str] = []
        for name, help_, value in (
            ("rounds_total", "Scheduler rounds this process ran.", self.rounds),
            ("rounds_failed_total", "Rounds that stopped on an error.", self.rounds_failed),
            ("claims_total", "Runs this process claimed (won the run's row).", self.claimed),
            ("runs_done_total", "Runs this process delivered.", self.done),
            ("runs_failed_total", "Runs this process marked failed.", self.failed),
        ):
            lines += [
                f"# HELP {p}{name} {help_}",
                f"# TYPE {p}{name} counter",
                f"{p}{name} {value}",
            ]
        last = "NaN" if self.last_round is None else f"{self.last_round:.3f}"
        lines += [
            f"# HELP {p}last_round_timestamp_seconds When this process's last round ended.",
            f"# TYPE {p}last_round_timestamp_seconds gauge",
            f"{p}last_round_timestamp_seconds {last}",
        ]
        return "\n".join(lines) + "\n"


async def _loop(app: web.Application, counters: SchedulerCounters) -> None:
    settings = app[SETTINGS]
    while True:
        try:
            counters.count(await schedule_round(app[POOL], settings))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            counters.rounds_failed += 1
            log.warning("scheduled reports: round failed (%s); trying again later", exc)
        except Exception:
            counters.rounds_failed += 1
            log.exception("scheduled reports: round failed")
        counters.last_round = time.time()
        await asyncio.sleep(settings.reports.schedule_interval_s)


async def _ctx(app: web.Application) -> AsyncIterator[None]:
    if app[SETTINGS].reports.schedule_interval_s <= 0:
        yield
        return
    counters = SchedulerCounters()
    add_metrics_source(app, counters.render)
    task = asyncio.get_running_loop().create_task(_loop(app, counters), name="report-schedules")
    try:
        yield
    finally:
        await stop_task(task, app[SETTINGS].services.shutdown_grace_s)


def setup(app: web.Application) -> None:
    """Run the scheduled reports' round in this server process."""
    app.cleanup_ctx.append(_ctx)
