"""The seeded history's storage: past partitions, month-by-month indexes, binary jsonb.

- **Partitions.** Events and fills are time-series tables (migration 0001,
  ``cyl_create_timeseries``): TimescaleDB hypertables create their chunks on insert, native
  partitioned tables have monthly partitions made at migration time from three years back
  (and a DEFAULT one). A seed for another ``today``, or a database migrated long ago, may
  lack some months: ``cyl_ensure_partitions`` makes them (a no-op under TimescaleDB).
- **Indexes.** A year of a 1M-cylinder city is ~60M rows. Scattering them into live B-trees
  is several times slower than building each index once, so for a large history the
  indexes of the natively partitioned parents are dropped at the start, built on each
  month's partition as soon as the month is written (while the next month is generated),
  and re-created on the parents at the end — PostgreSQL then attaches the partitions'
  matching indexes instead of building them again. It all happens in the seed's one
  transaction: a failure rolls the indexes back with the rows. Hypertables keep theirs.
- **jsonb.** asyncpg's binary COPY needs a binary jsonb codec (version byte 1, then the
  text); the connection's own codec is put back afterwards.

docs/ARCHITECTURE.md §10 describes the time-series tables; server/db/bulk.py the COPY rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import asyncpg

__all__ = ["MonthIndexes", "binary_jsonb", "ensure_partitions"]

log = logging.getLogger(__name__)

_INDEX_DEF: Final = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?(\S+) (USING .*)$")


async def ensure_partitions(
    conn: asyncpg.Connection, tables: tuple[str, ...], first: date, last: date
) -> int:
    """Make sure the months from *first* to *last* have their partitions; how many were made."""
    made = 0
    for table in tables:
        made += int(
            await conn.fetchval("SELECT cyl_ensure_partitions($1, $2, $3)", table, first, last)
        )
    return made


def _encode_jsonb(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else b"\x01" + value.encode()


@asynccontextmanager
async def binary_jsonb(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """jsonb as binary (COPY) inside the block: values are pre-encoded bytes or JSON text."""
    decoded_as_text = isinstance(await conn.fetchval("SELECT '{}'::jsonb"), str)
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=lambda b: b[1:].decode(),
        format="binary",
    )
    try:
        yield
    finally:
        if decoded_as_text:
            await conn.reset_type_codec("jsonb", schema="pg_catalog")
        else:  # the pool's codecs (server.db.pool)
            from server.db.pool import init_connection

            await init_connection(conn)


@dataclass
class MonthIndexes:
    """The indexes of natively partitioned tables, dropped and built month by month."""

    conn: asyncpg.Connection
    definitions: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    """table → (unique, name, qualified table, "USING …") of each parent index dropped."""
    partitions: dict[str, set[str]] = field(default_factory=dict)
    built: set[str] = field(default_factory=set)

    @classmethod
    async def drop(cls, conn: asyncpg.Connection, tables: tuple[str, ...]) -> MonthIndexes:
        """Drop the parent indexes of *tables* that are natively partitioned."""
        plan = cls(conn)
        for table in tables:
            kind = await conn.fetchval(
                "SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", table
            )
            if kind != "p":
                continue  # a hypertable (or a plain table) keeps its indexes
            rows = await conn.fetch(
                """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
                     FROM pg_index i WHERE i.indrelid = $1::regclass ORDER BY i.indexrelid""",
                table,
            )
            defs = []
            for row in rows:
                m = _INDEX_DEF.match(row["def"])
                if m is None:
                    log.warning("keeping index %s (definition not understood)", row["name"])
                    continue
                defs.append((m.group(1) or "", m.group(2), m.group(3), m.group(4)))
                await conn.execute(f"DROP INDEX {row['name']}")
            plan.definitions[table] = defs
            plan.partitions[table] = {
                r["name"]
                for r in await conn.fetch(
                    """SELECT c.oid::regclass::text AS name FROM pg_inherits i
                         JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass""",
                    table,
                )
            }
        return plan

    async def build_month(self, month: date) -> None:
        """Build the dropped indexes on the partitions holding *month* (once each)."""
        for table, defs in self.definitions.items():
            part = f"{table}_p{month:%Y%m}"
            if part not in self.partitions.get(table, ()) or part in self.built:
                continue
            self.built.add(part)
            for unique, _name, _parent, using in defs:
                await self.conn.execute(f"CREATE {unique}INDEX ON {part} {using}")

    async def restore(self) -> None:
        """Re-create the parent indexes; partitions' matching indexes are attached."""
        for defs in self.definitions.values():
            for unique, name, parent, using in defs:
                await self.conn.execute(f"CREATE {unique}INDEX {name} ON {parent} {using}")
        self.definitions.clear()


def month_starts(first: date, last: date) -> list[date]:
    """First days of the calendar months from *first*'s to *last*'s."""
    out: list[date] = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
