"""The senders run inside a server process (docs/OUTBOUND.md "Operations"): the app writes
the upload switch at start-up, delivers what is queued, shows its counters on ``/metrics``
and stops its senders at shutdown. The receivers are the fakes of ``tests.outbound.fakes``
(no real gateway or platform can run here), here told never to fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from server.app import create_app
from server.kernel.settings import Settings
from server.outbound.sms import enqueue_sms
from tests.conftest import World
from tests.outbound.fakes import FakeGateway, FakePlatform, wait_until
from tests.outbound.test_sms import sms_rules
from tests.outbound.test_upstream import clear, new_cylinder, upstream_rules


@pytest.fixture
async def clean(pool: asyncpg.Pool) -> AsyncIterator[None]:
    await pool.execute("DELETE FROM sms_outbox")
    await clear(pool)
    yield
    await pool.execute("UPDATE outbound_switch SET enabled = false")
    await pool.execute("DELETE FROM sms_outbox")
    await clear(pool)


async def test_a_server_process_runs_both_senders(
    aiohttp_server: Any,
    aiohttp_client: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    world: World,
    clean: None,
) -> None:
    gateway = FakeGateway(seed=1310, hang_s=0, p_error=0, p_hang=0, p_garbage=0)
    platform = FakePlatform(seed=1311, hang_s=0, p_error=0, p_hang=0)
    gw = await aiohttp_server(gateway.app())
    pf = await aiohttp_server(platform.app())
    sms = sms_rules(settings, str(gw.make_url("/send")))
    upstream = upstream_rules(settings, str(pf.make_url("/upload")))
    app = create_app(msgspec.structs.replace(settings, sms=sms, upstream=upstream))
    client = await aiohttp_client(app)
    assert await pool.fetchval("SELECT enabled FROM outbound_switch WHERE name = 'upstream'")

    async with pool.acquire() as conn, conn.transaction():
        await new_cylinder(conn, world)
        await enqueue_sms(
            conn, sms, phone="13600000000", kind="notice", params={"name": "王五", "title": "t"},
            key="service:1",
        )  # fmt: skip

    async def delivered() -> bool:  # recorded as such, not only received
        return bool(
            await pool.fetchval(
                """SELECT (SELECT count(*) FROM sms_outbox WHERE state = 'sent')
                        + (SELECT count(*) FROM upstream_batches WHERE state = 'delivered')"""
            )
            == 2
        )

    await wait_until(delivered, 30)
    assert len(gateway.delivered) == 1 and len(platform.stored) == 1
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert "cylwatch_sms_sent_total 1" in text
    assert "cylwatch_upstream_batches_delivered_total 1" in text
    await client.close()  # shutdown cancels the senders before the pool closes
    running = {t.get_name() for t in asyncio.all_tasks() if not t.done()}
    assert not running & {"sms-sender", "upstream-sender"}
