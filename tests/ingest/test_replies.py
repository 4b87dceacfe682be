"""Fill-authorization replies under load (issue 14): the same decision whether a request is
answered alone or together with others that queued, and an answer that no batch holds up."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from ingest.auth import FillAuthorizer
from ingest.metrics import Metrics
from tests.ingest.conftest import Env

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
