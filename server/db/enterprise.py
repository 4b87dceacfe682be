"""The enterprise data interface's ledger in PostgreSQL (migration 0190; docs/API.md
"Enterprise data interface", docs/ARCHITECTURE.md §9).

An enterprise names every record it pushes with its own ``record_id``. The first time a
record of a company is *stored*, its result is written to ``enterprise_records`` in the same
transaction as the cylinder or fill itself, so a record sent again — a retry after a timeout,
a whole batch replayed — is answered "duplicate" with that first result and stores nothing.
A company's batches run one after another (:func:`lock_company`, a transaction-level advisory
lock), so two copies of one batch sent at once cannot both store a record.

Why the results are kept whole (jsonb) rather than recomputed: "duplicate" must answer what
the record did *then* (created, its cylinder id, the fill's decision), not what the cylinder
looks like now; what it looks like now is what the pull-back reads (:data:`PULL_CYLINDERS`,
:data:`PULL_FILLS`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import asyncpg
import orjson

from server.kernel.scope import Sql

__all__ = [
    "PULL_CYLINDERS",
    "PULL_FILLS",
    "Entry",
    "Kind",
    "first_results",
    "ledger_where",
    "lock_company",
    "remember",
]

Kind = Literal["cylinder", "fill"]

_LOCK_SPACE: Final = 0x43_57_45_49  # "CWEI": the first key of the two-key advisory lock
"""Keeps these locks apart from every other advisory lock of the platform (the second key is
the company id, 0 for the administrators' shared namespace)."""


async def lock_company(conn: asyncpg.Connection, company_id: int | None) -> None:
    """Serialise a company's batches until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_SPACE, company_id or 0)


def _owner(company_id: int | None, first: int) -> tuple[str, list[Any]]:
    """The WHERE term naming the ledger's namespace (an index probe either way)."""
    if company_id is None:
        return "company_id IS NULL", []
    return f"company_id = ${first}", [company_id]


async def first_results(
    conn: asyncpg.Connection, company_id: int | None, kind: Kind, record_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """record_id → the first result stored under it (with ``first_at``), for those seen."""
    if not record_ids:
        return {}
    owner, params = _owner(company_id, 3)
    rows = await conn.fetch(
        "SELECT record_id, result, created_at FROM enterprise_records"
        f" WHERE kind = $1 AND record_id = ANY($2::text[]) AND {owner}",
        kind,
        list(record_ids),
        *params,
    )
    return {r["record_id"]: {**r["result"], "first_at": r["created_at"]} for r in rows}


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored record: its id, what it points at, and the result given for it."""

    record_id: str
    result: dict[str, Any]
    cylinder_id: int | None = None
    fill_msg_id: str | None = None
    fill_ts: dt.datetime | None = None


async def remember(
    conn: asyncpg.Connection,
    company_id: int | None,
    kind: Kind,
    user_id: int,
    entries: Sequence[Entry],
) -> None:
    """Write the ledger rows of the records a batch stored (one statement)."""
    if not entries:
        return
    await conn.execute(
        """INSERT INTO enterprise_records
               (company_id, kind, user_id, record_id, cylinder_id, fill_msg_id, fill_ts, result)
           SELECT $1, $2, $3, r.record_id, r.cylinder_id, r.fill_msg_id, r.fill_ts,
                  r.result::jsonb
             FROM unnest($4::text[], $5::bigint[], $6::text[], $7::timestamptz[], $8::text[])
                  AS r (record_id, cylinder_id, fill_msg_id, fill_ts, result)""",
        company_id,
        kind,
        user_id,
        [e.record_id for e in entries],
        [e.cylinder_id for e in entries],
        [e.fill_msg_id for e in entries],
        [e.fill_ts for e in entries],
        [orjson.dumps(e.result).decode() for e in entries],
    )


def ledger_where(company_id: int | None, kind: Kind, q: Sql) -> str:
    """The pull-back's WHERE on ``enterprise_records r``: one namespace, one kind."""
    owner = "r.company_id IS NULL" if company_id is None else f"r.company_id = {q.add(company_id)}"
    return f"r.kind = {q.add(kind)} AND {owner}"


PULL_CYLINDERS: Final = """r.id AS seq, r.record_id, r.created_at AS received_at, r.result,
    c.id AS cylinder_id, c.tag, c.stamp, c.barcode, co.code AS owner_code, c.spec, c.medium,
    c.manufacturer, c.manufacture_date, c.tare_kg, c.volume_l, c.last_inspection_date,
    c.next_inspection_date, c.scrap_date, c.status, c.updated_at"""
"""The columns of a pulled cylinder record: the ledger's, then the cylinder as it is now in
the archive interface's columns (the fields a record is pushed with)."""

PULL_FILLS: Final = """r.id AS seq, r.record_id, r.created_at AS received_at, r.result,
    f.ts, f.ts_start, f.msg_id, f.gun_id, s.code AS station_code, f.cylinder_id, f.tag,
    f.spec, f.net_kg, f.tare_kg, f.gross_kg, f.result AS fill_result, f.assessment,
    f.operator, f.pre_check, f.post_check"""
"""The columns of a pulled fill record: the ledger's, then the stored fill."""
