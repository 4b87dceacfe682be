"""Publish the fuzzer's traffic to a running ingest worker and account for every message.

Shared by ``tests/ingest/test_fuzz_families.py`` and ``bench/fuzz_mqtt.py``. What is checked
(issue 10 item 2; docs/ARCHITECTURE.md §5 "dead letters"): every good message left exactly
one row under its msg_id in its table, every bad one exactly one dead letter (matched by the
md5 of the bytes a dead letter keeps), nothing else was dead-lettered, and the worker still
answers afterwards (a probe position is stored).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import asyncpg

from tests.ingest.conftest import INSIDE, eventually, mid, now_ms, publish
from tests.ingest.fuzz_payloads import DEAD_LETTER_CUT, PRIMARY_TABLE, Message, digest

CHUNK = 2_000
"""Messages published per connection: a fresh publisher now and then, as a fleet has many."""
PUBLISH_BURST = 500
"""Publishes in flight at once on a connection."""
ACK_TIMEOUT_S = 120.0
"""How long a publish waits for the broker's PUBACK: on a loaded 2-core machine the broker,
started by a ``nice -n 19`` run, may wait long for CPU (aiomqtt's default is 10 s)."""
PACE_TIMEOUT_S = 120.0
"""How long a chunk waits for the worker to have received the one before. Paced, the
broker's queue for the worker stays small: a private test broker saves its whole state
every second (tests/ingest/conftest.py), and 100,000 queued payloads of up to 200 KB made
that save, and so its acknowledgements to the publisher, take longer than the
publisher's 10 s timeout."""


@dataclass
class Outcome:
    published: int = 0
    bad: int = 0
    good: int = 0
    bytes: int = 0
    families: collections.Counter[str] = field(default_factory=collections.Counter)
    publish_s: float = 0.0
    settle_s: float = 0.0
    good_stored_once: int = 0
    good_missing: list[str] = field(default_factory=list)
    good_doubled: list[str] = field(default_factory=list)
    bad_dead_lettered_once: int = 0
    bad_missing: list[Message] = field(default_factory=list)
    bad_doubled: int = 0
    unexpected_dead_letters: list[tuple[str, str]] = field(default_factory=list)
    alive: bool = False

    @property
    def lost(self) -> int:
        return len(self.good_missing) + len(self.bad_missing)

    def ok(self) -> bool:
        return (
            self.alive
            and not self.lost
            and not self.good_doubled
            and not self.bad_doubled
            and not self.unexpected_dead_letters
        )

    def summary(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "bad": self.bad,
            "good": self.good,
            "megabytes": round(self.bytes / 1e6, 1),
            "families": dict(self.families),
            "publish_s": round(self.publish_s, 1),
            "settle_s": round(self.settle_s, 1),
            "good_stored_once": self.good_stored_once,
            "good_missing": len(self.good_missing),
            "good_doubled": len(self.good_doubled),
            "bad_dead_lettered_once": self.bad_dead_lettered_once,
            "bad_missing": len(self.bad_missing),
            "bad_doubled": self.bad_doubled,
            "unexpected_dead_letters": len(self.unexpected_dead_letters),
            "worker_alive": self.alive,
        }


def worker_task() -> asyncio.Task[Any] | None:
    """The running ``IngestWorker.run`` task of this loop (to tell that the worker is alive)."""
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "__qualname__", "") == "IngestWorker.run":
            return task
    return None


async def _publish(url: str, chunk: list[Message]) -> None:
    """One publisher connection for *chunk*, QoS 1, acknowledgements awaited in bursts."""
    from ingest.transport import parse_mqtt_url

    addr = parse_mqtt_url(url)
    async with aiomqtt.Client(
        addr.host,
        addr.port,
        protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=PUBLISH_BURST,
        timeout=ACK_TIMEOUT_S,
    ) as client:
        client.pending_calls_threshold = len(chunk)  # a burst is the point here
        for first in range(0, len(chunk), PUBLISH_BURST):
            await asyncio.gather(
                *(
                    client.publish(m.topic, m.payload, qos=1)
                    for m in chunk[first : first + PUBLISH_BURST]
                )
            )


async def _paced(worker: Any, arrived: int) -> None:
    """Wait until the worker has had at least *arrived* messages (or PACE_TIMEOUT_S).

    ``received`` counts what the batch path parsed, ``ignored`` the auth requests it left to
    the reply process (which then count in ``received`` as well): an overcount, enough to
    pace by."""
    deadline = time.monotonic() + PACE_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.metrics.received + worker.metrics.ignored >= arrived:
            return
        await asyncio.sleep(0.1)


