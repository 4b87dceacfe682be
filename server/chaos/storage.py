"""A full disk under ingest: the tables ingest writes to on a small filesystem, filled to the
last byte while the city publishes (docs/RELIABILITY.md "Chaos runs", issue 10 item 1).

The realistic shape of the fault is a data volume that runs out while the WAL's does not:
PostgreSQL then refuses each statement that needs a new page with SQLSTATE 53100
(``disk_full``: "could not extend file …: No space left on device") and stays up. (A full WAL
volume is another fault: the server stops with a PANIC, which the ``restart-db`` round
already covers from the clients' side.) So :func:`fill_tablespace`

1. mounts a tmpfs a little larger than the partitions ingest writes to now (this month's,
   the months either side and the default partition of ``telemetry``, ``positions``,
   ``events`` and ``fills``, their indexes included — ``server.chaos.checks.TABLE_OF_KIND``)
   and makes it a tablespace of the private cluster;
2. moves those partitions there (``ALTER TABLE/INDEX … SET TABLESPACE``, one object per
   statement so that no lock is held across two and ingest cannot deadlock with the move);
3. writes a filler file until the kernel says ``ENOSPC``;
4. holds the volume full for the fault's length, then deletes the filler, waits until rows
   arrive again and moves the partitions back, so nothing of the fault outlives its round.

The promise checked afterwards is the one of a database away (``ingest.replies.db_away``:
class 53, insufficient resources, holds the batch and retries it — it is not bad data): no
good message dead-lettered, every acknowledged one stored exactly once once space is back.

Mounting needs root (``mount -t tmpfs``); :func:`mount_problem` says why it is not possible
here so that a test can fail with that reason instead of passing without the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import asyncpg

from server.chaos.checks import TABLE_OF_KIND
from server.chaos.services import PG_ACCOUNT, PrivatePostgres

__all__ = ["DISK_FULL_TEXT", "SmallVolume", "fill_tablespace", "hot_partitions", "mount_problem"]

log = logging.getLogger(__name__)

TABLESPACE: Final = "chaos_small_volume"
MIB: Final = 1 << 20
HEADROOM_MIB: Final = 8
"""Room on the volume above the partitions moved onto it: the move copies each object before
dropping the old file, so the volume must hold them all plus one in transit; the filler then
takes whatever is left."""
FILL_CHUNK: Final = MIB
"""The filler is written in chunks of this size, then page by page when a chunk no longer fits."""
FILL_PAGE: Final = 4096
"""tmpfs allocates memory pages: the last bytes of a full volume are taken a page at a time."""
RESUME_TIMEOUT_S: Final = 60.0
"""How long after the space is freed the rows may take to flow again: longer than ingest's
longest retry pause as shipped (``[ingest] reconnect_max_s``, 30 s), reached after a long fault."""
RESUME_POLL_S: Final = 0.1
"""How often the row counts are read while waiting for ingest to store again: the resolution
of the measured recovery time."""
DISK_FULL_TEXT: Final = "No space left on device"
"""What PostgreSQL's log says for each statement the full volume refused (SQLSTATE 53100)."""
NEIGHBOUR_MONTHS: Final = 1
"""Months either side of now whose partitions move too: the partitions' bounds follow the
server's time zone, so a message stamped now may fall in the month next to the UTC one."""


