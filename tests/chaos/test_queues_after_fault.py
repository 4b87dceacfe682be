"""The outgoing queues deliver what they held after a fault (issue 10 item 1; docs/OUTBOUND.md,
docs/RELIABILITY.md "Chaos runs").

Two server processes' senders (``server.outbound``: two SMS senders and two upload senders, each
pair on its own pool, as two `cylwatch serve` processes share the queues) work a private
PostgreSQL cluster (``server.chaos.services``, never the machine's shared server) through this
sequence:

1. the SMS gateway and the provincial platform answer 503 to everything (maintenance) while
   messages and archive changes are queued by business transactions (``enqueue_sms``, and
   cylinders created: the outbox triggers of migration 0080);
2. both go down altogether (nothing listens: connections refused); more is queued, and the
   database is restarted (``pg_ctl stop -m fast``, start) under the senders;
3. both come back, failing at random, and the database is paused (SIGSTOP of every process of
   the cluster) while requests are in flight — answers arrive that cannot be recorded;
4. everything is back: the queues must drain.

Then every queued message reached a phone exactly once and every change was stored by the
platform exactly once, nothing given up; the tries of each message came no sooner than the
configured back-off (and, while the gateway answered at once, no later than it plus a poll);
and the time from the database's return to both queues empty is measured.

**Fakes**, and only these: the SMS gateway and the provincial platform, because neither can run
on a test machine. Each is a real HTTP server in this test (``tests.outbound.fakes``: a gateway
that de-duplicates on ``X-Client-Msg-Id`` and a platform that keeps each ``outbox_id`` once, as
docs/OUTBOUND.md asks of the real ones) that fails at random from a fixed seed — 5xx, answers
lost past the sender's timeout, garbage — behind ``server.chaos.queues.PeerHost``, which takes
it down or into maintenance. The senders, the queues, the triggers and PostgreSQL are the real
ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import msgspec
import pytest

from server.chaos.queues import (
    PeerHost,
    QueueState,
    backoff_breaches,
    drained,
    queue_state,
    sms_key,
    upstream_key,
)
from server.chaos.services import PrivatePostgres, first_start
from server.db.migrate import migrate
from server.db.pool import create_pool
from server.kernel.settings import Settings, load_settings
from server.outbound.sms import enqueue_sms
from server.outbound.sms_sender import SmsSender
from server.outbound.upstream import UpstreamSender, write_switch
from tests.chaos.services import need_programs
from tests.outbound.fakes import FakeGateway, FakePlatform
from tests.outbound.test_sms import sms_rules
from tests.outbound.test_upstream import upstream_rules

pytestmark = pytest.mark.slow

TIMEOUT_S = 1.0
"""The senders' request timeout: the fakes' hung answers (``HANG_S``) outlast it."""
HANG_S = 1.5
BACKOFF = {"backoff_min_s": 0.2, "backoff_max_s": 1.6, "poll_interval_s": 0.1}
"""The shipped back-off's shape (doubling, capped, half random) at a scale a test can wait for."""
CLAIM_TIMEOUT_S = 5.0
"""A claim whose outcome could not be recorded (the database restarted under it) is taken
over after this: above ``TIMEOUT_S``, as docs/OUTBOUND.md requires, and above ``PAUSE_S`` —
a pause as long as the claim timeout makes a live claim look dead, and another sender sends
it again at once (seen with 3 s and 3 s: an upload batch sent twice 0.02 s apart, the
platform keeping one copy; at-least-once as designed, but not a back-off)."""
MAX_ATTEMPTS = 60
"""Enough tries for the whole outage at the back-off above (about 15 tries in 20 s): the
test is about what a fault leaves behind, not about giving up."""
SMS_PER_PHASE = 15
MAINTENANCE_S = 2.0
DOWN_S = 1.5
PAUSE_S = 3.0
PAUSE_WAIT_S = 20.0
"""After the restart, a request reaches a receiver within this (the longest back-off is 1.6 s)."""
DRAIN_BOUND_S = 25.0
"""From the database's return to both queues empty: a claim stranded by the restart waits
``CLAIM_TIMEOUT_S``, and each random failure costs up to ``TIMEOUT_S`` plus a back-off of at
most 1.6 s; a 2-core machine under other work's load."""
SEED = 1010


@dataclass
class Run:
    gateway: FakeGateway
    platform: FakePlatform
    gw: PeerHost
    pf: PeerHost
    sms_ids: list[int] = field(default_factory=list)
    change_ids: list[int] = field(default_factory=list)
    calm: list[tuple[float, float]] = field(default_factory=list)
    restart_s: float = 0.0
    drain_s: float | None = None
    state: QueueState | None = None
    sms_rows: list[asyncpg.Record] = field(default_factory=list)
    db_unavailable: int = 0
    """Sender rounds that failed on the database (``server.outbound.delivery``'s warning)."""
    paused: tuple[float, float] = (0.0, 0.0)


