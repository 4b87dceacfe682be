"""Safety inspections in SQL (migration 0200; docs/ARCHITECTURE.md §4; docs/API.md "Safety
inspections"): the catalogue's versions, writing a signed record into the hash chain, reading
a record back in its canonical form to verify its seal, rectifications and the overdue round.

Why these shapes:
- **A catalogue version is history.** :func:`publish` writes version n+1 of a customer kind
  under a per-kind advisory lock (two admins publishing at once get n+1 and n+2); the triggers
  of migration 0200 refuse changes to any version, so a past record's items never move.
- **One chain.** :func:`insert_record` takes :data:`CHAIN_LOCK` for its transaction, so each
  record links to the one committed before it (``prev_hash``); submissions are a few per
  inspector per hour, the lock is held for one insert.
- **A correction supersedes.** :func:`open_rectifications` closes the corrected record's open
  rectifications as ``superseded`` and carries an item failed again over (the earlier
  deadline, the overdue mark kept; migration 0210), so a correction neither postpones a
  deadline nor counts an overdue rectification twice against the company's credit.
- **The overdue round is exactly-once.** :func:`mark_overdue` runs under a transaction-scoped
  advisory lock and claims rows ``FOR UPDATE SKIP LOCKED`` where ``overdue_at IS NULL``; the
  credit event is keyed (kind, 'rectification', id) with ``ON CONFLICT DO NOTHING``, and the
  credit round derives the same entry from ``overdue_at`` (:data:`CREDIT_DERIVE`), so neither
  round duplicates nor prunes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from server.domain.credit import event_points
from server.domain.localtime import city_date
from server.domain.safety import CatalogueItem, carried_deadline
from server.kernel.settings import Settings

__all__ = [
    "CHAIN_LOCK",
    "CREDIT_DERIVE",
    "ROUND_LOCK",
    "Overdue",
    "catalogue",
    "catalogue_items",
    "insert_record",
    "mark_overdue",
    "open_rectifications",
    "publish",
    "stored_record",
]

CHAIN_LOCK: Final = 0x5341_4645_4348  # "SAFECH": the records' hash chain, one writer at a time
ROUND_LOCK: Final = 0x5341_4645_5244  # "SAFERD": the overdue round
CATALOGUE_LOCK: Final = 0x5341_4645_4341  # "SAFECA" (+ the kind's index): publishing a version
OVERDUE_BATCH: Final = 500
"""Rectifications one round marks at most; the next round takes the rest (bounded work)."""

ITEM_COLUMNS: Final = """i.id, i.position, i.group_code, i.code, i.text_zh, i.text_en, i.answers,
       i.photo_required_on_fail, i.rectification_days"""


async def catalogue(
    db: asyncpg.Pool | asyncpg.Connection, kind: str, version: int | None = None
) -> tuple[Any, list[Any]] | None:
    """The catalogue of *kind* — its newest version, or *version* — and its items in order."""
    if version is None:
        head = await db.fetchrow(
            """SELECT id, customer_kind, version, published_at, created_by, note
                 FROM safety_catalogues WHERE customer_kind = $1
                ORDER BY version DESC LIMIT 1""",
            kind,
        )
    else:
        head = await db.fetchrow(
            """SELECT id, customer_kind, version, published_at, created_by, note
                 FROM safety_catalogues WHERE customer_kind = $1 AND version = $2""",
            kind,
            version,
        )
    if head is None:
        return None
    items = await db.fetch(
        f"SELECT {ITEM_COLUMNS} FROM safety_items i WHERE i.catalogue_id = $1 ORDER BY i.position",
        head["id"],
    )
    return head, list(items)


async def catalogue_items(conn: asyncpg.Connection, catalogue_id: int) -> list[CatalogueItem]:
    rows = await conn.fetch(
        """SELECT id, code, photo_required_on_fail, rectification_days
             FROM safety_items WHERE catalogue_id = $1""",
        catalogue_id,
    )
    return [CatalogueItem(**dict(r.items())) for r in rows]


async def publish(
    conn: asyncpg.Connection,
    kind: str,
    items: Sequence[dict[str, Any]],
    created_by: int | None,
    note: str | None,
) -> int:
    """Write version n+1 of *kind*'s catalogue with *items* (in order); its id."""
    kinds = ("resident", "restaurant", "industrial")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CATALOGUE_LOCK + kinds.index(kind))
    version = await conn.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM safety_catalogues WHERE customer_kind = $1",
        kind,
    )
    cid = await conn.fetchval(
        """INSERT INTO safety_catalogues (customer_kind, version, created_by, note)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        kind,
        version,
        created_by,
        note,
    )
    await conn.executemany(
        """INSERT INTO safety_items (catalogue_id, position, group_code, code, text_zh, text_en,
                                     answers, photo_required_on_fail, rectification_days)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [
            (
                cid,
                n,
                it["group_code"],
                it["code"],
                it["text_zh"],
                it["text_en"],
                list(it["answers"]),
                it["photo_required_on_fail"],
                it["rectification_days"],
            )
            for n, it in enumerate(items, start=1)
        ],
    )
    return int(cid)


