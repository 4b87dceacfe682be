"""Printed QR codes (docs/ARCHITECTURE.md §8 "/q/{code}", §9): the QR image of any cylinder,
and an A4 sheet of labels for a batch of them.

What a QR code holds is the public page's address, ``<[http] base_url>/q/<barcode>`` —
never the RFID tag: the tag is what a fill gun trusts, and a tag printed on a label is a tag
anyone can copy into a forged chip (docs/API.md "Public"). A cylinder without a barcode
therefore has no QR code.

- ``GET /api/v1/public/cylinders/{code}/qr.svg|qr.png`` is public and rate-limited like the
  rest of the public API (``server.api.public.rate_limit``), and cacheable: the image changes
  only when the barcode or ``base_url`` does, so it carries an ETag of its content and is
  answered 304 when the client already has it.
- ``GET /api/v1/cylinders/labels.pdf`` is for those who stick labels on cylinders: the admin,
  a company admin (its own cylinders) and an inspection agency. The batch is the cylinders
  named by ``ids=`` or those matching the cylinder search's filters, scoped in SQL, at most
  :data:`MAX_LABELS`. Each label has the QR code, the barcode as text, the owner and the
  model. The Chinese text needs a CJK font embedded in the PDF (:mod:`server.api.label_sheet`).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Final
from urllib.parse import quote

import segno
from aiohttp import web

from server.api.cylinders import LIST_QUERY, search_where
from server.api.doc import API, Param, api_doc
from server.api.label_sheet import MAX_LABELS, Label, render_sheet
from server.api.params import check_query
from server.api.public import CODE_RE, rate_limit
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_query, not_found
from server.kernel.http import ID_MAX, q_str
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Settings

__all__ = ["QR_ERROR", "public_url", "qr_code", "routes"]

QR_ERROR: Final = "q"
"""Error correction level Q: a quarter of the code may be scratched or soiled and it still
reads — a label on a steel cylinder is handled, rolled and rained on."""

PNG_SCALE: Final = 10
"""Pixels per module of the PNG: a code of ~37 modules is ~370 px, sharp on a phone screen and
about 300 dpi when printed at 3 cm."""

QUIET_ZONE: Final = 4
"""Modules of white around the code, as ISO/IEC 18004 requires for a reader to find it."""

QR_MAX_AGE_S: Final = 86_400
"""How long a client or proxy may keep a QR image without asking again: a barcode is fixed
at registration, so a day only delays a rare change of ``base_url``; the ETag answers the
rest with a 304."""

LABEL_ROLES: Final = ("admin", "company_admin", "inspector")
"""Who labels cylinders: the owner company, the inspection agency, and the bureau."""


def public_url(settings: Settings, barcode: str) -> str:
    """The public page of a barcode, as a QR code or a printed link shows it."""
    return f"{settings.http.base_url.rstrip('/')}/q/{quote(barcode, safe='')}"


def qr_code(settings: Settings, barcode: str) -> segno.QRCode:
    return segno.make(public_url(settings, barcode), error=QR_ERROR, micro=False)


async def _barcode_of(request: web.Request) -> str:
    """The barcode of the cylinder a public code names (its barcode or its tag)."""
    code = request.match_info["code"]
    if not CODE_RE.match(code):
        raise not_found("cylinder")
    row = await request.app[POOL].fetchrow(
        """SELECT barcode FROM cylinders WHERE barcode = $1 OR tag = $1
            ORDER BY (barcode = $1) DESC LIMIT 1""",
        code,
    )
    if row is None:
        raise not_found("cylinder")
    if row["barcode"] is None:
        # the tag is never printed (module docstring): no barcode, no public address
        raise ApiError(
            404,
            errors.NOT_FOUND,
            "this cylinder has no barcode, so it has no QR code",
            {"field": "code"},
        )
    return str(row["barcode"])


def _image(request: web.Request, body: bytes, content_type: str) -> web.Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": f"public, max-age={QR_MAX_AGE_S}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)


QR_DOC = (
    "The QR code of a cylinder's public page, `<[http] base_url>/q/<barcode>` (never the tag); "
    "code = its barcode or tag. 404 when there is no such cylinder or it has no barcode. "
    "Cacheable (ETag, Cache-Control: public); rate-limited like the public API."
)


@api_doc(
    "Public: a cylinder's QR code (SVG)",
    tags=["public"],
    roles=["public"],
    media_types=["image/svg+xml"],
    description=QR_DOC,
    responses={304: "not modified (If-None-Match)", 429: "rate limited"},
)
async def qr_svg(request: web.Request) -> web.Response:
    """A scalable QR code, for print work and pages."""
    await rate_limit(request)
    check_query(request, [])
    qr = qr_code(request.app[SETTINGS], await _barcode_of(request))
    buf = io.BytesIO()
    qr.save(buf, kind="svg", border=QUIET_ZONE, xmldecl=False, title=None)
    return _image(request, buf.getvalue(), "image/svg+xml")


@api_doc(
    "Public: a cylinder's QR code (PNG)",
    tags=["public"],
    roles=["public"],
    media_types=["image/png"],
    description=QR_DOC,
    responses={304: "not modified (If-None-Match)", 429: "rate limited"},
)
async def qr_png(request: web.Request) -> web.Response:
    """A bitmap QR code, ten pixels a module."""
    await rate_limit(request)
    check_query(request, [])
    qr = qr_code(request.app[SETTINGS], await _barcode_of(request))
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=PNG_SCALE, border=QUIET_ZONE)
    return _image(request, buf.getvalue(), "image/png")


# ---------------------------------------------------------------- the label sheet

LABEL_QUERY = (
    Param("ids", description=f"comma-separated cylinder ids (at most {MAX_LABELS})"),
    *LIST_QUERY,
)


def _ids(request: web.Request) -> list[int] | None:
    raw = q_str(request, "ids", max_len=MAX_LABELS * 21)  # 19 digits and a comma per id
    if raw is None:
        return None
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= ID_MAX:
            raise bad_query("ids", f"expected comma-separated positive ids, got {part!r}")
        ids.append(int(part))
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_LABELS:
        raise bad_query("ids", f"at most {MAX_LABELS} cylinders per sheet")
    return unique


@api_doc(
    "Print QR labels for a batch of cylinders (A4 PDF)",
    tags=["cylinders"],
    roles=LABEL_ROLES,
    media_types=["application/pdf"],
    query=(*LABEL_QUERY, Param("lang", enum=["zh-CN", "en"])),
    responses={
        200: "application/pdf; X-Labels: labels printed, X-Labels-Skipped: cylinders "
        "without a barcode (no QR code)",
        400: f"more than {MAX_LABELS} cylinders match: narrow the search",
        404: "an id of ids= is not in your scope, or nothing to label",
    },
    description=f"3 × 8 labels of 70 × 37 mm per A4 sheet, each with the QR code of the "
    f"cylinder's public page, its barcode, owner and model. The cylinders are those of ids= "
    f"or those the cylinder search's filters match in the caller's scope, at most "
    f"{MAX_LABELS}, by id.",
)
async def labels_pdf(request: web.Request) -> web.StreamResponse:
    """Render the label sheet of a batch (in a thread: a few hundred QR codes take a moment)."""
    p = require(request, *LABEL_ROLES)
    check_query(request, [x.name for x in LABEL_QUERY])
    settings = request.app[SETTINGS]
    ids = _ids(request)
    q = Sql()
    where = [scope_where(p, "cylinders", "c", q)]
    if ids is not None:
        where.append(f"c.id = ANY({q.add(ids)}::bigint[])")
    where += search_where(request, q, settings, city_today(settings))
    rows = await request.app[POOL].fetch(
        f"""SELECT c.id, c.barcode, c.spec, c.medium, o.name AS owner
              FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
             WHERE {" AND ".join(where)}
             ORDER BY c.id LIMIT {MAX_LABELS + 1}""",
        *q.params,
    )
    if len(rows) > MAX_LABELS:
        raise ApiError(
            400,
            errors.INVALID_QUERY,
            f"more than {MAX_LABELS} cylinders match: narrow the search",
            {"max": MAX_LABELS},
        )
    if ids is not None:
        missing = sorted(set(ids) - {r["id"] for r in rows})
        if missing:
            raise ApiError(
                404,
                errors.NOT_FOUND,
                f"cylinder {missing[0]} not found",
                {"field": "ids", "ids": missing[:20]},
            )
    labels = [
        Label(r["barcode"], public_url(settings, r["barcode"]), r["owner"], r["spec"], r["medium"])
        for r in rows
        if r["barcode"]
    ]
    if not labels:
        raise not_found("cylinder with a barcode")
    lang = "en" if (request.query.get("lang") or "").lower().startswith("en") else "zh-CN"
    pdf = await asyncio.to_thread(render_sheet, labels, lang, QR_ERROR)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="labels-{len(labels)}.pdf"',
            "Cache-Control": "private, no-store",
            "X-Labels": str(len(labels)),
            "X-Labels-Skipped": str(len(rows) - len(labels)),
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get(API + "/public/cylinders/{code}/qr.svg", qr_svg, allow_head=False),
        web.get(API + "/public/cylinders/{code}/qr.png", qr_png, allow_head=False),
        web.get(f"{API}/cylinders/labels.pdf", labels_pdf, allow_head=False),
    ]
