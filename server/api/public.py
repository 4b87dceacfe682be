"""The public's API (docs/ARCHITECTURE.md §1, §8): scan a QR code, complain, read safety articles.

No login. What a scan shows is what a household needs to decide whether a cylinder is
safe to accept — owner company, model, status label (合格/待检/过期/报废), last fill time and
station, next inspection date, scrap status — and nothing about people: no customer, no
operator, no address, no position. Every public endpoint is rate-limited per client
address with a Redis counter per minute (settings.public.rate_limit_per_min), shared by
all server processes; past the limit the answer is 429 `rate_limited` with Retry-After.

Complaints are filed and followed by ticket in ``server.api.complaints_public`` and worked
by the bureau and the companies in ``server.api.complaints``.
"""

from __future__ import annotations

import functools
import json
import re
import time
from typing import Any

from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    today,
)
from server.domain.dates import ComplianceStatus, compliance_status, public_label
from server.kernel import errors
from server.kernel.appkeys import POOL, REDIS, SETTINGS
from server.kernel.errors import ApiError, not_found
from server.kernel.http import json_response
from server.kernel.i18n import LANGUAGES
from server.kernel.settings import CONFIG_DIR

WINDOW_S = 60  # the limit is per minute (settings.public.rate_limit_per_min)
RATE_PREFIX = "cylwatch:public:rate:"
ARTICLES_FILE = CONFIG_DIR / "safety_articles.json"
_CODE_RE = re.compile(r"^[A-Za-z0-9._:/\-]{1,64}$")


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


def routes() -> list[web.RouteDef]:
    return [
        web.get(API + "/public/cylinders/{code}", public_cylinder, allow_head=False),
        web.get(f"{API}/public/articles", articles, allow_head=False),
    ]
