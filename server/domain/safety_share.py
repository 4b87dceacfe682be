"""The customer's share link to a rectification notice (整改通知书; docs/ARCHITECTURE.md §8,
docs/API.md "Safety inspections"): a token that opens one inspection's notice without a login.

Why an HMAC and no table: the token is ``<inspection id>.<expiry>.<tag>`` with
``tag = HMAC-SHA256(share key, "<id>.<expiry>")`` cut to 128 bits, the share key derived from
the install's secret (``[privacy] id_hash_key_file``) under its own context, as the seal's key
is (``server.domain.safety.seal_key``) — so a link cannot be guessed, cannot be moved to
another inspection or stretched past its expiry, and nothing is stored to clean up. The price:
a link is not revoked before it expires; it shows only what the customer was handed on paper.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

__all__ = [
    "NOTICE_LINK_DAYS",
    "SHARE_CONTEXT",
    "TokenState",
    "check_token",
    "make_token",
    "share_key",
]

NOTICE_LINK_DAYS: Final = 30
"""How long a share link opens the notice: past the longest usual rectification deadline
(``[safety] rectification_days``, 5 by default) with room for a re-check, yet short enough
that a forwarded link stops disclosing the customer's name within a month."""

SHARE_CONTEXT: Final = b"cylwatch safety-notice share link v1"
"""Domain separation: the share key is not the seal's key nor the ID-number hash key."""

TAG_BYTES: Final = 16
"""128 bits of the HMAC: beyond guessing, and a short URL to paste into a chat."""

TOKEN_RE: Final = re.compile(
    r"^(?P<id>[1-9][0-9]{0,17})\.(?P<expires>[1-9][0-9]{0,11})\.(?P<tag>[A-Za-z0-9_-]{22})$"
)

TokenState = str
"""``valid``, ``expired`` (a genuine token past its time) or ``invalid`` (forged, altered)."""


def share_key(install_secret: bytes) -> bytes:
    """The share links' key, derived from the install's secret (never stored)."""
    return hmac.new(install_secret, SHARE_CONTEXT, hashlib.sha256).digest()


def _tag(key: bytes, rid: int, expires: int) -> str:
    mac = hmac.new(key, f"{rid}.{expires}".encode(), hashlib.sha256).digest()[:TAG_BYTES]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(key: bytes, rid: int, expires: int) -> str:
    """The token for inspection *rid*, valid until the Unix time *expires*."""
    return f"{rid}.{expires}.{_tag(key, rid, expires)}"


def check_token(key: bytes, token: str, now: float) -> tuple[TokenState, int | None]:
    """(state, inspection id): the id only for a genuine token; an expired one says so only
    after its tag checks, so a forged token never learns anything but ``invalid``."""
    m = TOKEN_RE.match(token)
    if m is None:
        return "invalid", None
    rid, expires = int(m["id"]), int(m["expires"])
    if not hmac.compare_digest(_tag(key, rid, expires), m["tag"]):
        return "invalid", None
    if expires <= now:
        return "expired", rid
    return "valid", rid
