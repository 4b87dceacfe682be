"""Bulk loading with COPY: the one place that knows how rows go into PostgreSQL by the million.

COPY is several times faster than INSERT for many rows, but it has three limits that every
bulk writer of the platform meets — the demo seed (`server.seed`), the archive importer
(`server.archive.importer`) and the ingest writer (`ingest`):

- it cannot skip or merge conflicting rows, so rows that may clash are COPYed into a
  session-local staging table and moved with one `INSERT … SELECT … ON CONFLICT` (`Staging`);
- asyncpg's binary COPY has no encoder for the pool's text-format jsonb codec
  (server/db/pool.py), so a staging table declares jsonb columns as text and casts them on
  the way out (`Staging.select_list`);
- rows COPYed with explicit ids need their ids drawn from the table's sequence first
  (`reserve_ids`), and a huge load into an empty table is cheaper with its plain indexes
  dropped and rebuilt once at the end (`drop_plain_indexes`, `copy_generated`).

Staging tables are created once per connection and emptied rather than dropped: asyncpg
caches prepared statements that name them, and a dropped-and-recreated table would
invalidate those.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = [
    "Staging",
    "chunks",
    "copy_generated",
    "drop_plain_indexes",
    "loading_unchecked",
    "reserve_ids",
]

log = logging.getLogger(__name__)

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Staging:
    """A TEMP table that COPY fills before rows move on with one SQL statement.

    `columns` are (name, SQL type) in the order of the records; a type may carry
    constraints (`"integer NOT NULL"`). A `jsonb` column is staged as text and cast by
    `select_list`. With `per_transaction` the rows vanish at commit (`ON COMMIT DELETE
    ROWS`: a writer whose stage serves one transaction); otherwise they stay until
    `clear` (a stage checked across several statements, or kept between transactions).
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    per_transaction: bool = True

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def ddl(self) -> str:
        cols = ", ".join(
            f"{name} {'text' + sqltype[5:] if _is_jsonb(sqltype) else sqltype}"
            for name, sqltype in self.columns
        )
        on_commit = " ON COMMIT DELETE ROWS" if self.per_transaction else ""
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.name} ({cols}){on_commit}"

    def select_list(self) -> str:
        """The staged columns as the target table takes them (jsonb cast back)."""
        return ", ".join(
            f"{name}::jsonb" if _is_jsonb(sqltype) else name for name, sqltype in self.columns
        )

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(self.ddl())

    async def load(self, conn: asyncpg.Connection, records: Sequence[Row]) -> None:
        """COPY *records* (tuples in `columns` order) into the stage (created if need be)."""
        await self.create(conn)
        await conn.copy_records_to_table(self.name, records=records, columns=self.column_names)

    async def clear(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"TRUNCATE {self.name}")

    async def insert_into(
        self, conn: asyncpg.Connection, table: str, records: Sequence[Row], suffix: str = ""
    ) -> list[asyncpg.Record]:
        """Stage *records* and move them into *table* in one statement; the stage is left
        empty. *suffix* ends the INSERT (`ON CONFLICT … DO NOTHING RETURNING …`); the rows
        it returns are returned."""
        if not records:
            return []
        await self.load(conn, records)
        cols = ", ".join(self.column_names)
        rows: list[asyncpg.Record] = await conn.fetch(
            f"INSERT INTO {table} ({cols}) SELECT {self.select_list()} FROM {self.name} {suffix}"
        )
        await self.clear(conn)
        return rows


def _is_jsonb(sqltype: str) -> bool:
    return sqltype.split(maxsplit=1)[0].lower() == "jsonb"