def mount_problem() -> str | None:
    """Why a tmpfs cannot be mounted here (not root, mount refused), or None if it can: a
    1 MiB tmpfs is mounted and unmounted in a temp dir to find out."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (mount -t tmpfs); this process is not root"
    probe = Path(tempfile.mkdtemp(prefix="cylwatch-chaos-mount-"))
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            return f"mount -t tmpfs refused: {done.stderr.strip() or done.returncode}"
        subprocess.run(["umount", str(probe)], check=False, timeout=30)  # noqa: S603,S607
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"mount -t tmpfs failed: {exc}"
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


class SmallVolume:
    """A tmpfs of *size_mib* owned by the PostgreSQL account (a tablespace's directory must
    be), a filler file to make it full, and the ways to free it."""

    def __init__(self, mountpoint: Path, size_mib: int) -> None:
        self.mountpoint = mountpoint
        self.size_mib = size_mib
        self.filler = mountpoint / "filler"
        self.mounted = False

    def mount(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        account = pwd.getpwnam(PG_ACCOUNT)
        options = f"size={self.size_mib}m,uid={account.pw_uid},gid={account.pw_gid},mode=0700"
        subprocess.run(  # noqa: S603 - fixed arguments
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.mountpoint)],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.mounted = True

    def fill(self) -> int:
        """Write the filler until the volume refuses (ENOSPC); the bytes it took."""
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (b"\0" * FILL_CHUNK, b"\0" * FILL_PAGE):
                while True:
                    try:
                        n = os.write(fd, chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    written += n
                    if n < len(chunk):
                        break
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Delete the filler (what an operator removing old files would do)."""
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount, lazily if something still holds a file open (the cluster is removed
        afterwards, which closes it); never leaves a mount behind on purpose."""
        if not self.mounted:
            return
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["umount", str(self.mountpoint)],  # noqa: S607
            capture_output=True,
            check=False,
            timeout=30,
        )
        if done.returncode != 0:
            subprocess.run(  # noqa: S603 - fixed arguments
                ["umount", "-l", str(self.mountpoint)],  # noqa: S607
                capture_output=True,
                check=False,
                timeout=30,
            )
        self.mounted = False
        with contextlib.suppress(OSError):
            self.mountpoint.rmdir()


def _months_around(today: date) -> list[str]:
    months = []
    for shift in range(-NEIGHBOUR_MONTHS, NEIGHBOUR_MONTHS + 1):
        index = today.year * 12 + today.month - 1 + shift
        months.append(f"{index // 12:04d}{index % 12 + 1:02d}")
    return months


async def hot_partitions(conn: asyncpg.Connection) -> list[str]:
    """The partitions ingest writes to now (the tables of ``TABLE_OF_KIND``), those that
    exist: native partitions named ``<table>_p<YYYYMM>`` (migration 0001) and the default."""
    months = _months_around(datetime.now(UTC).date())
    names = [
        f"{table}_{suffix}"
        for table in sorted(set(TABLE_OF_KIND.values()))
        for suffix in [*(f"p{m}" for m in months), "default"]
    ]
    found: list[str] = await conn.fetchval(
        "SELECT coalesce(array_agg(n ORDER BY n), '{}') FROM unnest($1::text[]) AS n"
        " WHERE to_regclass(n) IS NOT NULL",
        names,
    )
    return list(found)


async def _move(conn: asyncpg.Connection, partitions: Sequence[str], tablespace: str) -> None:
    """Each partition and each of its indexes to *tablespace*, one statement each."""
    for part in partitions:
        await conn.execute(f'ALTER TABLE "{part}" SET TABLESPACE "{tablespace}"')
        indexes = await conn.fetch(
            "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass",
            part,
        )
        for index in indexes:
            await conn.execute(f'ALTER INDEX {index["name"]} SET TABLESPACE "{tablespace}"')


async def _rows(conn: asyncpg.Connection, partitions: Sequence[str]) -> int:
    total = 0
    for part in partitions:
        total += int(await conn.fetchval(f'SELECT count(*) FROM "{part}"'))
    return total


def _log_count(path: Path, text: str) -> int:
    try:
        return path.read_text(encoding="utf-8", errors="replace").count(text)
    except OSError:
        return 0


async def fill_tablespace(pg: PrivatePostgres, dsn: str, hold_s: float) -> str:
    """The fault (module docstring): returns once the volume was full *hold_s* seconds, was
    freed, ingest stored again and the partitions are back on the cluster's own disk; the
    note says what was measured."""
    problem = await asyncio.to_thread(mount_problem)
    if problem is not None:
        raise RuntimeError(f"disk-full: the fault cannot be made here: {problem}")
    conn = await asyncpg.connect(dsn)
    volume: SmallVolume | None = None
    moved: list[str] = []
    try:
        parts = await hot_partitions(conn)
        if not parts:
            raise RuntimeError("no native partitions of the ingest tables to move")
        size = int(
            await conn.fetchval(
                "SELECT sum(pg_total_relation_size(p::regclass)) FROM unnest($1::text[]) AS p",
                parts,
            )
        )
        volume = SmallVolume(pg.dir / "small-volume", math.ceil(size / MIB) + HEADROOM_MIB)
        await asyncio.to_thread(volume.mount)
        await conn.execute(f"CREATE TABLESPACE {TABLESPACE} LOCATION '{volume.mountpoint}'")
        moved = parts
        await _move(conn, parts, TABLESPACE)
        refusals_before = _log_count(pg.log, DISK_FULL_TEXT)
        filled = await asyncio.to_thread(volume.fill)
        rows_full = await _rows(conn, parts)
        await asyncio.sleep(hold_s)
        rows_held = await _rows(conn, parts)
        refusals = _log_count(pg.log, DISK_FULL_TEXT) - refusals_before
        await asyncio.to_thread(volume.free)
        freed_at = time.monotonic()
        resumed_s: float | None = None
        while time.monotonic() - freed_at < RESUME_TIMEOUT_S:
            if await _rows(conn, parts) > rows_held:
                resumed_s = time.monotonic() - freed_at
                break
            await asyncio.sleep(RESUME_POLL_S)
        await _move(conn, parts, "pg_default")
        moved = []
        await conn.execute(f"DROP TABLESPACE {TABLESPACE}")
    finally:
        if moved:  # the fault failed half-way: put the partitions back before unmounting
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                if volume is not None:
                    volume.free()
                await _move(conn, moved, "pg_default")
                await conn.execute(f"DROP TABLESPACE IF EXISTS {TABLESPACE}")
        await conn.close()
        if volume is not None:
            await asyncio.to_thread(volume.unmount)
    resumed = "never" if resumed_s is None else f"{resumed_s:.2f} s"
    return (
        f"{len(parts)} partitions ({size / MIB:.1f} MiB) on a {math.ceil(size / MIB) + HEADROOM_MIB}"
        " MiB tmpfs, "
        f"filled with {filled / MIB:.1f} MiB; {refusals} statements refused (53100) and "
        f"{rows_held - rows_full} rows stored in {hold_s:g} s full; storing again {resumed} "
        "after the filler was deleted"
    )
