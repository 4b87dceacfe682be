"""Wall layouts: list, read, create, change, delete, and switch a wall (docs/API.md "Wall layouts").

DESIGN §8: the command-centre wall (``/big-screen``) shows a saved layout — a grid of
windows, each a map, KPI tiles, the ticker, a chart, any report's chart or table, or a video
stream — and an authorised person switches the layout a wall shows, live. What a valid
layout is and who may switch which wall is ``server.domain.wall``; storage, the audit row
and the live event are ``server.db.wall_layouts`` (shared with the websocket command
``wall_switch``, ``realtime.wall``). Admins edit; admins and regulators read and switch
(a district regulator the walls of their districts only).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from server.api.common import API, Param, api_doc, check_query, envelope, read_body
from server.db import wall_layouts as store
from server.domain import wall
from server.kernel import errors
from server.kernel.appkeys import BUS, POOL, SETTINGS
from server.kernel.errors import ApiError
from server.kernel.http import field_from_msgspec, json_response, path_int, q_page
from server.kernel.principal import Principal, require

READERS = wall.SWITCH_ROLES
EDITORS = wall.EDIT_ROLES
_STATUS = {"not_found": 404, "forbidden": 403, "invalid": 400, "conflict": 409}
_CODE = {
    "not_found": errors.NOT_FOUND,
    "forbidden": errors.FORBIDDEN,
    "invalid": errors.INVALID_FIELD,
    "conflict": errors.CONFLICT,
}
REPORTS_PREFIX = f"{API}/reports/"


class LayoutPatch(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1)]
    """The version the editor started from: a newer one is a 409 (someone saved meanwhile)."""
    name: str | None = None
    columns: int | None = None
    rows: int | None = None
    windows: list[wall.Window] | None = None


class Activate(msgspec.Struct, forbid_unknown_fields=True):
    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    """The wall to switch: ``city`` or district codes; none: the caller's own wall."""


def refusal(exc: store.WallRefusal) -> ApiError:
    details = {"field": exc.field} if exc.field else None
    message = f"{exc.field}: {exc}" if exc.field and exc.kind == "invalid" else str(exc)
    return ApiError(_STATUS[exc.kind], _CODE[exc.kind], message, details)


def report_names(app: web.Application) -> frozenset[str] | None:
    """The reports mounted under ``/api/v1/reports/<name>`` (None: none found to check by)."""
    names = set()
    for resource in app.router.resources():
        path = resource.canonical
        if path.startswith(REPORTS_PREFIX):
            rest = path[len(REPORTS_PREFIX) :]
            if rest and "/" not in rest and "{" not in rest:
                names.add(rest)
    return frozenset(names) or None


def checked(request: web.Request, layout: wall.Layout) -> wall.Layout:
    """*layout* validated against the settings and the mounted reports; else a 400."""
    s = request.app[SETTINGS].big_screen
    limits = wall.Limits(s.grid_max, s.windows_max, s.stream_origins, report_names(request.app))
    try:
        return wall.validate(layout, limits)
    except wall.LayoutError as exc:
        raise errors.bad_field(exc.field, str(exc)) from None


async def _one(request: web.Request, layout_id: int) -> dict[str, Any]:
    row = await store.get(request.app[POOL], layout_id)
    if row is None:
        raise ApiError(404, errors.NOT_FOUND, f"no wall layout {layout_id}")
    return row


@api_doc(
    "List wall layouts",
    tags=["wall"],
    roles=READERS,
    paginated=True,
    description="Every layout by name, with its windows, its version and the walls showing it;"
    " `walls` lists every wall with a chosen layout, `mine` the caller's own wall's scope and"
    " `scopes` the walls the caller may switch (`{scope, name, name_en}`).",
)
async def list_layouts(request: web.Request) -> web.Response:
    p = require(request, *READERS)
    check_query(request, [])
    page = q_page(request)
    pool = request.app[POOL]
    items, total = await store.list_layouts(pool, page.page_size, page.offset)
    body = envelope(items, page, total)
    body["walls"] = await store.currents(pool)
    body["mine"] = wall.scope_of(p.city_wide, p.districts)
    body["scopes"] = await _switchable(pool, p)
    return json_response(body)


async def _switchable(pool: Any, p: Principal) -> list[dict[str, Any]]:
    """The walls *p* may switch, with their names: the city's and every district's for a
    city-wide account, its own (and each of its districts') for a district regulator."""
    rows = await pool.fetch("SELECT code, name, name_en FROM districts ORDER BY code")
    mine = wall.scope_of(p.city_wide, p.districts)
    out = [{"scope": mine, "name": None, "name_en": None}] if mine != wall.CITY else []
    if p.city_wide:
        out.append({"scope": wall.CITY, "name": None, "name_en": None})
    for r in rows:
        if r["code"] != mine and wall.may_switch(p.role, p.city_wide, p.districts, r["code"]):
            out.append({"scope": r["code"], "name": r["name"], "name_en": r["name_en"]})
    names = {r["code"]: (r["name"], r["name_en"]) for r in rows}
    if mine in names:
        out[0]["name"], out[0]["name_en"] = names[mine]
    return out