async def _stored(pool: asyncpg.Pool, good: list[Message]) -> collections.Counter[str]:
    """Rows under each good msg_id in the message kind's own table."""
    rows: collections.Counter[str] = collections.Counter()
    by_table: dict[str, list[str]] = collections.defaultdict(list)
    for m in good:
        by_table[PRIMARY_TABLE[m.kind]].append(m.msg_id)
    for table, ids in by_table.items():
        for r in await pool.fetch(
            f"SELECT msg_id, count(*) AS n FROM {table} WHERE msg_id = ANY($1) GROUP BY msg_id",
            ids,
        ):
            rows[r["msg_id"]] += r["n"]
    return rows


async def _dead_letters(pool: asyncpg.Pool) -> collections.Counter[str]:
    rows = await pool.fetch("SELECT md5(payload) AS h, count(*) AS n FROM dead_letters GROUP BY 1")
    return collections.Counter({r["h"]: r["n"] for r in rows})


async def run(
    mqtt_url: str,
    pool: asyncpg.Pool,
    worker: Any,
    worker_task: asyncio.Task[Any] | None,
    messages: list[Message],
    settle_timeout_s: float,
    progress: bool = False,
) -> Outcome:
    """Publish *messages* (QoS 1) and wait for them all to be accounted for."""
    out = Outcome()
    good = [m for m in messages if m.family == "good"]
    bad = [m for m in messages if m.family != "good"]
    out.published, out.good, out.bad = len(messages), len(good), len(bad)
    out.bytes = sum(len(m.payload) for m in messages)
    out.families = collections.Counter(m.family for m in messages)
    started = time.monotonic()
    for first in range(0, len(messages), CHUNK):
        chunk = messages[first : first + CHUNK]
        await _paced(worker, first - CHUNK)
        await _publish(mqtt_url, chunk)
        if progress:
            print(f"  published {first + len(chunk):,} / {len(messages):,}", flush=True)
    out.publish_s = time.monotonic() - started

    async def settled() -> bool:
        n = int(await pool.fetchval("SELECT count(*) FROM dead_letters") or 0)
        stored = await _stored(pool, good)
        if progress:
            print(f"  dead letters {n:,} / {len(bad):,}, good {len(stored):,} / {len(good):,}")
        return n >= len(bad) and len(stored) >= len(good)

    started = time.monotonic()
    with contextlib.suppress(AssertionError):  # what is missing is named below
        await eventually(settled, settle_timeout_s, 1.0)
    out.settle_s = time.monotonic() - started

    stored = await _stored(pool, good)
    for m in good:
        n = stored.get(m.msg_id, 0)
        if n == 0:
            out.good_missing.append(m.msg_id)
        elif n > 1:
            out.good_doubled.append(m.msg_id)
        else:
            out.good_stored_once += 1
    letters = await _dead_letters(pool)
    expected = collections.Counter(digest(m.payload, DEAD_LETTER_CUT) for m in bad)
    by_digest = {digest(m.payload, DEAD_LETTER_CUT): m for m in bad}
    for h, want in expected.items():
        have = letters.get(h, 0)
        if have < want:
            out.bad_missing.append(by_digest[h])
        elif have > want:
            out.bad_doubled += have - want
        out.bad_dead_lettered_once += min(have, want)
    for h in letters:
        if h not in expected:
            row = await pool.fetchrow(
                "SELECT topic, reason FROM dead_letters WHERE md5(payload) = $1 LIMIT 1", h
            )
            out.unexpected_dead_letters.append((row["topic"], row["reason"]) if row else (h, ""))

    probe = {"msg_id": mid(), "ts": now_ms(), "lat": INSIDE[0], "lon": INSIDE[1]}
    await publish(mqtt_url, [("cyl/v1/vehicle/VEH-A1/position", probe)])
    try:
        await eventually(
            lambda: pool.fetchval(
                "SELECT count(*) FROM positions WHERE msg_id = $1", probe["msg_id"]
            ),
            30,
        )
        answered = True
    except AssertionError:
        answered = False
    task_alive = worker_task is None or not worker_task.done()
    out.alive = answered and task_alive and bool(worker.metrics.connected)
    return out