def chunks(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    """*rows* in slices of at most *size* (one COPY each)."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def reserve_ids(conn: asyncpg.Connection, table: str, n: int) -> int:
    """Reserve *n* consecutive ids of *table*'s serial and return the first.

    Rows are then COPYed with explicit ids, so the writer knows every id without a
    RETURNING round trip. The caller holds a lock that keeps other writers from drawing
    from the same sequence meanwhile.
    """
    seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
    first = int(await conn.fetchval("SELECT nextval($1::regclass)", seq))
    if n > 1:
        await conn.execute("SELECT setval($1::regclass, $2)", seq, first + n - 1)
    return first


async def drop_plain_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop *table*'s plain indexes (not unique, not backing a constraint); return their
    definitions for rebuilding. Whatever indexes later migrations add are kept this way.

    Run inside the load's transaction, so a failed load gets its indexes back on rollback;
    readers of *table* wait for the load to commit.
    """
    rows = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
             FROM pg_index i
            WHERE i.indrelid = $1::regclass AND NOT i.indisunique AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY i.indexrelid""",
        table,
    )
    for row in rows:
        await conn.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


async def copy_generated(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    n: int,
    make_rows: Callable[[int, int, int], list[tuple[Any, ...]]],
    *,
    chunk_rows: int,
    ahead: int,
    progress: Callable[[int], object] | None = None,
) -> None:
    """COPY *n* generated rows into *table* in chunks, generating ahead in a thread.

    `make_rows(first_id, first_row, count)` builds rows `first_row … first_row + count - 1`
    with ids from a block reserved here. PostgreSQL spends most of a chunk's time on
    foreign-key checks and index maintenance in its own process; one worker thread
    generating the next chunk meanwhile cuts the wall time on two cores. One worker, chunks
    in order: the rows are exactly those of a sequential run. At most *ahead* chunks wait
    in memory, so a million-row load stays flat.

    The table's plain indexes are dropped for the load and rebuilt from their own
    definitions afterwards: sorting a million keys once is far cheaper than scattering them
    into live B-trees. Unique and constraint indexes stay, so uniqueness is checked as rows
    arrive.
    """
    first = await reserve_ids(conn, table, n) if n else 0
    starts = list(range(0, n, chunk_rows))
    rebuild = await drop_plain_indexes(conn, table)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"copy-{table}") as worker:

        def submit(start: int) -> asyncio.Future[list[tuple[Any, ...]]]:
            size = min(chunk_rows, n - start)
            return loop.run_in_executor(worker, make_rows, first + start, start, size)

        pending = deque(submit(start) for start in starts[:ahead])
        queued = len(pending)
        while pending:
            rows = await pending.popleft()
            if queued < len(starts):
                pending.append(submit(starts[queued]))
                queued += 1
            await conn.copy_records_to_table(table, records=rows, columns=columns)
            if progress is not None:
                progress(len(rows))
    if rebuild:
        log.info("rebuilding %d indexes of %s", len(rebuild), table)
    for definition in rebuild:
        await conn.execute(definition)


@asynccontextmanager
async def loading_unchecked(
    conn: asyncpg.Connection, table: str, triggers: Sequence[str] = ()
) -> AsyncIterator[None]:
    """Within the load's transaction, as *table*'s owner: its foreign keys, its primary key
    and unique constraints that no other table references, and its plain indexes are dropped,
    and its *triggers* (by name) disabled, for the block; then all are put back from their
    own definitions, which checks every row once — a hash join per foreign key and a sort
    per key, instead of a lookup per row and key (for a table of small rows, a few of them
    per row of its parent, those per-row checks cost several times the COPY itself).

    On an error the block raises and the transaction's rollback restores the table; the
    caller names only triggers whose rule its rows meet by construction.
    """
    fks = await conn.fetch(
        """SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
            WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY oid""",
        table,
    )
    for fk in fks:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {fk['conname']}")
    keys = await conn.fetch(
        """SELECT c.conname, pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c
            WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u')
              AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                               WHERE f.contype = 'f' AND f.conindid = c.conindid)
            ORDER BY c.oid""",
        table,
    )
    for key in keys:
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {key['conname']}")
    indexes = await drop_plain_indexes(conn, table)
    for name in triggers:
        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
    yield
    for name in triggers:
        await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
    for key in keys:
        await conn.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {key['conname']} {key['definition']}"
        )
    for definition in indexes:
        await conn.execute(definition)
    for fk in fks:
        await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {fk['conname']} {fk['definition']}")
