"""A batch of the enterprise data interface: read it, judge each record on its own, store the
good ones once (docs/API.md "Enterprise data interface", docs/ARCHITECTURE.md §9).

Both ``POST /api/v1/ingest/cylinders`` and ``/ingest/fills`` take ``{"records": [...]}`` and
answer one result per record, in order: ``stored``, ``duplicate`` (its ``record_id`` was
stored before — by an earlier batch, or earlier in this one — with the first result) or
``rejected`` with the field and the reason. What this module owns is that common frame:

- the whole batch is refused (the one error shape, nothing stored) only when it is not a
  batch at all: not JSON, no ``records`` list, an empty one, or more than ``[enterprise]
  max_batch_rows`` records (413, like a body over the route's size);
- each record is decoded on its own, strictly (a string is not a number, unknown fields are
  refused): a malformed record is rejected naming its field and never costs the others;
- one transaction per batch, the company's batches one at a time
  (``server.db.enterprise.lock_company``); records seen before are answered from the ledger,
  the rest go to the kind's own rules (``server.api.enterprise_cylinders``,
  ``server.api.enterprise_fills``) which give each a result, and the stored ones are written
  to the ledger in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import asyncpg
import msgspec
from aiohttp import web

from server.db.enterprise import Entry, Kind, first_results, lock_company, remember
from server.kernel import errors
from server.kernel.errors import ApiError
from server.kernel.http import field_from_msgspec
from server.kernel.principal import Principal
from server.kernel.settings import Settings

__all__ = [
    "RECORD_ID_MAX",
    "Apply",
    "RecordId",
    "Row",
    "answer",
    "body_bytes",
    "read_batch",
    "rejected",
    "store_batch",
    "stored",
]

T = TypeVar("T")

RECORD_ID_MAX: Final = 100
"""The longest record id: ERP keys, UUIDs (36) and composite keys fit."""
RecordId = Annotated[str, msgspec.Meta(min_length=1, max_length=RECORD_ID_MAX)]
"""The enterprise's own id of a record: its idempotency key, per company and kind."""
_MB: Final = 1024 * 1024


def body_bytes(settings: Settings) -> int:
    """The body limit of the two batch routes (``server.kernel.limits.body_limit``)."""
    return settings.enterprise.max_body_mb * _MB


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    """The envelope: records stay raw JSON until each is decoded on its own."""

    records: list[msgspec.Raw]


@dataclass(slots=True)
class Row:
    """One record of a batch on its way to a result."""

    index: int
    record_id: str | None
    record: Any = None
    """The decoded record (the kind's Struct); None when it was malformed."""
    outcome: dict[str, Any] | None = None
    """The result (``status`` and its fields) once judged."""
    entry: Entry | None = None
    """The ledger row, when the record was stored now."""
    repeat_of: int | None = None
    """The index of an earlier record of this batch with the same record_id."""


def rejected(field: str, message: str) -> dict[str, Any]:
    return {"status": "rejected", "field": field, "message": message}


def stored(**fields: Any) -> dict[str, Any]:
    return {"status": "stored", **fields}


