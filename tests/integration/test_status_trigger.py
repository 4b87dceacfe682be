"""The database refuses un-scrapping (migration 0060_status_transitions), whoever writes.

The API and the archive import refuse the move first (server.domain.transitions); this is
the last line, for a direct SQL UPDATE. Every statement runs in a transaction that is
rolled back, so the shared test city is left as it was.
"""

from __future__ import annotations

import asyncpg
import pytest

from server.domain.statuses import CYLINDER_STATUSES, SCRAPPED
from tests.conftest import World


class _Rollback(Exception):
    pass


async def _in_rollback(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    """Run *sql* in a transaction that never commits (a refusal propagates as is)."""
    async with pool.acquire() as conn:
        with pytest.raises(_Rollback):
            async with conn.transaction():
                await conn.execute(sql, *args)
                raise _Rollback


@pytest.mark.parametrize("status", [s for s in CYLINDER_STATUSES if s != SCRAPPED])
async def test_a_direct_update_cannot_unscrap(
    pool: asyncpg.Pool, world: World, status: str
) -> None:
    cid = world.cylinders["TAG-B-SCRAPPED"]
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await _in_rollback(pool, "UPDATE cylinders SET status = $2 WHERE id = $1", cid, status)
    assert exc.value.constraint_name == "cylinders_scrapped_final"
    assert "never returns to use" in str(exc.value)
    assert await pool.fetchval("SELECT status FROM cylinders WHERE id = $1", cid) == SCRAPPED


async def test_an_upsert_cannot_unscrap_either(pool: asyncpg.Pool, world: World) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await _in_rollback(
            pool,
            """INSERT INTO cylinders AS c (tag, owner_company_id, spec, manufacture_date,
                                          next_inspection_date, scrap_date, status)
               SELECT tag, owner_company_id, spec, manufacture_date, next_inspection_date,
                      scrap_date, 'in_service' FROM cylinders WHERE id = $1
               ON CONFLICT (tag) DO UPDATE SET status = EXCLUDED.status""",
            world.cylinders["TAG-B-SCRAPPED"],
        )


async def test_a_scrapped_record_may_still_be_corrected(pool: asyncpg.Pool, world: World) -> None:
    """Only leaving the status is refused: other fields, and keeping it scrapped, pass."""
    cid = world.cylinders["TAG-B-SCRAPPED"]
    await _in_rollback(
        pool, "UPDATE cylinders SET status = 'scrapped', stamp = 'ST-FIXED' WHERE id = $1", cid
    )
    await _in_rollback(pool, "UPDATE cylinders SET lat = 34.7 WHERE id = $1", cid)


async def test_scrapping_is_allowed(pool: asyncpg.Pool, world: World) -> None:
    await _in_rollback(
        pool, "UPDATE cylinders SET status = 'scrapped' WHERE id = $1", world.cylinders["TAG-A-OK"]
    )
