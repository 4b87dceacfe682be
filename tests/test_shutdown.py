"""A stopping process does not hang on background work that will not stop (server/kernel/
tasks.py): a round that swallowed its cancellation, a database connection never handed back.
A test run once hung for good in an app's teardown; now such work is named in the log and
left behind after ``[services] shutdown_grace_s``."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest

from server.kernel.tasks import close_pool, stop_task


async def test_a_round_that_swallows_its_cancellation_is_left_behind_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # the bug this guards against: a cancellation caught and dropped

    task = asyncio.create_task(stubborn(), name="stubborn-round")
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="server.kernel.tasks"):
        await stop_task(task, 0.3)
    assert time.monotonic() - started < 2
    assert "stubborn-round" in caplog.text and "did not stop" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=2)


async def test_a_round_that_stops_is_awaited_and_its_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def polite() -> None:
        await asyncio.sleep(3600)

    task = asyncio.create_task(polite(), name="polite-round")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="server.kernel.tasks"):
        await stop_task(task, 5)
    assert task.cancelled() and caplog.text == ""


async def test_a_pool_with_a_connection_never_released_is_terminated(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    await pool.acquire()  # work that never hands its connection back
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="server.kernel.tasks"):
        await close_pool(pool, 0.5)
    assert time.monotonic() - started < 5
    assert "terminated" in caplog.text
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire()
