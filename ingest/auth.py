"""Fill authorization: answer a gun's "may I fill this tag?" within the 50 ms budget.

GB/T 38059-2019: the filling control terminal opens only on the platform's answer, so the
answer is on the critical path of every fill in the city. The reply therefore never waits
for the batch writer: one indexed query gathers every fact the decision needs — the
cylinder by its unique tag, the gun's station and its licence via the device registry
(the station is never taken from the payload, docs/ARCHITECTURE.md §5), and the owners that entrusted
the station's company (委托充装) — and the pure domain rule
(:func:`server.domain.authorization.authorize_fill`) decides. Measured against a cache
kept fresh by LISTEN/NOTIFY, one query (~0.3 ms on the unique tag index at 1M
cylinders) is simpler and cannot serve a stale "allow" after a cylinder is scrapped.

The request is stored afterwards through the normal batch (an ``events`` row), and acked
only once that batch commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import asyncpg
import orjson

from ingest.metrics import Metrics
from server.domain.authorization import (
    CylinderFacts,
    FillDecision,
    StationFacts,
    authorize_fill,
    gun_code,
)
from server.domain.filling import max_fill_kg
from server.kernel.settings import Settings

__all__ = [
    "AUTH_BATCH_MAX",
    "AUTH_BATCH_SQL",
    "AUTH_SQL",
    "AuthOutcome",
    "FillAuthorizer",
    "outcome_from_row",
    "reply_topic_for",
]

AUTH_SQL: Final = """
SELECT d.id AS gun_pk, s.id AS station_id, s.code AS station_code, s.company_id,
       s.licence_no, s.licence_expiry, s.licence_status, s.district_code,
       c.id AS cylinder_id, c.tag, c.owner_company_id, c.status, c.next_inspection_date,
       c.scrap_date, c.tag_voided, c.spec, c.stamp,
       CASE WHEN s.company_id IS NOT NULL AND c.owner_company_id IS NOT NULL
                 AND c.owner_company_id <> s.company_id
            THEN ARRAY(SELECT e.owner_company_id FROM entrustments e
                        WHERE e.filler_company_id = s.company_id
                          AND e.owner_company_id = c.owner_company_id
                          AND e.valid_from <= $3 AND (e.valid_to IS NULL OR e.valid_to >= $3))
       END AS entrusted
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN devices d ON d.device_id = $1 AND d.kind = 'gun' AND d.active
  LEFT JOIN sites s ON s.id = d.site_id
  LEFT JOIN cylinders c ON c.tag = $2
"""
"""One round trip: gun → station → licence, cylinder by tag, entrustment for this owner."""

AUTH_BATCH_SQL: Final = f"""
SELECT k.n, a.*
  FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k (gun, tag, day, n)
 CROSS JOIN LATERAL ({
    AUTH_SQL.replace("$1", "k.gun").replace("$2", "k.tag").replace("$3", "k.day")
}) AS a
"""
"""The same facts (the same text, :data:`AUTH_SQL`) for several requests in one round trip:
one row per request, numbered ``n`` in the order asked."""
assert "$4" not in AUTH_SQL  # the substitution above covers every parameter

AUTH_BATCH_MAX: Final = 256
"""Most requests one round trip answers. Requests that queued while every authorizer
connection was busy (a slow query, the loop held) go together in the next one — measured,
the queue behind one-request-per-round-trip was most of a reply's time under background
ingest (docs/BENCHMARKS.md "Fill authorization"); 256 drains a 0.5 s pile-up at 500
requests/s in one query of a few ms."""


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """The decision and the facts the batch writer needs to store and alert on it."""

    decision: FillDecision
    code: str
    gun_known: bool
    station: StationFacts | None
    station_district: str | None
    station_code: str | None
    cylinder: CylinderFacts | None
    max_fill_kg: float | None
    decided_at: datetime
    latency_s: float


def reply_topic_for(gun_id: str) -> str:
    return f"cyl/v1/gun/{gun_id}/auth/reply"


def outcome_from_row(
    row: Mapping[str, Any], settings: Settings, today: date, now: datetime, started: float | None
) -> AuthOutcome:
    """The decision on one row of :data:`AUTH_SQL`'s facts, by the pure domain rule.
    *started* is the ``perf_counter`` at receipt (``None``: no one waits, latency 0).

    The one place that reads those columns: a gun's request (:meth:`FillAuthorizer.decide`)
    and an enterprise's fill record (``server.api.enterprise_fills``, which runs the same
    query for a whole batch) are judged alike (docs/ARCHITECTURE.md §4, §5).
    """
    station: StationFacts | None = None
    if row["station_id"] is not None:
        station = StationFacts(
            station_id=row["station_id"],
            company_id=row["company_id"],
            licence_no=row["licence_no"],
            licence_expiry=row["licence_expiry"],
            licence_status=row["licence_status"],
        )
    cylinder: CylinderFacts | None = None
    if row["cylinder_id"] is not None:
        cylinder = CylinderFacts(
            cylinder_id=row["cylinder_id"],
            tag=row["tag"],
            owner_company_id=row["owner_company_id"],
            status=row["status"],
            next_inspection_date=row["next_inspection_date"],
            scrap_date=row["scrap_date"],
            tag_voided=row["tag_voided"],
            spec=row["spec"] or "",
            stamp=row["stamp"] or "",
        )
    decision = authorize_fill(cylinder, station, today, frozenset(row["entrusted"] or ()))
    return AuthOutcome(
        decision=decision,
        code=gun_code(decision, settings.gun_codes),
        gun_known=row["gun_pk"] is not None,
        station=station,
        station_district=row["district_code"],
        station_code=row["station_code"],
        cylinder=cylinder,
        max_fill_kg=max_fill_kg(cylinder.spec, settings.models) if cylinder is not None else None,
        decided_at=now,
        latency_s=time.perf_counter() - started if started is not None else 0.0,
    )


_Ask = tuple[str, str, date, float, "asyncio.Future[asyncpg.Record | None]"]
"""One waiting request: gun, tag, the city's day, when it was asked, its answer."""


