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
from server.archive.reasons import reason
from server.archive.statements import CHECK_SQL, CREATE_TEMP, UPDATED_COLUMNS, UPSERT_SQL
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
from server.domain.statuses import CYLINDER_STATUSES
from server.domain.transitions import FINAL_STATUSES, Rule, TransitionRefused, statuses_for
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.principal import Principal
from server.kernel.settings import Settings

_FILE_COLUMN: Final = {"owner_company_id": "owner_code"}
"""The file's column for a record field, where they differ (the file names the owner by code)."""


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
            report.reject(RejectedRow.of(line, bad.column, show(bad.value), bad.why), cells)
        else:
            tag, barcode = rec[1], rec[3]
            first = seen_tags.get(tag)
            if first is not None:
                why = reason("tag_repeated", tag=tag, line=first)
                report.reject(RejectedRow.of(line, "tag", tag, why), cells)
            elif barcode is not None and barcode in seen_barcodes:
                other_tag, other_line = seen_barcodes[barcode]
                why = reason("barcode_repeated", barcode=barcode, tag=other_tag, line=other_line)
                report.reject(RejectedRow.of(line, "barcode", barcode, why), cells)
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
        checked = await conn.fetch(CHECK_SQL, ctx.only_company)
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
                    row = await conn.fetchrow(UPSERT_SQL, *args)
                    raise _Rollback
            except _Rollback:
                pass
        else:
            row = await conn.fetchrow(UPSERT_SQL, *args)
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
            why = reason("finding_not_stated", column=field, role=principal.role)
            out.append(RejectedRow.of(line, field, _stated_value(chunk, line, field), why))
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
        return RejectedRow.of(line, "tag", tag, reason("tag_repeated", tag=tag, line=p["dup_line"]))
    changed: dict[str, list[Any]] = p["changed"] or {}
    if (p["tag_voided"] or p["old_status"] in FINAL_STATUSES) and p["status"] != p["old_status"]:
        # the record is scrapped (its tag voided): whether the row revives it or registers a
        # new cylinder on the old chip, the tag is what cannot be (POST says so too)
        return RejectedRow.of(line, "tag", tag, reason("tag_voided", tag=tag))
    if p["other_company"]:
        return RejectedRow.of(line, "tag", tag, reason("tag_other_company"))
    if changed:
        refused = _change_refused(p, changed, principal, ctx)
        if refused is not None:
            return refused
    if p["barcode_dup_line"] is not None:
        why = reason("barcode_repeated_line", barcode=barcode, line=p["barcode_dup_line"])
        return RejectedRow.of(line, "barcode", barcode, why)
    if p["barcode_owner"] is not None:
        why = reason("barcode_taken", barcode=barcode, cylinder=p["barcode_owner"])
        return RejectedRow.of(line, "barcode", barcode, why)
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
        check_change(role, [c for c in UPDATED_COLUMNS if c in changed], old_status, new_status)
    except FieldRefused as exc:
        column = _FILE_COLUMN.get(exc.field, exc.field)
        before, after = (_as_text(exc.field, v, ctx) for v in changed[exc.field])
        why = reason("field_not_changeable", role=role, column=column, before=before, after=after)
        return RejectedRow.of(line, column, after, why)
    except TransitionRefused as exc:
        if exc.rule is Rule.ROLE_MAY_NOT_SET:
            allowed = sorted(statuses_for(role))
            why = reason("status_not_settable", role=role, status=new_status, allowed=allowed)
        elif exc.rule is Rule.FINAL:
            why = reason("status_final", old_status=old_status)
        else:
            why = reason("status_no_return", old_status=old_status, role=role)
        return RejectedRow.of(line, "status", new_status, why)
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
        report.warn(reason("columns_ignored", columns=list(src.ignored_columns)))
    ctx = await _context(conn, settings, principal)
    await conn.execute(CREATE_TEMP)
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
        report.warn(reason("rejected_truncated", total=report.rejected_total, kept=kept))
    if not dry_run:
        await audit(conn, principal, "cylinder.import", "cylinder", None, report.summary(), remote)
    return report
