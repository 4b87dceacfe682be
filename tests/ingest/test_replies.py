"""Fill-authorization replies under load (issue 14): the same decision whether a request is
answered alone or together with others that queued, and an answer that no batch holds up."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import threading
import time
from typing import Any

import aiomqtt
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.auth import FillAuthorizer
from ingest.metrics import Metrics
from ingest.store.batch import BatchStore
from tests.ingest.conftest import Env, count, eventually, mid, now_ms, publish, running_worker

CASES = [
    # gun, tag, decision, reasons (every reason the rule gives, and a stranger's gun)
    ("GUN-A1", "TAG-A1", "allow", ()),
    ("GUN-A1", "TAG-A-OVERDUE", "deny", ("overdue_inspection",)),
    ("GUN-A1", "TAG-A-SCRAPPED", "deny", ("scrapped",)),
    ("GUN-A1", "TAG-B1", "deny", ("not_owner",)),
    ("GUN-A1", "TAG-C1", "allow", ()),  # company C entrusted company A
    ("GUN-A1", "NO-SUCH-TAG", "deny", ("unknown_tag",)),
    ("GUN-AX", "TAG-A2", "deny", ("station_not_licensed",)),
    ("GUN-OFF", "TAG-A2", "deny", ("unknown_station",)),
    ("NO-SUCH-GUN", "TAG-A2", "deny", ("unknown_station",)),
]


def _facts(outcome: Any) -> tuple[Any, ...]:
    """Everything a request's outcome carries to the gun and to storage, but its timing."""
    return (
        outcome.decision,
        outcome.code,
        outcome.gun_known,
        outcome.station,
        outcome.station_district,
        outcome.station_code,
        outcome.cylinder,
        outcome.max_fill_kg,
    )


async def test_requests_answered_together_get_the_decisions_they_get_alone(env: Env) -> None:
    """With one connection, requests that queue while it is busy are answered in one round
    trip — and each gets exactly what it gets when asked on its own."""
    settings = env.with_mqtt(env.mqtt_url, auth_connections=1)
    authorizer = FillAuthorizer(settings, env.pool, Metrics("test-batch"))
    today = env.world.today
    now = dt.datetime.now(dt.UTC)
    try:
        alone = []
        for gun, tag, _, _ in CASES:
            alone.append(await authorizer.decide(gun, tag, today, now, time.perf_counter()))
        queries_alone = authorizer.queries
        asks = [c for c in CASES for _ in range(5)]  # 45 requests at once
        together = await asyncio.gather(
            *(authorizer.decide(g, t, today, now, time.perf_counter()) for g, t, _, _ in asks)
        )
    finally:
        await authorizer.close()
    assert queries_alone == len(CASES)
    # all 45 were waiting when the connection's runner woke: one or two round trips
    assert authorizer.queries - queries_alone <= 2
    for (gun, tag, decision, reasons), outcome in zip(CASES, alone, strict=True):
        assert outcome.decision.decision == decision, (gun, tag)
        assert set(outcome.decision.reason_codes) >= set(reasons), (gun, tag)
    by_case = dict(zip([(g, t) for g, t, _, _ in CASES], alone, strict=True))
    for (gun, tag, _, _), outcome in zip(asks, together, strict=True):
        assert _facts(outcome) == _facts(by_case[(gun, tag)]), (gun, tag)


# --------------------------------------------------------------------------- the reply process


class Gun(threading.Thread):
    """A gun on a thread of its own (paho's network thread): it asks and times the answer
    even while the test's event loop — which the in-process worker shares — is blocked."""

    def __init__(self, url: str, gun: str, tag: str, after: threading.Event | None = None):
        super().__init__(daemon=True)
        self.port = int(url.rsplit(":", 1)[1])
        self.gun, self.tag, self.after = gun, tag, after
        self.msg_id = mid()
        self.seconds: float | None = None
        self.body: dict[str, Any] | None = None

    def run(self) -> None:
        got = threading.Event()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_message(_c: Any, _u: Any, m: Any) -> None:
            body = orjson.loads(m.payload)
            if body.get("msg_id") == self.msg_id and not got.is_set():
                self.seconds = time.perf_counter() - t0
                self.body = body
                got.set()

        subscribed = threading.Event()
        sub.on_message = on_message
        sub.on_subscribe = lambda *_a: subscribed.set()
        sub.connect("127.0.0.1", self.port)
        sub.loop_start()
        sub.subscribe(f"cyl/v1/gun/{self.gun}/auth/reply", qos=1)
        subscribed.wait(10)
        if self.after is not None:
            self.after.wait(30)
        t0 = time.perf_counter()
        payload = orjson.dumps({"msg_id": self.msg_id, "ts": now_ms(), "tag": self.tag})
        sub.publish(f"cyl/v1/gun/{self.gun}/auth", payload, qos=1)
        got.wait(20)
        sub.disconnect()
        sub.loop_stop()


def telemetry(tags: list[str], n: int) -> list[tuple[str, Any]]:
    return [
        (f"cyl/v1/valve/{tags[i % len(tags)]}/telemetry", {"msg_id": mid(), "ts": now_ms() + i})
        for i in range(n)
    ]


