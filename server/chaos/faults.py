"""The faults a chaos round injects (``cylwatch chaos --fault NAME``; docs/RELIABILITY.md
"Chaos runs"): each takes the round's private services, injects its fault, returns once the
fault is over — the moment recovery is timed from — with a note for the table. The runner
(``server.chaos.runner``) drives the traffic around them and checks what was stored.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from server.chaos.services import IngestProcess, PrivateMosquitto, PrivatePostgres, PrivateRedis
from server.chaos.serving_faults import slow_client_round
from server.chaos.storage import fill_tablespace

__all__ = ["FAULTS", "LOSSY", "Fault", "Services"]


@dataclass
class Services:
    pg: PrivatePostgres
    broker: PrivateMosquitto
    ingest: IngestProcess
    dsn: str
    fault_s: float
    redis: PrivateRedis
    bus_channel: str


Fault = Callable[[Services], Awaitable[str]]
"""Injects a fault and returns once it is over (the moment recovery is timed from), with a
note for the table."""


async def kill_worker(s: Services) -> str:
    """kill -9 of an ingest worker; the supervisor restarts it (as systemd would the unit).
    Recovery is timed from the kill: the restart is part of it."""
    pids = s.ingest.worker_pids()
    if not pids:
        raise RuntimeError("no ingest worker to kill")
    os.kill(pids[0], signal.SIGKILL)
    return f"worker {pids[0]} killed, restarted by the supervisor"


async def _broker_restart(s: Services, sig: int) -> str:
    s.broker.stop(sig)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(s.broker.start)
    return f"autosave_interval {s.broker.autosave_interval} s"


async def restart_broker(s: Services) -> str:
    """Mosquitto stopped with SIGTERM (it saves its state) and started again a second later."""
    return await _broker_restart(s, signal.SIGTERM)


async def crash_broker(s: Services) -> str:
    """Mosquitto killed with SIGKILL: what arrived since the last autosave is not on disk."""
    return await _broker_restart(s, signal.SIGKILL)


async def crash_broker_backlog(s: Services) -> str:
    """The worst case of a broker crash: `cylwatch ingest` frozen (SIGSTOP) for ``fault_s``,
    so the broker holds a backlog it has acknowledged but not delivered, then Mosquitto
    killed with SIGKILL and started again, then ingest resumed. What the broker had not
    saved (autosave_interval) is gone: the loss bound of docs/DEPLOY.md §10, measured."""
    n = s.ingest.signal_tree(signal.SIGSTOP)
    try:
        await asyncio.sleep(s.fault_s)
        s.broker.stop(signal.SIGKILL)
        await asyncio.to_thread(s.broker.start)
    finally:
        s.ingest.signal_tree(signal.SIGCONT)
    return (
        f"{n} ingest processes stopped {s.fault_s:g} s, broker SIGKILL at the end; "
        f"autosave_interval {s.broker.autosave_interval} s"
    )


async def broker_down(s: Services) -> str:
    """Mosquitto killed (SIGKILL) and started again only after ``fault_s``: the devices keep
    what they publish meanwhile and send it the moment they reconnect, and the broker comes
    back without the workers' shared subscriptions (Mosquitto 2.0 does not save them,
    docs/DEPLOY.md §10) — whatever arrives before the workers subscribe again is acked with
    "no matching subscribers" and dropped, so they must be back within a second."""
    s.broker.stop(signal.SIGKILL)
    await asyncio.sleep(s.fault_s)
    await asyncio.to_thread(s.broker.start)
    return f"broker SIGKILL, down {s.fault_s:g} s; autosave_interval {s.broker.autosave_interval} s"


async def pause_database(s: Services) -> str:
    """SIGSTOP of the private cluster's postmaster and every backend for ``fault_s``."""
    n = s.pg.signal_all(signal.SIGSTOP)
    try:
        await asyncio.sleep(s.fault_s)
    finally:
        s.pg.signal_all(signal.SIGCONT)
    return f"{n} processes stopped {s.fault_s:g} s"


async def restart_database(s: Services) -> str:
    """PostgreSQL stopped (fast: connections cut) and started again."""
    await asyncio.to_thread(s.pg.stop, "fast")
    await asyncio.sleep(1.0)
    await asyncio.to_thread(s.pg.start)
    return "pg_ctl stop -m fast; start"


LOSSY: Final = frozenset({"crash-broker", "crash-broker-backlog", "broker-down"})
"""Faults allowed to lose what the broker had not saved (``Outcome.loss_bound``)."""


async def restart_redis(s: Services) -> str:
    """Redis stopped and started again a second later: the live bus only; storage and fill
    authorization must not notice, the bridge must come back on its own."""
    s.redis.stop()
    await asyncio.sleep(1.0)
    await asyncio.to_thread(s.redis.start)
    return "redis-server SIGTERM; start"


FAULTS: Final[dict[str, Fault]] = {
    "kill-worker": kill_worker,
    "restart-broker": restart_broker,
    "crash-broker": crash_broker,
    "crash-broker-backlog": crash_broker_backlog,
    "broker-down": broker_down,
    "pause-db": pause_database,
    "restart-db": restart_database,
    "restart-redis": restart_redis,
    "disk-full": lambda s: fill_tablespace(s.pg, s.dsn, s.fault_s),  # server.chaos.storage
    # server.chaos.serving_faults: a websocket client crawling on a `cylwatch serve` of the round
    "slow-client": lambda s: slow_client_round(
        s.dsn, s.redis.url, s.bus_channel, s.fault_s, s.pg.dir
    ),
}
