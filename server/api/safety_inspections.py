"""Submitting a safety inspection (入户安检; docs/API.md "Safety inspections"; DOMAIN.md "Safety
inspection at the customer"; docs/ARCHITECTURE.md §4, §7).

``POST /api/v1/safety-inspections`` is multipart: a ``record`` part (JSON, :class:`Submission`),
``photo`` parts (pictures, the i-th for ``photo_items[i]``) and one ``signature`` part (the
customer's signature drawn on the phone, PNG). The routes of the records' reading side
(``server.api.safety_records``) and of rectifications (``server.api.safety_rectifications``) are
mounted from here too.

Why this shape:
- **Offline phones replay.** The phone makes ``client_id`` (a UUID) when the inspection is
  completed and sends it until it gets an answer; the first submission is stored (201), every
  replay answers the stored record (200) and stores nothing. The check is made again under the
  chain's lock, so two replays racing store one record.
- **Nothing half-stored.** Everything is checked before anything is written (the JSON, the
  catalogue version, the signature's presence, every file's size and type), and the uploads,
  the record, its answers and photos, the rectifications, the audit row and the SMS are one
  transaction.
- **Signed and immutable.** The record's canonical JSON (with the SHA-256 of every photo and
  of the signature) is linked into a hash chain and sealed with a key kept outside the database
  (``server.domain.safety``); the database refuses UPDATE and DELETE of a record. A correction
  is a new record whose ``corrects`` names the old one.
- **EXIF.** Every picture is re-encoded without metadata (``server.kernel.uploads``), the
  phone's GPS position included; a record keeps a position only as its own ``lat``/``lon``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from server.api import safety_items, safety_records, safety_rectifications
from server.api.common import API, Id, Lat, Lon, api_doc
from server.api.customers import id_hash_key
from server.db import safety as store
from server.domain.localtime import city_date
from server.domain.safety import (
    GENESIS,
    INSPECT_ROLES,
    Answer,
    AnswerRefused,
    canonical,
    check_answers,
    deadline_for,
    record_hash,
    result_of,
    seal,
    seal_key,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field
from server.kernel.http import field_from_msgspec, json_response
from server.kernel.limits import body_limit
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, scope_where
from server.kernel.uploads import read_multipart, sniff
from server.kernel.uploads import store as store_file

__all__ = ["Submission", "routes", "setup"]

_MB = 1024 * 1024
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
"""A phone's clock may run a little ahead; an inspection further in the future is a mistake."""


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: Id
    answer: Literal["pass", "fail", "na"]
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class Submission(msgspec.Struct, forbid_unknown_fields=True):
    """The ``record`` part of a submission."""

    client_id: uuid.UUID
    """Made by the phone once per inspection: a replay answers the first result."""
    customer_id: Id
    catalogue_id: Id
    """The catalogue version walked (``GET /api/v1/safety-items`` → ``catalogue_id``)."""
    answers: Annotated[list[AnswerIn], msgspec.Meta(min_length=1, max_length=200)]
    inspected_at: dt.datetime
    photo_items: Annotated[list[Id], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )
    """The item of each ``photo`` part, in the order of the parts."""
    notes: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    corrects: Id | None = None
    """The record this one corrects (same customer)."""


class _Replay(Exception):
    """The client id was stored meanwhile: roll this attempt back, answer the stored one."""

    def __init__(self, rid: int) -> None:
        self.rid = rid


def _decode(raw: str | None) -> Submission:
    if raw is None:
        raise bad_field("record", "the JSON part `record` is required")
    try:
        body = msgspec.json.decode(raw, type=Submission)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise bad_field(
            "record" + field_from_msgspec(message, "").replace("body", ""),
            message.split(" - at ")[0],
        ) from None
    except msgspec.DecodeError as exc:
        raise bad_field("record", f"not valid JSON: {exc}") from None
    if body.inspected_at.tzinfo is None:
        raise bad_field("record.inspected_at", "give a time zone (e.g. 2025-01-01T09:30:00+08:00)")
    if body.inspected_at > dt.datetime.now(dt.UTC) + FUTURE_TOLERANCE:
        raise bad_field("record.inspected_at", "is in the future")
    if (body.lat is None) != (body.lon is None):
        raise bad_field("record.lat", "lat and lon come together")
    return body


