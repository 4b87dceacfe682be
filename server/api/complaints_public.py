"""The public's side of complaints (docs/API.md "Complaints"; docs/ARCHITECTURE.md §8):
file one from the QR page — with a photo if wanted — and follow it by its ticket.

``POST /api/v1/public/complaints`` takes JSON, or ``multipart/form-data`` with the same
fields and one ``photo`` (JPEG, PNG or WebP up to ``[uploads] image_max_mb``; stored through
``server.kernel.uploads``, re-encoded without its metadata). It answers ``{ticket, …}``: the
one thing the complainant needs to follow it at ``GET /api/v1/public/complaints/{ticket}``
and on the page ``/complaints/track?ticket=``.

What the public sees of a complaint is its own progress: kind, state, the dates of each
step, the deadline, the answer once there is one and the outcome — never the contact,
never who handled it, never the bureau's notes or history. Both endpoints are rate-limited
per client address like every public endpoint (``server.api.public.rate_limit``).

Body size: a JSON complaint is a small form (``[http] max_small_body_kb``, checked here as
the middleware would); only a multipart body, which may carry a photo, is admitted up to the
upload size, and its photo is cut off at ``[uploads] image_max_mb`` while it streams in.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web

from server.api.common import API, Code, Param, api_doc, check_query
from server.api.complaints_filing import check_text
from server.api.public import rate_limit
from server.db.complaints import file_complaint
from server.domain.complaints import format_ticket, is_overdue, normalize_ticket
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, not_found
from server.kernel.http import decode_json, field_from_msgspec, json_response
from server.kernel.i18n import LANGUAGES
from server.kernel.limits import body_limit, limit_bytes
from server.kernel.principal import principal_of
from server.kernel.uploads import read_multipart, store

__all__ = ["routes", "track_url"]

TRACK_PAGE: Final = "/complaints/track"
"""The public page that follows a ticket (dashboard.pages.complaints)."""
_MB: Final = 1024 * 1024


class PublicComplaint(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    """What happened; at most ``[public] complaint_max_chars`` characters."""
    code: Code | None = None
    """The scanned barcode or tag: ties the complaint to the cylinder's company and district."""
    contact: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    """How to reach the complainant (a phone number gets the answer by SMS): seen by the
    bureau only, never by the company."""
    kind: Literal["complaint", "report", "fault"] = "complaint"


def track_url(ticket: str) -> str:
    return f"{TRACK_PAGE}?ticket={ticket}"


