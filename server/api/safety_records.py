"""Reading safety-inspection records (安检记录查询; docs/API.md "Safety inspections";
docs/ARCHITECTURE.md §7).

``GET /api/v1/safety-inspections`` (filters, paging, CSV/XLSX), ``GET .../{id}`` (the record
with its items, answers, photos, signature, rectifications, corrections and the seal's check),
``GET .../{id}/files/{upload_id}`` (a photo, the signature or a re-check photo, hash checked on
read) and ``GET .../{id}/notice`` (the printable notice for the customer: what to fix, by when).

Scope is SQL (``server.kernel.scope`` "safety_inspections": a company its own customers'
records, officers and regulators their districts', inspection agencies and the public none);
a record outside it answers 404. Records are never deleted (migration 0200).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    iter_rows,
    plain,
    q_format,
    today,
)
from server.api.customers import id_hash_key
from server.api.fills import time_range
from server.api.params import company_filter
from server.api.safety_items import fill_item
from server.db import safety as store
from server.domain.safety import READ_ROLES, canonical, seal_key, verify
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import not_found
from server.kernel.http import json_response, path_int, q_choice, q_district, q_id, q_page
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where
from server.kernel.tabular import stream_table
from server.kernel.uploads import file_response, read_verified

__all__ = ["detail", "file_url", "routes"]

LIST_COLUMNS: Final = """s.id, s.client_id::text AS client_id, s.inspected_at, s.received_at,
       s.result, s.failed_count, s.customer_id, cu.name AS customer_name,
       cu.account_no AS customer_account_no, s.company_id, co.name AS company_name,
       s.district_code, s.inspector_id, COALESCE(u.display_name, u.username) AS inspector_name,
       s.inspector_role, c.customer_kind, c.version AS catalogue_version, s.corrects,
       (SELECT count(*) FROM safety_rectifications r
         WHERE r.inspection_id = s.id AND r.state = 'open') AS open_rectifications"""
LIST_FROM: Final = """safety_inspections s
       JOIN customers cu ON cu.id = s.customer_id
       JOIN companies co ON co.id = s.company_id
       JOIN users u ON u.id = s.inspector_id
       JOIN safety_catalogues c ON c.id = s.catalogue_id"""
NEWEST_FIRST: Final = "s.inspected_at DESC, s.id DESC"
EXPORT_COLUMNS: Final = (
    "id",
    "inspected_at",
    "result",
    "failed_count",
    "open_rectifications",
    "customer_account_no",
    "customer_name",
    "company_name",
    "district_code",
    "inspector_name",
    "customer_kind",
    "catalogue_version",
    "corrects",
    "client_id",
)

QUERY = (
    Param("company", description="the customer's company: id or code"),
    Param("customer", "integer", "a customer id"),
    Param("district", description="6-digit district code"),
    Param("inspector", "integer", "the inspecting user's id"),
    Param("result", enum=("pass", "fail")),
    Param("from", "date-time", "inspected at or after"),
    Param("to", "date-time", "inspected before"),
    Param("format", enum=("json", "csv", "xlsx")),
)


def file_url(rid: int, upload_id: int | None) -> str | None:
    return None if upload_id is None else f"{API}/safety-inspections/{rid}/files/{upload_id}"


@api_doc(
    "List safety-inspection records",
    tags=["safety"],
    roles=READ_ROLES,
    query=QUERY,
    paginated=True,
    formats=("json", "csv", "xlsx"),
    description="Records in the caller's scope, newest first (a company its customers', an "
    "officer or regulator their districts'); CSV/XLSX stream every matching row.",
)
async def list_records(request: web.Request) -> web.StreamResponse:
    """Records the caller may see, filtered."""
    p = require(request, *READ_ROLES)
    check_query(request, [x.name for x in QUERY])
    fmt = q_format(request)
    q = Sql()
    where = [scope_where(p, "safety_inspections", "s", q)]
    company = company_filter(request, "s.company_id", q)
    if company:
        where.append(company)
    for name, column in (("customer", "s.customer_id"), ("inspector", "s.inspector_id")):
        value = q_id(request, name)
        if value is not None:
            where.append(f"{column} = {q.add(value)}")
    district = q_district(request)
    if district:
        where.append(f"s.district_code = {q.add(district)}")
    result = q_choice(request, "result", ("pass", "fail"))
    if result:
        where.append(f"s.result = {q.add(result)}")
    where += time_range(request, "s.inspected_at", q)
    from_where = f"{LIST_FROM} WHERE {' AND '.join(where)}"
    pool = request.app[POOL]
    if fmt != "json":
        sql = f"SELECT {LIST_COLUMNS} FROM {from_where} ORDER BY {NEWEST_FIRST}"
        rows = iter_rows(pool, sql, q.params, EXPORT_COLUMNS)
        return await stream_table(request, fmt, "safety-inspections", EXPORT_COLUMNS, rows)
    page = q_page(request)
    items, total = await fetch_page(pool, LIST_COLUMNS, from_where, NEWEST_FIRST, q, page)
    return json_response(envelope([plain(r) for r in items], page, total))


async def _visible(db: Any, p: Principal, rid: int) -> Any:
    q = Sql(rid)
    row = await db.fetchrow(
        f"SELECT {LIST_COLUMNS}, s.notes, s.lat, s.lon, s.catalogue_id, s.signature_upload_id,"
        f" s.prev_hash, s.record_hash, s.seal, cu.address AS customer_address"
        f" FROM {LIST_FROM} WHERE s.id = $1 AND {scope_where(p, 'safety_inspections', 's', q)}",
        *q.params,
    )
    if row is None:
        raise not_found(f"safety inspection {rid}")
    return row


async def seal_valid(request: web.Request, rid: int) -> bool:
    """Does the stored record still hash and seal to what was signed?"""
    pool = request.app[POOL]
    found = await store.stored_record(pool, rid)
    if found is None:
        return False
    record, row = found
    key = seal_key(await id_hash_key(request.app, pool))
    return verify(key, row["prev_hash"], canonical(record), row["record_hash"], row["seal"])


async def detail(request: web.Request, p: Principal, rid: int) -> dict[str, Any]:
    """The record as the API answers it (after a submission too)."""
    pool = request.app[POOL]
    row = await _visible(pool, p, rid)
    out = plain(row, drop=("signature_upload_id", "prev_hash", "record_hash", "seal"))
    items = await pool.fetch(
        """SELECT i.id AS item_id, i.position, i.group_code, i.code, i.text_zh, i.text_en,
                  i.photo_required_on_fail, a.answer, a.note
             FROM safety_answers a JOIN safety_items i ON i.id = a.item_id
            WHERE a.inspection_id = $1 ORDER BY i.position""",
        rid,
    )
    photos = await pool.fetch(
        """SELECT p.item_id, u.id, u.sha256, u.mime, u.width, u.height
             FROM safety_photos p JOIN uploads u ON u.id = p.upload_id
            WHERE p.inspection_id = $1 ORDER BY p.item_id, u.id""",
        rid,
    )
    limits = request.app[SETTINGS].safety
    rects = await rectifications(pool, rid, today(request.app[SETTINGS]), limits)
    sig = await pool.fetchrow(
        "SELECT id, sha256 FROM uploads WHERE id = $1", row["signature_upload_id"]
    )
    corrected_by = await pool.fetch(
        "SELECT id FROM safety_inspections WHERE corrects = $1 ORDER BY id", rid
    )
    out["items"] = [fill_item(plain(i), limits) for i in items]
    out["photos"] = [dict(plain(ph), url=file_url(rid, ph["id"])) for ph in photos]
    out["signature"] = {"id": sig["id"], "sha256": sig["sha256"], "url": file_url(rid, sig["id"])}
    out["rectifications"] = rects
    out["corrected_by"] = [r["id"] for r in corrected_by]
    out["seal"] = {
        "prev_hash": row["prev_hash"],
        "record_hash": row["record_hash"],
        "seal": row["seal"],
        "valid": await seal_valid(request, rid),
    }
    return out


async def rectifications(db: Any, rid: int, day: Any, limits: Any) -> list[dict[str, Any]]:
    """Record *rid*'s rectifications, texts filled from *limits* (``settings.safety``)."""
    rows = await db.fetch(
        """SELECT r.id, r.item_id, i.code, i.text_zh, i.text_en, r.deadline, r.state,
                  r.overdue_at, r.closed_at, r.closed_by, r.recheck_note, r.recheck_upload_id
             FROM safety_rectifications r JOIN safety_items i ON i.id = r.item_id
            WHERE r.inspection_id = $1 ORDER BY i.position""",
        rid,
    )
    out = []
    for r in rows:
        item = fill_item(plain(r, drop=("recheck_upload_id",)), limits)
        item["overdue"] = r["state"] == "open" and r["deadline"] < day
        item["recheck_photo_url"] = file_url(rid, r["recheck_upload_id"])
        out.append(item)
    return out