async def _customer(conn: Any, p: Principal, cid: int) -> Any:
    """The customer if the inspector may inspect them (400 otherwise: the id is the caller's)."""
    q = Sql(cid)
    row = await conn.fetchrow(
        f"""SELECT cu.id, cu.company_id, cu.district_code, cu.kind, cu.phone, co.name AS company_name
              FROM customers cu JOIN companies co ON co.id = cu.company_id
             WHERE cu.id = $1 AND {scope_where(p, "customers", "cu", q)}""",
        *q.params,
    )
    if row is None:
        raise bad_field("record.customer_id", f"no customer {cid} you may inspect")
    return row


async def _existing(db: Any, p: Principal, client_id: uuid.UUID) -> int | None:
    row = await db.fetchrow(
        "SELECT id, inspector_id FROM safety_inspections WHERE client_id = $1", client_id
    )
    if row is None:
        return None
    if row["inspector_id"] != p.user_id:
        raise ApiError(
            409,
            errors.CONFLICT,
            "record.client_id: already used by another inspector's record",
            {"field": "record.client_id"},
        )
    return int(row["id"])


@api_doc(
    "Submit a signed safety inspection",
    tags=["safety"],
    roles=INSPECT_ROLES,
    body=Submission,
    responses={
        200: "a replay (same client_id): the record stored the first time, nothing new stored",
        201: "stored and signed: the record as GET /api/v1/safety-inspections/{id} answers it",
        400: "bad JSON, an item id of another catalogue version, an item unanswered, a failed "
        "item needing a photo without one, photos not matching photo_items, the signature "
        "missing, a customer not in the caller's scope, a catalogue of another customer kind",
        409: "the client_id belongs to another inspector's record",
        413: "a photo or the signature over [uploads] image_max_mb",
        415: "not multipart/form-data; a photo that is not JPEG/PNG/WebP; a signature not PNG",
    },
    description="multipart/form-data: `record` (JSON: client_id, customer_id, catalogue_id, "
    "answers [{item_id, answer pass|fail|na, note?}], inspected_at, photo_items [item ids, one "
    "per photo part, in order], notes?, lat?, lon?, corrects?), `photo` parts (at most [safety] "
    "photos_max) and one `signature` part (PNG). Each failed item opens a rectification.",
)
@body_limit("upload")
async def submit(request: web.Request) -> web.Response:
    """Store, sign and seal one inspection (idempotent on client_id; audited)."""
    p = require(request, *INSPECT_ROLES)
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    fields, files = await read_multipart(
        request,
        settings.uploads.image_max_mb * _MB,
        files=("photo", "signature"),
        max_files=settings.safety.photos_max + 1,
    )
    body = _decode(fields.get("record"))
    replayed = await _existing(pool, p, body.client_id)
    if replayed is not None:
        return json_response(await safety_records.detail(request, p, replayed))
    photos = [(name, data) for kind, name, data in files if kind == "photo"]
    signatures = [data for kind, _, data in files if kind == "signature"]
    if not signatures:
        raise bad_field(
            "signature", "the customer's signature (a PNG part `signature`) is required"
        )
    if len(signatures) > 1:
        raise bad_field("signature", "one signature")
    if sniff(signatures[0]) != "image/png":
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            "signature: only image/png is accepted",
            {"field": "signature", "allowed": ["image/png"]},
        )
    if len(photos) > settings.safety.photos_max:
        raise bad_field("photo", f"at most {settings.safety.photos_max} photos")
    if len(photos) != len(body.photo_items):
        raise bad_field("record.photo_items", "one item id per photo part, in order")
    answers = [Answer(a.item_id, a.answer, a.note) for a in body.answers]
    key = seal_key(await id_hash_key(request.app, pool))
    try:
        async with pool.acquire() as conn, conn.transaction():
            rid = await _store(conn, request, p, body, answers, photos, signatures[0], key)
    except _Replay as replay:
        return json_response(await safety_records.detail(request, p, replay.rid))
    return json_response(await safety_records.detail(request, p, rid), 201)


