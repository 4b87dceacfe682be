"""The enterprise data interface (政府与企业数据对接): an enterprise's own systems push cylinder
records and fill records, and pull back what became of them (docs/API.md "Enterprise data
interface", docs/ARCHITECTURE.md §9).

- ``POST /api/v1/ingest/cylinders`` and ``POST /api/v1/ingest/fills``: batches of up to
  ``[enterprise] max_batch_rows`` records, one result per record, idempotent by the
  enterprise's ``record_id`` (``server.api.enterprise_batch``). A cylinder record obeys the
  archive import's rules for the caller's role (``server.api.enterprise_cylinders``); a fill
  record the rules and alerts of a gun's fill over MQTT (``server.api.enterprise_fills``).
- ``GET /api/v1/ingest/cylinders`` and ``GET /api/v1/ingest/fills``: the records the caller's
  company pushed, oldest first from ``since``, each with its result and the cylinder or fill
  as it is now. Everything else a company holds — cylinders registered by an agency or an
  import, the guns' own fills — it reads with the same key from the ordinary lists
  (``GET /api/v1/cylinders``, ``/api/v1/cylinders/export``, ``/api/v1/fills``), which scope
  every row to its company.

Who: an API key (``X-API-Key``) only. The interface is for machines, and a key is what an
enterprise is given for them (``POST /api/v1/auth/api-keys``, the /admin/api-keys page); a
session or bearer token is answered 401 like no credential, so a browser tab can never be
used to push a batch. The key's user must be a company administrator (its company's records)
or an admin (any company's; every cylinder record names its owner). A key of a deactivated
user or a revoked key is refused by the kernel (401); a key of a company whose licence is
revoked is refused here with 403 — the company is known, its interface is closed.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from server.api.common import API, Param, api_doc, check_query, envelope, fetch_page, plain
from server.api.enterprise_batch import answer, body_bytes, read_batch, store_batch
from server.api.enterprise_cylinders import CylinderBatch, CylinderRecord, apply_cylinders
from server.api.enterprise_fills import FillBatch, FillRecord, FillStore
from server.db.enterprise import PULL_CYLINDERS, PULL_FILLS, Kind, ledger_where
from server.kernel import errors
from server.kernel.appkeys import BUS, POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError
from server.kernel.http import json_response, q_datetime, q_page
from server.kernel.limits import body_limit
from server.kernel.principal import API_KEY_HEADER, Principal, principal_of
from server.kernel.scope import Sql, scope_where

__all__ = ["INGEST_ROLES", "routes"]

INGEST_ROLES: Final = ("admin", "company_admin")
"""Whose API keys may use the interface (module docstring)."""
REVOKED: Final = "revoked"


async def _caller(request: web.Request) -> tuple[Principal, str | None]:
    """The API-key caller and its company's code (None for an admin), or the refusal."""
    p = principal_of(request)
    if p is None or p.via != "api_key":
        raise ApiError(
            401,
            errors.UNAUTHORIZED,
            f"the enterprise data interface takes an API key: send it as {API_KEY_HEADER} "
            "(a company administrator creates one on /admin/api-keys)",
        )
    if p.role not in INGEST_ROLES:
        raise errors.forbidden(
            f"the enterprise data interface is for company administrators' keys, not {p.role}'s"
        )
    if p.company_id is None:
        return p, None
    company = await request.app[POOL].fetchrow(
        "SELECT code, licence_status FROM companies WHERE id = $1", p.company_id
    )
    if company is None or company["licence_status"] == REVOKED:
        raise errors.forbidden("your company's licence is revoked: its data interface is closed")
    return p, str(company["code"])


# ------------------------------------------------------------------ examples (OpenAPI)

