"""deploy/backup: a city is backed up, lost, restored — and nothing in it changed.

End to end against the real PostgreSQL, on a scratch database of its own: `cylwatch seed
--demo` builds a small city (cylinders, a month of fills), `cylwatch user add` writes audit
rows, two files are uploaded through the uploads kernel; then `cylwatch-backup`, the database
dropped and the uploads dir deleted, `cylwatch-restore`. The archive, the fills, the audit
log and the uploads must come back row for row (count and a checksum of the ordered rows),
the files byte for byte, and `cylwatch audit verify` must pass on the restored database.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from PIL import Image

from tests.conftest import ADMIN_DSN

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "backup"
BACKUP = DEPLOY / "cylwatch-backup"
RESTORE = DEPLOY / "cylwatch-restore"

TABLES = {
    # table: the order that makes its checksum deterministic
    "cylinders": "id",
    "fills": "ts, msg_id",
    "audit_log": "id",
    "uploads": "id",
    "users": "id",
}


def _run(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
async def scratch(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A scratch database name, its environment for the CLI and the scripts; dropped after."""
    name = f"cylwatch_deploytest_{os.getpid()}_{secrets.token_hex(3)}"
    url = urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()
    key = tmp_path / "id_hash.key"
    key.write_bytes(secrets.token_bytes(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYL_")}
    env.update(
        {
            "CYL_DATABASE_URL": url,
            "CYL_UPLOADS__DIR": str(tmp_path / "uploads"),
            "CYL_PRIVACY__ID_HASH_KEY_FILE": str(key),
            "CYLWATCH_RESTORE_ADMIN_URL": ADMIN_DSN,
        }
    )
    yield {"name": name, "url": url, "env": env, "tmp": tmp_path}
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Each table's row count and the MD5 of its rows in order."""
    conn = await asyncpg.connect(url)
    try:
        out = {}
        for table, order in TABLES.items():
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), ''))"
                f" AS sum FROM {table} t"
            )
            out[table] = (int(row["n"]), str(row["sum"]))
        return out
    finally:
        await conn.close()


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


async def _upload_two_files(env: dict[str, str]) -> None:
    """A photo and a PDF, through the uploads kernel (file on disk, row in the database)."""
    from server.kernel.settings import load_settings
    from server.kernel.uploads import store

    settings = load_settings(environ=env)
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(png, "PNG")
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    conn = await asyncpg.connect(env["CYL_DATABASE_URL"])
    try:
        for data, purpose in ((png.getvalue(), "complaint_photo"), (pdf, "notice_attachment")):
            await store(conn, settings.uploads, data, purpose=purpose, filename=f"{purpose}.bin")
    finally:
        await conn.close()


@pytest.mark.slow
async def test_backup_then_restore_gives_back_the_same_city(scratch: dict[str, Any]) -> None:
    env, tmp = scratch["env"], scratch["tmp"]
    seeded = await asyncio.to_thread(
        _run,
        [
            "cylwatch", "seed", "--demo", "--cylinders", "300", "--companies", "2",
            "--stations", "2", "--stores", "2", "--customers", "30", "--vehicles", "2",
            "--history-months", "1",
        ],
        env,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    password = tmp / "pw"
    password.write_text("restore-drill-42\n")
    for name in ("ops-a", "ops-b"):  # audit rows (user.create) through the real command
        added = await asyncio.to_thread(
            _run,
            [
                "cylwatch",
                "user",
                "add",
                name,
                "--role",
                "regulator",
                "--password-file",
                str(password),
            ],
            env,
        )
        assert added.returncode == 0, added.stderr
    await _upload_two_files(env)
    before = await _snapshot(scratch["url"])
    assert before["cylinders"][0] == 300
    assert before["fills"][0] > 0 and before["audit_log"][0] >= 2 and before["uploads"][0] == 2
    files_before = _files(tmp / "uploads")
    assert len(files_before) == 2

    backups = tmp / "backups"
    for _ in range(2):  # two runs with --keep 1: the older backup is pruned
        made = await asyncio.to_thread(
            _run, [sys.executable, str(BACKUP), "--dir", str(backups), "--keep", "1"], env
        )
        assert made.returncode == 0, made.stderr
        await asyncio.sleep(1.1)  # backups are named by the second
    kept = sorted(backups.iterdir())
    assert len(kept) == 1, kept
    backup = kept[0]
    assert {p.name for p in backup.iterdir()} == {
        "database.dump",
        "uploads.tar",
        "MANIFEST.json",
        "SHA256SUMS",
    }
    manifest = json.loads((backup / "MANIFEST.json").read_text())
    assert manifest["database"] == scratch["name"] and manifest["upload_files"] == 2

    # without --yes nothing is touched
    refused = await asyncio.to_thread(_run, [sys.executable, str(RESTORE), str(backup)], env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert await _snapshot(scratch["url"]) == before

    # the disaster: the database and the uploaded files are gone
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE "{scratch["name"]}" WITH (FORCE)')
    finally:
        await conn.close()
    for path in sorted((tmp / "uploads").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()

    (tmp / "uploads" / "stray.txt").write_text("written after the disaster")

    restored = await asyncio.to_thread(
        _run, [sys.executable, str(RESTORE), str(backup), "--yes"], env
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "audit log intact" in restored.stdout
    assert await _snapshot(scratch["url"]) == before
    assert _files(tmp / "uploads") == files_before
    (aside,) = (tmp / "uploads").glob(".before-restore-*")  # what was there is kept aside
    assert [p.name for p in aside.iterdir()] == ["stray.txt"]
    conn = await asyncpg.connect(scratch["url"])
    try:  # the server's role got its privileges back with the rows (docs/SECURITY.md)
        privileges = await conn.fetchrow(
            "SELECT has_table_privilege('cylwatch_app', 'cylinders', 'UPDATE') AS rows,"
            " has_table_privilege('cylwatch_app', 'audit_log', 'INSERT') AS audit_insert,"
            " has_table_privilege('cylwatch_app', 'audit_log', 'UPDATE') AS audit_update"
        )
    finally:
        await conn.close()
    assert dict(privileges) == {"rows": True, "audit_insert": True, "audit_update": False}

    verified = await asyncio.to_thread(_run, ["cylwatch", "audit", "verify"], env)
    assert verified.returncode == 0, verified.stderr
    assert f"{before['audit_log'][0]} rows" in verified.stdout


async def test_a_damaged_backup_is_refused_before_anything_is_dropped(
    scratch: dict[str, Any],
) -> None:
    env, tmp = scratch["env"], scratch["tmp"]
    migrated = await asyncio.to_thread(_run, ["cylwatch", "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    backups = tmp / "backups"
    made = await asyncio.to_thread(_run, [sys.executable, str(BACKUP), "--dir", str(backups)], env)
    assert made.returncode == 0, made.stderr
    (backup,) = backups.iterdir()
    dump = backup / "database.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    refused = await asyncio.to_thread(
        _run, [sys.executable, str(RESTORE), str(backup), "--yes"], env
    )
    assert refused.returncode == 2
    assert "database.dump is missing or damaged" in refused.stderr
    conn = await asyncpg.connect(scratch["url"])  # still there
    await conn.close()