class FillAuthorizer:
    """Decides fill requests against the database (:data:`AUTH_SQL`'s facts, the pure rule).

    The gun waits on this answer (docs/ARCHITECTURE.md §10: p99 ≤ 50 ms), so it does not share
    the pool's queue with batch commits: ``[ingest] auth_connections`` runners each hold a
    connection taken from the pool for the authorizer's lifetime (which also skips the pool's
    per-release ``Connection.reset()``, a second round trip per request, measured at 8 % of
    the worker's CPU at 500 requests/s). An idle runner takes a request at once; requests
    that arrive while every runner is busy wait together and the next free runner answers
    all of them (up to :data:`AUTH_BATCH_MAX`) in one round trip of :data:`AUTH_BATCH_SQL`,
    so a stall is not followed by a queue drained one round trip at a time. A connection
    that fails is given back (the pool discards a broken one) and replaced on next use.
    """

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.queries = 0
        """Round trips made (fewer than requests when they were answered together)."""
        self._asks: deque[_Ask] = deque()
        self._wake = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self._held: set[asyncpg.pool.PoolConnectionProxy[Any]] = set()

    async def _fetch(self, gun_id: str, tag: str, today: date) -> asyncpg.Record | None:
        if not self._runners:
            self._runners = [
                asyncio.create_task(self._runner())
                for _ in range(max(1, self.settings.ingest.auth_connections))
            ]
        answer: asyncio.Future[asyncpg.Record | None] = asyncio.get_running_loop().create_future()
        self._asks.append((gun_id, tag, today, time.perf_counter(), answer))
        self._wake.set()
        return await answer

    async def _runner(self) -> None:
        conn: asyncpg.pool.PoolConnectionProxy[Any] | None = None
        try:
            while True:
                while not self._asks:
                    self._wake.clear()
                    await self._wake.wait()
                n = min(len(self._asks), AUTH_BATCH_MAX)
                asks = [a for a in (self._asks.popleft() for _ in range(n)) if not a[4].done()]
                if not asks:
                    continue
                try:
                    if conn is None:
                        conn = await self.pool.acquire()
                        self._held.add(conn)
                    asked = time.perf_counter()
                    rows = await self._query(conn, asks)
                except Exception as exc:
                    for ask in asks:
                        if not ask[4].done():
                            ask[4].set_exception(exc)
                    if conn is not None:  # broken, perhaps: replace it
                        self._held.discard(conn)
                        await self.pool.release(conn)
                        conn = None
                    continue
                done = time.perf_counter()
                self.queries += 1
                if self.metrics is not None:
                    phases = self.metrics.auth_phases
                    for ask in asks:
                        phases["conn_wait"].add(asked - ask[3])
                        phases["query"].add(done - asked)
                for ask, row in zip(asks, rows, strict=True):
                    if not ask[4].done():
                        ask[4].set_result(row)
        finally:
            if conn is not None:
                self._held.discard(conn)
                await self.pool.release(conn)

    @staticmethod
    async def _query(
        conn: asyncpg.pool.PoolConnectionProxy[Any], asks: list[_Ask]
    ) -> list[asyncpg.Record | None]:
        if len(asks) == 1:
            gun_id, tag, today, _, _ = asks[0]
            return [await conn.fetchrow(AUTH_SQL, gun_id, tag, today)]
        found = await conn.fetch(
            AUTH_BATCH_SQL, [a[0] for a in asks], [a[1] for a in asks], [a[2] for a in asks]
        )
        rows: list[asyncpg.Record | None] = [None] * len(asks)
        for row in found:
            rows[row["n"] - 1] = row
        return rows

    async def close(self) -> None:
        """Stop the runners and give the held connections back (the pool cannot close while
        they are out)."""
        for task in self._runners:
            task.cancel()
        for task in self._runners:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runners = []
        while self._held:
            await self.pool.release(self._held.pop())

    async def decide(
        self, gun_id: str, tag: str, today: date, now: datetime, started: float
    ) -> AuthOutcome:
        """Fetch the facts and apply the rule. *started* is the ``perf_counter`` at receipt."""
        row = await self._fetch(gun_id, tag, today)
        assert row is not None  # the VALUES row always yields one
        return outcome_from_row(row, self.settings, today, now, started)

    @staticmethod
    def reply_payload(request_msg_id: str, outcome: AuthOutcome, now_ms: int) -> bytes:
        """The reply of docs/ARCHITECTURE.md §5 (plus the vendor ``code``)."""
        body: dict[str, Any] = {
            "msg_id": request_msg_id,
            "decision": outcome.decision.decision,
            "reasons": list(outcome.decision.reason_codes),
            "code": outcome.code,
            "ts": now_ms,
        }
        cyl = outcome.cylinder
        if cyl is not None and not cyl.tag_voided:
            body["cylinder"] = {
                "stamp": cyl.stamp or None,
                "spec": cyl.spec or None,
                "max_fill_kg": outcome.max_fill_kg,
                "next_inspection": (
                    cyl.next_inspection_date.isoformat() if cyl.next_inspection_date else None
                ),
            }
        return orjson.dumps(body)
