"""Storing an archive (docs/ARCHITECTURE.md §9): an idempotent upsert on tag, chunk by chunk.

- Each row is checked on its own (`server.archive.validation`); a bad row is reported and
  the good rows of the file are stored.
- Checks that need the database run in SQL against a staging table (COPY of the chunk,
  `server.db.bulk.Staging`): a tag repeated in the file (the **first** line that passed
  the row checks wins, later lines are rejected naming it — silently letting a later line
  win would hide a data error), a barcode repeated in the file or already carried by
  *another* cylinder, a tag owned by another company (company administrators only ever
  touch their own cylinders), a voided tag brought back to use, and — for every row that
  would change an existing cylinder — the change itself, judged exactly as a change by hand
  (``PATCH /api/v1/cylinders/{id}``): the query returns each such row with its fields before
  and after, and the domain decides whether the importing person's role may change those
  fields and make that status move (`server.domain.record_changes.check_change`, the rule
  the API applies too; the database trigger refuses an un-scrapping as well). A file is
  not a side door: a company cannot move its cylinders' inspection or scrap dates (which
  the gun trusts), nor an inspection agency a cylinder's owner.
- Then one `INSERT … ON CONFLICT (tag) DO UPDATE … WHERE … IS DISTINCT FROM …` per chunk:
  importing the same file twice changes nothing and reports every row as unchanged.
  The file is the record: an empty optional cell clears that field.
- Newly inserted cylinders get a `register` (建档) trajectory event and each changed one
  the events a PATCH records — `status_change` / `lost` / `scrap` when its status moved,
  `update` naming the other fields that changed; each import (not a dry run) writes one
  audit row with its counts, and each chunk that changed existing cylinders
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

from server.archive.interface import CHUNK_ROWS, IMPORT_ROLES, Cell, ImportReport, RejectedRow
from server.archive.reader import ArchiveSource
from server.archive.validation import (
    STAGE,
    STAGED_INDEX,
    BadValue,
    Context,
    OwnerCompany,
    Staged,
    show,
    stated_findings,
    validate_row,
)
from server.domain.events import EventKind, epcis_for
from server.domain.record_changes import FieldRefused, check_change, status_event
from server.domain.registration import INSPECTION_FINDINGS, refused_at_registration
from server.domain.statuses import CYLINDER_STATUSES, SCRAPPED
from server.domain.transitions import FINAL_STATUSES, Rule, TransitionRefused
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

_FILE_COLUMN: Final = {"owner_company_id": "owner_code"}
"""The file's column for a record field, where they differ (the file names the owner by code)."""

_BEFORE_AFTER: Final = ", ".join(
    f"'{col}', CASE WHEN c.{col} IS DISTINCT FROM s.{col} THEN jsonb_build_array(c.{col}, s.{col}) END"
    for col in _UPDATED_COLUMNS
)

_CHECK_SQL: Final = f"""
SELECT s.line, s.tag, s.barcode, s.status,
       t.line AS dup_line,
       (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint) AS other_company,
       c.status AS old_status,
       c.tag_voided,
       CASE WHEN c.id IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object({_BEFORE_AFTER}))
       END AS changed,
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
    OR (c.id IS NOT NULL
        AND ({", ".join(f"c.{col}" for col in _UPDATED_COLUMNS)})
            IS DISTINCT FROM ({", ".join(f"s.{col}" for col in _UPDATED_COLUMNS)}))
    OR b.barcode IS NOT NULL
    OR o.id IS NOT NULL
"""
"""Every staged row that is a repeat, names another company's tag, would change an existing
cylinder (``changed``: ``{field: [before, after]}`` of the fields that differ), or carries a
barcode another line or cylinder has."""

