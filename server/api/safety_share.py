"""The customer's share link to a rectification notice (整改通知书分享链接; docs/API.md
"Safety inspections", docs/ARCHITECTURE.md §8).

``GET /api/v1/safety-inspections/{id}/notice-link``: whoever may see the record (its roles and
scope, ``server.kernel.scope`` "safety_inspections") gets ``{url, expires}`` — a link the
customer opens without a login. Handing it out discloses the customer's name and what failed
to whoever holds the link, so every call is audited (``safety_notice.share``).

``GET /api/v1/public/safety-notices/{token}``: no login, rate-limited as the other public
endpoints (``server.api.public.rate_limit``). It shows what the customer must fix and no more:
the customer's name (no ID number, no phone, no address), the inspection's date, each failed
item with its deadline and state, the company's name and order phone (订气电话). A forged or
altered token is 404 ``not_found`` (``details.reason`` ``invalid``); a genuine one past its
time 404 with ``details.reason`` ``expired`` — never data. The token's design (an HMAC, no
table) is ``server.domain.safety_share``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aiohttp import web

from server.api.common import API, api_doc, today
from server.api.customers import id_hash_key
from server.api.public import rate_limit
from server.api.safety_records import rectifications
from server.domain.safety import READ_ROLES
from server.domain.safety_share import NOTICE_LINK_DAYS, check_token, make_token, share_key
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import NOT_FOUND, ApiError, not_found
from server.kernel.http import json_response, path_int
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where

__all__ = ["routes"]

PAGE_PATH = "/n/"
"""The public page that opens a token (dashboard/pages/safety_share.py)."""


async def _key(request: web.Request) -> bytes:
    return share_key(await id_hash_key(request.app, request.app[POOL]))


@api_doc(
    "A share link to the customer's notice",
    tags=["safety"],
    roles=READ_ROLES,
    responses={404: "no such record in the caller's scope"},
    description=f"`{{url, expires}}`: a link (`<[http] base_url>{PAGE_PATH}<token>`) that "
    f"opens the record's notice without a login for {NOTICE_LINK_DAYS} days; the token is an "
    "HMAC over (record id, expiry) and opens no other record. Audited `safety_notice.share`.",
)
async def notice_link(request: web.Request) -> web.Response:
    p = require(request, *READ_ROLES)
    rid = path_int(request)
    pool = request.app[POOL]
    q = Sql(rid)
    found = await pool.fetchval(
        f"""SELECT s.id FROM safety_inspections s
             WHERE s.id = $1 AND {scope_where(p, "safety_inspections", "s", q)}""",
        *q.params,
    )
    if found is None:
        raise not_found(f"safety inspection {rid}")
    expires = int(time.time()) + NOTICE_LINK_DAYS * 86400
    token = make_token(await _key(request), rid, expires)
    base = request.app[SETTINGS].http.base_url.rstrip("/")
    expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
    await audit(
        pool,
        p,
        "safety_notice.share",
        "safety_inspection",
        rid,
        {"expires": expires_at.isoformat()},
        request.remote,
    )
    return json_response({"url": f"{base}{PAGE_PATH}{token}", "expires": expires_at})


def _refused(reason: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"notice link {reason}", {"reason": reason})


@api_doc(
    "Public: a customer's rectification notice, by its share link",
    tags=["public"],
    roles=["public"],
    responses={
        404: "a forged or altered token (details.reason invalid) or an expired one "
        "(details.reason expired)",
        429: "rate limited",
    },
    description="`{inspection_id, inspected_at, expires, customer {name}, company {name, "
    "order_phone}, items [{code, text_zh, text_en, deadline, state}]}`: the failed items and "
    "their deadlines; no ID number, phone or address. Rate-limited.",
)
async def public_notice(request: web.Request) -> web.Response:
    await rate_limit(request)
    state, rid = check_token(await _key(request), request.match_info["token"], time.time())
    if state != "valid" or rid is None:
        raise _refused(state)
    pool = request.app[POOL]
    row = await pool.fetchrow(
        """SELECT s.inspected_at, cu.name AS customer_name, co.name AS company_name,
                  co.order_phone
             FROM safety_inspections s
             JOIN customers cu ON cu.id = s.customer_id
             JOIN companies co ON co.id = s.company_id
            WHERE s.id = $1""",
        rid,
    )
    if row is None:
        raise _refused("invalid")
    settings = request.app[SETTINGS]
    rects: list[dict[str, Any]] = await rectifications(pool, rid, today(settings), settings.safety)
    expires = int(request.match_info["token"].split(".")[1])
    return json_response(
        {
            "inspection_id": rid,
            "inspected_at": row["inspected_at"],
            "expires": dt.datetime.fromtimestamp(expires, dt.UTC),
            "customer": {"name": row["customer_name"]},
            "company": {"name": row["company_name"], "order_phone": row["order_phone"]},
            "items": [
                {k: r[k] for k in ("code", "text_zh", "text_en", "deadline", "state")}
                for r in rects
            ],
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get(API + r"/safety-inspections/{id:\d+}/notice-link", notice_link, allow_head=False),
        web.get(API + "/public/safety-notices/{token}", public_notice, allow_head=False),
    ]
