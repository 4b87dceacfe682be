"""`cylwatch seed --history-months N`: the city's past, written month by month.

The cylinder generator has planned each cylinder's cycles (`server.seed.timeline`); this
module writes them. For each month, oldest first, a worker thread plans the month
(`server.seed.cycles`) and unpacks it into rows (`server.seed.emit`) while the main task
COPYs the previous chunk, and then builds that month's partition indexes while the thread
goes on with the next month (`server.seed.partitions`). Afterwards come the inspections,
the refusal counts, the alerts and the complaints (`server.seed.incidents`), and the
household safety inspections (`server.seed.safety`, some at deliveries it sampled as the
months were planned).

Scale (DOMAIN.md "Scale of one city"; DESIGN §10 "seeding"): each cylinder in service is
filled about once a month, so a 1,000,000-cylinder city with 12 months is ~12M fills and
~50M trajectory events; docs/BENCHMARKS.md "Seed with history" records how long it takes.
Everything runs in the seed's one transaction (server.seed.city).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from tqdm import tqdm

from server.kernel.districts import DistrictIndex
from server.seed.cycles import MonthPlanner
from server.seed.emit import PASSED_CHECKS, STREAMS, Emitter
from server.seed.history_shape import (
    HISTORY_AHEAD,
    HISTORY_AHEAD_INDEXING,
    INDEX_EVERY_CHUNKS,
    OUTSIDE_PLACES,
    OUTSIDE_POINTS,
    OUTSIDE_SPREAD_DEG,
    REBUILD_MIN_ROWS,
)
from server.seed.incidents import Incidents
from server.seed.partitions import (
    ColumnDefaults,
    MonthIndexes,
    column_defaults,
    ensure_partitions,
    history_codecs,
    jsonb_literal,
    month_starts,
)
from server.seed.safety import SafetyInspections
from server.seed.timeline import Timeline

if TYPE_CHECKING:
    from server.seed.city import CityBuilder

__all__ = ["write_history"]

log = logging.getLogger(__name__)

TABLES: Final = ("events", "fills")
ROWS_PER_CYCLE: Final = 5
"""A cycle writes a fill, its event, a dispatch, a delivery and a return (for estimates)."""

Chunk = tuple[str, Any]


def months_of(tl: Timeline) -> list[tuple[int, int, int, date]]:
    """(first day, day after the last, index, first of the calendar month) of each month."""
    out = []
    for i, first in enumerate(month_starts(date.fromordinal(tl.start), date.fromordinal(tl.today))):
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        ms, me = max(first.toordinal(), tl.start), min(nxt.toordinal(), tl.today)
        if ms < me:
            out.append((ms, me, i, first))
    return out


def outside_points(city: CityBuilder, rng: random.Random) -> list[tuple[float, float]]:
    """Points around the neighbouring cities that no configured district contains."""
    index = DistrictIndex(city.districts)
    out = []
    for i in range(OUTSIDE_POINTS):
        lat, lon = OUTSIDE_PLACES[i % len(OUTSIDE_PLACES)]
        lat += rng.uniform(-OUTSIDE_SPREAD_DEG, OUTSIDE_SPREAD_DEG)
        lon += rng.uniform(-OUTSIDE_SPREAD_DEG, OUTSIDE_SPREAD_DEG)
        if index.lookup(lat, lon) is None:
            out.append((round(lat, 6), round(lon, 6)))
    return out


async def write_history(city: CityBuilder, tl: Timeline) -> None:
    """Write the planned history of *tl* into the database behind *city* (its transaction)."""
    conn = city.conn
    settings = city.settings
    rng = city.rng
    months = months_of(tl)
    await ensure_partitions(conn, TABLES, date.fromordinal(tl.start), city.today)
    estimate = len(tl.cid) * len(months) * ROWS_PER_CYCLE
    indexes = await MonthIndexes.drop(conn, TABLES) if estimate >= REBUILD_MIN_ROWS else None
    guns = [city.guns.get(s.id) or [f"GUN-{s.code}-1"] for s in city.sites]
    planner = MonthPlanner(tl, settings, [len(g) for g in guns], rng)
    outside = outside_points(city, rng)
    emitter = Emitter(
        tl,
        planner,
        settings,
        guns,
        [v.device_id for v in city.vehicles],
        outside or [(0.0, 0.0)],
        city.agencies,
        rng,
    )

    safety = SafetyInspections(tl, settings, rng)

    def chunks() -> Iterator[Chunk]:
        for ms, me, index, first in months:
            planner.plan(ms, me)
            safety.sample(planner.buckets.by_kind["deliver"], ms, me)
            yield from emitter.month(ms, me, index)
            yield "month", first
        left = sum(len(b) for b in planner.buckets.by_kind.values()) + len(planner.buckets.refused)
        if left:
            log.warning("seed history: %d planned days fell outside the history", left)

    incidents = Incidents(tl, settings, rng)
    passed = {
        ("fills", "pre_check"): jsonb_literal(PASSED_CHECKS[0]),
        ("fills", "post_check"): jsonb_literal(PASSED_CHECKS[1]),
    }
    async with history_codecs(conn), column_defaults(conn, passed) as defaults:
        await _pipeline(city, emitter, chunks(), indexes, defaults, estimate)
        if indexes is not None:
            await indexes.restore()
        users = await conn.fetch(
            "SELECT id, role, company_id, districts FROM users WHERE active ORDER BY id"
        )
        regulator = next(
            (u["id"] for u in users if u["role"] == "regulator" and not u["districts"]),
            next((u["id"] for u in users if u["role"] == "admin"), None),
        )
        responders = {
            u["company_id"]: u["id"] for u in reversed(users) if u["role"] == "company_admin"
        }
        summary = city.summary
        summary.history_months = tl.months
        summary.inspections = await incidents.write_inspections(conn)
        await incidents.write_denials(conn, emitter.denials)
        summary.alerts = await incidents.write_alerts(conn, emitter.alerts, regulator)
        summary.complaints = await incidents.write_complaints(conn, regulator, responders)
        started = time.perf_counter()
        summary.safety_inspections = await safety.write(conn, users)
        summary.rectifications = safety.rectifications
        log.info(
            "history: %d safety inspections, %d rectifications written in %.1f s",
            summary.safety_inspections,
            summary.rectifications,
            time.perf_counter() - started,
        )
    if await conn.fetchval("SELECT to_regclass('rollup_state') IS NOT NULL"):
        # the past changed under the report rollups (migrations 0220/0221): until their next
        # refresh rebuilds them whole, reports read the raw rows
        await conn.execute("UPDATE rollup_state SET upto = NULL, split = NULL")
    summary.events += emitter.events
    summary.fills += emitter.fills
    summary.refusals = emitter.refusals


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _pipeline(
    city: CityBuilder,
    emitter: Emitter,
    chunks: Iterator[Chunk],
    indexes: MonthIndexes | None,
    defaults: ColumnDefaults,
    estimate: int,
) -> None:
    """COPY the chunks as a worker thread makes them; build the written months' indexes one
    at a time between them, so the thread keeps generating while PostgreSQL sorts."""
    conn = city.conn
    loop = asyncio.get_running_loop()
    done = False
    since_index = 0
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-history") as worker,
        tqdm(total=estimate, desc="history", unit="row", disable=not city.progress) as bar,
    ):
        pending: deque[asyncio.Future[Chunk | None]] = deque()

        def top_up(limit: int) -> None:
            while not done and len(pending) < limit:
                pending.append(loop.run_in_executor(worker, next, chunks, None))

        top_up(HISTORY_AHEAD)
        while pending:
            item = await pending.popleft()
            if item is None:
                done = True
                continue
            stream, payload = item
            if stream == "month":
                log.info(
                    "history: %s written (%d events, %d fills so far)",
                    f"{payload:%Y-%m}",
                    emitter.events,
                    emitter.fills,
                )
                if indexes is not None:
                    indexes.queue_month(payload)
                continue
            if stream == "details":  # the next rows' details: the column's default meanwhile
                await defaults.set("events", "details", jsonb_literal(payload))
                continue
            top_up(HISTORY_AHEAD)
            table, columns = STREAMS[stream]
            await conn.copy_to_table(table, source=_once(payload), columns=columns, format="binary")
            bar.update(emitter.events + emitter.fills - bar.n)
            since_index += 1
            if indexes is not None and indexes.pending and since_index >= INDEX_EVERY_CHUNKS:
                top_up(HISTORY_AHEAD_INDEXING)
                await indexes.build_next()
                since_index = 0
