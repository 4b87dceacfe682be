"""Checking the audit log's hash chain (migration 0050, docs/SECURITY.md "Audit log").

Each row's `hash` is sha256(previous row's hash ‖ the row's canonical text), computed by the
database when the row is inserted. Verifying walks the rows in id order and recomputes both
links with the same SQL function; the first row whose `prev_hash` is not its predecessor's
`hash`, or whose `hash` is not what its own fields give, is where the log was altered.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

VERIFY_SQL = """
WITH chain AS (
    SELECT id, prev_hash, hash,
           lag(hash) OVER (ORDER BY id) AS expected_prev,
           cyl_audit_row_hash(prev_hash, id, at, user_id, username, role, action, entity,
                              entity_id, details, remote) AS recomputed
    FROM audit_log
)
SELECT id,
       CASE WHEN prev_hash IS DISTINCT FROM expected_prev THEN 'prev_hash'
            ELSE 'hash' END AS broken
FROM chain
WHERE prev_hash IS DISTINCT FROM expected_prev OR hash IS DISTINCT FROM recomputed
ORDER BY id
LIMIT 1
"""


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_broken_id: int | None
    broken_link: str | None
    """``prev_hash``: the row does not follow its predecessor (a row before it was removed or
    inserted); ``hash``: the row's own fields were changed after it was written."""

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


async def verify_chain(conn: asyncpg.Connection) -> ChainReport:
    """Recompute the whole chain in one pass (a REPEATABLE READ snapshot: new rows may come)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetchval("SELECT count(*) FROM audit_log")
        bad = await conn.fetchrow(VERIFY_SQL)
    if bad is None:
        return ChainReport(int(rows), None, None)
    return ChainReport(int(rows), int(bad["id"]), str(bad["broken"]))