async def chain_head(conn: asyncpg.Connection) -> str | None:
    """Lock the chain for this transaction and return the newest record's hash (None: empty)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
    head: str | None = await conn.fetchval(
        "SELECT record_hash FROM safety_inspections ORDER BY id DESC LIMIT 1"
    )
    return head


async def insert_record(
    conn: asyncpg.Connection,
    record: dict[str, Any],
    photo_uploads: Sequence[tuple[int, int]],
    signature_upload_id: int,
    prev_hash: str,
    link: str,
    seal: str,
) -> int:
    """Write the signed record, its answers and photos (item id, upload id); its id."""
    rid = await conn.fetchval(
        """INSERT INTO safety_inspections (client_id, customer_id, company_id, district_code,
               catalogue_id, inspector_id, inspector_role, inspected_at, result, failed_count,
               notes, lat, lon, signature_upload_id, corrects, prev_hash, record_hash, seal)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18)
           RETURNING id""",
        record["client_id"],
        record["customer_id"],
        record["company_id"],
        record["district_code"],
        record["catalogue_id"],
        record["inspector_id"],
        record["inspector_role"],
        record["inspected_at"],
        record["result"],
        sum(1 for a in record["answers"] if a["answer"] == "fail"),
        record["notes"],
        record["lat"],
        record["lon"],
        signature_upload_id,
        record["corrects"],
        prev_hash,
        link,
        seal,
    )
    await conn.executemany(
        "INSERT INTO safety_answers (inspection_id, item_id, answer, note) VALUES ($1, $2, $3, $4)",
        [(rid, a["item_id"], a["answer"], a["note"]) for a in record["answers"]],
    )
    await conn.executemany(
        "INSERT INTO safety_photos (inspection_id, item_id, upload_id) VALUES ($1, $2, $3)",
        [(rid, item_id, upload_id) for item_id, upload_id in photo_uploads],
    )
    return int(rid)


async def open_rectifications(
    conn: asyncpg.Connection,
    rid: int,
    corrects: int | None,
    company_id: int,
    district_code: str | None,
    failed: Sequence[tuple[CatalogueItem, dt.date]],
) -> None:
    """Open a rectification for each failed item of record *rid* (item, computed deadline), in
    the submission's transaction. When *rid* corrects a record, that record's open
    rectifications are superseded first; one of an item (by code: the correction may use
    another catalogue version) failed again is carried over."""
    previous: dict[str, Any] = {}
    if corrects is not None:
        rows = await conn.fetch(
            """UPDATE safety_rectifications r
                  SET state = 'superseded', closed_at = now(), superseded_by = $2
                 FROM safety_items i
                WHERE i.id = r.item_id AND r.inspection_id = $1 AND r.state = 'open'
            RETURNING r.id, i.code, r.deadline, r.overdue_at""",
            corrects,
            rid,
        )
        previous = {r["code"]: r for r in rows}
    args = []
    for item, deadline in failed:
        old = previous.get(item.code)
        args.append(
            (
                rid,
                item.id,
                company_id,
                district_code,
                carried_deadline(deadline, old["deadline"] if old else None),
                old["overdue_at"] if old else None,
                old["id"] if old else None,
            )
        )
    await conn.executemany(
        """INSERT INTO safety_rectifications (inspection_id, item_id, company_id, district_code,
                                              deadline, overdue_at, carried_from)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        args,
    )


async def stored_record(
    db: asyncpg.Pool | asyncpg.Connection, rid: int
) -> tuple[dict[str, Any], Any] | None:
    """The record *rid* rebuilt from its rows in the submitted shape (for the seal's check),
    with its row (prev_hash, record_hash, seal)."""
    row = await db.fetchrow(
        """SELECT s.*, su.sha256 AS signature_sha256
             FROM safety_inspections s JOIN uploads su ON su.id = s.signature_upload_id
            WHERE s.id = $1""",
        rid,
    )
    if row is None:
        return None
    answers = await db.fetch(
        "SELECT item_id, answer, note FROM safety_answers WHERE inspection_id = $1", rid
    )
    photos = await db.fetch(
        """SELECT p.item_id, u.sha256 FROM safety_photos p JOIN uploads u ON u.id = p.upload_id
            WHERE p.inspection_id = $1""",
        rid,
    )
    return record_dict(
        row, [dict(a.items()) for a in answers], [dict(p.items()) for p in photos]
    ), row