async def test_a_gun_is_answered_while_a_batch_holds_the_worker_loop(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's loop is held 3 s by a batch (as a long backlog drain would): the gun's
    answer comes from the reply process meanwhile; the request is stored afterwards."""
    blocking = threading.Event()
    original = BatchStore.store

    async def slow_store(self: BatchStore, conn: Any, items: list[Any]) -> Any:
        if not blocking.is_set() and any("/valve/" in i.topic for i in items):
            blocking.set()
            time.sleep(3)  # noqa: ASYNC251 - the point: this batch holds the loop
        return await original(self, conn, items)

    monkeypatch.setattr(BatchStore, "store", slow_store)
    async with running_worker(env.settings, env.pool) as worker:
        gun = Gun(env.mqtt_url, "GUN-A1", "TAG-A2", after=blocking)
        gun.start()
        await publish(env.mqtt_url, telemetry(["TAG-A3", "TAG-A4"], 200))
        await asyncio.to_thread(gun.join, 30)
        assert blocking.is_set()
        assert gun.body is not None and gun.body["decision"] == "allow"
        assert gun.seconds is not None and gun.seconds < 1.0, gun.seconds
        stored = await eventually(
            lambda: env.pool.fetchval("SELECT kind FROM events WHERE msg_id = $1", gun.msg_id)
        )
        assert stored == "fill_authorized"
        assert worker.metrics.auth_phases["query"].count >= 1  # figures reach /metrics


async def test_a_gun_is_answered_while_a_batch_waits_on_locked_cylinders(env: Env) -> None:
    """A batch's transaction is held open on cylinder rows another transaction has locked;
    a gun asking about one of those very cylinders is answered (a plain read waits on no
    row lock), and once the lock goes everything is stored."""
    tags = ["TAG-A5", "TAG-A6", "TAG-A7"]
    async with running_worker(env.settings, env.pool):
        holder = await env.pool.acquire()
        try:
            tx = holder.transaction()
            await tx.start()
            await holder.execute("SELECT 1 FROM cylinders WHERE tag = ANY($1) FOR UPDATE", tags)
            readings = telemetry(tags, 300)
            await publish(env.mqtt_url, readings)
            await eventually(  # the batch is in its transaction, waiting for the rows
                lambda: env.pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
            gun = Gun(env.mqtt_url, "GUN-A1", "TAG-A5")
            gun.start()
            await asyncio.to_thread(gun.join, 30)
            assert gun.body is not None and gun.body["decision"] == "allow"
            assert gun.seconds is not None and gun.seconds < 1.0, gun.seconds
            ids = [body["msg_id"] for _, body in readings]
            assert await count(env.pool, _STORED, ids) == 0  # still held
        finally:
            await tx.rollback()
            await env.pool.release(holder)
        await eventually(lambda: _all_stored(env, ids))
        await eventually(
            lambda: env.pool.fetchval("SELECT 1 FROM events WHERE msg_id = $1", gun.msg_id)
        )


_STORED = "SELECT count(*) FROM telemetry WHERE msg_id = ANY($1::text[])"


async def _all_stored(env: Env, ids: list[str]) -> bool:
    return await count(env.pool, _STORED, ids) == len(ids)


async def test_each_request_is_answered_once_and_stored_once(env: Env) -> None:
    """The batch connection's copy of a request is dropped, the reply process's answered."""
    async with running_worker(env.settings, env.pool) as worker:
        port = int(env.mqtt_url.rsplit(":", 1)[1])
        seen: list[str] = []
        async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as c:
            await c.subscribe("cyl/v1/gun/+/auth/reply/#", 1)
            asks = [
                {"msg_id": mid(), "ts": now_ms(), "tag": f"TAG-A{1 + i % 9}"} for i in range(30)
            ]
            await publish(env.mqtt_url, [("cyl/v1/gun/GUN-A1/auth", a) for a in asks])

            async def collect() -> None:
                async for m in c.messages:
                    seen.append(orjson.loads(m.payload)["msg_id"])

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), 3)
        ids = [str(a["msg_id"]) for a in asks]
        assert sorted(m for m in seen if m in ids) == sorted(ids)  # one reply each
        await eventually(
            lambda: count(env.pool, "SELECT count(*) FROM events WHERE msg_id = ANY($1)", ids)
        )
        await asyncio.sleep(0.5)
        assert (
            await count(env.pool, "SELECT count(*) FROM events WHERE msg_id = ANY($1)", ids) == 30
        )
        assert worker.metrics.ignored >= 30  # the batch connection's copies


async def test_a_reply_process_that_dies_is_restarted_and_loses_nothing(env: Env) -> None:
    async with running_worker(env.settings, env.pool) as worker:
        assert worker.replies is not None
        first = worker.replies.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # asked while no reply process runs: kept for its session, answered after restart
        req = {"msg_id": mid(), "ts": now_ms(), "tag": "TAG-A8"}
        await publish(env.mqtt_url, [("cyl/v1/gun/GUN-A1/auth", req)])
        await eventually(lambda: asyncio.sleep(0, worker.replies.pid not in (None, first)))
        stored = await eventually(
            lambda: env.pool.fetchval("SELECT kind FROM events WHERE msg_id = $1", req["msg_id"])
        )
        assert stored == "fill_authorized"
        gun = Gun(env.mqtt_url, "GUN-A1", "TAG-A9")
        gun.start()
        await asyncio.to_thread(gun.join, 30)
        assert gun.body is not None and gun.body["decision"] == "allow"