def _record_id_of(raw: bytes) -> str | None:
    """The record_id of a record that did not decode, if it has a usable one (for the answer)."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:  # pragma: no cover - a Raw is valid JSON
        return None
    rid = value.get("record_id") if isinstance(value, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= RECORD_ID_MAX else None


def _decode(index: int, raw: bytes, schema: type[T]) -> Row:
    if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL; JSON carries it only escaped
        row = Row(index, _record_id_of(raw))
        row.outcome = rejected("record", "strings must not contain NUL characters")
        return row
    try:
        record = msgspec.json.decode(raw, type=schema, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        row = Row(index, _record_id_of(raw))
        row.outcome = rejected(field_from_msgspec(text, "record"), text.split(" - at ")[0])
        return row
    return Row(index, record.record_id, record)  # type: ignore[attr-defined]


async def read_batch(request: web.Request, schema: type[T], settings: Settings) -> list[Row]:
    """The records of the request, each decoded as *schema* or already rejected."""
    if request.content_type != "application/json":
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            f"send JSON with Content-Type: application/json (got {request.content_type or 'none'})",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = body_bytes(settings)
        raise ApiError(
            413,
            errors.PAYLOAD_TOO_LARGE,
            f"request body is larger than this endpoint accepts ({limit} bytes)",
            {"limit_bytes": limit},
        ) from None
    if not body.strip():
        raise ApiError(
            400, errors.INVALID_JSON, 'request body is empty; {"records": [...]} expected'
        )
    try:
        batch = msgspec.json.decode(body, type=_Batch, strict=True)
    except msgspec.ValidationError as exc:
        field = field_from_msgspec(str(exc))
        msg = str(exc).split(" - at ")[0]
        raise ApiError(400, errors.INVALID_FIELD, f"{field}: {msg}", {"field": field}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, errors.INVALID_JSON, f"body is not valid JSON: {exc}") from None
    limit = settings.enterprise.max_batch_rows
    if len(batch.records) > limit:
        raise ApiError(
            413,
            errors.PAYLOAD_TOO_LARGE,
            f"records: a batch holds at most {limit} records, this one {len(batch.records)};"
            " split it (nothing was stored)",
            {"field": "records", "limit_rows": limit, "rows": len(batch.records)},
        )
    if not batch.records:
        raise errors.bad_field("records", "at least one record")
    rows = [_decode(i, bytes(raw), schema) for i, raw in enumerate(batch.records)]
    first: dict[str, int] = {}
    for row in rows:
        if row.outcome is None and row.record_id is not None:
            if row.record_id in first:
                row.repeat_of = first[row.record_id]
            else:
                first[row.record_id] = row.index
    return rows


Apply = Callable[[asyncpg.Connection, list[Row]], Awaitable[None]]
"""The kind's rules: give every row an ``outcome``, and an ``entry`` to each row stored."""


async def store_batch(
    conn: asyncpg.Connection, p: Principal, kind: Kind, rows: Sequence[Row], apply: Apply
) -> None:
    """Answer the records seen before from the ledger, apply the kind's rules to the rest and
    write the ledger — in the caller's transaction, the company's batches one at a time."""
    await lock_company(conn, p.company_id)
    pending = [r for r in rows if r.outcome is None and r.repeat_of is None]
    seen = await first_results(conn, p.company_id, kind, [str(r.record_id) for r in pending])
    fresh = []
    for row in pending:
        first = seen.get(str(row.record_id))
        if first is None:
            fresh.append(row)
        else:
            row.outcome = {**first, "status": "duplicate"}
    if fresh:
        await apply(conn, fresh)
    await remember(
        conn, p.company_id, kind, p.user_id, [r.entry for r in fresh if r.entry is not None]
    )


def _settle_repeats(rows: Sequence[Row]) -> None:
    """A record_id given twice in one batch: the later record is a duplicate of the first
    (or rejected with it, naming it)."""
    for row in rows:
        if row.repeat_of is None:
            continue
        first = rows[row.repeat_of].outcome or {}
        if first.get("status") == "rejected":
            row.outcome = rejected(
                "record_id",
                f"record_id {row.record_id} repeats the record at index {row.repeat_of},"
                " which was rejected",
            )
        else:
            row.outcome = {**first, "status": "duplicate", "first_index": row.repeat_of}


def answer(rows: Sequence[Row], **extra: Any) -> dict[str, Any]:
    """The response: counts, then one result per record in the batch's order."""
    _settle_repeats(rows)
    results = []
    counts = {"stored": 0, "duplicate": 0, "rejected": 0}
    for row in rows:
        outcome = row.outcome or rejected("record", "not stored")  # every row is judged
        counts[outcome["status"]] += 1
        results.append({"index": row.index, "record_id": row.record_id, **outcome})
    return {"total": len(rows), **counts, **extra, "results": results}
