"""The public's API (docs/ARCHITECTURE.md §1, §8): scan a QR code, complain, read safety articles.

No login. What a scan shows is what a household needs to decide whether a cylinder is
safe to accept — owner company, model, status label (合格/待检/过期/报废), last fill time and
station, next inspection date, scrap status, the last steps of its trajectory at site level
(registered, filled at station X, delivered by company Y, inspected) — and what it needs to
act: the owner's order phone as a ``tel:`` link, the owner's notice, and a fault report with a
photo. Nothing about people: no customer, no operator, no address, no position finer than a
site. Every public endpoint is rate-limited per client address with a Redis counter per
minute (settings.public.rate_limit_per_min), shared by all server processes; past the limit
the answer is 429 `rate_limited` with Retry-After.

Complaints are filed and followed by ticket in ``server.api.complaints_public`` and worked
by the bureau and the companies in ``server.api.complaints``; safety articles are read in
``server.api.articles_public``.
"""

from __future__ import annotations

import re
import time
from typing import Final

from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    today,
)
from server.db import complaints as complaints_db
from server.domain.complaints import format_ticket
from server.domain.dates import ComplianceStatus, compliance_status, public_label
from server.domain.events import EventKind
from server.domain.localtime import city_date
from server.kernel import errors, uploads
from server.kernel.appkeys import POOL, REDIS, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response
from server.kernel.i18n import LANGUAGES
from server.kernel.limits import body_limit
from server.kernel.principal import principal_of

WINDOW_S = 60  # the limit is per minute (settings.public.rate_limit_per_min)
RATE_PREFIX = "cylwatch:public:rate:"
CODE_RE = re.compile(r"^[A-Za-z0-9._:/\-]{1,64}$")
CONTACT_MAX = 100  # as a complaint's contact (server.api.complaints_public)

TRAJECTORY_STEPS = 10
"""Steps of the public trajectory, newest first: a phone screen's worth, about two rounds of
fill → dispatch → delivery → return. The whole history is the owner's and the bureau's
(GET /api/v1/cylinders/{id}/trajectory); the public needs only to see that the cylinder
travels the lawful way, and one probe of events (cylinder_id, ts) answers it."""

PUBLIC_STEPS: tuple[str, ...] = tuple(
    k.value
    for k in (
        EventKind.register,
        EventKind.fill,
        EventKind.dispatch,
        EventKind.deliver,
        EventKind.return_,
        EventKind.transfer,
        EventKind.receive,
        EventKind.inspection,
        EventKind.scrap,
    )
)
"""What the public trajectory shows (docs/ARCHITECTURE.md §8): where the cylinder went at
site level. Refused fills, status changes and record edits are the bureau's business."""

TRAJECTORY_SQL = """
    SELECT e.ts, e.kind, s.name AS site, COALESCE(sc.name, co.name) AS company
      FROM events e
      LEFT JOIN sites s ON s.id = e.site_id
      LEFT JOIN companies sc ON sc.id = s.company_id
      LEFT JOIN companies co ON co.id = e.company_id
     WHERE e.cylinder_id = $1 AND e.kind = ANY($2::text[])
     ORDER BY e.ts DESC, e.received_at DESC
     LIMIT $3"""
"""Never the customer, operator, device, position, district or details of an event: the
date, the step, the site's name and the company that acted (the site's owner — a delivery
is by the store's company — or else the event's company)."""


async def rate_limit(request: web.Request) -> None:
    """Count this request against the client's per-minute budget; 429 past it."""
    limit = request.app[SETTINGS].public.rate_limit_per_min
    now = time.time()
    window = int(now // WINDOW_S)
    key = f"{RATE_PREFIX}{request.remote or 'unknown'}:{window}"
    redis = request.app[REDIS]
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, WINDOW_S * 2)
    count, _ = await pipe.execute()
    if int(count) > limit:
        retry = max(1, int(WINDOW_S - (now % WINDOW_S)) + 1)
        raise ApiError(
            429,
            errors.RATE_LIMITED,
            f"too many requests: at most {limit} per minute",
            {"retry_after_s": retry},
            headers={"Retry-After": str(retry)},
        )


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang") or request.headers.get("Accept-Language", "") or "zh-CN"
    return "en" if lang.lower().startswith("en") else "zh-CN"


