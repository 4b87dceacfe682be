"""Kiosk tokens: the credential of an unattended wall (docs/SECURITY.md "Sessions and credentials").

A command-centre wall has nobody to type a password and runs for weeks, so an admin issues
its browser a kiosk token (``big_screen.kiosk`` trades it for a read-only session). A token
is a credential like a password, so it has a life cycle:

- it is a row of ``kiosk_tokens``: ``k2.<row id>.<secret>``, of which only a SHA-256 of the
  secret is stored (the token is shown once, when issued);
- it expires ``auth.kiosk_token_max_age_s`` after it was issued, and the kiosk sessions
  traded from it end with it;
- it is issued only for a regulator account — never an admin's: a token copied off a
  wall's address bar must not open an administrator's view of the city;
- admins list them and revoke them one by one; deactivating the account revokes them all.

The kernel holds this (not the wall) because the API lists and revokes tokens and the
pages may not import the API, nor the API the pages (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from server.kernel.appkeys import REDIS, SETTINGS
from server.kernel.principal import end_sessions, session_index, user_sessions

TOKEN_VERSION = "k2"  # noqa: S105 - a format version
KIOSK_ROLES = ("regulator",)
"""Accounts a kiosk token is issued for (and keeps working for)."""
_SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"^k2\.([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{16,100})$", re.ASCII)
"""Digits are ASCII only: ``str.isdigit`` accepts ``²``, which ``int`` then refuses."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    id: int
    token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class KioskUser:
    """The account a valid token names, and the token's own end."""

    token_id: int
    user_id: int
    username: str
    role: str
    expires_at: dt.datetime


async def issue(
    pool: asyncpg.Pool | asyncpg.Connection,
    user_id: int,
    max_age_s: float,
    *,
    issued_by: int | None = None,
    note: str = "",
) -> Issued:
    """A new token for *user_id*, valid *max_age_s* seconds (the caller checks the role)."""
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    row = await pool.fetchrow(
        """INSERT INTO kiosk_tokens (user_id, note, secret_hash, issued_by, expires_at)
           VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
           RETURNING id, expires_at""",
        user_id,
        note,
        _hash(secret),
        issued_by,
        float(max_age_s),
    )
    assert row is not None
    return Issued(row["id"], f"{TOKEN_VERSION}.{row['id']}.{secret}", row["expires_at"])


async def verify(pool: asyncpg.Pool, token: str) -> KioskUser | None:
    """The active regulator a live token names, or None (malformed, wrong secret, expired,
    revoked, or its account inactive or no longer a regulator)."""
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    token_id, secret = int(match[1]), match[2]
    row = await pool.fetchrow(
        """SELECT k.secret_hash, k.expires_at, u.id, u.username, u.role
           FROM kiosk_tokens k JOIN users u ON u.id = k.user_id
           WHERE k.id = $1 AND k.revoked_at IS NULL AND k.expires_at > now()
             AND u.active AND u.role = ANY($2::text[])""",
        token_id,
        list(KIOSK_ROLES),
    )
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
        return None
    await pool.execute("UPDATE kiosk_tokens SET last_used_at = now() WHERE id = $1", token_id)
    return KioskUser(token_id, row["id"], row["username"], row["role"], row["expires_at"])


LIST_COLUMNS = """k.id, k.user_id, u.username, k.note, k.created_at, k.expires_at,
    k.last_used_at, k.revoked_at, ib.username AS issued_by,
    (k.revoked_at IS NULL AND k.expires_at > now()) AS active"""
LIST_FROM = """kiosk_tokens k JOIN users u ON u.id = k.user_id
    LEFT JOIN users ib ON ib.id = k.issued_by"""


async def revoke(pool: asyncpg.Pool | asyncpg.Connection, token_id: int) -> Any:
    """Revoke one token (again: no change). Returns its row, or None if there is none."""
    await pool.execute(
        "UPDATE kiosk_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        token_id,
    )
    return await pool.fetchrow(f"SELECT {LIST_COLUMNS} FROM {LIST_FROM} WHERE k.id = $1", token_id)


async def revoke_all(pool: asyncpg.Pool | asyncpg.Connection, user_id: int) -> int:
    """Revoke every live token of an account (it was deactivated). Returns how many."""
    status = await pool.execute(
        "UPDATE kiosk_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
    return int(status.split()[-1])


async def end_token_sessions(app: web.Application, user_id: int, token_id: int) -> list[str]:
    """End the kiosk sessions traded from one token (it was revoked); their sockets close."""
    sessions = await user_sessions(app[REDIS], session_index(app[SETTINGS], user_id))
    sids = [sid for sid, record in sessions.items() if record.get("kiosk_token") == token_id]
    if not sids:
        return []
    return await end_sessions(app, user_id, sids=sids)
