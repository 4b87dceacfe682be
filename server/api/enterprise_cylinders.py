"""Cylinder records pushed by an enterprise's system: ``POST /api/v1/ingest/cylinders``
(docs/API.md "Enterprise data interface", docs/ARCHITECTURE.md §9).

One rule, one place: a record is a row of the cylinder archive (DESIGN's import columns)
and is stored by the archive import itself (``server.archive.import_archive``), fed from
JSON instead of a file. So a record registers or updates a cylinder of the caller's company
under exactly the rules an import by the same person obeys — the row checks, a tag of another
company refused, a voided tag never reused, a change of an existing cylinder judged like
``PATCH /api/v1/cylinders/{id}`` for the role (``server.domain.record_changes``: a company
does not move the inspection or scrap dates the gun trusts), a company's new cylinder stating
no inspection findings (``server.domain.registration``) — with the same trajectory events
and audit rows. Like a file, a record is the whole record: an optional field left out is
empty (and the dates derived), not "unchanged".

What this module adds is the record's own answer: the import reports rejected lines, and a
stored record is told its cylinder id and whether it created, updated or left unchanged the
cylinder (read before and after the import, the rows locked in id order like ingest's).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Final

import asyncpg
import msgspec

from server.api.enterprise_batch import RecordId, Row, rejected, stored
from server.archive import ARCHIVE_COLUMNS, ArchiveSource, import_archive
from server.archive.interface import Cell
from server.db.enterprise import Entry
from server.kernel.principal import Principal
from server.kernel.settings import Settings
from server.kernel.tabular import restore

__all__ = ["SOURCE", "CylinderBatch", "CylinderRecord", "apply_cylinders"]

SOURCE: Final = "POST /api/v1/ingest/cylinders"
"""The "file" the import's audit rows and trajectory events name."""

Amount = Annotated[float, msgspec.Meta(gt=0)]


class CylinderRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One cylinder as the enterprise's system knows it: the archive's columns and its id.

    Texts and their limits, the model, the dates' coherence and the status are checked by the
    archive import's row rules (one place), which name the field of a bad value."""

    record_id: RecordId
    tag: str
    spec: str
    """A configured model code (e.g. YSP35.5)."""
    manufacture_date: dt.date
    owner_code: str | None = None
    """The owner company's code; a company's key may leave it out (its own company)."""
    stamp: str | None = None
    barcode: str | None = None
    medium: str | None = None
    manufacturer: str | None = None
    tare_kg: Amount | None = None
    volume_l: Amount | None = None
    """Left out: the model's volume."""
    last_inspection_date: dt.date | None = None
    next_inspection_date: dt.date | None = None
    """Left out: derived (DOMAIN.md "Dates"); only an inspection agency or an admin states it."""
    scrap_date: dt.date | None = None
    """Left out: derived from the manufacture date."""
    status: str | None = None
    """One of the import's statuses (``server.domain.statuses.IMPORT_STATUSES``: in_service,
    in_inspection, scrapped, lost, suspended, not_activated); left out: in_service."""


class CylinderBatch(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/ingest/cylinders``: up to ``[enterprise] max_batch_rows`` records."""

    records: list[CylinderRecord]


def _cells(rec: CylinderRecord, owner_code: str | None) -> list[Cell]:
    """The record as an archive row, in ``ARCHIVE_COLUMNS`` order."""
    values: dict[str, Cell] = {
        name: getattr(rec, name) for name in ARCHIVE_COLUMNS if name != "owner_code"
    }
    values["owner_code"] = rec.owner_code if rec.owner_code is not None else owner_code
    return [values[name] for name in ARCHIVE_COLUMNS]


def _source(rows: list[tuple[int, list[Cell]]]) -> ArchiveSource:
    """The records as an opened archive (the header is the interface's own columns)."""
    return ArchiveSource(
        format="json",
        encoding=None,
        columns={name: i for i, name in enumerate(ARCHIVE_COLUMNS)},
        ignored_columns=[],
        width=len(ARCHIVE_COLUMNS),
        rows=iter(rows),
        total_hint=len(rows),
        header=list(ARCHIVE_COLUMNS),
    )


_LINE_OF_FILE: Final = re.compile(r"\bline (\d+) of this file")
_ON_LINE: Final = re.compile(r"\bon line (\d+)")


def _in_batch_words(reason: str) -> str:
    """The import's reasons name lines of a file; a batch has records at indexes."""
    reason = _LINE_OF_FILE.sub(
        lambda m: f"the record at index {int(m[1]) - 1} of this batch", reason
    )
    reason = _ON_LINE.sub(lambda m: f"in the record at index {int(m[1]) - 1}", reason)
    return reason.replace("in the file:", "in the record:")


def _in_batch_params(params: dict[str, Any]) -> dict[str, Any]:
    """The reason's parameters (``server.archive.reasons``), a line of the file as the index
    of a record of this batch."""
    out = {k: v for k, v in params.items() if k != "line"}
    if "line" in params:
        out["index"] = int(params["line"]) - 1
    return out


_STATE_SQL: Final = (
    "SELECT tag, id, updated_at FROM cylinders WHERE tag = ANY($1::text[]) ORDER BY id"
)


async def apply_cylinders(
    conn: asyncpg.Connection,
    rows: list[Row],
    settings: Settings,
    p: Principal,
    owner_code: str | None,
    remote: str | None,
) -> None:
    """Store the records through the archive import; give each row its outcome.

    *owner_code* is the caller's company's code (None for an admin: every record names its
    owner). Runs in the caller's transaction (the import's chunks become savepoints)."""
    lines = [(row.index + 1, _cells(row.record, owner_code)) for row in rows]
    # the import's own normalisation of a text cell (server.archive.validation)
    tags = [restore(row.record.tag.strip()) for row in rows]
    before = {r["tag"]: r["updated_at"] for r in await conn.fetch(_STATE_SQL + " FOR UPDATE", tags)}
    # every rejected record is listed (a batch is at most [enterprise] max_batch_rows)
    own = msgspec.structs.replace(
        settings, http=msgspec.structs.replace(settings.http, max_rejected_rows_kept=len(rows))
    )
    report = await import_archive(conn, _source(lines), own, p, filename=SOURCE, remote=remote)
    refused = {r.line: r for r in report.rejected}
    after = {r["tag"]: r for r in await conn.fetch(_STATE_SQL, tags)}
    for row, tag in zip(rows, tags, strict=True):
        bad = refused.get(row.index + 1)
        now = after.get(tag)
        if bad is not None or now is None:
            row.outcome = (
                {
                    **rejected(bad.column or "record", _in_batch_words(bad.reason)),
                    "code": bad.code,
                    "params": _in_batch_params(bad.params),
                }
                if bad is not None
                else rejected("record", "not stored")  # pragma: no cover - the import lists it
            )
            continue
        if tag not in before:
            action = "created"
        elif before[tag] != now["updated_at"]:
            action = "updated"
        else:
            action = "unchanged"
        result: dict[str, Any] = {"cylinder_id": now["id"], "action": action}
        row.outcome = stored(**result)
        row.entry = Entry(str(row.record_id), result, cylinder_id=now["id"])