@api_doc(
    "Public: what a QR scan shows",
    tags=["public"],
    roles=["public"],
    query=[Param("lang", enum=list(LANGUAGES))],
    description="code = the barcode/QR code or the tag. Owner, model, status label, last "
    f"fill, next inspection, scrap status; `trajectory`: the last {TRAJECTORY_STEPS} steps, "
    "newest first, as {date, step, site, company} (steps: "
    f"{', '.join(PUBLIC_STEPS)}); `order_phone` and its `order_tel` link; the owner's "
    "`notice` {text, url} or null. No personal data, never the tag. Rate-limited.",
)
async def public_cylinder(request: web.Request) -> web.Response:
    """One cylinder as the public may see it."""
    await rate_limit(request)
    check_query(request, ["lang"])
    code = request.match_info["code"]
    if not CODE_RE.match(code):
        raise not_found("cylinder")
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    row = await pool.fetchrow(
        """SELECT c.id, c.barcode, c.spec, c.medium, c.status, c.manufacture_date,
                  c.manufacturer, c.next_inspection_date, c.scrap_date, c.last_fill_at,
                  c.tag_voided, o.name AS owner_name, o.order_phone, o.notice_text,
                  o.notice_url, fs.name AS last_fill_station
             FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
             LEFT JOIN sites fs ON fs.id = c.last_fill_site_id
            WHERE c.barcode = $1 OR c.tag = $1
            ORDER BY (c.barcode = $1) DESC LIMIT 1""",
        code,
    )
    if row is None:
        raise not_found("cylinder")
    steps = await pool.fetch(TRAJECTORY_SQL, row["id"], list(PUBLIC_STEPS), TRAJECTORY_STEPS)
    lang = _lang(request)
    day = today(settings)
    comp = compliance_status(
        row["status"], row["next_inspection_date"], row["scrap_date"], day, settings.dates
    )
    if row["tag_voided"]:
        # a voided tag is void for ever (docs/ARCHITECTURE.md §4): whatever the dates say, the
        # household must read 报废, as the gun reads it (server.domain.authorization)
        comp = ComplianceStatus.SCRAPPED
    scrapped = comp.value == "scrapped"
    model = settings.model(row["spec"])
    return json_response(
        {
            # never the RFID tag, even when it was the code asked for: a tag is what a fill
            # gun trusts, and a copied tag makes a forged cylinder (docs/API.md "Public")
            "code": row["barcode"],
            "barcode": row["barcode"],
            "owner": row["owner_name"],
            "spec": row["spec"],
            "medium": row["medium"],
            "volume_l": model.volume_l if model else None,
            "manufacturer": row["manufacturer"],
            "manufacture_date": row["manufacture_date"],
            "compliance": comp.value,
            "status_label": public_label(comp, lang),
            "next_inspection_date": row["next_inspection_date"],
            "scrap_date": row["scrap_date"],
            "scrapped": scrapped,
            "last_fill": (
                {"ts": row["last_fill_at"], "station": row["last_fill_station"]}
                if row["last_fill_at"]
                else None
            ),
            "checked_on": day,
            "trajectory": [
                {
                    "date": city_date(r["ts"], settings.alerts),
                    "step": r["kind"],
                    "site": r["site"],
                    "company": r["company"],
                }
                for r in steps
            ],
            "order_phone": row["order_phone"] or None,
            "order_tel": tel_link(row["order_phone"]),
            "notice": (
                {"text": row["notice_text"], "url": row["notice_url"]}
                if row["notice_text"]
                else None
            ),
        }
    )


def tel_link(phone: str | None) -> str | None:
    """A one-tap ``tel:`` link of an order phone (RFC 3966: digits and a leading +), or None
    when the company has none; spaces, dashes and brackets are only for reading."""
    if not phone:
        return None
    digits = re.sub(r"[^0-9+]", "", phone)
    digits = digits[:1] + digits[1:].replace("+", "")
    return f"tel:{digits}" if re.search(r"[0-9]", digits) else None


