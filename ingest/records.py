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
text-format jsonb codec) and cast on the way in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

__all__ = ["DEAD_LETTER_COLUMNS", "TABLES", "Key", "TableSpec", "copy_plain", "insert_dedupe"]


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
        cols = ", ".join(f"{c} {'text' if t == 'jsonb' else t}" for c, t in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ({cols}) ON COMMIT DELETE ROWS"

    def select_list(self) -> str:
        return ", ".join(f"{c}::jsonb" if t == "jsonb" else c for c, t in self.columns)


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

Key = tuple[str, datetime]


async def insert_dedupe(
    conn: asyncpg.Connection, spec: TableSpec, records: Sequence[Sequence[Any]]
) -> set[Key]:
    """Insert *records* (tuples in ``spec.columns`` order) skipping stored ``(msg_id, ts)``.

    Returns the keys actually inserted. Must run inside a transaction (the staging rows
    vanish at commit).
    """
    if not records:
        return set()
    await conn.execute(spec.stage_ddl())
    await conn.copy_records_to_table(spec.stage, records=records, columns=spec.column_names)
    cols = ", ".join(spec.column_names)
    rows = await conn.fetch(
        f"INSERT INTO {spec.name} ({cols}) SELECT {spec.select_list()} FROM {spec.stage} "
        "ON CONFLICT (msg_id, ts) DO NOTHING RETURNING msg_id, ts"
    )
    await conn.execute(f"TRUNCATE {spec.stage}")
    return {(r["msg_id"], r["ts"]) for r in rows}


async def copy_plain(
    conn: asyncpg.Connection, table: str, columns: list[str], records: Sequence[Sequence[Any]]
) -> None:
    """COPY rows that need no de-duplication (dead letters)."""
    if records:
        await conn.copy_records_to_table(table, records=records, columns=columns)
