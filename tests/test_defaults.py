"""Defaults and secrets (docs/SECURITY.md "Defaults and secrets", "Privacy").

- the demo city (published passwords) goes only into a database marked as the demo, or a
  fresh one with ``--demo``; a database with users of its own is refused;
- a real install's first start has no default password: on a terminal the admin's is asked
  for, unattended the server refuses in one line naming the command that makes one;
- passwords never come from argv; CLI password changes and user creation are audited;
- credentials work in every service URL and never show in what is printed;
- the ID-number hash key lives in a file outside the database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
import pytest

from server.db.install import load_id_hash_key, mark_demo
from server.kernel.services import redact
from server.kernel.settings import ConfigError
from tests.conftest import ADMIN_DSN

NEW_PASSWORD = "a-long-new-password-7"


@pytest.fixture
async def scratch(
    settings: Any, fresh_databases: Any
) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A fresh migrated database of its own (no users, not a demo)."""
    from server.db.pool import connect

    name = f"cylwatch_test_defaults_{secrets.token_hex(4)}"
    dsn = await fresh_databases.create(name)
    conn = await connect(settings, dsn)  # with the server's JSON codecs
    try:
        yield dsn, conn
    finally:
        await conn.close()
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _on(settings: Any, dsn: str) -> Any:
    services = msgspec.structs.replace(settings.services, database_url=dsn)
    return msgspec.structs.replace(settings, services=services)


def _parse(argv: list[str]) -> argparse.Namespace:
    from server.cli import build_parser

    return build_parser().parse_args(argv)


# --- the demo city stays out of real installs ------------------------------------------------


async def test_seed_refuses_a_database_with_users_of_its_own(
    settings: Any, scratch: tuple[str, asyncpg.Connection], capsys: Any
) -> None:
    dsn, conn = scratch
    await conn.execute(
        "INSERT INTO users (username, password_hash, role) VALUES ('ops', 'x', 'admin')"
    )
    args = _parse(["seed", "--demo", "--cylinders", "20", "--database-url", dsn])
    assert await args.func(args, settings) == 1
    assert "not a demo" in capsys.readouterr().err
    assert await conn.fetchval("SELECT count(*) FROM cylinders") == 0
    assert await conn.fetchval("SELECT count(*) FROM users") == 1
    assert await conn.fetchval("SELECT count(*) FROM install_settings") == 0


# --- passwords: not in argv, asked, or from a file; CLI changes audited --------------------


def test_password_is_not_accepted_in_argv() -> None:
    with pytest.raises(SystemExit):
        _parse(["user", "passwd", "someone", "--password", NEW_PASSWORD])
    with pytest.raises(SystemExit):
        _parse(["user", "add", "someone", "--role", "admin", "--password", NEW_PASSWORD])


async def test_cli_user_creation_and_password_change_are_audited(
    settings: Any, scratch: tuple[str, asyncpg.Connection], tmp_path: Path, monkeypatch: Any
) -> None:
    dsn, conn = scratch
    on = _on(settings, dsn)
    secret = tmp_path / "pw"
    secret.write_text(NEW_PASSWORD + "\n")
    args = _parse(["user", "add", "ops", "--role", "admin", "--password-file", str(secret)])
    assert await args.func(args, on) == 0
    uid = await conn.fetchval("SELECT id FROM users WHERE username = 'ops'")
    # a password piped on standard input (no terminal) is the other unattended way
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password-8\n"))
    monkeypatch.setattr("server.commands._end_all_sessions", _no_sessions)
    args = _parse(["user", "passwd", "ops"])
    assert await args.func(args, on) == 0
    rows = await conn.fetch(
        "SELECT username, action, entity_id, details FROM audit_log ORDER BY id"
    )
    assert [(r["username"], r["action"], r["entity_id"]) for r in rows] == [
        ("cli", "user.create", str(uid)),
        ("cli", "user.password", str(uid)),
    ]
    assert all(r["details"]["username"] == "ops" and r["details"]["os_user"] for r in rows)
    assert NEW_PASSWORD not in str([dict(r) for r in rows])


async def _no_sessions(settings: Any, user_id: int) -> int:
    return 0


async def test_a_short_password_file_is_refused(
    settings: Any, scratch: tuple[str, asyncpg.Connection], tmp_path: Path
) -> None:
    dsn, conn = scratch
    secret = tmp_path / "pw"
    secret.write_text("short\n")
    args = _parse(["user", "add", "ops", "--role", "admin", "--password-file", str(secret)])
    with pytest.raises(SystemExit, match="at least"):
        await args.func(args, _on(settings, dsn))
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


# --- first start of a real install -----------------------------------------------------------


async def test_first_start_without_a_terminal_refuses_in_one_line(
    settings: Any, scratch: tuple[str, asyncpg.Connection], monkeypatch: Any
) -> None:
    from server.commands import _first_admin

    _, conn = scratch
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SystemExit) as caught:
        await _first_admin(settings, conn)
    message = str(caught.value.code)
    assert "\n" not in message
    assert "cylwatch user add admin --role admin" in message
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_first_start_on_a_terminal_asks_for_the_admin_password(
    settings: Any, scratch: tuple[str, asyncpg.Connection], monkeypatch: Any
) -> None:
    from server.commands import _first_admin
    from server.kernel.passwords import verify_password

    _, conn = scratch

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)
    await _first_admin(settings, conn)
    row = await conn.fetchrow("SELECT * FROM users")
    assert row["username"] == "admin" and row["role"] == "admin"
    assert verify_password(settings.auth, row["password_hash"], NEW_PASSWORD)
    assert await conn.fetchval("SELECT action FROM audit_log") == "user.create"
    await _first_admin(settings, conn)  # an administrator exists: nothing asked, nothing added
    assert await conn.fetchval("SELECT count(*) FROM users") == 1