@api_doc(
    "One safety-inspection record",
    tags=["safety"],
    roles=READ_ROLES,
    responses={404: "no such record in the caller's scope"},
    description="The record with `items` (every item with its answer), `photos` and `signature` "
    "(with URLs), `rectifications` (deadline, state, overdue, re-check photo URL), `corrects`, "
    "`corrected_by` and `seal` {prev_hash, record_hash, seal, valid}: valid is false when a "
    "stored value no longer matches what was signed.",
)
async def get_record(request: web.Request) -> web.Response:
    p = require(request, *READ_ROLES)
    return json_response(await detail(request, p, path_int(request)))


@api_doc(
    "A photo or signature of a record",
    tags=["safety"],
    roles=READ_ROLES,
    responses={200: "the picture, its hash checked", 404: "not a file of a record in scope"},
)
async def get_file(request: web.Request) -> web.StreamResponse:
    """A file of the record, for whoever may see the record; its SHA-256 checked on read."""
    p = require(request, *READ_ROLES)
    rid = path_int(request)
    upload = path_int(request, "upload_id")
    await _visible(request.app[POOL], p, rid)
    owned = await request.app[POOL].fetchval(
        """SELECT 1 WHERE EXISTS (SELECT 1 FROM safety_inspections WHERE id = $1
                                   AND signature_upload_id = $2)
              OR EXISTS (SELECT 1 FROM safety_photos WHERE inspection_id = $1 AND upload_id = $2)
              OR EXISTS (SELECT 1 FROM safety_rectifications WHERE inspection_id = $1
                                   AND recheck_upload_id = $2)""",
        rid,
        upload,
    )
    if not owned:
        raise not_found(f"file {upload} of safety inspection {rid}")
    f, data = await read_verified(request.app[POOL], request.app[SETTINGS].uploads, upload)
    return file_response(f, data)


