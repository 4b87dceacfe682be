"""Zero loss (docs/ARCHITECTURE.md §10): a QoS 1 message accepted by the broker is stored exactly once even
if the worker is killed (kill -9), the broker restarts, or PostgreSQL restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.ingest.conftest import (
    INSIDE,
    ROOT,
    Env,
    count,
    eventually,
    mid,
    now_ms,
    publish,
    running_worker,
)

N = 3000
TRANSPORTS = ["aiomqtt", "gmqtt"]


def positions(n: int, vehicle: str = "VEH-A1") -> tuple[list[tuple[str, Any]], list[str]]:
    t = now_ms()
    ids = [mid() for _ in range(n)]
    msgs = [
        (
            f"cyl/v1/vehicle/{vehicle}/position",
            {"msg_id": i, "ts": t + k, "lat": INSIDE[0], "lon": INSIDE[1]},
        )
        for k, i in enumerate(ids)
    ]
    return msgs, ids


async def stored(env: Env, ids: list[str]) -> int:
    return await count(env.pool, "SELECT count(*) FROM positions WHERE msg_id = ANY($1)", ids)


async def all_stored(env: Env, ids: list[str], within: float = 60) -> None:
    async def done() -> bool:
        return await stored(env, ids) >= len(ids)

    await eventually(done, within, 0.2)
    await asyncio.sleep(1.0)  # late duplicates would show up now
    assert await stored(env, ids) == len(ids)


def worker_process(supervisor: int) -> psutil.Process:
    """The supervisor's worker child (not multiprocessing's resource tracker)."""
    workers = [
        c
        for c in psutil.Process(supervisor).children()
        if "resource_tracker" not in " ".join(c.cmdline())
    ]
    assert len(workers) == 1, workers
    return workers[0]


def _wait_log(path: Path, text: str, timeout: float, occurrences: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(errors="replace").count(text) >= occurrences:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"{text!r} not seen in the log:\n{path.read_text(errors='replace')[-3000:]}"
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_kill_9_of_a_worker_process_loses_nothing(
    env: Env, tmp_path: Path, transport: str
) -> None:
    """`cylwatch ingest` supervises its worker: kill -9 mid-stream, it comes back, resumes its
    broker session, and every message is stored exactly once."""
    log = tmp_path / "ingest.log"
    environ = {**env.env, "PYTHONPATH": str(ROOT), "CYL_INGEST__TRANSPORT": transport}
    with log.open("wb") as out:
        sup = subprocess.Popen(  # noqa: ASYNC220 - returns at once; psutil needs the pid
            [sys.executable, "-m", "server.cli", "ingest", "--workers", "1"],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await asyncio.to_thread(_wait_log, log, "subscribed to", 30)
        msgs, ids = positions(N)
        await publish(env.mqtt_url, msgs[: N // 3])
        await eventually(lambda: stored(env, ids), 20, 0.05)  # it is writing
        victim = worker_process(sup.pid)
        publisher = asyncio.create_task(publish(env.mqtt_url, msgs[N // 3 :]))
        await asyncio.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        await publisher
        assert await stored(env, ids) < N  # the kill did land mid-stream
        await asyncio.to_thread(_wait_log, log, "restarting", 10)
        await asyncio.to_thread(_wait_log, log, "subscribed to", 30, 2)
        await all_stored(env, ids)
        assert worker_process(sup.pid).pid != victim.pid
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(30)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(sup.pid).children(recursive=True):
                child.kill()
            sup.kill()
            sup.wait(5)
    assert sup.returncode == 0, log.read_text()[-3000:]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_broker_restart_loses_nothing(env: Env, transport: str) -> None:
    """Messages queued in the broker (persistence on) while the worker had them unacked are
    redelivered after the broker comes back; the worker reconnects on its own."""
    msgs, ids = positions(N)
    settings = env.with_mqtt(env.mqtt_url, transport=transport)
    async with running_worker(settings, env.pool) as worker:
        await publish(env.mqtt_url, msgs[: N // 2])
        env.broker.stop(signal.SIGTERM)  # mid-stream: some batches unacked
        await asyncio.sleep(1.0)
        env.broker.start()
        await eventually(lambda: asyncio.sleep(0, worker.metrics.connected), 20)
        await publish(env.mqtt_url, msgs[N // 2 :])
        await all_stored(env, ids)
        assert worker.metrics.reconnects >= 2


@pytest.mark.slow
async def test_a_postgresql_restart_loses_nothing(env: Env) -> None:
    """The machine's shared PostgreSQL is restarted for a moment: the worker holds its batch
    unacknowledged, retries with backoff, and stores everything once it is back."""
    msgs, ids = positions(N)
    async with running_worker(env.settings, env.pool) as worker:
        await publish(env.mqtt_url, msgs[: N // 3])
        restart = await asyncio.create_subprocess_exec(
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            "15",
            "main",
            "restart",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        await publish(env.mqtt_url, msgs[N // 3 : 2 * N // 3])
        _, err = await restart.communicate()
        assert restart.returncode == 0, err.decode()
        await publish(env.mqtt_url, msgs[2 * N // 3 :])
        await all_stored(env, ids, within=90)
        assert worker.metrics.db_retries >= 1
