"""Fuzzing: thousands of broken payloads on every topic, mixed with good traffic.

A device fleet sends everything eventually: truncated frames, wrong types, firmware bugs,
binary junk, NUL bytes, absurd numbers. The worker must stay up, store every good message,
and put every bad one in ``dead_letters`` with its raw bytes — nothing silently dropped.
Every bad payload here is invalid *by construction* (not judged by the parser under test)
and unique (an extra ``fz`` field or a counter prefix), so each can be found again.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.ingest.conftest import INSIDE, Env, count, eventually, mid, now_ms, publish
from tests.ingest.conftest import running_worker as worker_ctx

SEED = 20261123
BAD = 3000
GOOD = 600

# topic → (a good payload factory, required fields, bounded numeric fields)
TAGS = [f"TAG-A{i}" for i in range(1, 21)]


def good_payloads(rng: random.Random) -> dict[str, Any]:
    t = now_ms() - rng.randrange(0, 60_000)
    tag = rng.choice(TAGS)
    return {
        "cyl/v1/gun/GUN-A1/auth": {"msg_id": mid(), "ts": t, "tag": tag},
        "cyl/v1/gun/GUN-A1/fill": {"msg_id": mid(), "ts": t, "tag": tag, "net_kg": 14.5},
        f"cyl/v1/valve/{tag}/telemetry": {
            "msg_id": mid(),
            "ts": t,
            "leak_ppm": 3.0,
            "lat": INSIDE[0],
            "lon": INSIDE[1],
        },
        "cyl/v1/handheld/HH-A1/scan": {
            "msg_id": mid(),
            "ts": t,
            "tag": tag,
            "action": rng.choice(["dispatch", "receive"]),
        },
        "cyl/v1/vehicle/VEH-A1/position": {
            "msg_id": mid(),
            "ts": t,
            "lat": INSIDE[0],
            "lon": INSIDE[1],
        },
        "cyl/v1/gun/GUN-A1/status": {"online": True, "ts": t},
    }


REQUIRED = {
    "auth": ["msg_id", "ts", "tag"],
    "fill": ["msg_id", "ts", "tag", "net_kg"],
    "telemetry": ["msg_id", "ts"],
    "scan": ["msg_id", "ts", "tag", "action"],
    "position": ["msg_id", "ts", "lat", "lon"],
    "status": ["online", "ts"],
}
OUT_OF_RANGE = {
    "net_kg": [-0.01, 200.5, 1e9],
    "lat": [-90.5, 91, 1e300],
    "lon": [-181, 180.01],
    "ts": [0, 946_684_799_999, 10**15],
    "leak_ppm": [-1, 2e6],
    "speed_kmh": [-3, 1000],
    "heading": [-1, 361],
    "battery_pct": [101, -5],
    "temp_c": [-100, 500],
}
WRONG_TYPES: list[Any] = ["12", [1], {"a": 1}, True, 1.5, "", None]


def wrong_for(field: str, rng: random.Random) -> Any:
    """A value of the wrong JSON type for *field* (never one msgspec would accept)."""
    numeric = field in ("ts", "net_kg", "lat", "lon", "leak_ppm", "speed_kmh", "heading")
    boolean = field == "online"
    while True:
        v = rng.choice(WRONG_TYPES)
        if v is None:
            continue  # null is a valid "absent" for optional fields; required ones are covered
        if numeric and isinstance(v, int | float) and not isinstance(v, bool):
            if field == "ts" and isinstance(v, float):
                return v  # a float ts is refused (epoch ms is an integer)
            continue
        if boolean and isinstance(v, bool):
            continue
        if not numeric and not boolean and isinstance(v, str) and v:
            continue
        return v


def mutate(topic: str, good: dict[str, Any], i: int, rng: random.Random) -> tuple[str, bytes]:
    """One invalid message derived from a good one."""
    leaf = topic.rsplit("/", 1)[1]
    body = {**good, "fz": i}
    how = rng.randrange(9)
    if how == 0:  # binary junk
        return topic, f"\x00{i}".encode() + rng.randbytes(rng.randrange(0, 64))
    if how == 1:  # truncated frame
        raw = orjson.dumps(body)
        return topic, raw[: rng.randrange(1, len(raw) - 1)]
    if how == 2:  # a required field missing
        body.pop(rng.choice(REQUIRED[leaf]))
        return topic, orjson.dumps(body)
    if how == 3:  # a required field of the wrong type
        field = rng.choice(REQUIRED[leaf])
        body[field] = wrong_for(field, rng)
        return topic, orjson.dumps(body)
    if how == 4:  # absurd numbers
        field = rng.choice([f for f in OUT_OF_RANGE if f in body])
        body[field] = rng.choice(OUT_OF_RANGE[field])
        return topic, orjson.dumps(body)
    if how == 5:  # JSON but not an object
        return topic, orjson.dumps(rng.choice([[i, body], f"{i}", i, [None, None, i]]))
    if how == 6:  # an unknown topic under cyl/v1
        bogus = rng.choice(
            [
                f"cyl/v1/gun/GUN-A1/x{i}",
                f"cyl/v1/fridge/F{i}/status",
                f"cyl/v1/gun/GUN-A1/fill/{i}",
                f"cyl/v1/{i}",
            ]
        )
        return bogus, orjson.dumps(body)
    if how == 7:  # text PostgreSQL cannot store
        key = "tag" if "tag" in body else "msg_id" if "msg_id" in body else None
        if key is None:
            return topic, orjson.dumps({**body, "online": "\u0000"})
        raw = orjson.dumps({**body, key: "X"}).replace(
            b'"X"', rng.choice([b'"a\\u0000b"', b'"\\ud800"', b'"\\udfff tail"'])
        )
        return topic, raw
    # 8: an unregistered device of the right kind
    kind = topic.split("/")[2]
    if kind == "valve":
        return f"cyl/v1/valve/NO-TAG-{i}/{leaf}", orjson.dumps(body)
    return f"cyl/v1/{kind}/GHOST-{i}/{leaf}", orjson.dumps(body)


@pytest.mark.slow
async def test_the_worker_survives_garbage_and_loses_nothing(env: Env) -> None:
    rng = random.Random(SEED)
    good: list[tuple[str, Any]] = []
    bad: list[tuple[str, bytes]] = []
    for i in range(max(GOOD, BAD)):
        payloads = good_payloads(rng)
        if i < GOOD:
            topic = rng.choice(list(payloads))
            good.append((topic, payloads[topic]))
        if i < BAD:
            topic = rng.choice(list(payloads))
            if topic.endswith("/auth"):
                topic = "cyl/v1/gun/GUN-A1/fill"  # junk on auth is covered by fill's topic
                payloads[topic] = good_payloads(rng)["cyl/v1/gun/GUN-A1/fill"]
            bad.append(mutate(topic, payloads[topic], i, rng))
    # junk on the auth topic as well (the worker answers nothing, stores the dead letter)
    for i in range(BAD, BAD + 200):
        bad.append(
            mutate("cyl/v1/gun/GUN-A1/auth", good_payloads(rng)["cyl/v1/gun/GUN-A1/auth"], i, rng)
        )
    traffic: list[tuple[str, Any]] = [*good, *bad]
    rng.shuffle(traffic)

    async with worker_ctx(env.settings, env.pool) as worker:
        await publish(env.mqtt_url, traffic)
        bad_payloads = [p for _, p in bad]
        good_ids = [p["msg_id"] for _, p in good if "msg_id" in p]

        async def settled() -> bool:
            n = await count(
                env.pool,
                "SELECT count(*) FROM dead_letters WHERE payload = ANY($1::bytea[])",
                list(bad_payloads),
            )
            return n >= len(bad)

        await eventually(settled, 60, 0.25)
        stored = await env.pool.fetch(
            """SELECT msg_id FROM events WHERE msg_id = ANY($1) UNION ALL
               SELECT msg_id FROM fills WHERE msg_id = ANY($1) UNION ALL
               SELECT msg_id FROM telemetry WHERE msg_id = ANY($1) UNION ALL
               SELECT msg_id FROM positions WHERE msg_id = ANY($1)""",
            good_ids,
        )
        # a fill also writes its trajectory event: count distinct ids
        assert {r["msg_id"] for r in stored} == set(good_ids)
        rows = await env.pool.fetch(
            "SELECT topic, payload, reason FROM dead_letters WHERE payload = ANY($1::bytea[])",
            list(bad_payloads),
        )
        assert Counter(bytes(r["payload"]) for r in rows) == Counter(bad_payloads)  # each once
        assert all(r["reason"] for r in rows)
        # still alive and still working
        assert worker.metrics.connected
        probe = {"msg_id": mid(), "ts": now_ms(), "lat": INSIDE[0], "lon": INSIDE[1]}
        await publish(env.mqtt_url, [("cyl/v1/vehicle/VEH-A1/position", probe)])
        await eventually(
            lambda: count(
                env.pool, "SELECT count(*) FROM positions WHERE msg_id = $1", probe["msg_id"]
            )
        )
        assert worker.metrics.dead_letters.total() >= len(bad)
        await asyncio.sleep(0)