CYLINDERS_EXAMPLE: Final = {
    "records": [
        {
            "record_id": "ERP-2024-000123",
            "tag": "E280116060000207A1B2C3D4",
            "stamp": "ZZ2024-0123",
            "barcode": "QR4101050000123",
            "spec": "YSP35.5",
            "manufacturer": "郑州压力容器厂",
            "manufacture_date": "2024-03-15",
            "tare_kg": 15.5,
        },
        {"record_id": "ERP-2024-000124", "tag": "E2801160600002", "spec": "YSP99"},
    ]
}
CYLINDERS_ANSWER: Final = {
    "total": 2,
    "stored": 1,
    "duplicate": 0,
    "rejected": 1,
    "results": [
        {
            "index": 0,
            "record_id": "ERP-2024-000123",
            "status": "stored",
            "cylinder_id": 81234,
            "action": "created",
        },
        {
            "index": 1,
            "record_id": "ERP-2024-000124",
            "status": "rejected",
            "field": "manufacture_date",
            "message": "Object missing required field `manufacture_date`",
        },
    ],
}
FILLS_EXAMPLE: Final = {
    "records": [
        {
            "record_id": "FILL-20240601-0001",
            "station_code": "ZZ-FS-001",
            "gun_id": "GUN-ZZ-FS-001-1",
            "tag": "E280116060000207A1B2C3D4",
            "ts": "2024-06-01T09:30:12+08:00",
            "ts_start": "2024-06-01T09:28:40+08:00",
            "net_kg": 14.6,
            "operator": "张师傅",
            "pre_check": {"valve": True, "appearance": True},
            "post_check": {"leak": True},
        }
    ]
}
FILLS_ANSWER: Final = {
    "total": 1,
    "stored": 1,
    "duplicate": 0,
    "rejected": 0,
    "alerts": [],
    "results": [
        {
            "index": 0,
            "record_id": "FILL-20240601-0001",
            "status": "stored",
            "msg_id": "2f1c0f55-3d0e-5a4e-9a55-7c1f0c7c2b11",
            "ts": "2024-06-01T01:30:12+00:00",
            "cylinder_id": 81234,
            "result": "completed",
            "assessment": "ok",
            "decision": "allow",
            "reasons": [],
        }
    ],
}

_BATCH_RESPONSES: Final = {
    200: "one result per record: stored, duplicate (with the first result) or rejected "
    "(field, message); the counts of each",
    401: "no API key, a session or bearer token instead, or a revoked key / deactivated user",
    403: "the key's user is not a company administrator or admin, or its company's licence "
    "is revoked",
    413: "more than [enterprise] max_batch_rows records, or a body over [enterprise] "
    "max_body_mb (nothing stored)",
}


@api_doc(
    "Push cylinder records (enterprise data interface)",
    tags=["ingest"],
    roles=INGEST_ROLES,
    body=CylinderBatch,
    responses=_BATCH_RESPONSES,
    request_example=CYLINDERS_EXAMPLE,
    response_example=CYLINDERS_ANSWER,
    description="API key only (X-API-Key). Each record registers or updates a cylinder by its "
    "tag, under exactly the archive import's rules for the key's role (a company's own "
    "cylinders; a change of an existing one judged like PATCH /api/v1/cylinders/{id}; a "
    "company states no inspection dates). A record is the whole record: an optional field "
    "left out is empty or derived. owner_code defaults to the key's company. Idempotent by "
    "record_id (per company): a record_id stored before answers 'duplicate' with its first "
    "result. A bad record is rejected with its field and reason; the others are stored.",
)
@body_limit(body_bytes)
async def push_cylinders(request: web.Request) -> web.Response:
    p, owner = await _caller(request)
    settings = request.app[SETTINGS]
    rows = await read_batch(request, CylinderRecord, settings)

    async def apply(conn: Any, fresh: Any) -> None:
        await apply_cylinders(conn, fresh, settings, p, owner, request.remote)

    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store_batch(conn, p, "cylinder", rows, apply)
    return json_response(answer(rows))