async def _store(
    conn: Any,
    request: web.Request,
    p: Principal,
    body: Submission,
    answers: list[Answer],
    photos: list[tuple[str | None, bytes]],
    signature: bytes,
    key: bytes,
) -> int:
    settings = request.app[SETTINGS]
    customer = await _customer(conn, p, body.customer_id)
    kind = await conn.fetchval(
        "SELECT customer_kind FROM safety_catalogues WHERE id = $1", body.catalogue_id
    )
    if kind is None:
        raise bad_field("record.catalogue_id", f"no catalogue version {body.catalogue_id}")
    if kind != customer["kind"]:
        raise bad_field(
            "record.catalogue_id", f"a {kind} catalogue; the customer is {customer['kind']}"
        )
    items = await store.catalogue_items(conn, body.catalogue_id)
    try:
        check_answers(items, answers, body.photo_items)
    except AnswerRefused as exc:
        raise bad_field(
            f"record.{exc.field}" if exc.field != "photo" else "photo", str(exc)
        ) from None
    if body.corrects is not None:
        q = Sql(body.corrects, body.customer_id)
        ok = await conn.fetchval(
            f"""SELECT 1 FROM safety_inspections s WHERE s.id = $1 AND s.customer_id = $2
                  AND {scope_where(p, "safety_inspections", "s", q)}""",
            *q.params,
        )
        if not ok:
            raise bad_field("record.corrects", f"no record {body.corrects} of this customer")
    stored_photos = []
    for (name, data), item_id in zip(photos, body.photo_items, strict=True):
        f = await store_file(
            conn,
            settings.uploads,
            data,
            purpose="safety_photo",
            field="photo",
            images_only=True,
            filename=name,
            uploaded_by=p.user_id,
        )
        stored_photos.append((item_id, f))
    sig = await store_file(
        conn,
        settings.uploads,
        signature,
        purpose="safety_signature",
        field="signature",
        images_only=True,
        filename="signature.png",
        uploaded_by=p.user_id,
    )
    prev = await store.chain_head(conn)  # takes the chain's lock
    again = await conn.fetchval(
        "SELECT id FROM safety_inspections WHERE client_id = $1", body.client_id
    )
    if again is not None:
        raise _Replay(int(again))
    record: dict[str, Any] = {
        "client_id": str(body.client_id),
        "customer_id": customer["id"],
        "company_id": customer["company_id"],
        "district_code": customer["district_code"],
        "catalogue_id": body.catalogue_id,
        "inspector_id": p.user_id,
        "inspector_role": p.role,
        "inspected_at": body.inspected_at,
        "result": result_of(answers),
        "notes": body.notes.strip() if body.notes and body.notes.strip() else None,
        "lat": body.lat,
        "lon": body.lon,
        "corrects": body.corrects,
        "signature_sha256": sig.sha256,
        "answers": [{"item_id": a.item_id, "answer": a.answer, "note": a.note} for a in answers],
        "photos": [{"item_id": i, "sha256": f.sha256} for i, f in stored_photos],
    }
    prev_hash = prev or GENESIS
    link = record_hash(prev_hash, canonical(record))
    record["client_id"] = body.client_id
    rid = await store.insert_record(
        conn,
        record,
        [(i, f.id) for i, f in stored_photos],
        sig.id,
        prev_hash,
        link,
        seal(key, link),
    )
    day = city_date(body.inspected_at, settings.alerts)
    by_id = {i.id: i for i in items}
    failed = [a for a in answers if a.answer == "fail"]
    await store.open_rectifications(
        conn,
        rid,
        body.corrects,
        customer["company_id"],
        customer["district_code"],
        [
            (
                by_id[a.item_id],
                deadline_for(
                    day, by_id[a.item_id].rectification_days, settings.safety.rectification_days
                ),
            )
            for a in failed
        ],
    )
    sms = await safety_rectifications.queue_issued_sms(conn, settings, rid, customer)
    await audit(
        conn,
        p,
        "safety_inspection.create",
        "safety_inspection",
        rid,
        {
            "client_id": str(body.client_id),
            "customer_id": customer["id"],
            "result": record["result"],
            "failed": len(failed),
            "corrects": body.corrects,
            "sms": sms is not None,
        },
        request.remote,
    )
    return rid


def setup(app: web.Application) -> None:
    """The overdue round of rectifications in this server process."""
    safety_rectifications.setup(app)


def routes() -> list[web.RouteDef]:
    return [
        *safety_items.routes(),
        web.post(f"{API}/safety-inspections", submit),
        *safety_records.routes(),
        *safety_rectifications.routes(),
    ]
