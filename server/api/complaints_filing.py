"""Filing a complaint from the desk or the phone: ``POST /api/v1/complaints`` (docs/API.md
"Complaints"; docs/ARCHITECTURE.md §4). A regulator enters a phone call (source ``phone``); a
field officer files what it meets on its rounds from the phone app ``/m`` (source ``mobile``,
in the officer's districts, JSON or multipart with a ``photo``). One way in for every source:
``server.db.complaints.file_complaint``; the rest of the workflow is ``server.api.complaints``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Code,
    District,
    Id,
    api_doc,
    read_body,
    today,
)
from server.api.complaints import detail
from server.db import complaints as store
from server.domain.complaints import (
    ASSIGN_ROLES,
)
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field
from server.kernel.http import (
    field_from_msgspec,
    json_response,
)
from server.kernel.limits import body_limit
from server.kernel.principal import require
from server.kernel.scope import Sql
from server.kernel.uploads import read_multipart
from server.kernel.uploads import store as store_upload

__all__ = ["check_text", "routes"]

FILE_ROLES: Final = (*ASSIGN_ROLES, "officer")
"""Who files a complaint: regulators enter phone calls, field officers file what they meet on
their rounds (DESIGN §1) from the phone app; an officer's lands only in its districts."""
_MB: Final = 1024 * 1024

Contact = Annotated[str, msgspec.Meta(max_length=100)]
ComplaintText = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
"""Bounded by ``[public] complaint_max_chars`` in the handler (a setting, not a type)."""


class PhoneComplaint(msgspec.Struct, forbid_unknown_fields=True):
    """A complaint a regulator takes on the phone (热线) and enters for the caller."""

    text: ComplaintText
    kind: Literal["complaint", "report", "fault"] = "complaint"
    contact: Contact | None = None
    """The caller's name and number: regulators read it, the company never does."""
    code: Code | None = None
    """The cylinder concerned (barcode or tag), if the caller has it."""
    company_id: Id | None = None
    """The company concerned, when no cylinder is named."""
    district_code: District | None = None
    """Where it happened, when neither a cylinder nor a company says it."""


def _clean(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def check_text(request: web.Request, text: str) -> str:
    """The complaint's text, trimmed, within ``[public] complaint_max_chars`` (400 otherwise)."""
    limit = request.app[SETTINGS].public.complaint_max_chars
    clean = text.strip()
    if not clean:
        raise bad_field("text", "is empty")
    if len(clean) > limit:
        raise bad_field("text", f"at most {limit} characters")
    return clean


async def _multipart(request: web.Request) -> tuple[PhoneComplaint, tuple[str | None, bytes]]:
    """A multipart complaint (the phone app's, with a photo): its fields as the JSON ones."""
    max_bytes = request.app[SETTINGS].uploads.image_max_mb * _MB
    fields, files = await read_multipart(request, max_bytes, files=("photo",), max_files=1)
    if any("\x00" in v for v in fields.values()):
        raise bad_field("body", "strings must not contain NUL characters")
    values: dict[str, Any] = {k: v for k, v in fields.items() if v != "" or k == "text"}
    try:
        body = msgspec.convert(values, PhoneComplaint, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise bad_field(field_from_msgspec(message), message.split(" - at ")[0]) from None
    if not files:
        raise bad_field("photo", "a multipart complaint carries one photo (else send JSON)")
    return body, (files[0][1], files[0][2])


@api_doc(
    "File a complaint (a phone call, or an officer's from the phone app)",
    tags=["complaints"],
    roles=FILE_ROLES,
    body=PhoneComplaint,
    responses={
        201: "filed: the complaint with its ticket (tell it to the caller)",
        400: "empty or too long text, a code naming no cylinder, an unknown company",
        403: "the complaint would fall outside the regulator's or officer's districts",
        413: "a photo over [uploads] image_max_mb",
        415: "a photo that is not a JPEG, PNG or WebP picture",
    },
    description="A regulator enters a call (source `phone`); an officer files one from the "
    "phone app /m (source `mobile`: the source follows the role, officers have no phone desk). "
    "With the complainant's contact and the cylinder (code) or company concerned; the district "
    "comes from the cylinder, else the company, else district_code, and must be one of the "
    "caller's. JSON, or multipart/form-data with the same fields and one `photo`. "
    "Deadline: [complaints] answer_working_days working days.",
)
@body_limit("upload")
async def create_complaint(request: web.Request) -> web.Response:
    """File a complaint taken on the phone or met by an officer (audited)."""
    p = require(request, *FILE_ROLES)
    photo = None
    if request.content_type.startswith("multipart/"):
        body, photo = await _multipart(request)
    else:
        body = await read_body(request, PhoneComplaint)
    text = check_text(request, body.text)
    source = "mobile" if p.role == "officer" else "phone"
    settings = request.app[SETTINGS]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        photo_id = None
        if photo is not None:
            stored = await store_upload(
                conn,
                settings.uploads,
                photo[1],
                purpose="complaint",
                field="photo",
                images_only=True,
                filename=photo[0],
            )
            photo_id = stored.id
        if body.code and await store.find_cylinder(conn, body.code) is None:
            raise bad_field("code", f"no cylinder has the code {body.code}")
        if body.company_id is not None and (
            await conn.fetchval("SELECT id FROM companies WHERE id = $1", body.company_id) is None
        ):
            raise bad_field("company_id", f"no company {body.company_id}")
        if body.district_code is not None and (
            await conn.fetchval("SELECT 1 FROM districts WHERE code = $1", body.district_code)
            is None
        ):
            raise bad_field("district_code", f"no district {body.district_code}")
        filed = await store.file_complaint(
            conn,
            settings,
            text=text,
            kind=body.kind,
            source=source,
            code=body.code,
            contact=_clean(body.contact),
            company_id=body.company_id,
            district_code=body.district_code,
            photo_upload_id=photo_id,
            created_by=p.user_id,
        )
        q = Sql(filed.id)
        visible = await conn.fetchval(
            f"SELECT 1 FROM complaints k WHERE k.id = $1 AND {store.scope(p, 'k', q)}", *q.params
        )
        if not visible:
            raise ApiError(
                403,
                errors.FORBIDDEN,
                "district_code: the complaint would fall outside your districts",
                {"field": "district_code"},
            )
        await audit(
            conn,
            p,
            "complaint.create",
            "complaint",
            filed.id,
            {"source": source, "kind": body.kind, "ticket": filed.ticket, "photo": photo_id},
            request.remote,
        )
        out = await detail(conn, p, filed.id, today(settings))
    return json_response(out, 201)


def routes() -> list[web.RouteDef]:
    return [web.post(f"{API}/complaints", create_complaint)]