FAULT_FIELDS: Final = ("code", "text", "contact")
"""The text parts of a fault report; the photo is the part named ``photo``."""


@api_doc(
    "Public: report a fault of a cylinder (故障报修), with an optional photo",
    tags=["public"],
    roles=["public"],
    responses={
        201: "{ticket, ticket_display, kind, state, created_at, deadline, photo, track_url}",
        404: "no cylinder has this code",
        413: "photo larger than [uploads] image_max_mb",
        415: "photo not JPEG, PNG or WebP, or the body not multipart/form-data",
        429: "rate limited",
    },
    description="multipart/form-data: code (the scanned barcode or tag, required), text (up to "
    "public.complaint_max_chars), contact (optional, up to 100 characters: read by the bureau "
    "only), photo (optional, one picture; re-encoded without its metadata). Filed as a "
    "complaint of kind 'fault' for the cylinder's owner company and district: the answer "
    "deadline, the history and the ticket to follow (GET /api/v1/public/complaints/{ticket}) "
    "are the complaints workflow's.",
)
@body_limit("upload")
async def report_fault(request: web.Request) -> web.Response:
    """A household reports a leaking valve, a broken regulator, a damaged cylinder."""
    await rate_limit(request)
    settings = request.app[SETTINGS]
    max_bytes = settings.uploads.image_max_mb * 1024 * 1024
    fields, files = await uploads.read_multipart(request, max_bytes, files=("photo",), max_files=1)
    unknown = sorted(set(fields) - set(FAULT_FIELDS))
    if unknown:
        raise bad_field(unknown[0], f"unknown field; known: {', '.join(FAULT_FIELDS)}, photo")
    for name, value in fields.items():
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: a 400 here, not a 500 later
            raise bad_field(name, "must not contain NUL characters")
    code = fields.get("code", "").strip()
    if not code:
        raise bad_field("code", "is required: the code of the cylinder at fault")
    if not CODE_RE.match(code):
        raise bad_field("code", "letters, digits and . _ : / - only, at most 64")
    text = fields.get("text", "").strip()
    if not text:
        raise bad_field("text", "is empty")
    if len(text) > settings.public.complaint_max_chars:
        raise bad_field("text", f"at most {settings.public.complaint_max_chars} characters")
    contact = fields.get("contact", "").strip() or None
    if contact is not None and len(contact) > CONTACT_MAX:
        raise bad_field("contact", f"at most {CONTACT_MAX} characters")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await complaints_db.find_cylinder(conn, code) is None:
            raise not_found("cylinder")
        photo = None
        if files:
            _, filename, data = files[0]
            photo = await uploads.store(
                conn,
                settings.uploads,
                data,
                purpose="fault_photo",
                field="photo",
                images_only=True,
                filename=filename,
            )
        filed = await complaints_db.file_complaint(
            conn,
            settings,
            text=text,
            kind="fault",
            source="qr",
            code=code,
            contact=contact,
            photo_upload_id=photo.id if photo else None,
        )
        await audit(
            conn,
            principal_of(request),
            "complaint.create",
            "complaint",
            filed.id,
            {
                "kind": "fault",
                "code": code,
                "cylinder_id": filed.cylinder_id,
                "photo": photo.id if photo else None,
            },
            request.remote,
        )
    # imported here: server.api.complaints_public takes rate_limit from this module
    from server.api.complaints_public import track_url

    return json_response(
        {
            "ticket": filed.ticket,
            "ticket_display": format_ticket(filed.ticket),
            "kind": "fault",
            "state": "new",
            "created_at": filed.created_at,
            "deadline": filed.deadline,
            "photo": photo is not None,
            "track_url": track_url(filed.ticket),
        },
        201,
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get(API + "/public/cylinders/{code}", public_cylinder, allow_head=False),
        web.post(f"{API}/public/faults", report_fault),
    ]