_EVENT_FIELDS: Final = sorted(col for col in _UPDATED_COLUMNS if col != "status")
"""Fields an ``update`` event names, sorted as ``PATCH`` lists them."""

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
    RETURNING c.id, c.tag, c.owner_company_id, c.district_code, c.location_site_id,
              (c.xmax = 0) AS inserted,
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
), moves AS (
    SELECT up.id, up.tag, up.owner_company_id, up.district_code, up.location_site_id,
           o.status AS old_status, up.new_status,
           array_remove(ARRAY[{
    ", ".join(
        f"CASE WHEN o.{col} IS DISTINCT FROM up.new_{col} THEN '{col}' END" for col in _EVENT_FIELDS
    )
}]::text[], NULL) AS fields
      FROM up JOIN old o ON o.id = up.id
     WHERE NOT up.inserted
), moved AS (
    -- the trajectory events a PATCH records (server.api.cylinder_changes): the status move
    -- first, then an update naming the other fields
    INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                        company_id, district_code, operator, details)
    SELECT clock_timestamp(), $11 || '-' || m.id || '-' || e.n, m.id, m.tag, e.kind,
           e.biz_step, e.disposition, m.location_site_id, m.owner_company_id, m.district_code,
           $5, e.details
      FROM moves m
      CROSS JOIN LATERAL (
          SELECT 1 AS n, $12::jsonb -> m.new_status ->> 0 AS kind,
                 $12::jsonb -> m.new_status ->> 1 AS biz_step,
                 $12::jsonb -> m.new_status ->> 2 AS disposition,
                 jsonb_build_object('from', m.old_status, 'to', m.new_status,
                                    'source', 'import', 'file', $9::text) AS details
           WHERE m.old_status IS DISTINCT FROM m.new_status
          UNION ALL
          SELECT 2, $13::text, $14::text, $15::text,
                 jsonb_build_object('fields', to_jsonb(m.fields),
                                    'source', 'import', 'file', $9::text)
           WHERE cardinality(m.fields) > 0
      ) e
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


def _status_events() -> dict[str, list[str | None]]:
    """Status → [event kind, EPCIS step, disposition] of the event a move to it records."""
    out: dict[str, list[str | None]] = {}
    for status in CYLINDER_STATUSES:
        kind = status_event(status)
        mapping = epcis_for(kind)
        out[status] = [kind.value, mapping.biz_step, mapping.disposition]
    return out


_STATUS_EVENTS: Final = _status_events()
_UPDATE_EVENT: Final = epcis_for(EventKind.update)


async def _context(conn: asyncpg.Connection, settings: Settings, principal: Principal) -> Context:
    rows = await conn.fetch("SELECT id, code, district_code FROM companies")
    companies = {r["code"]: OwnerCompany(r["id"], r["district_code"]) for r in rows}
    only = principal.company_id if principal.role == "company_admin" else None
    specs = {spec.casefold(): spec for spec in settings.models}
    codes = {r["id"]: r["code"] for r in rows}
    restricted = refused_at_registration(principal.role, sorted(INSPECTION_FINDINGS)) is not None
    return Context(settings, companies, only, city_today(settings), specs, codes, restricted)


@dataclass
class _Chunk:
    """Up to CHUNK_ROWS data rows, checked on their own."""

    staged: list[Staged] = field(default_factory=list)
    cells_of: dict[int, list[Cell]] = field(default_factory=dict)
    """The original cells of each staged line (only when the report keeps rejected rows
    whole)."""
    stated_of: dict[int, list[str]] = field(default_factory=dict)
    """Inspection findings each staged line states (only for a role that may not state them
    when it registers a cylinder: whether the line registers one is known in SQL)."""
    read: int = 0
    done: bool = True


