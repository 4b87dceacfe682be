"""Batched, exactly-once writes of time-series rows: COPY into staging, then INSERT … SELECT.

docs/ARCHITECTURE.md §5: the platform stores each ``msg_id`` once however often it arrives; a
redelivered message carries the same device ``ts``, and the unique indexes are on
``(msg_id, ts)`` (a unique index on a partitioned table must include the partition
column). COPY is the fastest way into PostgreSQL but cannot skip conflicts, so rows are
copied into a session-local TEMP staging table and moved with ``ON CONFLICT (msg_id, ts)
DO NOTHING RETURNING msg_id, ts``: what comes back is exactly the set of messages seen for
the first time, which is what drives state changes, rules and live events — a redelivery
changes nothing anywhere.

Staging tables declare jsonb columns as text (binary COPY has no encoder for the pool's
text-format jsonb codec) and cast on the way in. They hold ``timestamptz`` columns as
``bigint`` microseconds since the Unix epoch, converted on the way in as well: asyncpg's
``timestamptz`` encoder compares every value with its naive infinity sentinels (two
``utcoffset`` calls) before converting it, ~7,400 instructions a value — measured as the
largest single item of the worker's CPU (docs/BENCHMARKS.md "Ingest worker CPU per
message"), while a device time is already an integer (``ts`` in ms). For the same reason the
keys of stored messages come back as ``(msg_id, microseconds)``, not as ``datetime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

__all__ = [
    "DEAD_LETTER_COLUMNS",
    "TABLES",
    "Key",
    "TableSpec",
    "copy_plain",
    "insert_dedupe",
    "micros",
]


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]
    """(column, staging type); a ``jsonb`` column is staged as text and cast."""

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def stage(self) -> str:
        return f"cyl_stage_{self.name}"

    def stage_ddl(self) -> str:
        cols = ", ".join(f"{c} {_STAGED.get(t, t)}" for c, t in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ({cols}) ON COMMIT DELETE ROWS"

    def select_list(self) -> str:
        return ", ".join(_CAST.get(t, "{}").format(c) for c, t in self.columns)


_STAGED: Final = {"jsonb": "text", "timestamptz": "bigint"}
"""Staging type of a column type that is not staged as itself."""
_CAST: Final = {
    "jsonb": "{}::jsonb",
    "timestamptz": "timestamptz 'epoch' + {} * interval '1 microsecond'",
}
"""From a staged column to the table's type (exact: the product stays below 2⁵³ µs)."""


TABLES: Final[dict[str, TableSpec]] = {
    "events": TableSpec(
        "events",
        (
            ("ts", "timestamptz"),
            ("received_at", "timestamptz"),
            ("msg_id", "text"),
            ("cylinder_id", "bigint"),
            ("tag", "text"),
            ("kind", "text"),
            ("biz_step", "text"),
            ("disposition", "text"),
            ("site_id", "bigint"),
            ("company_id", "bigint"),
            ("customer_id", "bigint"),
            ("device_id", "text"),
            ("operator", "text"),
            ("lat", "double precision"),
            ("lon", "double precision"),
            ("district_code", "text"),
            ("details", "jsonb"),
        ),
    ),
    "fills": TableSpec(
        "fills",
        (
            ("ts", "timestamptz"),
            ("received_at", "timestamptz"),
            ("msg_id", "text"),
            ("ts_start", "timestamptz"),
            ("gun_id", "text"),
            ("station_id", "bigint"),
            ("company_id", "bigint"),
            ("district_code", "text"),
            ("cylinder_id", "bigint"),
            ("tag", "text"),
            ("spec", "text"),
            ("net_kg", "numeric(7,2)"),
            ("tare_kg", "numeric(7,2)"),
            ("gross_kg", "numeric(7,2)"),
            ("result", "text"),
            ("assessment", "text"),
            ("operator", "text"),
            ("pre_check", "jsonb"),
            ("post_check", "jsonb"),
        ),
    ),
    "telemetry": TableSpec(
        "telemetry",
        (
            ("ts", "timestamptz"),
            ("received_at", "timestamptz"),
            ("msg_id", "text"),
            ("tag", "text"),
            ("cylinder_id", "bigint"),
            ("lat", "double precision"),
            ("lon", "double precision"),
            ("valve", "text"),
            ("leak_ppm", "real"),
            ("temp_c", "real"),
            ("battery_pct", "real"),
            ("rssi", "real"),
        ),
    ),
    "positions": TableSpec(
        "positions",
        (
            ("ts", "timestamptz"),
            ("received_at", "timestamptz"),
            ("msg_id", "text"),
            ("vehicle_id", "text"),
            ("lat", "double precision"),
            ("lon", "double precision"),
            ("speed_kmh", "real"),
            ("heading", "real"),
            ("cargo", "text[]"),
        ),
    ),
}

DEAD_LETTER_COLUMNS: Final = ["received_at", "topic", "payload", "reason", "worker"]

Key = tuple[str, int]
"""(msg_id, device ``ts`` in microseconds since the Unix epoch): a stored message's identity."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """*moment* (aware) as microseconds since the Unix epoch, as staged (exact)."""
    return (moment - _EPOCH) // _ONE_US


async def insert_dedupe(
    conn: asyncpg.Connection, spec: TableSpec, records: Sequence[Sequence[Any]]
) -> set[Key]:
    """Insert *records* (tuples in ``spec.columns`` order) skipping stored ``(msg_id, ts)``.

    Timestamps in *records* are microseconds since the Unix epoch (:func:`micros`). Returns
    the keys actually inserted. Must run inside a transaction (the staging rows vanish at
    commit).
    """
    if not records:
        return set()
    await conn.execute(spec.stage_ddl())
    await conn.copy_records_to_table(spec.stage, records=records, columns=spec.column_names)
    cols = ", ".join(spec.column_names)
    rows = await conn.fetch(
        f"INSERT INTO {spec.name} ({cols}) SELECT {spec.select_list()} FROM {spec.stage} "
        "ON CONFLICT (msg_id, ts) DO NOTHING"
        " RETURNING msg_id, (extract(epoch FROM ts) * 1000000)::bigint"
    )
    await conn.execute(f"TRUNCATE {spec.stage}")
    return {(r[0], r[1]) for r in rows}


async def copy_plain(
    conn: asyncpg.Connection, table: str, columns: list[str], records: Sequence[Sequence[Any]]
) -> None:
    """COPY rows that need no de-duplication (dead letters)."""
    if records:
        await conn.copy_records_to_table(table, records=records, columns=columns)