# --- credentials in service URLs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/cyl", "postgresql://app:***@db:5432/cyl"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://worker:s3cret@cache:6379/0", "redis://worker:***@cache:6379/0"),
        ("mqtts://dev:s3@cret@broker:8883", "mqtts://dev:***@broker:8883"),
        (
            "postgresql://db/cyl?user=app&password=s3cret",
            "postgresql://db/cyl?user=app&password=***",
        ),
        (
            "postgresql://postgres@127.0.0.1:9/cylwatch",
            "postgresql://postgres@127.0.0.1:9/cylwatch",
        ),
    ],
)
def test_redact_hides_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown


async def test_postgresql_credentials_in_the_url(settings: Any, database: str) -> None:
    from server.db.pool import connect, create_pool

    role = f"cylwatch_test_pw_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'p@ss:word'")
        parts = urlsplit(database)
        dsn = parts._replace(netloc=f"{role}:p%40ss%3Aword@{parts.hostname}:{parts.port}").geturl()
        conn = await connect(settings, dsn)
        assert await conn.fetchval("SELECT current_user") == role
        await conn.close()
        pool = await create_pool(settings, dsn=dsn, min_size=1, max_size=1)
        assert await pool.fetchval("SELECT current_user") == role
        await pool.close()
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_redis_credentials_in_the_url(settings: Any) -> None:
    from redis.asyncio import Redis

    from server.app import connect_redis

    user, password = f"cylwatch-test-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    base = urlsplit(settings.services.redis_url)
    root: Redis = Redis.from_url(settings.services.redis_url)
    await root.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "+@all")
    try:

        def with_login(pw: str) -> Any:
            url = base._replace(netloc=f"{user}:{pw}@{base.hostname}:{base.port}").geturl()
            services = msgspec.structs.replace(settings.services, redis_url=url)
            return msgspec.structs.replace(settings, services=services)

        client = await connect_redis(with_login(password))
        assert await client.acl_whoami() in (user, user.encode())
        await client.aclose()
        with pytest.raises(ConfigError) as caught:
            await connect_redis(with_login("wrong-" + password))
        assert "refused the login" in str(caught.value) and "wrong-" not in str(caught.value)
    finally:
        await root.execute_command("ACL", "DELUSER", user)
        await root.aclose()


async def test_a_burst_past_the_redis_pool_waits_instead_of_failing(settings: Any) -> None:
    """Twenty requests holding a Redis connection each at once, with room for two: every
    one is answered (they queue for a connection) — redis-py's own pool raised "Too many
    connections" past its limit, which refused dashboards' websockets in a reconnect burst."""
    from server.app import connect_redis

    services = msgspec.structs.replace(settings.services, redis_pool_max=2)
    client = await connect_redis(msgspec.structs.replace(settings, services=services))
    key = f"cylwatch-test-empty-{secrets.token_hex(4)}"
    try:
        # each BLPOP holds its connection 0.2 s: ten rounds of two, well inside the timeout
        answers = await asyncio.gather(*(client.blpop([key], timeout=0.2) for _ in range(20)))
        assert answers == [None] * 20
    finally:
        await client.aclose()


# --- the ID-number hash key lives outside the database ------------------------------------


async def test_a_real_install_without_the_key_file_is_refused(
    settings: Any, scratch: tuple[str, asyncpg.Connection], tmp_path: Path
) -> None:
    _, conn = scratch
    privacy = msgspec.structs.replace(settings.privacy, id_hash_key_file=str(tmp_path / "k"))
    with pytest.raises(ConfigError) as caught:
        await load_id_hash_key(privacy, conn, {})
    assert "privacy.id_hash_key_file" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "k").exists()


async def test_the_key_comes_from_the_environment_then_the_file(
    settings: Any, scratch: tuple[str, asyncpg.Connection], tmp_path: Path
) -> None:
    _, conn = scratch
    path = tmp_path / "k"
    privacy = msgspec.structs.replace(settings.privacy, id_hash_key_file=str(path))
    assert await load_id_hash_key(privacy, conn, {"CYL_ID_HASH_KEY": "from-env"}) == b"from-env"
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="fewer than 32"):
        await load_id_hash_key(privacy, conn, {})
    key = secrets.token_bytes(32)
    path.write_bytes(key)
    assert await load_id_hash_key(privacy, conn, {}) == key
    assert await conn.fetchval("SELECT count(*) FROM install_secrets") == 0


async def test_a_demo_gets_a_key_file_and_an_old_key_leaves_the_database(
    settings: Any, scratch: tuple[str, asyncpg.Connection], tmp_path: Path
) -> None:
    _, conn = scratch
    old = secrets.token_bytes(32)
    await conn.execute("INSERT INTO install_secrets (name, value) VALUES ('id_hash_key', $1)", old)
    moved = msgspec.structs.replace(settings.privacy, id_hash_key_file=str(tmp_path / "old.key"))
    assert await load_id_hash_key(moved, conn, {}) == old  # the same hashes as before
    assert (tmp_path / "old.key").read_bytes() == old
    assert await conn.fetchval("SELECT count(*) FROM install_secrets") == 0
    await mark_demo(conn)
    demo = msgspec.structs.replace(settings.privacy, id_hash_key_file=str(tmp_path / "d/new.key"))
    key = await load_id_hash_key(demo, conn, {})
    path = tmp_path / "d" / "new.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert await load_id_hash_key(demo, conn, {}) == key  # read, not made again
