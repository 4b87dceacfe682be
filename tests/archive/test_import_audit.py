"""An import audits every cylinder it changed (docs/SECURITY.md "Audit log"): per chunk, in
the chunk's transaction, the changed fields of each updated cylinder before and after;
nothing for unchanged or new cylinders (they get a register event), nothing for a dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from server.kernel.settings import Settings
from tests.archive.conftest import Arc, csv_bytes, run_import, write_file


async def _changes(pool: asyncpg.Pool, name: str, after: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT username, role, details FROM audit_log WHERE action = 'cylinder.import.changes'"
        " AND details->>'file' = $1 AND id > $2 ORDER BY id",
        name,
        after,
    )
    assert all(r["username"] == "t_admin" and r["role"] == "admin" for r in rows)
    return [r["details"]["cylinders"] for r in rows]


async def test_changed_cylinders_are_audited_with_before_and_after(
    pool: asyncpg.Pool, settings: Settings, arc: Arc, tmp_path: Path
) -> None:
    rows = [arc.row() for _ in range(4)]
    path = write_file(tmp_path, csv_bytes(rows), name=f"audit-{arc.prefix}.csv")
    start = await pool.fetchval("SELECT max(id) FROM audit_log")
    await run_import(pool, settings, path, arc.admin)
    assert await _changes(pool, path.name, start) == []  # new cylinders: register events
    rows[1]["tare_kg"] = "16.25"
    rows[2]["status"] = "suspended"
    rows[2]["barcode"] = ""
    path = write_file(tmp_path, csv_bytes(rows), name=path.name)
    mark = await pool.fetchval("SELECT max(id) FROM audit_log")
    dry = await run_import(pool, settings, path, arc.admin, dry_run=True)
    assert dry.updated == 2 and await _changes(pool, path.name, mark) == []
    report = await run_import(pool, settings, path, arc.admin)
    assert report.updated == 2
    (changed,) = await _changes(pool, path.name, mark)
    before = changed[rows[2]["tag"]]["barcode"][0]
    assert before  # the barcode it had, cleared by the empty cell
    assert changed == {
        rows[1]["tag"]: {"tare_kg": [15.5, 16.25]},
        rows[2]["tag"]: {"status": ["in_service", "suspended"], "barcode": [before, None]},
    }
    again = await pool.fetchval("SELECT max(id) FROM audit_log")
    await run_import(pool, settings, path, arc.admin)  # unchanged: no change row
    assert await _changes(pool, path.name, again) == []
