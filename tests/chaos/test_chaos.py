"""The chaos suite in short (docs/RELIABILITY.md "Chaos runs"): while the simulated city
publishes at a steady rate, an ingest worker is killed with SIGKILL, the broker is restarted,
the database is paused and Redis is restarted — and after each, every message the broker acknowledged is
stored exactly once, every leak alert counted once, and fill authorization answers again
within seconds.

One private PostgreSQL cluster, Mosquitto, Redis and `cylwatch ingest` serve the four rounds
(`server.chaos`); the rates and lengths are small so the whole module stays well under 90 s
on a loaded 2-core machine. `cylwatch chaos` runs the long version whose figures the
document records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.chaos import ChaosConfig, Outcome, format_table, run_chaos
from tests.chaos.services import need_programs

pytestmark = pytest.mark.slow

RESTART_BOUND_S = 20.0
"""A killed worker answers again within this: the supervisor's 1 s back-off, a fresh
interpreter spawned and imported (~3 s idle, several times that on a loaded machine), its
reconnect and resubscribe."""
RESUME_BOUND_S = 5.0
"""After the broker or the database is back, answers resume within this: the workers'
reconnect back-off as shipped starts at 0.5 s and doubles, so a 1 s broker restart or a 3 s
pause is retried by 3.5 s; a gun retries its connection every second."""
PAUSE_S = 3.0
LIVE_BOUND_S = 10.0
"""After Redis is back, the live bus carries events again within this: the bridge's
back-off as shipped (``[realtime] bridge_reconnect_min_s`` 0.5 s, doubling) retries a 1 s
outage by its third try, plus the next event of a 60 msg/s city."""
AUTH_UNDISTURBED_S = 3.0
"""The longest wait for an answer while only Redis is away: fill authorization does not use
it, so anything above a loaded machine's scheduling noise would be a dependency."""


@pytest.fixture(scope="module")
async def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    need_programs()
    logs: Path = tmp_path_factory.mktemp("chaos")
    cfg = ChaosConfig(
        faults=["kill-worker", "restart-broker", "pause-db", "restart-redis"],
        rate=60.0,
        duration_s=8.0,
        warmup_s=2.0,
        fault_s=PAUSE_S,
        cylinders=200,
        leaks_per_s=2.0,
        drain_timeout_s=40.0,
        keep_logs=logs,
    )
    results = await run_chaos(cfg, out=lambda _line: None)
    print(format_table(results))
    return {o.fault: o for o in results}


def _stored_exactly_once(o: Outcome) -> None:
    assert o.sent == o.acked, format_table([o])  # the publisher's backlog was delivered
    assert o.acked > 0
    assert (o.lost, o.duplicated, o.dead_letters) == (0, 0, 0), format_table([o])
    assert o.stored == o.acked
    # every acknowledged leak bumped its alert once: none lost, none applied twice
    assert o.leaks > 0
    assert (o.alerts_lost, o.alerts_doubled) == (0, 0), format_table([o])


async def test_kill_9_of_a_worker_loses_nothing_and_auth_answers_again(
    outcomes: dict[str, Outcome],
) -> None:
    o = outcomes["kill-worker"]
    _stored_exactly_once(o)
    assert o.auth_gap_s is not None and o.auth_resumed_s is not None, format_table([o])
    assert o.auth_gap_s > 0.5  # the kill did interrupt the answers: it landed
    assert o.auth_resumed_s < RESTART_BOUND_S
    assert o.auth_unanswered == 0  # requests the dead worker held were answered after all


async def test_a_broker_restart_loses_nothing_and_auth_answers_again(
    outcomes: dict[str, Outcome],
) -> None:
    o = outcomes["restart-broker"]
    _stored_exactly_once(o)
    assert o.auth_resumed_s is not None and o.auth_resumed_s < RESUME_BOUND_S, format_table([o])
    assert o.auth_gap_s is not None and o.auth_gap_s > 0.5  # the broker was really down


async def test_a_paused_database_loses_nothing_and_auth_answers_again(
    outcomes: dict[str, Outcome],
) -> None:
    o = outcomes["pause-db"]
    _stored_exactly_once(o)
    assert o.auth_resumed_s is not None and o.auth_resumed_s < RESUME_BOUND_S, format_table([o])
    # fill authorization reads the database: the pause stopped the answers for its length
    assert o.auth_gap_s is not None and o.auth_gap_s >= PAUSE_S * 0.8, format_table([o])


async def test_a_redis_restart_loses_nothing_and_the_live_bus_comes_back(
    outcomes: dict[str, Outcome],
) -> None:
    o = outcomes["restart-redis"]
    _stored_exactly_once(o)
    assert o.live_resumed_s is not None and o.live_resumed_s < LIVE_BOUND_S, format_table([o])
    assert o.auth_gap_s is not None and o.auth_gap_s < AUTH_UNDISTURBED_S, format_table([o])