async def _json_body(request: web.Request) -> PublicComplaint:
    """A JSON complaint, at most a small form's size (413 beyond, read no further)."""
    limit = limit_bytes(request.app[SETTINGS].http, "small")
    too_large = ApiError(
        413,
        errors.PAYLOAD_TOO_LARGE,
        f"request body is larger than this endpoint accepts ({limit} bytes)",
        {"limit_bytes": limit},
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > limit:
            raise too_large
    return decode_json(bytes(data), PublicComplaint)


async def _multipart_body(
    request: web.Request,
) -> tuple[PublicComplaint, tuple[str | None, bytes] | None]:
    """A multipart complaint: its fields as the JSON ones, and its photo if any."""
    max_bytes = request.app[SETTINGS].uploads.image_max_mb * _MB
    fields, files = await read_multipart(request, max_bytes, files=("photo",), max_files=1)
    if any("\x00" in v for v in fields.values()):
        raise errors.bad_field("body", "strings must not contain NUL characters")
    values: dict[str, Any] = {k: v for k, v in fields.items() if v != "" or k == "text"}
    try:
        body = msgspec.convert(values, PublicComplaint)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise errors.bad_field(field_from_msgspec(message), message.split(" - at ")[0]) from None
    photo = (files[0][1], files[0][2]) if files else None
    return body, photo


@api_doc(
    "Public: file a complaint",
    tags=["public"],
    roles=["public"],
    body=PublicComplaint,
    responses={
        201: "filed: {ticket, ticket_display, kind, state, created_at, deadline, "
        "matched_cylinder, photo, track_url}",
        413: "a JSON body over [http] max_small_body_kb, or a photo over [uploads] image_max_mb",
        415: "a photo that is not a JPEG, PNG or WebP picture",
        429: "rate limited",
    },
    description="JSON, or multipart/form-data with the same fields and an optional `photo`. "
    "kind: complaint (投诉), report (举报) or fault (故障). The ticket (12 characters) is the "
    "complainant's key to GET /api/v1/public/complaints/{ticket}.",
)
@body_limit("upload")
async def create_public_complaint(request: web.Request) -> web.Response:
    """Store a complaint from the public page and give its ticket (audited)."""
    await rate_limit(request)
    if request.content_type.startswith("multipart/"):
        body, photo = await _multipart_body(request)
    elif request.content_type == "application/json":
        body, photo = await _json_body(request), None
    else:
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            "send JSON, or multipart/form-data with a photo",
            {"field": "Content-Type"},
        )
    text = check_text(request, body.text)
    contact = body.contact.strip() if body.contact and body.contact.strip() else None
    settings = request.app[SETTINGS]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        photo_id = None
        if photo is not None:
            stored = await store(
                conn,
                settings.uploads,
                photo[1],
                purpose="complaint",
                field="photo",
                images_only=True,
                filename=photo[0],
            )
            photo_id = stored.id
        filed = await file_complaint(
            conn,
            settings,
            text=text,
            kind=body.kind,
            source="qr",
            code=body.code,
            contact=contact,
            photo_upload_id=photo_id,
        )
        await audit(
            conn,
            principal_of(request),
            "complaint.create",
            "complaint",
            filed.id,
            {"code": body.code, "cylinder_id": filed.cylinder_id, "kind": body.kind},
            request.remote,
        )
    return json_response(
        {
            "ticket": filed.ticket,
            "ticket_display": format_ticket(filed.ticket),
            "kind": body.kind,
            "state": "new",
            "created_at": filed.created_at,
            "deadline": filed.deadline,
            "matched_cylinder": filed.cylinder_id is not None,
            "photo": photo_id is not None,
            "track_url": track_url(filed.ticket),
        },
        201,
    )


@api_doc(
    "Public: follow a complaint by its ticket",
    tags=["public"],
    roles=["public"],
    query=[Param("lang", enum=list(LANGUAGES))],
    responses={404: "no complaint has this ticket", 429: "rate limited"},
    description="ticket_display, kind, state, created_at, deadline, overdue, assigned_at, "
    "answered_at, the "
    "answer (once answered), closed_at and outcome. Never the contact, the people or the "
    "bureau's notes.",
)
async def track_complaint(request: web.Request) -> web.Response:
    """A complaint's progress as its complainant may see it."""
    await rate_limit(request)
    check_query(request, ["lang"])
    ticket = normalize_ticket(request.match_info["ticket"])
    if ticket is None:
        raise not_found("complaint")
    row = await request.app[POOL].fetchrow(
        """SELECT ticket, kind, state, created_at, deadline, assigned_at, answer, answered_at,
                  closed_at, outcome
             FROM complaints WHERE ticket = $1""",
        ticket,
    )
    if row is None:
        raise not_found("complaint")
    day = city_today(request.app[SETTINGS])
    answered = row["state"] in ("answered", "closed")
    return json_response(
        {
            "ticket": row["ticket"],
            "ticket_display": format_ticket(row["ticket"]),
            "kind": row["kind"],
            "state": row["state"],
            "created_at": row["created_at"],
            "deadline": row["deadline"],
            "overdue": is_overdue(row["state"], row["deadline"], day),
            "assigned_at": row["assigned_at"],
            "answered_at": row["answered_at"] if answered else None,
            "answer": row["answer"] if answered else None,
            "closed_at": row["closed_at"],
            "outcome": row["outcome"],
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.post(f"{API}/public/complaints", create_public_complaint),
        web.get(API + "/public/complaints/{ticket}", track_complaint, allow_head=False),
    ]
