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
- **jsonb.** asyncpg's binary COPY cannot use the pool's text-format jsonb codec; its own
  (JSON text as str) is used meanwhile for alerts and the like, and the pool's put back.
- **Defaults.** Constant jsonb values (a kind's details, all-passed fill checks) are made
  the columns' defaults while the rows that carry them are COPYed without them.

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

__all__ = [
    "ColumnDefaults",
    "MonthIndexes",
    "column_defaults",
    "ensure_partitions",
    "history_codecs",
    "jsonb_literal",
]

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


@asynccontextmanager
async def history_codecs(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """asyncpg's own jsonb codec inside the block (JSON text as str): the pool's codec
    (server.db.pool: Python objects via orjson, text format) cannot encode binary COPY.
    The pool's is put back after. (Events and fills bypass codecs: `server.seed.pgcopy`.)"""
    pool_codec = not isinstance(await conn.fetchval("SELECT '{}'::jsonb"), str)
    if pool_codec:
        await conn.reset_type_codec("jsonb", schema="pg_catalog")
    try:
        yield
    finally:
        if pool_codec:
            from server.db.pool import init_connection

            await init_connection(conn)


@asynccontextmanager
async def column_defaults(
    conn: asyncpg.Connection, defaults: dict[tuple[str, str], str]
) -> AsyncIterator[ColumnDefaults]:
    """Constant column defaults inside the block, the columns' own put back after.

    A row COPYed without a column takes its default, a constant folded once — far cheaper
    than a jsonb value parsed on every one of millions of rows. On a natively partitioned
    table only the parent's changes (``ALTER TABLE ONLY``: COPY into a parent fills defaults
    from the parent); a hypertable takes the change on its chunks as TimescaleDB does.
    """
    cd = ColumnDefaults(conn)
    for (table, column), sql in defaults.items():
        await cd.set(table, column, sql)
    try:
        yield cd
    finally:
        await cd.restore()


@dataclass
class ColumnDefaults:
    """Column defaults changed for the seed, with the originals to put back."""

    conn: asyncpg.Connection
    original: dict[tuple[str, str], str | None] = field(default_factory=dict)
    only: dict[str, str] = field(default_factory=dict)

    async def set(self, table: str, column: str, sql: str) -> None:
        if table not in self.only:
            kind = await self.conn.fetchval(
                "SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", table
            )
            self.only[table] = "ONLY " if kind == "p" else ""
        if (table, column) not in self.original:
            self.original[(table, column)] = await self.conn.fetchval(
                """SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                     JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                    WHERE d.adrelid = $1::regclass AND a.attname = $2""",
                table,
                column,
            )
        await self.conn.execute(
            f"ALTER TABLE {self.only[table]}{table} ALTER COLUMN {column} SET DEFAULT {sql}"
        )

    async def restore(self) -> None:
        for (table, column), sql in self.original.items():
            change = "DROP DEFAULT" if sql is None else f"SET DEFAULT {sql}"
            await self.conn.execute(
                f"ALTER TABLE {self.only[table]}{table} ALTER COLUMN {column} {change}"
            )
        self.original.clear()


def jsonb_literal(text: str) -> str:
    """A JSON text as a jsonb constant of SQL."""
    return "'" + text.replace("'", "''") + "'::jsonb"


@dataclass
class MonthIndexes:
    """The indexes of natively partitioned tables, dropped and built month by month."""

    conn: asyncpg.Connection
    definitions: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    """table → (unique, name, qualified table, "USING …") of each parent index dropped."""
    partitions: dict[str, set[str]] = field(default_factory=dict)
    built: set[str] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)
    """CREATE INDEX statements of written months, run one at a time between COPYs."""

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

    def queue_month(self, month: date) -> None:
        """Queue the dropped indexes of the partitions holding *month* (once each)."""
        for table, defs in self.definitions.items():
            part = f"{table}_p{month:%Y%m}"
            if part not in self.partitions.get(table, ()) or part in self.built:
                continue
            self.built.add(part)
            self.pending += [
                f"CREATE {unique}INDEX ON {part} {using}" for unique, _, _, using in defs
            ]

    async def build_next(self) -> None:
        """Build one queued index (the writer interleaves them with the next month's COPYs,
        so the generating thread keeps working while PostgreSQL sorts)."""
        if self.pending:
            await self.conn.execute(self.pending.pop(0))

    async def restore(self) -> None:
        """Build what is queued, then re-create the parent indexes: PostgreSQL attaches the
        partitions' matching indexes and builds the others'."""
        while self.pending:
            await self.build_next()
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
