"""PostgreSQL's binary COPY format, written by hand for the seeded history's rows.

asyncpg encodes each value of each record it COPYs: some two microseconds a row of the
events table, paid in the one thread that also has to generate the rows — at a year of a
1M-cylinder city (~50M rows) the largest single cost of the seed. The history's values
repeat (a cylinder's id and tag, a site's id and position, a kind's constants, a mass), so
`server.seed.emit` encodes each once here and a row is the join of a few ready pieces; the
writer sends the bytes as they are (``copy_to_table(format='binary')``).

Format (PostgreSQL docs, "COPY — Binary Format"): a signature and two zero int32s, then per
row an int16 field count and per field an int32 length (−1: NULL) and the value in the
type's binary form, then int16 −1. Values here: int8, float8, text, jsonb (version byte 1
and the text), timestamptz (int64 microseconds since 2000-01-01 UTC) and numeric (ready
bytes from `numeric_cents`).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Final

__all__ = [
    "HEADER",
    "NULL",
    "TRAILER",
    "fields",
    "float8",
    "int8",
    "jsonb",
    "micros",
    "numeric",
    "numeric_cents",
    "text",
    "timestamp",
]

HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
TRAILER: Final = b"\xff\xff"
NULL: Final = b"\xff\xff\xff\xff"
EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""PostgreSQL's epoch for timestamps."""

_FIELDS = struct.Struct(">h")
_INT8 = struct.Struct(">iq")
_FLOAT8 = struct.Struct(">id")
_LEN = struct.Struct(">i")


def fields(n: int) -> bytes:
    """A row's start: its number of fields."""
    return _FIELDS.pack(n)


def int8(value: int | None) -> bytes:
    return NULL if value is None else _INT8.pack(8, value)


def float8(value: float | None) -> bytes:
    return NULL if value is None else _FLOAT8.pack(8, value)


def text(value: str | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode()
    return _LEN.pack(len(data)) + data


def jsonb(value: str | None) -> bytes:
    """A jsonb value from its JSON text (binary format version 1)."""
    if value is None:
        return NULL
    data = value.encode()
    return _LEN.pack(len(data) + 1) + b"\x01" + data


def micros(moment: datetime) -> int:
    """Microseconds since PostgreSQL's epoch (what a binary timestamptz holds)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def timestamp(us: int) -> bytes:
    """A timestamptz field from microseconds since PostgreSQL's epoch."""
    return _INT8.pack(8, us)


def numeric_cents(cents: int) -> bytes:
    """The binary ``numeric`` value of ``cents / 100`` (cents ≥ 0), without its length:
    ndigits, weight, sign, display scale, then base-10000 digits."""
    whole, frac = divmod(cents, 100)
    digits: list[int] = []
    while whole:
        whole, d = divmod(whole, 10000)
        digits.insert(0, d)
    weight = len(digits) - 1
    if frac:
        digits.append(frac * 100)
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
    return struct.pack(f">hhHh{len(digits)}H", len(digits), weight, 0, 2, *digits)


def numeric(value: bytes) -> bytes:
    """A numeric field from `numeric_cents` bytes."""
    return _LEN.pack(len(value)) + value
