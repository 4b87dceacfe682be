"""Device MQTT credentials: a Mosquitto password file and ACL file from the device registry
(the fallback of docs/SECURITY.md "Broker"; the dynamic-security plugin, :mod:`ingest.dynsec`,
is the production way and takes its topic grants from here).

docs/ARCHITECTURE.md §7: a device may publish only under its own topic and read only its own replies,
so a stolen handheld cannot report fills as a gun, and a gun cannot answer another gun's
authorization request. Mosquitto enforces this given a password file and an ACL file;
the platform generates both from ``devices``:

- each device's username is its ``device_id`` (the id in its topics), its password random;
- the plain password exists only in the installer's CSV (mode 0600) written next to the
  files, once; the database keeps only the Mosquitto hash (``devices.mqtt_password_hash``)
  so that re-generating the files later keeps existing devices' passwords;
- the hash is Mosquitto 2's ``$7$`` format, PBKDF2-HMAC-SHA512 with a 12-byte salt and 101
  iterations (what ``mosquitto_passwd`` writes), computed with :mod:`hashlib`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "INGEST_READ",
    "INGEST_WRITE",
    "DeviceCredential",
    "acl_lines",
    "device_read_filter",
    "device_write_topics",
    "is_safe_id",
    "mosquitto_hash",
    "new_password",
    "verify_mosquitto_hash",
    "write_files",
    "write_installer_csv",
]

MOSQUITTO_ITERATIONS: Final = 101
"""mosquitto_passwd's default for ``$7$`` hashes (mosquitto 2.0)."""
SALT_BYTES: Final = 12
PASSWORD_BYTES: Final = 18
"""144 random bits, 24 URL-safe characters: typed once by an installer, never guessed."""

_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
"""Ids usable as an MQTT username and topic level: no wildcards, separators or colons."""

INGEST_READ: Final = "cyl/v1/#"
"""What the ingest workers consume (through their shared subscription)."""
INGEST_WRITE: Final = "cyl/v1/gun/+/auth/reply/#"
"""What they publish: fill-authorization replies, in each gun's own reply space."""

_WRITE_LEAVES: Final[dict[str, tuple[str, ...]]] = {
    "gun": ("auth", "fill", "status"),
    "valve": ("telemetry", "status"),
    "handheld": ("scan", "status"),
    "vehicle": ("position", "status"),
}


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    device_id: str
    kind: str
    password_hash: str
    password: str | None = None
    """Set only when generated now (goes to the installer's CSV)."""


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS
) -> str:
    """``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``, as mosquitto_passwd writes."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, hashed: str) -> bool:
    try:
        _, seven, iterations, salt_b64, digest_b64 = hashed.split("$")
        if seven != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations))
    return secrets.compare_digest(digest, expected)


def is_safe_id(device_id: str) -> bool:
    return bool(_SAFE_ID.match(device_id))


def device_write_topics(kind: str, device_id: str) -> list[str]:
    """The topics one device may publish: its own, never a reply (docs/API.md "MQTT")."""
    base = f"cyl/v1/{kind}/{device_id}"
    return [f"{base}/{leaf}" for leaf in _WRITE_LEAVES.get(kind, ("status",))]


def device_read_filter(kind: str, device_id: str) -> str | None:
    """The filter of the replies one device may read (only a gun is answered).

    ``.../reply/#`` also matches ``.../reply`` itself (MQTT wildcard rule); the sub-level
    serves guns that set an MQTT v5 response topic of their own under it.
    """
    return f"cyl/v1/gun/{device_id}/auth/reply/#" if kind == "gun" else None


def acl_lines(kind: str, device_id: str) -> list[str]:
    """The ACL block of one device: write its own topics, read its own replies."""
    lines = [f"user {device_id}"]
    lines += [f"topic write {topic}" for topic in device_write_topics(kind, device_id)]
    read = device_read_filter(kind, device_id)
    if read is not None:
        lines.append(f"topic read {read}")
    return lines


def ingest_acl_lines(username: str) -> list[str]:
    return [
        f"user {username}",
        f"topic read {INGEST_READ}",
        f"topic read $share/+/{INGEST_READ}",
        f"topic write {INGEST_WRITE}",
    ]


def _write_private(path: Path, text: str, mode: int) -> None:
    """Create *path* with *mode* from the start (no window where it is world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_files(
    out_dir: Path,
    devices: Sequence[DeviceCredential],
    ingest_user: str,
    ingest_hash: str,
    ingest_password: str | None,
    extra_users: Iterable[tuple[str, str]] = (),
) -> dict[str, Path]:
    """Write ``passwd``, ``acl`` and ``new-credentials.csv`` into *out_dir*.

    The CSV holds only the passwords generated in this run (device_id,password) — hand it
    to the installer and delete it. Returns the paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd = [f"{ingest_user}:{ingest_hash}"]
    passwd += [f"{user}:{hashed}" for user, hashed in extra_users]
    acl = [
        "# Generated by `cylwatch devices mosquitto-config`. Do not edit: re-generate.",
        "# Each device writes only its own topics and reads only its own replies (docs/ARCHITECTURE.md §7).",
        "",
        *ingest_acl_lines(ingest_user),
        "",
    ]
    rows: list[tuple[str, str]] = []
    if ingest_password is not None:
        rows.append((ingest_user, ingest_password))
    for dev in sorted(devices, key=lambda d: d.device_id):
        passwd.append(f"{dev.device_id}:{dev.password_hash}")
        acl += [*acl_lines(dev.kind, dev.device_id), ""]
        if dev.password is not None:
            rows.append((dev.device_id, dev.password))
    paths = {
        "passwd": out_dir / "passwd",
        "acl": out_dir / "acl",
        "csv": out_dir / "new-credentials.csv",
    }
    _write_private(paths["passwd"], "\n".join(passwd) + "\n", 0o640)
    _write_private(paths["acl"], "\n".join(acl) + "\n", 0o640)
    write_installer_csv(paths["csv"], rows)
    return paths


def write_installer_csv(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    """``device_id,password`` rows for the installers, mode 0600 from the start."""
    buf: list[str] = []

    class _Sink:
        def write(self, s: str) -> int:
            buf.append(s)
            return len(s)

    writer = csv.writer(_Sink())
    writer.writerow(("device_id", "password"))
    writer.writerows(rows)
    _write_private(path, "".join(buf), 0o600)
