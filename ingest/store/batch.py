"""One batch of device messages → rows, state, alerts and live events, in one transaction.

The batch is the unit of durability: everything a batch's messages cause — their
time-series rows, the cylinders' and devices' live state, the per-station refused-fill
counters, the alerts — commits together, and only then are the messages acknowledged to the
broker and the live events published (:mod:`ingest.worker`). A crash anywhere before the
commit loses nothing: the broker redelivers, and the ``(msg_id, ts)`` de-duplication makes
the second pass a no-op for what had been stored.

Order of work for a batch, one module each:

1. look up, in one query each, the devices, cylinders (``FOR UPDATE``), sites and customers
   the messages mention, and the facts of the circulation checks (:mod:`ingest.store.lookups`,
   :mod:`ingest.store.circulation`);
2. refuse what names an unknown device or another company's site (→ dead letters);
3. build the rows (:mod:`ingest.store.rows`), COPY them and learn which messages are new
   (:func:`ingest.records.insert_dedupe`);
4. for the new ones only, in device-time order, apply the state changes and rules of DOMAIN.md
   "Abnormal behaviour" of each message kind: :mod:`~ingest.store.filling`,
   :mod:`~ingest.store.custody`, :mod:`~ingest.store.valves`, :mod:`~ingest.store.vehicles`,
   :mod:`~ingest.store.device_status`; then the reads of one tag are compared (``cloned_tag``);
5. write the changed state (:mod:`ingest.store.live_state`), count the stock of the sites
   touched (:mod:`ingest.store.storage`), raise the alerts (:mod:`ingest.store.alerts`).

Work that a batch can do once is not done per message: the positions the messages report are
located in the city's districts in one vectorized call (``BatchContext.places``), and each
vehicle or cylinder the batch moved gets one ``positions`` event, its newest
(``BatchContext.show_position``) — docs/BENCHMARKS.md "Ingest worker CPU per message".

Late data (a device that buffered while offline): rows are stored with their own ``ts``; a
state change applies only if it is not older than the state it would replace
(``cylinders.state_at``, ``devices.position_at`` / ``status_at``), and ``device_offline``
from a status message does not fire when the message is older than ``[ingest] live_lag_s``
(docs/CONFIG.md). ``out_of_region`` does fire for late data: that a cylinder was outside the
city is a fact about the cylinder, not about "now".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import asyncpg

from ingest.records import DEAD_LETTER_COLUMNS, TABLES, Key, copy_plain, insert_dedupe
from ingest.schemas import (
    DeviceStatus,
    GunAuth,
    GunFill,
    HandheldScan,
    ValveTelemetry,
    VehiclePosition,
)
from ingest.store.alerts import raise_alerts
from ingest.store.circulation import check_cloned_tags, note_read
from ingest.store.context import BatchContext, Item, Territory
from ingest.store.custody import apply_scan
from ingest.store.device_status import apply_status
from ingest.store.filling import apply_auth, apply_fill
from ingest.store.live_state import write_state
from ingest.store.lookups import look_up, registry_problem
from ingest.store.rows import Row, rows_for, unique_rows
from ingest.store.storage import check_overstock
from ingest.store.valves import apply_telemetry
from ingest.store.vehicles import apply_position
from server.kernel.districts import DistrictIndex
from server.kernel.events import Event
from server.kernel.settings import Settings

__all__ = ["YIELD_EVERY", "BatchResult", "BatchStore"]


YIELD_EVERY: Final = 200
"""Per-message Python work of a batch gives the event loop a turn this often. A full
batch's rows and rules take hundreds of milliseconds of pure Python; without a turn, a
gun's authorization request waiting on the same loop waits for all of it (measured: p99
66 ms → the target's 50 ms is met once the loop is yielded, docs/BENCHMARKS.md)."""


