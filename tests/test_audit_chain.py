"""The audit log is tamper-evident: a hash chain built by the database, `cylwatch audit verify`
names the first broken row, TRUNCATE is refused like UPDATE and DELETE.

Tampering needs a superuser that lifts the append-only trigger, so it happens in a private
database of its own, never in the session's.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.db.audit_chain import verify_chain
from server.db.pool import init_connection
from server.kernel.audit import audit
from server.kernel.principal import Principal
from tests.conftest import ADMIN_DSN

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Principal(user_id=1, username="t_admin", role="admin")


@pytest.fixture
async def private_db(fresh_databases: Any) -> AsyncIterator[str]:
    name = f"cylwatch_test_audit_{secrets.token_hex(3)}"
    dsn = await fresh_databases.create(name)
    yield dsn
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def _write(conn: asyncpg.Connection, n: int) -> list[int]:
    for i in range(n):
        await audit(conn, ADMIN, "test.write", "thing", i, {"n": i, "名": "值"}, "127.0.0.1")
    return [r["id"] for r in await conn.fetch("SELECT id FROM audit_log ORDER BY id")]


async def _forge(conn: asyncpg.Connection, sql: str, *args: Any) -> None:
    """What an attacker with the database owner's rights could do behind the platform's back."""
    await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def test_each_row_carries_the_hash_of_the_one_before(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await _write(conn, 3)
        rows = await conn.fetch("SELECT id, prev_hash, hash FROM audit_log ORDER BY id")
        report = await verify_chain(conn)
    assert report.intact, report
    assert report.rows == len(rows) >= 3
    for before, row in itertools.pairwise(rows):
        assert row["prev_hash"] == before["hash"]
        assert len(row["hash"]) == 32


async def test_concurrent_writers_keep_one_chain(pool: asyncpg.Pool) -> None:
    """Writers from many connections at once still form a single chain in id order."""
    await asyncio.gather(
        *(audit(pool, ADMIN, "test.parallel", "thing", i, {"i": i}) for i in range(40))
    )
    async with pool.acquire() as conn:
        report = await verify_chain(conn)
    assert report.intact, report


async def test_a_changed_row_is_named_and_restoring_it_heals_the_chain(private_db: str) -> None:
    conn = await asyncpg.connect(private_db)
    await init_connection(conn)
    try:
        ids = await _write(conn, 5)
        assert (await verify_chain(conn)).intact
        original = await conn.fetchval("SELECT details FROM audit_log WHERE id = $1", ids[2])
        await _forge(conn, "UPDATE audit_log SET details = '{\"n\": 99}' WHERE id = $1", ids[2])
        report = await verify_chain(conn)
        assert (report.first_broken_id, report.broken_link) == (ids[2], "hash")
        await _forge(conn, "UPDATE audit_log SET details = $2 WHERE id = $1", ids[2], original)
        assert (await verify_chain(conn)).intact
    finally:
        await conn.close()


async def test_a_removed_row_breaks_the_link_of_the_next(private_db: str) -> None:
    conn = await asyncpg.connect(private_db)
    await init_connection(conn)
    try:
        ids = await _write(conn, 5)
        await _forge(conn, "DELETE FROM audit_log WHERE id = $1", ids[1])
        report = await verify_chain(conn)
        assert (report.first_broken_id, report.broken_link) == (ids[2], "prev_hash")
    finally:
        await conn.close()


async def test_truncate_update_and_delete_are_refused(private_db: str) -> None:
    conn = await asyncpg.connect(private_db)
    await init_connection(conn)
    try:
        ids = await _write(conn, 2)
        for sql in (
            "TRUNCATE audit_log",
            f"DELETE FROM audit_log WHERE id = {ids[0]}",
            f"UPDATE audit_log SET action = 'forged' WHERE id = {ids[0]}",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 2
    finally:
        await conn.close()


def _cli_verify(dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CYL_DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "audit", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_verify_exit_code_and_message(private_db: str) -> None:
    conn = await asyncpg.connect(private_db)
    await init_connection(conn)
    try:
        ids = await _write(conn, 4)
        ok = await asyncio.to_thread(_cli_verify, private_db)
        assert ok.returncode == 0, ok.stderr
        assert "intact: 4 rows" in ok.stdout
        await _forge(conn, "UPDATE audit_log SET username = 'someone' WHERE id = $1", ids[3])
        bad = await asyncio.to_thread(_cli_verify, private_db)
        assert bad.returncode == 1
        assert f"BROKEN at row {ids[3]}" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        await conn.close()
