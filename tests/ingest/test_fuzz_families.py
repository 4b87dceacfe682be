"""The MQTT fuzzer, small: every family of bad payload on every topic, with good traffic.

Random bytes, mutated valid messages, huge payloads (100–200 KB), JSON nested thousands
deep, wrong encodings (UTF-16/32, bytes that are not UTF-8) and wrong types, interleaved
with good messages (some with a newer firmware's unknown nested fields), published to a
real worker. What a supervisor would notice if it failed: the worker down, a good reading
missing or stored twice, a bad one silently gone (not in ``dead_letters``).
``bench/fuzz_mqtt.py`` runs the same with ≥ 100,000 payloads.
"""

from __future__ import annotations

import pytest

from tests.ingest.conftest import Env
from tests.ingest.conftest import running_worker as worker_ctx
from tests.ingest.fuzz_payloads import traffic
from tests.ingest.fuzz_run import run, worker_task

SEED = 20261207
BAD = 2_500
GOOD = 500
SETTLE_S = 60.0


@pytest.mark.slow
async def test_every_family_of_bad_payload_is_dead_lettered_and_good_ones_stored_once(
    env: Env,
) -> None:
    messages = traffic(BAD, GOOD, SEED)
    async with worker_ctx(env.settings, env.pool) as worker:
        task = worker_task()
        out = await run(env.mqtt_url, env.pool, worker, task, messages, SETTLE_S)
    assert out.families.keys() >= {"random_bytes", "mutated", "huge", "deep", "encoding"}
    assert out.alive
    assert not out.good_missing and not out.good_doubled, out.summary()
    assert not out.bad_missing, [(m.family, m.topic, m.payload[:120]) for m in out.bad_missing[:10]]
    assert out.bad_doubled == 0 and not out.unexpected_dead_letters, out.unexpected_dead_letters[
        :10
    ]
    assert out.good_stored_once == GOOD and out.bad_dead_lettered_once == BAD
