"""Fixtures of the bad-input tests: the real `cylwatch serve` on a database of its own.

Why a separate process: schemathesis speaks plain blocking HTTP from the test's thread, and
a server that runs in that thread's event loop would never answer it. The process is the
same command an operator starts (docs/DEPLOY.md), with Redis and the login cost of
``tests/conftest.py``; its log is kept so a 500's error id can be looked up.

Why a database of its own: the fuzzer writes as every role — it suspends cylinders, re-dates
them, entrusts one company's cylinders to another, locks logins — and the session's `world`
is what the other tests build on; a CI run failed when a later test found company B entrusted
to A. So the fuzzer gets the same small city (``tests.conftest.build_world``) in a database
and a Redis number of its own, dropped at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.conftest import ADMIN_DSN, PASSWORD, ROLE_USERS, build_world

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
"""How long `cylwatch serve` may take to answer /healthz (imports and migrations check)."""
SERVE = (sys.executable, "-m", "server.cli", "serve", "--no-ingest")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `cylwatch serve`: its base URL, bearer headers per user, its log file."""

    url: str
    log: Path
    headers: dict[str, dict[str, str]]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _login(url: str, username: str) -> dict[str, str]:
    import orjson

    req = urllib.request.Request(
        f"{url}/api/v1/auth/login",
        data=orjson.dumps({"username": username, "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = orjson.loads(resp.read())["token"]
    return {"Authorization": f"Bearer {token}"}


FUZZ_REDIS_DB = 14
"""The fuzzed server's Redis database number: the session's is 15 (``tests/conftest.py``),
and login limits and sessions the fuzzer leaves must not reach the other tests."""


@pytest.fixture(scope="session")
async def fuzz_database(
    settings: Any, test_db_name: str, fresh_databases: Any
) -> AsyncIterator[str]:
    """A migrated database holding `world`'s city, for the fuzzed server alone."""
    from server.db.pool import create_pool

    name = f"{test_db_name}_fuzz"
    dsn = await fresh_databases.create(name)
    pool = await create_pool(settings, dsn=dsn, min_size=1, max_size=2)
    try:
        await build_world(pool, settings)
    finally:
        await pool.close()
    yield dsn
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def api_server(
    settings: Any, fuzz_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    redis_url = urlsplit(settings.services.redis_url)._replace(path=f"/{FUZZ_REDIS_DB}").geturl()
    env = dict(os.environ)
    env.update(
        {
            "CYL_DATABASE_URL": fuzz_database,
            "CYL_REDIS_URL": redis_url,
            "CYL_MQTT_URL": settings.services.mqtt_url,
            "CYL_PRIVACY__ID_HASH_KEY_FILE": settings.privacy.id_hash_key_file,
            "CYL_AUTH__SECURE_COOKIES": "false",
            "CYL_AUTH__ARGON2_TIME_COST": "1",
            "CYL_AUTH__ARGON2_MEMORY_KIB": "1024",
            "CYL_UPLOADS__DIR": settings.uploads.dir,
            "PYTHONPATH": str(ROOT),
        }
    )
    port = _free_port()
    log = tmp_path_factory.mktemp("fuzz-serve") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"serve did not start: {log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.1)
        headers = {name: _login(url, name) for name in ROLE_USERS}
        yield Server(url, log, headers)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