def _next_chunk(src: ArchiveSource, ctx: Context, report: ImportReport) -> _Chunk:
    """Read and check up to CHUNK_ROWS data rows (runs in a worker thread: CPU-bound)."""
    chunk = _Chunk()
    seen_tags: dict[str, int] = {}
    seen_barcodes: dict[str, tuple[str, int]] = {}
    for line, cells in src.rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # blank rows (Excel leaves them at the end) are not data
        chunk.read += 1
        try:
            rec = validate_row(line, cells, src, ctx)
        except BadValue as bad:
            report.reject(RejectedRow(line, bad.column, show(bad.value), bad.reason), cells)
        else:
            tag, barcode = rec[1], rec[3]
            first = seen_tags.get(tag)
            if first is not None:
                report.reject(
                    RejectedRow(line, "tag", tag, f"tag {tag} repeats line {first} of this file"),
                    cells,
                )
            elif barcode is not None and barcode in seen_barcodes:
                other_tag, other_line = seen_barcodes[barcode]
                report.reject(
                    RejectedRow(
                        line,
                        "barcode",
                        barcode,
                        f"barcode {barcode} is also given to tag {other_tag} on line {other_line}",
                    ),
                    cells,
                )
            else:
                seen_tags[tag] = line
                if barcode is not None:
                    seen_barcodes[barcode] = (tag, line)
                chunk.staged.append(rec)
                if report.keep_cells:
                    chunk.cells_of[line] = cells
                if ctx.registration_restricted and (stated := stated_findings(cells, src)):
                    chunk.stated_of[line] = stated
        if chunk.read >= CHUNK_ROWS:
            chunk.done = False
            return chunk
    return chunk


async def _store_chunk(
    conn: asyncpg.Connection,
    chunk: _Chunk,
    ctx: Context,
    principal: Principal,
    report: ImportReport,
    remote: str | None,
) -> None:
    """Stage, check against the database (the role's change rules included), upsert, record
    the trajectory events, and audit what changed (the fields of each updated cylinder,
    before and after). One transaction (savepoints if dry run)."""
    staged = chunk.staged
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
        problems = [r for p in checked if (r := _db_rejection(p, principal, ctx)) is not None]
        if chunk.stated_of:
            problems += await _registration_refusals(conn, chunk, principal, problems)
        if problems:
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
            f"import-{uuid.uuid4()}",
            _STATUS_EVENTS,
            EventKind.update.value,
            _UPDATE_EVENT.biz_step,
            _UPDATE_EVENT.disposition,
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
    # counted once the chunk is through: a chunk tried again (import_archive) counts once
    for problem in problems:
        report.reject(problem, chunk.cells_of.get(problem.line))
    inserted, updated = int(row["inserted"]), int(row["updated"])
    report.inserted += inserted
    report.updated += updated
    report.unchanged += len(staged) - len(problems) - inserted - updated


async def _registration_refusals(
    conn: asyncpg.Connection, chunk: _Chunk, principal: Principal, already: list[RejectedRow]
) -> list[RejectedRow]:
    """Lines that register a new cylinder stating a finding the role may not state when it
    registers (``server.domain.registration``, the rule of ``POST /api/v1/cylinders``): a
    company's word does not set the dates that decide whether a cylinder may be filled."""
    refused_lines = {r.line for r in already}
    lines = [line for line in chunk.stated_of if line not in refused_lines]
    new_lines = await conn.fetch(
        "SELECT s.line, s.tag FROM cyl_import_stage s"
        " WHERE s.line = ANY($1::int[])"
        " AND NOT EXISTS (SELECT 1 FROM cylinders c WHERE c.tag = s.tag)",
        lines,
    )
    out = []
    for rec in new_lines:
        line = rec["line"]
        field = refused_at_registration(principal.role, chunk.stated_of[line])
        if field is not None:
            out.append(
                RejectedRow(
                    line,
                    field,
                    _stated_value(chunk, line, field),
                    f"{field}: role {principal.role} may not state this when registering a "
                    "cylinder; the dates are derived from manufacture_date and set by "
                    "inspections (leave the cell empty)",
                )
            )
    return out


def _stated_value(chunk: _Chunk, line: int, field: str) -> str:
    for rec in chunk.staged:
        if rec[0] == line:
            value = rec[STAGED_INDEX[field]]
            return "" if value is None else str(value)
    return ""  # pragma: no cover - every stated line is staged