@api_doc(
    "Push fill records (enterprise data interface)",
    tags=["ingest"],
    roles=INGEST_ROLES,
    body=FillBatch,
    responses=_BATCH_RESPONSES,
    request_example=FILLS_EXAMPLE,
    response_example=FILLS_ANSWER,
    description="API key only (X-API-Key). The same rules and alerts as a gun's fill over "
    "MQTT: the fill is stored with its assessment (overfill, underfill, repeat fill, unknown "
    "tag) and judged by the fill-authorization rule as of its day — a fill the platform "
    "would have refused (scrapped, overdue, not the owner's, unlicensed station) raises "
    "fill_denied with every reason, as a gun's refused request does. The gun must be a "
    "registered, active gun of the named station, and the station one of the key's company. "
    "ts and ts_start: epoch milliseconds or RFC 3339 with an offset. Idempotent by record_id.",
)
@body_limit(body_bytes)
async def push_fills(request: web.Request) -> web.Response:
    p, _ = await _caller(request)
    settings = request.app[SETTINGS]
    rows = await read_batch(request, FillRecord, settings)
    store = FillStore(settings, p)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store_batch(conn, p, "fill", rows, store.apply)
        body = answer(rows, alerts=store.alerts)
        if body["stored"]:
            counts = {k: body[k] for k in ("total", "stored", "duplicate", "rejected")}
            kinds = sorted({a["kind"] for a in store.alerts})
            await audit(
                conn,
                p,
                "enterprise.fills",
                "fill",
                None,
                {**counts, "alerts": kinds},
                request.remote,
            )
    bus = request.app[BUS]
    for event in store.events:  # after the commit, as the ingest worker publishes
        bus.publish(event)
    return json_response(body)


PULL_QUERY: Final = (
    Param("since", "date-time", "records received at or after this time (ISO 8601)"),
)


async def _pull(request: web.Request, kind: Kind) -> web.Response:
    p, _ = await _caller(request)
    check_query(request, ["since"])
    page = q_page(request)
    q = Sql()
    where = [ledger_where(p.company_id, kind, q)]
    since = q_datetime(request, "since")
    if since is not None:
        where.append(f"r.created_at >= {q.add(since)}")
    if kind == "cylinder":
        select = PULL_CYLINDERS
        joins = (
            f"LEFT JOIN cylinders c ON c.id = r.cylinder_id AND {scope_where(p, 'cylinders', 'c', q)}"
            " LEFT JOIN companies co ON co.id = c.owner_company_id"
        )
    else:
        select = PULL_FILLS
        joins = (
            "LEFT JOIN fills f ON f.msg_id = r.fill_msg_id AND f.ts = r.fill_ts"
            f" AND {scope_where(p, 'fills', 'f', q)} LEFT JOIN sites s ON s.id = f.station_id"
        )
    rows, total = await fetch_page(
        request.app[POOL],
        select,
        f"enterprise_records r {joins} WHERE {' AND '.join(where)}",
        "r.created_at, r.id",
        q,
        page,
    )
    return json_response(envelope([_pulled(plain(r), kind) for r in rows], page, total))


_LEDGER: Final = ("seq", "record_id", "received_at", "result")


def _pulled(row: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """A ledger row with what it stored nested (null when it is no longer the caller's)."""
    item = {k: row.pop(k) for k in _LEDGER}
    if kind == "cylinder":
        item["cylinder"] = row if row["cylinder_id"] is not None else None
    else:
        row["result"] = row.pop("fill_result")
        item["fill"] = row if row["msg_id"] is not None else None
    return item


@api_doc(
    "Pull back the cylinder records your company pushed",
    tags=["ingest"],
    roles=INGEST_ROLES,
    query=PULL_QUERY,
    paginated=True,
    description="API key only. The records stored through POST /api/v1/ingest/cylinders, "
    "oldest first: record_id, received_at, the first result and the cylinder as it is now "
    "(archive columns; null once it is no longer your company's). Every cylinder of the "
    "company, however registered: GET /api/v1/cylinders or /api/v1/cylinders/export with "
    "the same key.",
)
async def pull_cylinders(request: web.Request) -> web.Response:
    return await _pull(request, "cylinder")


@api_doc(
    "Pull back the fill records your company pushed",
    tags=["ingest"],
    roles=INGEST_ROLES,
    query=PULL_QUERY,
    paginated=True,
    description="API key only. The records stored through POST /api/v1/ingest/fills, oldest "
    "first: record_id, received_at, the first result and the stored fill. Every fill of the "
    "company's stations, the guns' own included: GET /api/v1/fills with the same key.",
)
async def pull_fills(request: web.Request) -> web.Response:
    return await _pull(request, "fill")


def routes() -> list[web.RouteDef]:
    return [
        web.post(f"{API}/ingest/cylinders", push_cylinders),
        web.post(f"{API}/ingest/fills", push_fills),
        web.get(f"{API}/ingest/cylinders", pull_cylinders, allow_head=False),
        web.get(f"{API}/ingest/fills", pull_fills, allow_head=False),
    ]
