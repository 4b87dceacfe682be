"""The safety-inspection item catalogue (安检项维护; docs/API.md "Safety inspections";
DOMAIN.md "Safety inspection at the customer"; docs/ARCHITECTURE.md §4).

``GET /api/v1/safety-items?customer_kind=&version=`` answers a kind's newest version (or a
past one), ``POST /api/v1/safety-items`` publishes a new version (admin, audited). A version
is never edited: the phone caches the version it walks, and a record keeps the version it
used (``server.db.safety.publish``; migration 0200's triggers refuse changes).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from server.api.common import API, Param, api_doc, check_query, plain, read_body
from server.db import safety as store
from server.domain.safety import (
    CATALOGUE_READ_ROLES,
    CATALOGUE_WRITE_ROLES,
    CUSTOMER_KINDS,
    fill_text,
)
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import bad_field, not_found
from server.kernel.http import json_response, q_choice, q_int
from server.kernel.principal import require

__all__ = ["catalogue_json", "routes"]

ItemText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
ItemCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,60}$")]
GroupCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,40}$")]
AnswerWord = Literal["pass", "fail", "na"]


class NewItem(msgspec.Struct, forbid_unknown_fields=True):
    """One item of a new version, in the order the inspector walks them."""

    group_code: GroupCode
    code: ItemCode
    text_zh: ItemText
    text_en: ItemText
    answers: Annotated[list[AnswerWord], msgspec.Meta(min_length=2, max_length=3)] = msgspec.field(
        default_factory=lambda: ["pass", "fail", "na"]
    )
    photo_required_on_fail: bool = False
    rectification_days: Annotated[int, msgspec.Meta(ge=0, le=365)] | None = None
    """None: ``[safety] rectification_days``."""


class NewCatalogue(msgspec.Struct, forbid_unknown_fields=True):
    """A new version of a customer kind's catalogue: the whole list of items."""

    customer_kind: Literal["resident", "restaurant", "industrial"]
    items: Annotated[list[NewItem], msgspec.Meta(min_length=1, max_length=200)]
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


async def catalogue_json(
    db: Any, limits: Any, kind: str, version: int | None = None
) -> dict[str, object]:
    """The catalogue as the API answers it (404 when the kind has no such version); texts
    with their ``{regulator_life_months}`` / ``{hose_life_months}`` filled from *limits*
    (``settings.safety``; ``server.domain.safety.fill_text``)."""
    found = await store.catalogue(db, kind, version)
    if found is None:
        raise not_found(f"catalogue {kind}" + (f" version {version}" if version else ""))
    head, items = found
    out = plain(head)
    out["catalogue_id"] = out.pop("id")
    out["items"] = [fill_item(plain(i), limits) for i in items]
    return out


def fill_item(item: dict[str, Any], limits: Any) -> dict[str, Any]:
    """*item* with its texts' numbers filled (``text_zh``, ``text_en``)."""
    for key in ("text_zh", "text_en"):
        if isinstance(item.get(key), str):
            item[key] = fill_text(item[key], limits)
    return item


QUERY = (
    Param(
        "customer_kind",
        enum=CUSTOMER_KINDS,
        description="resident (default), restaurant, industrial",
    ),
    Param("version", "integer", "a past version (default: the newest)"),
)


@api_doc(
    "The safety-inspection item catalogue",
    tags=["safety"],
    roles=CATALOGUE_READ_ROLES,
    query=QUERY,
    responses={404: "no such version"},
    description="{catalogue_id, customer_kind, version, published_at, note, items: [{id, "
    "position, group_code, code, text_zh, text_en, answers, photo_required_on_fail, "
    "rectification_days}]}. An inspection submits answers by item `id` of the version it used.",
)
async def get_items(request: web.Request) -> web.Response:
    """A customer kind's catalogue, newest version unless ``version`` names one."""
    require(request, *CATALOGUE_READ_ROLES)
    check_query(request, [x.name for x in QUERY])
    kind = q_choice(request, "customer_kind", CUSTOMER_KINDS) or "resident"
    version = q_int(request, "version", lo=1, hi=1_000_000)
    return json_response(
        await catalogue_json(request.app[POOL], request.app[SETTINGS].safety, kind, version)
    )


@api_doc(
    "Publish a new version of a catalogue",
    tags=["safety"],
    roles=CATALOGUE_WRITE_ROLES,
    body=NewCatalogue,
    responses={201: "the new version with its items", 400: "an item code twice, bad fields"},
    description="The whole list of items of the new version (n+1 of the kind); past versions "
    "and the records that used them are unchanged.",
)
async def post_items(request: web.Request) -> web.Response:
    """Publish version n+1 of a kind's catalogue (audited)."""
    p = require(request, *CATALOGUE_WRITE_ROLES)
    body = await read_body(request, NewCatalogue)
    codes = [i.code for i in body.items]
    if len(set(codes)) != len(codes):
        raise bad_field("items", "an item code appears twice")
    for i in body.items:
        if (
            "pass" not in i.answers
            or "fail" not in i.answers
            or len(set(i.answers)) != len(i.answers)
        ):
            raise bad_field("items", f"{i.code}: answers include pass and fail, each once")
    items = [msgspec.structs.asdict(i) for i in body.items]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        cid = await store.publish(conn, body.customer_kind, items, p.user_id, body.note)
        out = await catalogue_json(conn, request.app[SETTINGS].safety, body.customer_kind)
        await audit(
            conn,
            p,
            "safety_catalogue.publish",
            "safety_catalogue",
            cid,
            {"customer_kind": body.customer_kind, "version": out["version"], "items": len(items)},
            request.remote,
        )
    return json_response(out, 201)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/safety-items", get_items, allow_head=False),
        web.post(f"{API}/safety-items", post_items),
    ]