def _db_rejection(p: asyncpg.Record, principal: Principal, ctx: Context) -> RejectedRow | None:
    """Why a row the check query returned is refused, or None: a row that changes an existing
    cylinder is returned so that the domain judges the change, and the domain may allow it."""
    line, tag, barcode = p["line"], p["tag"], p["barcode"]
    if p["dup_line"] is not None:
        return RejectedRow(line, "tag", tag, f"tag {tag} repeats line {p['dup_line']} of this file")
    changed: dict[str, list[Any]] = p["changed"] or {}
    if (p["tag_voided"] or p["old_status"] in FINAL_STATUSES) and p["status"] != p["old_status"]:
        # the record is scrapped (its tag voided): whether the row revives it or registers a
        # new cylinder on the old chip, the tag is what cannot be (POST says so too)
        return RejectedRow(
            line,
            "tag",
            tag,
            f"tag {tag} is voided: its cylinder was scrapped, a scrapped cylinder never returns"
            " to use and its tag is never used again (a new cylinder needs a new tag)",
        )
    if p["other_company"]:
        return RejectedRow(line, "tag", tag, "tag belongs to another company")
    if changed:
        refused = _change_refused(p, changed, principal, ctx)
        if refused is not None:
            return refused
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


def _change_refused(
    p: asyncpg.Record, changed: dict[str, list[Any]], principal: Principal, ctx: Context
) -> RejectedRow | None:
    """The role's rule for a change of an existing record, as ``PATCH`` applies it
    (``server.domain.record_changes.check_change``); the first refused field in the file's
    column order is named, with its value on record and in the file."""
    line, old_status, new_status = p["line"], p["old_status"], p["status"]
    role = principal.role
    try:
        check_change(role, [c for c in _UPDATED_COLUMNS if c in changed], old_status, new_status)
    except FieldRefused as exc:
        column = _FILE_COLUMN.get(exc.field, exc.field)
        before, after = (_as_text(exc.field, v, ctx) for v in changed[exc.field])
        return RejectedRow(
            line,
            column,
            after,
            f"role {role} may not change {column} (on record: {before or 'empty'}, "
            f"in the file: {after or 'empty'})",
        )
    except TransitionRefused as exc:
        if exc.rule is Rule.ROLE_MAY_NOT_SET:
            why = f"role {role} may not set status {new_status} ({exc.message})"
        elif exc.rule is Rule.FINAL and old_status == SCRAPPED:
            why = f"the cylinder is scrapped; {exc.message}"
        else:
            why = f"the cylinder is {old_status}; {exc.message}"
        return RejectedRow(line, "status", new_status, why)
    return None


def _as_text(field: str, value: Any, ctx: Context) -> str:
    """A value of the check query as the file shows it (an owner by its company code)."""
    if value is None:
        return ""
    if field == "owner_company_id":
        return ctx.company_codes.get(int(value), str(value))
    return str(value)


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
    keep_rejected_cells: bool = False,
) -> ImportReport:
    """Import an opened archive as *principal* (who must hold one of IMPORT_ROLES).

    Raises `ArchiveFileError` for a whole-file problem met while reading; `PermissionError`
    if the role may not import. Everything about individual rows is in the report; with
    *keep_rejected_cells* it also keeps each listed rejected row's original cells, so that
    the rows can be given back to be corrected (`ImportReport.rejected_rows_csv`).
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
        keep_cells=keep_rejected_cells,
        header=list(src.header),
    )
    if src.ignored_columns:
        names = ", ".join(src.ignored_columns)
        report.warnings.append(f"column(s) ignored, not part of the archive interface: {names}")
    ctx = await _context(conn, settings, principal)
    await conn.execute(_CREATE_TEMP)
    try:
        done = False
        while not done:
            chunk = await asyncio.to_thread(_next_chunk, src, ctx, report)
            done, read = chunk.done, chunk.read
            report.total_rows += read
            for attempt in range(2):
                try:
                    await _store_chunk(conn, chunk, ctx, principal, report, remote)
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