class _Count(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.n = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.n += self.text in record.getMessage()


async def _queue(pool: asyncpg.Pool, settings: Settings, run: Run, company: int, n: int) -> None:
    """*n* business transactions, each queuing one SMS and creating one cylinder (whose
    trigger queues its upload), as a feature of the platform does."""
    today = dt.date.today()
    for _ in range(n):
        i = len(run.sms_ids)
        async with pool.acquire() as conn, conn.transaction():
            sms_id = await enqueue_sms(
                conn,
                settings.sms,
                phone=f"1390000{i:04d}",
                kind="notice",
                params={"name": f"用户{i}", "title": f"chaos {i}"},
                key=f"chaos:{i}",
            )
            await conn.fetchval(
                """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                          next_inspection_date, scrap_date)
                   VALUES ($1, $2, 'YSP35.5', $3, $4, $5) RETURNING id""",
                f"CHAOS-Q-{i:05d}",
                company,
                today - dt.timedelta(days=100),
                today + dt.timedelta(days=1000),
                today + dt.timedelta(days=2500),
            )
        assert sms_id is not None
        run.sms_ids.append(sms_id)
    run.change_ids = [
        int(r["id"]) for r in await pool.fetch("SELECT id FROM upstream_outbox ORDER BY id")
    ]


async def _run_senders(
    settings: Settings, dsn: str
) -> list[tuple[asyncpg.Pool, asyncio.Task[None]]]:
    out = []
    for i in range(2):  # two server processes
        pool = await create_pool(settings, dsn=dsn, min_size=1, max_size=4)
        for name, sender in (
            ("sms", SmsSender(pool, settings.sms)),
            ("upstream", UpstreamSender(pool, settings.upstream)),
        ):
            out.append((pool, asyncio.create_task(sender.run(), name=f"chaos-{name}-{i}")))
    return out


@pytest.fixture(scope="module")
async def run() -> AsyncIterator[Run]:
    need_programs(broker_and_redis=False)
    pg = PrivatePostgres()
    gateway = FakeGateway(seed=SEED, hang_s=HANG_S, p_error=0.2, p_hang=0.1, p_garbage=0.1)
    platform = FakePlatform(seed=SEED + 1, hang_s=HANG_S, p_error=0.3, p_hang=0.15)
    gw, pf = PeerHost(gateway.app(), sms_key), PeerHost(platform.app(), upstream_key)
    senders: list[tuple[asyncpg.Pool, asyncio.Task[None]]] = []
    unavailable = _Count("database unavailable")
    logging.getLogger("server.outbound.delivery").addHandler(unavailable)
    try:
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(first_start, pg)
        admin = await asyncpg.connect(pg.dsn())
        await admin.execute("CREATE DATABASE chaos_queues")
        await admin.close()
        dsn = pg.dsn("chaos_queues")
        base = load_settings(environ={**os.environ, "CYL_DATABASE_URL": dsn})
        await migrate(base, dsn)
        gw_url = await gw.start("maintenance")
        pf_url = await pf.start("maintenance")
        common = {"timeout_s": TIMEOUT_S, "max_attempts": MAX_ATTEMPTS, **BACKOFF}
        settings = msgspec.structs.replace(
            base,
            sms=sms_rules(base, gw_url + "/send", claim_timeout_s=CLAIM_TIMEOUT_S, **common),
            upstream=upstream_rules(
                base, pf_url + "/upload", claim_timeout_s=CLAIM_TIMEOUT_S, batch_size=10, **common
            ),
        )
        setup = await create_pool(settings, dsn=dsn, min_size=1, max_size=2)
        await write_switch(setup, True)
        company = int(
            await setup.fetchval(
                "INSERT INTO companies (code, name) VALUES ('CHQ', '队列燃气') RETURNING id"
            )
        )
        r = Run(gateway, platform, gw, pf)
        senders = await _run_senders(settings, dsn)

        # 1. both receivers in maintenance: everything queued is refused with 503
        calm_from = time.monotonic()
        await _queue(setup, settings, r, company, SMS_PER_PHASE)
        await asyncio.sleep(MAINTENANCE_S)
        r.calm.append((calm_from, time.monotonic()))
        # 2. both down; more queued; the database restarted under the senders
        await gw.switch("down")
        await pf.switch("down")
        await _queue(setup, settings, r, company, SMS_PER_PHASE)
        await asyncio.sleep(DOWN_S)
        t = time.monotonic()
        await asyncio.to_thread(pg.stop, "fast")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(pg.start)
        r.restart_s = time.monotonic() - t
        await _queue(setup, settings, r, company, SMS_PER_PHASE)
        # 3. both back, failing at random; the database paused with requests in flight
        stopped: list[float] = []
        paused = asyncio.Event()

        def pause_once() -> None:  # the first request after the return, before its answer
            if not stopped:
                pg.signal_all(signal.SIGSTOP)
                stopped.append(time.monotonic())
                paused.set()

        gw.on_request = pf.on_request = pause_once
        try:
            await gw.switch("up")
            await pf.switch("up")
            await asyncio.wait_for(paused.wait(), PAUSE_WAIT_S)
            await asyncio.sleep(PAUSE_S - (time.monotonic() - stopped[0]))
        finally:
            pg.signal_all(signal.SIGCONT)
        back = time.monotonic()
        r.paused = (stopped[0], back)
        # 4. everything back: the queues must drain
        while time.monotonic() - back < DRAIN_BOUND_S + 5:
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                if drained(await queue_state(setup)):
                    r.drain_s = time.monotonic() - back
                    break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a late repeat would show now
        r.state = await queue_state(setup)
        r.sms_rows = list(
            await setup.fetch("SELECT id, state, provider_message_id, attempts FROM sms_outbox")
        )
        await setup.close()
        r.db_unavailable = unavailable.n
        yield r
    finally:
        logging.getLogger("server.outbound.delivery").removeHandler(unavailable)
        for _, task in senders:
            task.cancel()
        for _pool, task in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pool in {p for p, _ in senders}:
            pool.terminate()
        await gw.close()
        await pf.close()
        await asyncio.to_thread(pg.close)


def _in_pause(r: Run, host: PeerHost) -> int:
    return sum(1 for t in host.tries if r.paused[0] <= t.at <= r.paused[1])


def _report(r: Run) -> str:
    return (
        f"{r.db_unavailable} sender rounds failed on the database; requests answered during the "
        f"pause: {_in_pause(r, r.gw)} SMS, {_in_pause(r, r.pf)} upload; "
        f"drain {r.drain_s} s after the database's return, state {r.state}; "
        f"gateway: {sum(r.gateway.delivered.values())} texted, {r.gateway.repeats} repeats, "
        f"{len(r.gw.tries)} requests seen; platform: {len(r.platform.stored)} stored, "
        f"{r.platform.repeats} repeats, {len(r.pf.tries)} requests seen; restart {r.restart_s:.1f} s"
    )


async def test_the_queues_drain_after_the_receivers_and_the_database_come_back(run: Run) -> None:
    print(_report(run))
    assert run.db_unavailable > 0  # the restart did cut the senders off
    assert _in_pause(run, run.gw) + _in_pause(run, run.pf) > 0  # answers came, unrecordable
    assert run.drain_s is not None and run.drain_s < DRAIN_BOUND_S, _report(run)
    assert run.state is not None
    assert run.state.sms == {"sent": len(run.sms_ids)}, _report(run)  # none failed, none left
    assert run.state.unbatched == 0 and set(run.state.batches) == {"delivered"}, _report(run)


async def test_every_message_reached_its_phone_exactly_once(run: Run) -> None:
    assert len(run.sms_ids) == 3 * SMS_PER_PHASE
    wanted = {f"cylwatch-sms-{i}" for i in run.sms_ids}
    assert set(run.gateway.delivered) == wanted, _report(run)
    assert set(run.gateway.delivered.values()) == {1}, _report(run)  # texted once each
    # what the database holds as sent is what the gateway took
    provider = {f"cylwatch-sms-{r['id']}": r["provider_message_id"] for r in run.sms_rows}
    assert provider == run.gateway.provider_ids
    assert run.gateway.bad_signatures == 0


async def test_every_change_reached_the_platform_exactly_once(run: Run) -> None:
    assert len(run.change_ids) == 3 * SMS_PER_PHASE  # one cylinder created per transaction
    assert set(run.platform.stored) == set(run.change_ids), _report(run)
    assert set(run.platform.stored_count.values()) == {1}, _report(run)
    assert run.platform.batch_changed == []  # a batch sent again is the same batch
    assert run.platform.unauthorized == 0


async def test_retries_back_off_as_configured(run: Run) -> None:
    low, high = BACKOFF["backoff_min_s"], BACKOFF["backoff_max_s"]
    poll = BACKOFF["poll_interval_s"]
    for host in (run.gw, run.pf):
        breaches = backoff_breaches(host.tries, low, high, TIMEOUT_S, poll, run.calm)
        assert breaches == [], breaches[:10]
    # the back-off was exercised: in maintenance each message was tried more than once
    maintenance = [t for t in run.gw.tries if t.status == 503]
    assert max(t.attempt or 0 for t in maintenance) >= 3
