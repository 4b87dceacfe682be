"""What a chaos round sends and what it checks afterwards.

The traffic is the simulator's everyday mix (``device_sim.loadgen.generate_mix``) plus, every
so often, a leaking valve (a ``leak`` alert, docs/ARCHITECTURE.md §4 "abnormal behaviour
thresholds"), each from a valve of its own in the round. Then:

- *stored exactly once*: each message the broker acknowledged has one row, by ``msg_id``, in
  its kind's table;
- *alerts neither lost nor doubled*: an open alert's ``count`` goes up once per leaking
  message (server.db.alerts: a repeat bumps the counter), so over the round each leaking
  valve's count must rise by exactly its acknowledged leak messages — a message applied
  twice after a redelivery would show as one too many, a lost one as one too few.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

import asyncpg

from device_sim.loadgen import Message, generate_mix
from device_sim.payloads import new_msg_id, telemetry_msg
from device_sim.world import City

__all__ = ["Plan", "alert_counts", "alert_differences", "plan", "stored_counts"]

TABLE_OF_KIND: Final = {
    "telemetry": "telemetry",
    "position": "positions",
    "scan": "events",
    "fill": "fills",
}
"""Where each kind of the mix is stored, one row per message (docs/ARCHITECTURE.md §3:
de-duplication keys on (msg_id, ts))."""
LEAK_PPM: Final = 5000.0
"""Five times the default ``[alerts] leak_ppm_threshold``: a leak whatever a city sets."""


@dataclass
class Plan:
    messages: list[Message]
    kinds: dict[str, str]
    """msg_id → kind (a leak is telemetry)."""
    leaks: dict[str, str] = field(default_factory=dict)
    """msg_id of each leaking message → the valve (alert subject) it names."""


def plan(city: City, rate: float, duration_s: float, leaks_per_s: float, seed: int) -> Plan:
    """``rate × duration_s`` messages stamped about when they will be sent, one in
    ``rate / leaks_per_s`` a leak from a valve not leaking before in the round."""
    n = int(rate * duration_s)
    now = time.time_ns() // 1_000_000
    spread = int(duration_s * 1000)
    messages = generate_mix(city, n, seed=seed, now_ms=now + spread, spread_ms=spread)
    out = Plan(messages, {m.msg_id: m.kind for m in messages})
    valves = [c for c in city.legal if c.smart_valve and c.lat is not None]
    if leaks_per_s <= 0 or not valves:
        return out
    rng = random.Random(seed)
    every = max(1, int(rate / leaks_per_s))
    leakers = rng.sample(valves, min(len(valves), n // every))
    for j, c in enumerate(leakers):
        i = j * every
        mid = new_msg_id(rng)
        m = telemetry_msg(
            c.tag,
            mid,
            now + (i * 1000) // max(1, int(rate)),
            lat=c.lat,
            lon=c.lon,
            valve="open",
            leak_ppm=LEAK_PPM,
            temp_c=20.0,
            battery_pct=80.0,
            rssi=-80.0,
        )
        messages[i] = Message(m.topic, m.payload, "telemetry", mid)
        out.kinds[mid] = "telemetry"
        out.leaks[mid] = c.tag
    out.kinds = {m.msg_id: m.kind for m in messages}
    return out


async def stored_counts(dsn: str, acked: Collection[str], kinds: dict[str, str]) -> tuple[int, int]:
    """(acknowledged messages stored, rows beyond one per message), by msg_id."""
    by_kind: dict[str, list[str]] = {}
    for msg_id in acked:
        by_kind.setdefault(kinds[msg_id], []).append(msg_id)
    stored = extra = 0
    conn = await asyncpg.connect(dsn)
    try:
        for kind, ids in by_kind.items():
            rows = await conn.fetch(
                f"SELECT msg_id, count(*) AS n FROM {TABLE_OF_KIND[kind]}"
                " WHERE msg_id = ANY($1::text[]) GROUP BY msg_id",
                ids,
            )
            stored += len(rows)
            extra += sum(int(r["n"]) - 1 for r in rows)
    finally:
        await conn.close()
    return stored, extra


async def alert_counts(dsn: str) -> Counter[str]:
    """Each valve's leak alerts, their counts summed (resolved ones too)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT subject_id, sum(count) AS n FROM alerts WHERE kind = 'leak' GROUP BY 1"
        )
    finally:
        await conn.close()
    return Counter({str(r["subject_id"]): int(r["n"]) for r in rows})


def alert_differences(
    before: Counter[str], after: Counter[str], p: Plan, acked: Collection[str], sent: int
) -> tuple[int, int]:
    """(alerts lost, alerts doubled): valves whose count rose by fewer than their
    acknowledged leak messages, by more than the leak messages sent at all."""
    sent_ids = {m.msg_id for m in p.messages[:sent]}
    want_acked: Counter[str] = Counter(t for mid, t in p.leaks.items() if mid in acked)
    want_sent: Counter[str] = Counter(t for mid, t in p.leaks.items() if mid in sent_ids)
    lost = doubled = 0
    for tag in set(want_sent) | set(after):
        rise = after[tag] - before[tag]
        lost += max(0, want_acked[tag] - rise)
        doubled += max(0, rise - want_sent[tag])
    return lost, doubled