def record_dict(
    row: Any, answers: list[dict[str, Any]], photos: list[dict[str, Any]]
) -> dict[str, Any]:
    """The fields the seal covers (``server.domain.safety.canonical`` orders them)."""
    return {
        "client_id": str(row["client_id"]),
        "customer_id": row["customer_id"],
        "company_id": row["company_id"],
        "district_code": row["district_code"],
        "catalogue_id": row["catalogue_id"],
        "inspector_id": row["inspector_id"],
        "inspector_role": row["inspector_role"],
        "inspected_at": row["inspected_at"],
        "result": row["result"],
        "notes": row["notes"],
        "lat": row["lat"],
        "lon": row["lon"],
        "corrects": row["corrects"],
        "signature_sha256": row["signature_sha256"],
        "answers": answers,
        "photos": photos,
    }


CREDIT_DERIVE: Final = """
INSERT INTO credit_derived
SELECT r.company_id, (r.overdue_at AT TIME ZONE $1)::date, 'rectification_overdue', $4::numeric,
       1, 'rectification', r.id::text, NULL, i.code
  FROM safety_rectifications r JOIN safety_items i ON i.id = r.item_id
 WHERE r.overdue_at >= $2 AND (r.overdue_at AT TIME ZONE $1)::date >= $3::date
   AND NOT EXISTS (SELECT 1 FROM safety_rectifications o
                    WHERE o.id = r.carried_from AND o.overdue_at IS NOT NULL)"""
"""The credit round's derivation of ``rectification_overdue`` (``server.db.credit.DERIVE``):
one entry per rectification the overdue round marked, on the city day it was marked — the
same values :func:`mark_overdue` writes, so the credit round neither changes nor prunes it.
A rectification carried over by a correction with its overdue mark is the same lapse: its
entry is the first rectification's."""


@dataclass(frozen=True, slots=True)
class Overdue:
    """A rectification the round just marked: whom to tell."""

    id: int
    inspection_id: int
    company_id: int
    company_name: str
    inspector_id: int
    deadline: dt.date
    item_code: str
    text_zh: str
    text_en: str
    customer_phone: str | None
    customer_name: str


async def mark_overdue(
    conn: asyncpg.Connection, settings: Settings, now: dt.datetime | None = None
) -> list[Overdue]:
    """Mark open rectifications past their deadline (once each) and record their credit
    events, in the caller's transaction; [] when another process holds the round's lock."""
    now = now or dt.datetime.now(dt.UTC)
    today = city_date(now, settings.alerts)
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", ROUND_LOCK):
        return []
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM safety_rectifications
                WHERE state = 'open' AND overdue_at IS NULL AND deadline < $1
                ORDER BY deadline, id LIMIT $2
                  FOR UPDATE SKIP LOCKED)
           UPDATE safety_rectifications r SET overdue_at = $3 FROM due WHERE r.id = due.id
           RETURNING r.id, r.inspection_id, r.company_id, r.item_id, r.deadline""",
        today,
        OVERDUE_BATCH,
        now,
    )
    if not rows:
        return []
    points = event_points("rectification_overdue", 1, settings.credit)
    details = await conn.fetch(
        """SELECT r.id, r.inspection_id, r.company_id, co.name AS company_name,
                  s.inspector_id, r.deadline, i.code AS item_code, i.text_zh, i.text_en,
                  cu.phone AS customer_phone, cu.name AS customer_name
             FROM safety_rectifications r
             JOIN safety_inspections s ON s.id = r.inspection_id
             JOIN safety_items i ON i.id = r.item_id
             JOIN companies co ON co.id = r.company_id
             JOIN customers cu ON cu.id = s.customer_id
            WHERE r.id = ANY($1::bigint[]) ORDER BY r.id""",
        [r["id"] for r in rows],
    )
    await conn.executemany(
        """INSERT INTO credit_events (company_id, day, kind, points, count, source_type,
                                      source_id, note)
           VALUES ($1, $2, 'rectification_overdue', $3, 1, 'rectification', $4, $5)
           ON CONFLICT (kind, source_type, source_id) DO NOTHING""",
        [(d["company_id"], today, points, str(d["id"]), d["item_code"]) for d in details],
    )
    return [Overdue(**dict(d.items())) for d in details]
