"""Fewer ingest workers (ingest/retire.py, ``cylwatch ingest-retire``; docs/DEPLOY.md §10):
the broker keeps giving a stopped worker's sessions their share of the shared subscription,
and retiring them stores what they held and sends them nothing more.

Against a private Mosquitto with config/mosquitto.conf (the machine's broker carries other
engineers' traffic) and a scratch database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiomqtt
import orjson

from ingest.retire import retire_index
from realtime.bus import EventBus
from tests.ingest.conftest import Env, count, eventually, mid, now_ms, publish, running_worker

_STORED = "SELECT count(*) FROM telemetry WHERE msg_id = ANY($1::text[])"
_ASKED = "SELECT count(*) FROM events WHERE msg_id = ANY($1::text[])"


def _telemetry(n: int) -> list[tuple[str, Any]]:
    return [
        (f"cyl/v1/valve/TAG-A{1 + i % 9}/telemetry", {"msg_id": mid(), "ts": now_ms() + i})
        for i in range(n)
    ]


async def _settled(env: Env, sql: str, ids: list[str]) -> int:
    """The count once it has not moved for a second."""
    last = -1
    while True:
        now = await count(env.pool, sql, ids)
        if now == last:
            return now
        last = now
        await asyncio.sleep(1.0)


async def test_a_retired_worker_gives_back_its_share_and_gets_no_more(env: Env) -> None:
    """Two workers, then one: what the broker queued for the stopped one (telemetry and gun
    requests alike) is stored and answered once it is retired, and what devices publish
    afterwards all reaches the worker left."""
    async with running_worker(env.settings, env.pool, worker_index=0):
        async with running_worker(env.settings, env.pool, worker_index=1):
            pass  # both sessions exist and are members of the group; worker 1 is gone now
        port = int(env.mqtt_url.rsplit(":", 1)[1])
        async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as gun:
            await gun.subscribe("cyl/v1/gun/+/auth/reply/#", 1)
            first = _telemetry(200)
            asks = [{"msg_id": mid(), "ts": now_ms(), "tag": "TAG-A1"} for _ in range(20)]
            await publish(env.mqtt_url, first + [("cyl/v1/gun/GUN-A1/auth", a) for a in asks])
            first_ids = [str(p["msg_id"]) for _, p in first]
            ask_ids = [str(a["msg_id"]) for a in asks]
            # the broker handed the stopped worker its share: it is not stored
            held = 200 - await _settled(env, _STORED, first_ids)
            assert 50 <= held <= 150, held

            drained = await retire_index(env.settings, env.pool, EventBus(), 1)
            assert drained[0].client_id.endswith("-1")
            assert drained[0].messages >= held  # (the batch session also had gun requests)
            assert drained[1].client_id.endswith("-1-auth") and drained[1].messages > 0
            assert await count(env.pool, _STORED, first_ids) == 200
            assert await eventually(lambda: _count_is(env, _ASKED, ask_ids, 20))

            answered: set[str] = set()

            async def collect() -> None:
                async for m in gun.messages:
                    answered.add(orjson.loads(m.payload)["msg_id"])

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), 2)
            assert set(ask_ids) <= answered  # every gun got its answer, some late

        # the retired sessions are members no more: the worker left gets everything
        after = _telemetry(100)
        await publish(env.mqtt_url, after)
        after_ids = [str(p["msg_id"]) for _, p in after]
        assert await eventually(lambda: _count_is(env, _STORED, after_ids, 100), timeout=15)


async def _count_is(env: Env, sql: str, ids: list[str], n: int) -> bool:
    return await count(env.pool, sql, ids) == n
