"""What a database is, a demo city or a real install, and the install's secret kept outside it
(docs/SECURITY.md "Defaults and secrets", "Privacy").

The demo city's logins and passwords are published in the README. A database that holds
them is marked ``kind = demo`` in ``install_settings`` (migration 0072) by the seed that
wrote them; `cylwatch seed` refuses any other database, so those passwords cannot reach a
real install by a mistyped URL, and a real install is never handed a generated secret that
only a demo may have.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import asyncpg

from server.kernel.settings import CONFIG_DIR, ConfigError, Privacy

KIND = "kind"
DEMO = "demo"


class NotADemo(RuntimeError):
    """The database is a real install: the demo city (and its passwords) stay out of it."""

    def __init__(self) -> None:
        super().__init__(
            "this database is not a demo: it has users of its own, so the demo city and its"
            " published passwords are not written into it (seed a fresh database with --demo)"
        )


async def is_demo(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether the database is marked as the demo city's."""
    value = await conn.fetchval("SELECT value FROM install_settings WHERE name = $1", KIND)
    return bool(value == DEMO)


async def mark_demo(conn: asyncpg.Connection) -> None:
    """Mark the database as the demo city's (in the caller's transaction, with the seed)."""
    await conn.execute(
        "INSERT INTO install_settings (name, value) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, set_at = now()",
        KIND,
        DEMO,
    )


async def may_become_demo(conn: asyncpg.Connection) -> bool:
    """A database may take the demo city when it is one already, or holds no user yet (a
    fresh database); one with users of its own is a real install."""
    if await is_demo(conn):
        return True
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)")


ID_KEY_ENV = "CYL_ID_HASH_KEY"
ID_KEY_BYTES = 32
"""Length of a generated key, and the least a key file may hold (HMAC-SHA256's block of
entropy: a shorter key would be guessable before the ID numbers are)."""
_LEGACY_SECRET = "id_hash_key"  # noqa: S105 - a row name, not a secret
"""Where installs before migration 0072 kept the key: ``install_secrets``, in the database."""


def id_key_path(settings: Privacy) -> Path:
    """``[privacy] id_hash_key_file``, a relative path taken from the project directory
    (the same for the server, the CLI and a systemd unit, whatever their working directory)."""
    path = Path(settings.id_hash_key_file)
    return path if path.is_absolute() else CONFIG_DIR.parent / path


def _write_new(path: Path, key: bytes) -> None:
    """Create *path* holding *key* (mode 0600), atomically: two processes starting together
    both end up reading the one that was linked first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


async def load_id_hash_key(
    settings: Privacy, db: asyncpg.Connection | asyncpg.Pool, environ: Mapping[str, str]
) -> bytes:
    """The key of the HMAC of customers' ID numbers (docs/SECURITY.md "Privacy").

    ``CYL_ID_HASH_KEY`` first; else the key file. A missing file is filled from the key an
    older install kept in the database (which is then deleted there: whoever reads the
    database must not be able to reverse the hashes), or generated for a demo database; a
    real install without it is refused, with one line saying how to make one — a key made up
    silently would hash new customers differently from the old ones.
    """
    env = environ.get(ID_KEY_ENV)
    if env:
        return env.encode()
    path = id_key_path(settings)
    if not path.exists():
        legacy = await db.fetchval(
            "SELECT value FROM install_secrets WHERE name = $1", _LEGACY_SECRET
        )
        if legacy is not None:
            _write_new(path, bytes(legacy))
            await db.execute("DELETE FROM install_secrets WHERE name = $1", _LEGACY_SECRET)
        elif await is_demo(db):
            _write_new(path, secrets.token_bytes(ID_KEY_BYTES))
        else:
            raise ConfigError(
                f"privacy.id_hash_key_file: {path} does not exist; create it once with"
                f" `install -m 600 /dev/null {path} && head -c {ID_KEY_BYTES} /dev/urandom > {path}`"
                f' and keep it with the backups (docs/SECURITY.md "Privacy")'
            )
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"privacy.id_hash_key_file: cannot read {path}: {exc.strerror}") from None
    if len(key) < ID_KEY_BYTES:
        raise ConfigError(
            f"privacy.id_hash_key_file: {path} holds {len(key)} bytes, fewer than {ID_KEY_BYTES}"
        )
    return key
