"""Storing an archive (docs/ARCHITECTURE.md §9): an idempotent upsert on tag, chunk by chunk.

- Each row is checked on its own (`server.archive.validation`); a bad row is reported and
  the good rows of the file are stored.
- Checks that need the database run in SQL against a staging table (COPY of the chunk,
  `server.db.bulk.Staging`): a tag repeated in the file (the **first** line that passed
  the row checks wins, later lines are rejected naming it — silently letting a later line
  win would hide a data error), a barcode repeated in the file or already carried by
  *another* cylinder, a tag owned by another company (company administrators only ever
  touch their own cylinders), and a status change the life cycle forbids — a scrapped
  cylinder put back into use (a tag is never reused after scrapping). The query returns
  every row whose status changes and the domain judges the move
  (`server.domain.transitions.check_transition`, the rule the API and the database
  trigger apply too).
- Then one `INSERT … ON CONFLICT (tag) DO UPDATE … WHERE … IS DISTINCT FROM …` per chunk:
  importing the same file twice changes nothing and reports every row as unchanged.
  The file is the record: an empty optional cell clears that field.
- Newly inserted cylinders get a `register` (建档) trajectory event; each import (not a dry
  run) writes one audit row with its counts, and each chunk that changed existing cylinders
  one more (`cylinder.import.changes`), in the chunk's transaction, naming every changed
  cylinder by tag with the fields it changed, before and after. One row per chunk, not per
  cylinder: the audit log's hash chain is built row by row under one lock (migration 0050,
  ~37 µs a row on the 2-core test machine), which would add about 40 s and hold off every
  other audit writer for a million-row re-import; per chunk the cost is one row.
- Each chunk commits on its own, so a long import never holds row locks that ingest (which
  updates the live state of the same cylinders) would wait on. The price: an import stopped
  part way (a CSV syntax error at line N, a crash) leaves the chunks before it stored; the
  upsert is idempotent, so importing the corrected file again is always safe.
- A dry run does everything, including the SQL checks and the upsert, inside savepoints that
  are rolled back, so its counts are exactly those a real import would report.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

import asyncpg

from server.archive.interface import CHUNK_ROWS, IMPORT_ROLES, ImportReport, RejectedRow
from server.archive.reader import ArchiveSource
from server.archive.validation import (
    STAGE,
    BadValue,
    Context,
    OwnerCompany,
    Staged,
    show,
    validate_row,
)
from server.domain.events import EventKind, epcis_for
from server.domain.transitions import TransitionRefused, check_transition
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.principal import Principal
from server.kernel.settings import Settings

_CREATE_TEMP: Final = f"""
{STAGE.ddl()};
CREATE TEMP TABLE IF NOT EXISTS cyl_import_seen_tag (tag text PRIMARY KEY, line integer NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS cyl_import_seen_barcode (
    barcode text PRIMARY KEY, tag text NOT NULL, line integer NOT NULL
);
TRUNCATE cyl_import_stage, cyl_import_seen_tag, cyl_import_seen_barcode;
"""
# Temp tables live as long as the (pooled) connection; they are created once and emptied
# rather than dropped, because asyncpg caches prepared statements that name them.

_CHECK_SQL: Final = """
SELECT s.line, s.tag, s.barcode, s.status,
       t.line AS dup_line,
       (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint) AS other_company,
       c.status AS old_status,
       b.line AS barcode_dup_line,
       o.tag AS barcode_owner
  FROM cyl_import_stage s
  LEFT JOIN cyl_import_seen_tag t ON t.tag = s.tag
  LEFT JOIN cylinders c ON c.tag = s.tag
  LEFT JOIN cyl_import_seen_barcode b ON b.barcode = s.barcode AND b.tag <> s.tag
  LEFT JOIN cylinders o ON o.barcode = s.barcode AND o.tag <> s.tag
 WHERE t.tag IS NOT NULL
    OR (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint)
    OR c.status <> s.status
    OR b.barcode IS NOT NULL
    OR o.id IS NOT NULL
"""

_UPDATED_COLUMNS: Final = (
    "stamp",
    "barcode",
    "owner_company_id",
    "spec",
    "medium",
    "manufacturer",
    "manufacture_date",
    "tare_kg",
    "volume_l",
    "last_inspection_date",
    "next_inspection_date",
    "scrap_date",
    "status",
)

_CHANGED_FIELDS: Final = ", ".join(
    f"'{col}', CASE WHEN o.{col} IS DISTINCT FROM up.new_{col}"
    f" THEN jsonb_build_array(o.{col}, up.new_{col}) END"
    for col in _UPDATED_COLUMNS
)
"""For an updated cylinder, ``{field: [before, after]}`` of the fields the import changed."""

_UPSERT_SQL: Final = f"""
WITH old AS (
    -- the rows as they were: a statement's CTEs all see the data from before it
    SELECT c.id, {", ".join(f"c.{col}" for col in _UPDATED_COLUMNS)}
      FROM cylinders c JOIN cyl_import_stage s ON s.tag = c.tag
), up AS (
    INSERT INTO cylinders AS c (
        tag, {", ".join(_UPDATED_COLUMNS)}, district_code, registered_by_site_id)
    SELECT tag, {", ".join(_UPDATED_COLUMNS)}, owner_district, $1::bigint
      FROM cyl_import_stage
    ON CONFLICT (tag) DO UPDATE SET
        {", ".join(f"{col} = EXCLUDED.{col}" for col in _UPDATED_COLUMNS)}, updated_at = now()
    WHERE ({", ".join(f"c.{col}" for col in _UPDATED_COLUMNS)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{col}" for col in _UPDATED_COLUMNS)})
    RETURNING c.id, c.tag, c.owner_company_id, c.district_code, (c.xmax = 0) AS inserted,
              {", ".join(f"c.{col} AS new_{col}" for col in _UPDATED_COLUMNS)}
), changed AS (
    SELECT jsonb_object_agg(up.tag, jsonb_strip_nulls(jsonb_build_object({_CHANGED_FIELDS})))
           AS cylinders
      FROM up JOIN old o ON o.id = up.id
     WHERE NOT up.inserted
), audited AS (
    -- one audit row per chunk that changed cylinders, in the chunk's transaction
    INSERT INTO audit_log (user_id, username, role, action, entity, details, remote)
    SELECT $7, $5, $8, 'cylinder.import.changes', 'cylinder',
           jsonb_build_object('file', $9::text, 'cylinders', changed.cylinders), $10
      FROM changed WHERE changed.cylinders IS NOT NULL
), ev AS (
    INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                        company_id, district_code, operator, details)
    SELECT now(), 'import-' || up.tag, up.id, up.tag, $2, $3, $4, $1::bigint,
           up.owner_company_id, up.district_code, $5, $6::jsonb
      FROM up WHERE up.inserted
    ON CONFLICT DO NOTHING
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
  FROM up
"""
# (xmax = 0) is PostgreSQL's documented-by-practice way to tell an inserted row from an
# updated one in ON CONFLICT's RETURNING; rows the WHERE skipped are not returned at all,
# which is how "unchanged" is counted.


class _Rollback(Exception):
    """Raised inside a savepoint to undo a dry run's writes."""


async def _context(conn: asyncpg.Connection, settings: Settings, principal: Principal) -> Context:
    rows = await conn.fetch("SELECT id, code, district_code FROM companies")
    companies = {r["code"]: OwnerCompany(r["id"], r["district_code"]) for r in rows}
    only = principal.company_id if principal.role == "company_admin" else None
    specs = {spec.casefold(): spec for spec in settings.models}
    return Context(settings, companies, only, city_today(settings), specs)


def _next_chunk(
    src: ArchiveSource, ctx: Context, report: ImportReport
) -> tuple[list[Staged], int, bool]:
    """Read and check up to CHUNK_ROWS data rows (runs in a worker thread: CPU-bound)."""
    staged: list[Staged] = []
    seen_tags: dict[str, int] = {}
    seen_barcodes: dict[str, tuple[str, int]] = {}
    read = 0
    for line, cells in src.rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # blank rows (Excel leaves them at the end) are not data
        read += 1
        try:
            rec = validate_row(line, cells, src, ctx)
        except BadValue as bad:
            report.reject(RejectedRow(line, bad.column, show(bad.value), bad.reason))
        else:
            tag, barcode = rec[1], rec[3]
            first = seen_tags.get(tag)
            if first is not None:
                report.reject(
                    RejectedRow(line, "tag", tag, f"tag {tag} repeats line {first} of this file")
                )
            elif barcode is not None and barcode in seen_barcodes:
                other_tag, other_line = seen_barcodes[barcode]
                report.reject(
                    RejectedRow(
                        line,
                        "barcode",
                        barcode,
                        f"barcode {barcode} is also given to tag {other_tag} on line {other_line}",
                    )
                )
            else:
                seen_tags[tag] = line
                if barcode is not None:
                    seen_barcodes[barcode] = (tag, line)
                staged.append(rec)
        if read >= CHUNK_ROWS:
            return staged, read, False
    return staged, read, True


async def _store_chunk(
    conn: asyncpg.Connection,
    staged: list[Staged],
    ctx: Context,
    principal: Principal,
    report: ImportReport,
    remote: str | None,
) -> None:
    """Stage, check against the database, upsert, and audit what changed (the fields of each
    updated cylinder, before and after). One transaction (savepoints if dry run)."""
    if not staged:
        return
    register = epcis_for(EventKind.register)
    details = {"source": "import", "file": report.filename, "by": principal.username}
    site_id = principal.site_id if principal.role == "inspector" else None
    async with conn.transaction():
        await STAGE.clear(conn)
        await STAGE.load(conn, staged)
        await conn.execute("ANALYZE cyl_import_stage")
        checked = await conn.fetch(_CHECK_SQL, ctx.only_company)
        await conn.execute(
            "INSERT INTO cyl_import_seen_tag (tag, line) SELECT tag, line FROM cyl_import_stage"
            " ON CONFLICT DO NOTHING"
        )
        problems = [r for p in checked if (r := _db_rejection(p)) is not None]
        if problems:
            for problem in problems:
                report.reject(problem)
            await conn.execute(
                "DELETE FROM cyl_import_stage WHERE line = ANY($1::int[])",
                [r.line for r in problems],
            )
        await conn.execute(
            "INSERT INTO cyl_import_seen_barcode (barcode, tag, line)"
            " SELECT barcode, tag, line FROM cyl_import_stage WHERE barcode IS NOT NULL"
            " ON CONFLICT DO NOTHING"
        )
        args = (
            site_id,
            EventKind.register.value,
            register.biz_step,
            register.disposition,
            principal.username,
            details,
            principal.user_id,
            principal.role,
            report.filename,
            remote,
        )
        if report.dry_run:
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(_UPSERT_SQL, *args)
                    raise _Rollback
            except _Rollback:
                pass
        else:
            row = await conn.fetchrow(_UPSERT_SQL, *args)
    assert row is not None
    inserted, updated = int(row["inserted"]), int(row["updated"])
    report.inserted += inserted
    report.updated += updated
    report.unchanged += len(staged) - len(problems) - inserted - updated


def _db_rejection(p: asyncpg.Record) -> RejectedRow | None:
    """Why a row the check query returned is refused, or None: a row whose status changes
    is returned so that the domain judges the move, and the domain may allow it."""
    line, tag, barcode = p["line"], p["tag"], p["barcode"]
    if p["dup_line"] is not None:
        return RejectedRow(line, "tag", tag, f"tag {tag} repeats line {p['dup_line']} of this file")
    if p["other_company"]:
        return RejectedRow(line, "tag", tag, "tag belongs to another company")
    if p["old_status"] is not None:
        try:
            # role None: the import acts for another system of record, bound by the life
            # cycle alone (server.domain.transitions)
            check_transition(p["old_status"], p["status"], None)
        except TransitionRefused as refused:
            return RejectedRow(
                line, "status", p["status"], f"the cylinder is {p['old_status']}; {refused.message}"
            )
    if p["barcode_dup_line"] is not None:
        return RejectedRow(
            line,
            "barcode",
            barcode,
            f"barcode {barcode} is also given to another tag on line {p['barcode_dup_line']}",
        )
    if p["barcode_owner"] is not None:
        return RejectedRow(
            line,
            "barcode",
            barcode,
            f"barcode {barcode} already belongs to cylinder {p['barcode_owner']}",
        )
    return None


async def import_archive(
    conn: asyncpg.Connection,
    src: ArchiveSource,
    settings: Settings,
    principal: Principal,
    *,
    filename: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    remote: str | None = None,
) -> ImportReport:
    """Import an opened archive as *principal* (who must hold one of IMPORT_ROLES).

    Raises `ArchiveFileError` for a whole-file problem met while reading; `PermissionError`
    if the role may not import. Everything about individual rows is in the report.
    """
    if principal.role not in IMPORT_ROLES:
        raise PermissionError(f"role {principal.role} may not import archives")
    kept = settings.http.max_rejected_rows_kept
    report = ImportReport(
        filename=filename,
        format=src.format,
        encoding=src.encoding,
        dry_run=dry_run,
        rejected_kept_max=kept,
    )
    if src.ignored_columns:
        names = ", ".join(src.ignored_columns)
        report.warnings.append(f"column(s) ignored, not part of the archive interface: {names}")
    ctx = await _context(conn, settings, principal)
    await conn.execute(_CREATE_TEMP)
    try:
        done = False
        while not done:
            staged, read, done = await asyncio.to_thread(_next_chunk, src, ctx, report)
            report.total_rows += read
            for attempt in range(2):
                try:
                    await _store_chunk(conn, staged, ctx, principal, report, remote)
                    break
                except asyncpg.UniqueViolationError:
                    # a concurrent writer took a barcode between our check and the upsert:
                    # the chunk rolled back; checking again reports the row instead
                    if attempt:
                        raise
            if progress is not None and read:
                progress(read)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute(
                "TRUNCATE cyl_import_stage, cyl_import_seen_tag, cyl_import_seen_barcode"
            )
    report.rejected.sort(key=lambda r: r.line)
    if report.rejected_total > len(report.rejected):
        report.warnings.append(
            f"{report.rejected_total} rows rejected; only {kept} of them are listed"
        )
    if not dry_run:
        await audit(conn, principal, "cylinder.import", "cylinder", None, report.summary(), remote)
    return report