@api_doc(
    "The layout a wall shows now",
    tags=["wall"],
    roles=READERS,
    query=(Param("scope", description="`city` or district codes; default: the caller's wall"),),
    description="`{scope, layout, switched_at, switched_by}`; a wall never switched shows the"
    " default layout (today's wall, `layout.id` null).",
)
async def current(request: web.Request) -> web.Response:
    p = require(request, *READERS)
    check_query(request, ["scope"])
    scope = request.query.get("scope") or wall.scope_of(p.city_wide, p.districts)
    if not wall.scope_valid(scope):
        raise errors.bad_query("scope", "'city' or district codes, ascending, comma-separated")
    if not p.city_wide and not wall.may_switch(p.role, p.city_wide, p.districts, scope):
        raise ApiError(403, errors.FORBIDDEN, f"the wall of {scope} is not in your districts")
    return json_response(await store.current(request.app[POOL], scope))


@api_doc("Read a wall layout", tags=["wall"], roles=READERS, responses={404: "no such layout"})
async def read(request: web.Request) -> web.Response:
    require(request, *READERS)
    return json_response(await _one(request, path_int(request)))


@api_doc(
    "Create a wall layout",
    tags=["wall"],
    roles=EDITORS,
    body=wall.Layout,
    responses={201: "created", 409: "the name is taken"},
    description="Windows lie inside the grid and do not overlap; a stream's URL is http(s) from"
    " one of `[big_screen] stream_origins`; a report window names a report of the catalogue.",
)
async def create(request: web.Request) -> web.Response:
    p = require(request, *EDITORS)
    layout = checked(request, await read_body(request, wall.Layout))
    try:
        row = await store.create(request.app[POOL], p, layout, request.remote)
    except store.WallRefusal as exc:
        raise refusal(exc) from None
    return json_response(row, 201)


@api_doc(
    "Change a wall layout",
    tags=["wall"],
    roles=EDITORS,
    body=LayoutPatch,
    responses={404: "no such layout", 409: "changed meanwhile (version), or the name is taken"},
    description="Send the `version` you read; the walls showing the layout redraw it at once.",
)
async def patch(request: web.Request) -> web.Response:
    p = require(request, *EDITORS)
    layout_id = path_int(request)
    body = await read_body(request, LayoutPatch)
    old = await _one(request, layout_id)
    merged = {
        "name": body.name if body.name is not None else old["name"],
        "columns": body.columns if body.columns is not None else old["columns"],
        "rows": body.rows if body.rows is not None else old["rows"],
        "windows": msgspec.to_builtins(body.windows)
        if body.windows is not None
        else old["windows"],
    }
    try:
        candidate = msgspec.convert(merged, wall.Layout)
    except msgspec.ValidationError as exc:
        field = field_from_msgspec(str(exc))
        raise errors.bad_field(field, str(exc).split(" - at ")[0]) from None
    layout = checked(request, candidate)
    try:
        row = await store.update(
            request.app[POOL], request.app[BUS], p, layout_id, layout, body.version, request.remote
        )
    except store.WallRefusal as exc:
        raise refusal(exc) from None
    return json_response(row)


@api_doc(
    "Delete a wall layout",
    tags=["wall"],
    roles=EDITORS,
    responses={204: "deleted", 404: "no such layout", 409: "a wall shows it"},
)
async def delete(request: web.Request) -> web.Response:
    p = require(request, *EDITORS)
    try:
        await store.delete(request.app[POOL], p, path_int(request), request.remote)
    except store.WallRefusal as exc:
        raise refusal(exc) from None
    return web.Response(status=204)


async def _activate_body(request: web.Request) -> Activate:
    if not request.body_exists:
        return Activate()
    return await read_body(request, Activate)


@api_doc(
    "Switch a wall to this layout",
    tags=["wall"],
    roles=READERS,
    body=Activate,
    responses={404: "no such layout", 403: "not your wall"},
    description="The walls of the scope (default: the caller's own) follow within a second;"
    " audited (`wall.switch`). The websocket command `wall_switch` does the same.",
)
async def activate(request: web.Request) -> web.Response:
    p: Principal = require(request, *READERS)
    layout_id = path_int(request)
    body = await _activate_body(request)
    try:
        row = await store.switch(
            request.app[POOL],
            request.app[BUS],
            p,
            layout_id,
            body.scope,
            remote=request.remote,
            via="api",
        )
    except store.WallRefusal as exc:
        raise refusal(exc) from None
    return json_response(row)


def routes() -> list[web.RouteDef]:
    one = API + r"/wall-layouts/{id:\d+}"
    return [
        web.get(f"{API}/wall-layouts", list_layouts, allow_head=False),
        web.post(f"{API}/wall-layouts", create),
        web.get(f"{API}/wall-layouts/current", current, allow_head=False),
        web.get(one, read, allow_head=False),
        web.patch(one, patch),
        web.delete(one, delete),
        web.post(one + "/activate", activate),
    ]
