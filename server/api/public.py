"""The public's API (docs/ARCHITECTURE.md §1, §8): scan a QR code, complain, read safety articles.

No login. What a scan shows is what a household needs to decide whether a cylinder is
safe to accept — owner company, model, status label (合格/待检/过期/报废), last fill time and
station, next inspection date, scrap status — and nothing about people: no customer, no
operator, no address, no position. Every public endpoint is rate-limited per client
address with a Redis counter per minute (settings.public.rate_limit_per_min), shared by
all server processes; past the limit the answer is 429 `rate_limited` with Retry-After.

Complaints are stored for the bureau (`complaints`, migration 0005) and readable by the
admin, regulators/officers in their districts and the company concerned.
"""

from __future__ import annotations

import functools
import json
import re
import time
from typing import Annotated, Any

import msgspec
from aiohttp import web

from server.api.common import (
    API,
    Code,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    plain,
    read_body,
    today,
)
from server.api.fills import time_range
from server.domain.dates import ComplianceStatus, compliance_status, public_label
from server.domain.statuses import COMPLAINT_STATES
from server.kernel import errors
from server.kernel.appkeys import POOL, REDIS, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.http import json_response, q_choice, q_district, q_page
from server.kernel.i18n import LANGUAGES
from server.kernel.limits import body_limit
from server.kernel.principal import Principal, principal_of, require
from server.kernel.scope import Sql
from server.kernel.settings import CONFIG_DIR

WINDOW_S = 60  # the limit is per minute (settings.public.rate_limit_per_min)
RATE_PREFIX = "cylwatch:public:rate:"
ARTICLES_FILE = CONFIG_DIR / "safety_articles.json"
_CODE_RE = re.compile(r"^[A-Za-z0-9._:/\-]{1,64}$")
COMPLAINT_ROLES = ("admin", "regulator", "officer", "company_admin")


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
    "fill, next inspection, scrap status — no personal data, never the tag. Rate-limited.",
)
async def public_cylinder(request: web.Request) -> web.Response:
    """One cylinder as the public may see it."""
    await rate_limit(request)
    check_query(request, ["lang"])
    code = request.match_info["code"]
    if not _CODE_RE.match(code):
        raise not_found("cylinder")
    settings = request.app[SETTINGS]
    row = await request.app[POOL].fetchrow(
        """SELECT c.barcode, c.spec, c.medium, c.status, c.manufacture_date, c.manufacturer,
                  c.next_inspection_date, c.scrap_date, c.last_fill_at, c.tag_voided,
                  o.name AS owner_name, fs.name AS last_fill_station
             FROM cylinders c JOIN companies o ON o.id = c.owner_company_id
             LEFT JOIN sites fs ON fs.id = c.last_fill_site_id
            WHERE c.barcode = $1 OR c.tag = $1
            ORDER BY (c.barcode = $1) DESC LIMIT 1""",
        code,
    )
    if row is None:
        raise not_found("cylinder")
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
        }
    )


class ComplaintBody(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    code: Code | None = None
    contact: Annotated[str, msgspec.Meta(max_length=100)] | None = None


@api_doc(
    "Public: file a complaint",
    tags=["public"],
    roles=["public"],
    body=ComplaintBody,
    responses={201: "stored", 429: "rate limited"},
    description="text up to settings.public.complaint_max_chars characters; code (optional) "
    "ties it to a cylinder and so to its company and district.",
)
@body_limit("small")
async def create_complaint(request: web.Request) -> web.Response:
    """Store a complaint (投诉举报) from the public page."""
    await rate_limit(request)
    body = await read_body(request, ComplaintBody)
    settings = request.app[SETTINGS]
    text = body.text.strip()
    if not text:
        raise bad_field("text", "is empty")
    if len(text) > settings.public.complaint_max_chars:
        raise bad_field("text", f"at most {settings.public.complaint_max_chars} characters")
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        cyl = None
        if body.code:
            cyl = await conn.fetchrow(
                """SELECT id, owner_company_id, district_code FROM cylinders
                    WHERE barcode = $1 OR tag = $1 ORDER BY (barcode = $1) DESC LIMIT 1""",
                body.code,
            )
        row = await conn.fetchrow(
            """INSERT INTO complaints (code, cylinder_id, company_id, district_code, text, contact)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at""",
            body.code,
            cyl["id"] if cyl else None,
            cyl["owner_company_id"] if cyl else None,
            cyl["district_code"] if cyl else None,
            text,
            body.contact,
        )
        assert row is not None
        await audit(
            conn,
            principal_of(request),
            "complaint.create",
            "complaint",
            row["id"],
            {"code": body.code, "cylinder_id": cyl["id"] if cyl else None},
            request.remote,
        )
    return json_response(
        {"id": row["id"], "created_at": row["created_at"], "matched_cylinder": cyl is not None}, 201
    )


@functools.lru_cache(maxsize=1)
def _articles() -> list[dict[str, Any]]:
    with ARTICLES_FILE.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return list(data["articles"])


@api_doc(
    "Public: safety articles",
    tags=["public"],
    roles=["public"],
    query=[Param("lang", enum=list(LANGUAGES))],
)
async def articles(request: web.Request) -> web.Response:
    """Safety tips for households (config/safety_articles.json)."""
    await rate_limit(request)
    check_query(request, ["lang"])
    en = _lang(request) == "en"
    items = [
        {
            "id": a["id"],
            "title": a["title_en"] if en else a["title"],
            "body": a["body_en"] if en else a["body"],
        }
        for a in _articles()
    ]
    return json_response({"items": items})


def _complaint_scope(p: Principal, q: Sql) -> str:
    if p.city_wide:
        return "TRUE"
    if p.role in ("regulator", "officer"):
        return f"k.district_code = ANY({q.add(list(p.districts))})"
    return f"k.company_id = {q.add(p.company_id)}"


COMPLAINT_QUERY = (
    Param("state", enum=COMPLAINT_STATES),
    Param("district", description="6-digit district code"),
    Param("from", "date-time", "filed at or after"),
    Param("to", "date-time", "filed before"),
)


@api_doc(
    "List public complaints",
    tags=["public"],
    roles=COMPLAINT_ROLES,
    query=COMPLAINT_QUERY,
    paginated=True,
)
async def list_complaints(request: web.Request) -> web.Response:
    """Complaints in the caller's scope (districts; a company its own cylinders'), newest first."""
    p = require(request, *COMPLAINT_ROLES)
    check_query(request, [x.name for x in COMPLAINT_QUERY])
    page = q_page(request)
    q = Sql()
    where = [_complaint_scope(p, q)]
    state = q_choice(request, "state", COMPLAINT_STATES)
    if state:
        where.append(f"k.state = {q.add(state)}")
    district = q_district(request)
    if district:
        where.append(f"k.district_code = {q.add(district)}")
    where += time_range(request, "k.created_at", q)
    rows, total = await fetch_page(
        request.app[POOL],
        "k.*",
        f"complaints k WHERE {' AND '.join(where)}",
        "k.created_at DESC, k.id DESC",
        q,
        page,
    )
    return json_response(envelope([plain(r) for r in rows], page, total))


def routes() -> list[web.RouteDef]:
    return [
        web.get(API + "/public/cylinders/{code}", public_cylinder, allow_head=False),
        web.post(f"{API}/public/complaints", create_complaint),
        web.get(f"{API}/public/articles", articles, allow_head=False),
        web.get(f"{API}/complaints", list_complaints, allow_head=False),
    ]
