"""TimescaleDB installed but not preloaded: `cylwatch migrate` falls back to native partitions
with one log line instead of losing its connection (the extension's "must be preloaded"
error is FATAL). The shared test server preloads it and must not be restarted, so this runs
a private PostgreSQL cluster of its own from the same binaries (README "Storage")."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from server.db.migrate import migrate, server_preloads_timescaledb
from server.kernel.settings import ConfigError
from tests.storage.databases import with_storage

PG_ROOT = Path("/usr/lib/postgresql")  # one bin/ per installed major version (Debian)
SERVER_USER = "postgres"  # initdb refuses to run as root; the packaged server's account


def _with_timescaledb() -> Path | None:
    """The newest installed PostgreSQL whose extension directory holds timescaledb."""
    versions = sorted(PG_ROOT.glob("*/bin/pg_config"), key=lambda c: c.parts[-3].zfill(4))
    for pg_config in reversed(versions):
        out = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True, check=True)
        if (Path(out.stdout.strip()) / "extension" / "timescaledb.control").exists():
            return pg_config.parent
    return None


PG_BIN = _with_timescaledb()
if PG_BIN is None:
    pytest.skip(
        f"the timescaledb extension is not installed for any PostgreSQL under {PG_ROOT}"
        " (no timescaledb.control): there is no installed-but-not-preloaded case to test",
        allow_module_level=True,
    )


def _spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster: trust auth, localhost only, no fsync."""

    directory: Path
    port: int

    def run(self, *args: str) -> None:
        """One of the server's programs, as the server's account when the tests run as root."""
        assert PG_BIN is not None
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self, *, preload: bool) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.directory} -c fsync=off"
        )
        if preload:
            options += " -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
        self.run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-o",
            options,
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.directory / "data" / "postmaster.pid").exists()

    def dsn(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    directory = Path(tempfile.mkdtemp(prefix="cylwatch-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(directory, account.pw_uid, account.pw_gid)
    c = Cluster(directory, _spare_port())
    try:
        c.run(
            "initdb",
            "-D",
            str(directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        c.start(preload=False)
        yield c
    finally:
        if c.running():
            c.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def _preloaded_as(cluster: Cluster, user: str) -> bool:
    conn = await asyncpg.connect(cluster.dsn("postgres", user))
    try:
        return await server_preloads_timescaledb(conn)
    finally:
        await conn.close()


async def test_not_preloaded_falls_back_with_one_line(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = cluster.dsn("fallback")
    with caplog.at_level(logging.INFO, logger="server.db.migrate"):
        result = await migrate(with_storage(dsn, "auto"), dsn)
    assert not result.storage.hypertables
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1, warned
    assert "not in shared_preload_libraries" in warned[0]
    conn = await asyncpg.connect(dsn)
    try:
        assert not await conn.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
        )
        assert await conn.fetchval("SELECT count(*) FROM pg_partitioned_table") >= 5
    finally:
        await conn.close()


async def test_hypertables_are_refused_once_the_preload_is_gone(cluster: Cluster) -> None:
    """Writing to hypertables without the extension loaded would put rows in their parent
    tables, out of TimescaleDB's sight: migrate says so and stops."""
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute("CREATE ROLE cyl_owner LOGIN CREATEDB")
    finally:
        await admin.close()
    dsn = cluster.dsn("hyper")
    cluster.stop()
    cluster.start(preload=True)
    try:
        assert await _preloaded_as(cluster, "postgres")
        assert await _preloaded_as(cluster, "cyl_owner")  # may not SHOW the list: asks the loader
        result = await migrate(with_storage(dsn, "auto"), dsn)
        assert result.storage.hypertables, result.storage
    finally:
        cluster.stop()
        cluster.start(preload=False)
    assert not await _preloaded_as(cluster, "cyl_owner")
    with pytest.raises(ConfigError, match="shared_preload_libraries"):
        await migrate(with_storage(dsn, "auto"), dsn)