@dataclass(slots=True)
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    dead_letters: list[str] = field(default_factory=list)
    alerts: int = 0
    events: list[Event] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent per step of :meth:`BatchStore.store` (profiling, metrics)."""


class BatchStore:
    """Writes batches for one worker. Holds no state between batches but configuration."""

    def __init__(
        self,
        settings: Settings,
        districts: DistrictIndex,
        known_districts: Iterable[str],
        worker: str,
    ) -> None:
        self.territory = Territory.of(settings, districts, frozenset(known_districts))
        self.worker = worker
        self.max_dl = settings.ingest.dead_letter_max_bytes

    def dead_letter_row(self, item: Item, reason: str) -> Row:
        return (
            item.received_at,
            item.topic[:1024],
            item.payload[: self.max_dl],
            reason,
            self.worker,
        )

    async def store(self, conn: asyncpg.Connection, items: Sequence[Item]) -> BatchResult:
        """Store *items* in the caller's transaction; return what to publish after commit."""
        clock = time.perf_counter
        t0 = clock()
        now = datetime.now(UTC)
        result = BatchResult()
        phases = result.phases
        dead: list[Row] = []
        good: list[Item] = []
        for item in items:
            if item.parsed is None:
                rejected = item.reject or "invalid payload"
                dead.append(self.dead_letter_row(item, rejected))
                result.dead_letters.append(rejected)
            else:
                good.append(item)
        batch = await look_up(conn, good, self.territory)
        batch.places = self.territory.locate_many(_positions(good))
        t1 = clock()
        phases["lookups"] = t1 - t0

        rows: dict[str, list[Row]] = {name: [] for name in TABLES}
        primary: list[tuple[Item, str, Key]] = []
        accepted: list[Item] = []
        for n, item in enumerate(good, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            reason = registry_problem(item, batch)
            if reason is not None:
                dead.append(self.dead_letter_row(item, reason))
                result.dead_letters.append(reason)
                continue
            built = rows_for(item, batch)
            if built is None:  # status: no time-series row, idempotent by its own ts
                accepted.append(item)
                continue
            (table, key), table_rows = built
            for t, row in table_rows:
                rows[t].append(row)
            primary.append((item, table, key))
        t2 = clock()
        phases["rows"] = t2 - t1
        await copy_plain(conn, "dead_letters", DEAD_LETTER_COLUMNS, dead)

        inserted: dict[str, set[Key]] = {}
        for name, spec in TABLES.items():
            inserted[name] = await insert_dedupe(conn, spec, unique_rows(rows[name]))
        t3 = clock()
        phases["insert"] = t3 - t2
        seen: set[tuple[str, Key]] = set()
        for item, table, key in primary:
            if key in inserted[table] and (table, key) not in seen:
                seen.add((table, key))
                accepted.append(item)
            else:
                result.duplicates += 1
        result.stored = len(accepted)

        accepted.sort(key=lambda i: (i.parsed.ts if i.parsed else now, i.seq))
        for n, item in enumerate(accepted, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            _apply(item, batch, now)
        check_cloned_tags(batch)
        batch.live_events.extend(batch.position_events())
        t4 = clock()
        phases["rules"] = t4 - t3
        await write_state(conn, batch)
        await check_overstock(conn, batch, now)
        t5 = clock()
        phases["state"] = t5 - t4
        result.alerts = await raise_alerts(conn, batch)
        phases["alerts"] = clock() - t5
        result.events = batch.live_events
        return result


def _positions(items: Sequence[Item]) -> list[tuple[float, float]]:
    """The (lat, lon) the batch's messages report: located together, once."""
    out = []
    for item in items:
        body = item.parsed.body if item.parsed else None
        lat = getattr(body, "lat", None)
        if lat is not None:
            lon = getattr(body, "lon", None)
            if lon is not None:
                out.append((lat, lon))
    return out


def _apply(item: Item, batch: BatchContext, now: datetime) -> None:
    """State and rules of one new message, by its kind."""
    p = item.parsed
    assert p is not None
    body = p.body
    dev = batch.devices.get(p.device_id)
    if isinstance(body, DeviceStatus):
        apply_status(p, body, dev, batch, batch.territory.is_live(p.ts, now))
        return
    if dev is not None:
        batch.device_seen(dev["id"], p.ts)
    if isinstance(body, GunAuth):
        apply_auth(item, body, batch)
    elif isinstance(body, GunFill):
        apply_fill(p, body, batch)
    elif isinstance(body, HandheldScan):
        apply_scan(p, body, batch)
    elif isinstance(body, ValveTelemetry):
        apply_telemetry(p, body, batch)
    elif isinstance(body, VehiclePosition):
        apply_position(p, body, batch)
    note_read(p, batch)
