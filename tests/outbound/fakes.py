"""Fake receivers for the outbound tests: an SMS gateway and the provincial platform.

Both are fakes because neither a real SMS gateway nor the provincial platform can run on a
test machine. Both fail at random from a fixed seed — errors, answers that never come
(the request was taken, the answer is lost), garbage — and keep what a real receiver keeps
so the tests can count what was delivered.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

API_KEY = "test-key"
API_SECRET = "test-secret"
PLATFORM_TOKEN = "platform-token"
INVALID_PREFIX = "+999"
"""Numbers the fake gateway refuses with 400 (a permanent failure)."""


@dataclass
class FakeGateway:
    """An SMS gateway that de-duplicates on ``X-Client-Msg-Id`` like a real one should.

    Per request, at random: 500 before taking the message; take it and hang past the
    client's timeout; take it and answer garbage; or take it and answer its message id.
    A repeat of a message it already took is not delivered to the phone again: it answers
    the first message id.
    """

    seed: int
    hang_s: float
    p_error: float = 0.2
    p_hang: float = 0.1
    p_garbage: float = 0.1
    rng: random.Random = field(init=False)
    delivered: Counter[str] = field(default_factory=Counter)
    """Deliveries to a phone per client message id (the test demands at most one)."""
    provider_ids: dict[str, str] = field(default_factory=dict)
    texts: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    tries: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Requests per (client message id, attempt): two senders sending one claim shows as 2."""
    repeats: int = 0
    bad_signatures: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/send", self.send)
        return app

    async def send(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        stamp = request.headers.get("X-Timestamp", "")
        expected = hmac.new(
            API_SECRET.encode(), stamp.encode() + b"\n" + raw, hashlib.sha256
        ).hexdigest()
        if request.headers.get("X-Api-Key") != API_KEY or not hmac.compare_digest(
            expected, request.headers.get("X-Signature", "")
        ):
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        body = orjson.loads(raw)
        msg_id = request.headers["X-Client-Msg-Id"]
        assert body["client_msg_id"] == msg_id
        self.requests[msg_id] += 1
        self.tries[(msg_id, request.headers["X-Attempt"])] += 1
        if body["to"].startswith(INVALID_PREFIX):
            return web.json_response({"error": "invalid number"}, status=400)
        roll = self.rng.random()
        if roll < self.p_error:
            return web.json_response({"error": "busy"}, status=500)
        if msg_id in self.provider_ids:
            self.repeats += 1  # taken before: the same message, not a second text
        else:
            self.delivered[msg_id] += 1
            self.provider_ids[msg_id] = f"GW-{len(self.provider_ids) + 1}"
            self.texts[msg_id] = body
        roll -= self.p_error
        if roll < self.p_hang:
            await asyncio.sleep(self.hang_s)  # the client has given up by now
        elif roll < self.p_hang + self.p_garbage:
            return web.Response(text="<html>502 upstream hiccup</html>", status=200)
        return web.json_response({"message_id": self.provider_ids[msg_id]})


@dataclass
class FakePlatform:
    """The provincial platform's receiving endpoint: stores each change once by outbox id.

    Per request, at random: 500 before storing; store and hang past the client's timeout;
    store and answer. ``refuse`` makes it answer 400 to every request (a permanent refusal).
    """

    seed: int
    hang_s: float
    p_error: float = 0.3
    p_hang: float = 0.15
    refuse: bool = False
    rng: random.Random = field(init=False)
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Changes kept, by outbox id (a repeat is recognised, not stored again)."""
    stored_count: Counter[int] = field(default_factory=Counter)
    batches: dict[int, list[int]] = field(default_factory=dict)
    """The outbox ids each batch id carried the first time it came."""
    batch_changed: list[int] = field(default_factory=list)
    """Batch ids that came again with different contents (must stay empty)."""
    repeats: int = 0
    unauthorized: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/upload", self.upload)
        return app

    async def upload(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {PLATFORM_TOKEN}":
            self.unauthorized += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.refuse:
            return web.json_response({"error": "schema violation"}, status=400)
        body = orjson.loads(await request.read())
        if self.rng.random() < self.p_error:
            return web.json_response({"error": "maintenance"}, status=500)
        ids = [r["outbox_id"] for r in body["records"]]
        first = self.batches.setdefault(body["batch_id"], ids)
        if first != ids:
            self.batch_changed.append(body["batch_id"])
        for record in body["records"]:
            oid = record["outbox_id"]
            if oid in self.stored:
                self.repeats += 1
                continue
            self.stored[oid] = record
            self.stored_count[oid] += 1
        if self.rng.random() < self.p_hang:
            await asyncio.sleep(self.hang_s)
        return web.json_response({"accepted": len(ids)})


async def wait_until(check: Any, timeout_s: float, step_s: float = 0.05) -> None:
    """Poll the async *check* until it is true; fail after *timeout_s*."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"not done within {timeout_s} s")
        await asyncio.sleep(step_s)


async def insert_dead_batch(pool: Any, records: int = 2) -> int:
    """A dead-lettered upload batch with *records* changes (for the API and the role walk)."""
    async with pool.acquire() as conn, conn.transaction():
        batch = await conn.fetchval(
            """INSERT INTO upstream_batches (state, records, attempts, last_error)
               VALUES ('dead', $1, 10, 'HTTP 503: maintenance') RETURNING id""",
            records,
        )
        await conn.executemany(
            """INSERT INTO upstream_outbox (entity, op, record, batch_id)
               VALUES ('fill', 'recorded', '{"msg_id": "rw"}'::jsonb, $1)""",
            [(batch,)] * records,
        )
    return int(batch)
