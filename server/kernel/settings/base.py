"""The building blocks of every settings section: constrained value types, the base
Section that refuses unknown keys, and the configuration directory (docs/CONFIG.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
DEFAULT_FILE = CONFIG_DIR / "default.toml"
ENV_PREFIX = "CYL_"
SHORT_ENV = {
    "CYL_DATABASE_URL": ("services", "database_url"),
    "CYL_DATABASE_REPLICA_URL": ("services", "database_replica_url"),
    "CYL_REDIS_URL": ("services", "redis_url"),
    "CYL_MQTT_URL": ("services", "mqtt_url"),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Value domains shared by many keys (the names say what a value may be).
Count = Annotated[int, Meta(ge=1)]
"""At least one: a size, a limit, a period in whole units."""
NonNegative = Annotated[int, Meta(ge=0)]
"""Zero allowed: a margin in days, a snapshot that may be empty."""
Seconds = Annotated[float, Meta(gt=0)]
"""A strictly positive duration (a zero timeout or period would spin or never wait)."""
NonNegativeFloat = Annotated[float, Meta(ge=0)]
"""A tolerance or a cache period that may be zero, never negative."""
Name = Annotated[str, Meta(min_length=1)]
"""A URL, a cookie, a channel, a code: never empty."""
Port = Annotated[int, Meta(ge=1, le=65535)]
MqttUint16 = Annotated[int, Meta(ge=1, le=65535)]
"""MQTT v5 Receive Maximum is a two-byte integer greater than zero."""
MqttUint32 = Annotated[int, Meta(ge=0, le=4_294_967_295)]
"""MQTT v5 Session Expiry Interval is a four-byte integer."""
ShareName = Annotated[str, Meta(pattern=r"^[^/+#]+$")]
"""An MQTT shared subscription group: non-empty, no ``/``, ``+`` or ``#``."""
RoleName = Annotated[str, Meta(pattern=r"^([a-z_][a-z0-9_]{0,62})?$")]
"""A PostgreSQL role name needing no quotes (lower case, digits, ``_``), or empty."""
VapidSubject = Annotated[str, Meta(pattern=r"^(mailto:|https://)")]
Origin = Annotated[str, Meta(pattern=r"^https?://[^/?#\s]+$")]
"""A web origin as browsers send it: ``scheme://host[:port]``, no path."""
"""RFC 8292: the VAPID ``sub`` claim is a ``mailto:`` or ``https:`` URI."""


class ConfigError(ValueError):
    """A setting is missing, unknown, of the wrong type or out of range."""


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[section]`` of the TOML: immutable, and unknown keys are refused.

    A ``__post_init__`` check that spans keys raises ``ValueError("key: what is wrong")``
    so that the message names the key like msgspec's own checks do.
    """


def _ordered(section: Section, low: str, high: str) -> None:
    """Refuse a lower bound above its upper bound (e.g. a backoff minimum above its maximum)."""
    lo, hi = getattr(section, low), getattr(section, high)
    if lo > hi:
        raise ValueError(f"{low}: {lo} is above {high} ({hi})")