@api_doc(
    "The rectification notice for the customer",
    tags=["safety"],
    roles=READ_ROLES,
    responses={404: "no such record in the caller's scope"},
    description="What a printable or shareable notice (整改通知书) shows the customer: the "
    "customer, the company (with its order phone, 订气电话), the inspection's time and "
    "inspector, and each failed item with its text (zh, en) and deadline.",
)
async def get_notice(request: web.Request) -> web.Response:
    p = require(request, *READ_ROLES)
    rid = path_int(request)
    pool = request.app[POOL]
    row = await _visible(pool, p, rid)
    company = await pool.fetchrow(
        "SELECT name, code, order_phone FROM companies WHERE id = $1", row["company_id"]
    )
    settings = request.app[SETTINGS]
    rects = await rectifications(pool, rid, today(settings), settings.safety)
    return json_response(
        {
            "inspection_id": rid,
            "inspected_at": row["inspected_at"],
            "result": row["result"],
            "customer": {
                "name": row["customer_name"],
                "account_no": row["customer_account_no"],
                "address": row["customer_address"],
            },
            "company": {k: company[k] for k in ("name", "code", "order_phone")},
            "inspector_name": row["inspector_name"],
            "items": [
                {k: r[k] for k in ("code", "text_zh", "text_en", "deadline", "state")}
                for r in rects
            ],
        }
    )


def routes() -> list[web.RouteDef]:
    base = f"{API}/safety-inspections"
    return [
        web.get(base, list_records, allow_head=False),
        web.get(base + r"/{id:\d+}", get_record, allow_head=False),
        web.get(base + r"/{id:\d+}/files/{upload_id:\d+}", get_file, allow_head=False),
        web.get(base + r"/{id:\d+}/notice", get_notice, allow_head=False),
    ]
