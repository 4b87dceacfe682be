"""Cylinders (气瓶档案, 一瓶一码一档): search, one archive, trajectory — and the routes of
every cylinder endpoint (docs/API.md "Cylinders"; DOMAIN.md "Cylinder record").

Everyone logged in may search and read, within their scope (docs/API.md "Roles and
scope"), applied in SQL; a cylinder outside the scope answers 404, never 403, so its
existence does not leak. Registration and changes are in ``server.api.cylinder_changes``,
periodic inspection results in ``server.api.inspections``; their routes are mounted here
so that the whole resource is declared in one place. What the registration form asks while one
types lives here too: the dates a registration would derive (the domain's rules, the same checks
as the registration itself) and whether a tag is free, taken or voided.
"""

from __future__ import annotations

import re
from datetime import date

import msgspec
from aiohttp import web

from server.api.cylinder_changes import (
    CylinderCreate,
    check_dates,
    check_spec,
    create_cylinder,
    patch_cylinder,
)
from server.api.cylinder_rows import (
    LIST_COLUMNS,
    LIST_FROM,
    cylinder_detail,
    cylinder_json,
    event_json,
    fetch_visible,
    tag_state,
)
from server.api.doc import API, Param, api_doc
from server.api.inspections import inspect
from server.api.params import check_query, company_filter, like_prefix, q_format
from server.api.rows import envelope, fetch_page
from server.api.trajectory_export import trajectory_file
from server.db.compliance import COMPLIANCE_VALUES, ComplianceBounds, compliance_where
from server.domain.dates import compliance_status, derive_next_inspection, derive_scrap_date
from server.domain.registration import REGISTRANT_ROLES
from server.domain.statuses import CYLINDER_STATUSES, IN_SERVICE, ROLES
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_field, bad_query
from server.kernel.http import (
    json_response,
    path_int,
    q_choice,
    q_date,
    q_district,
    q_id,
    q_page,
    q_str,
)
from server.kernel.principal import require
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Settings

__all__ = ["EVENT_COLUMNS", "EVENT_FROM", "LIST_QUERY", "routes", "search_where"]

# ---------------------------------------------------------------- search


LIST_QUERY = (
    Param("tag", description="exact RFID tag (unique)"),
    Param("stamp", description="exact steel stamp no."),
    Param("barcode", description="exact QR/barcode (unique)"),
    Param("q", description="prefix of tag, stamp or barcode"),
    Param("company", description="owner company code or id"),
    Param("status", enum=CYLINDER_STATUSES),
    Param(
        "compliance",
        enum=COMPLIANCE_VALUES,
        description="computed from dates (docs/ARCHITECTURE.md §4)",
    ),
    Param("district", description="6-digit district code where the cylinder is now"),
    Param("spec", description="model code, e.g. YSP35.5"),
    Param("site", "integer", description="id of the site where the cylinder is now"),
)


def search_where(request: web.Request, q: Sql, settings: Settings, day: date) -> list[str]:
    """The conditions of the cylinder search's filters (:data:`LIST_QUERY`), on ``cylinders c``;
    the caller adds the role scope. One place, because the label sheet
    (``server.api.labels``) prints what the search with the same filters lists."""
    where: list[str] = []
    for name in ("tag", "stamp", "barcode", "spec"):
        value = q_str(request, name, max_len=64)
        if value is not None:
            where.append(f"c.{name} = {q.add(value)}")
    prefix = q_str(request, "q", max_len=64)
    if prefix is not None:
        ors = []
        lo, hi = like_prefix(prefix)
        for col in ("tag", "stamp", "barcode"):
            ors.append(f"(c.{col} ~>=~ {q.add(lo)} AND c.{col} ~<~ {q.add(hi)})")
        where.append("(" + " OR ".join(ors) + ")")
    comp = company_filter(request, "c.owner_company_id", q)
    if comp:
        where.append(comp)
    status = q_choice(request, "status", CYLINDER_STATUSES)
    if status:
        where.append(f"c.status = {q.add(status)}")
    district = q_district(request)
    if district:
        where.append(f"c.district_code = {q.add(district)}")
    site = q_id(request, "site")
    if site:
        where.append(f"c.location_site_id = {q.add(site)}")
    compliance = q_choice(request, "compliance", COMPLIANCE_VALUES)
    if compliance:
        where.append(compliance_where(compliance, "c", q, ComplianceBounds.of(day, settings.dates)))
    return where


@api_doc(
    "Search cylinders",
    tags=["cylinders"],
    roles=ROLES,
    query=LIST_QUERY,
    paginated=True,
)
async def list_cylinders(request: web.Request) -> web.Response:
    """Search the archive within the caller's scope. A tag or barcode filter is one probe of
    its unique index; no total is counted when the first page holds every match."""
    p = require(request)
    check_query(request, [x.name for x in LIST_QUERY])
    settings = request.app[SETTINGS]
    page = q_page(request)
    q = Sql()
    day = city_today(settings)
    where = [scope_where(p, "cylinders", "c", q), *search_where(request, q, settings, day)]
    rows, total = await fetch_page(
        request.app[POOL],
        LIST_COLUMNS,
        f"{LIST_FROM} WHERE {' AND '.join(where)}",
        "c.id",
        q,
        page,
    )
    return json_response(envelope([cylinder_json(r, settings, day) for r in rows], page, total))


# ---------------------------------------------------------------- one cylinder


@api_doc(
    "Get a cylinder's archive",
    tags=["cylinders"],
    roles=ROLES,
    description="Archive, owner, current location, compliance status and last fill.",
)
async def get_cylinder(request: web.Request) -> web.Response:
    """The archive with owner, current location, compliance status and last fill."""
    p = require(request)
    pool = request.app[POOL]
    row = await fetch_visible(pool, p, path_int(request))
    return json_response(await cylinder_detail(pool, p, row, request.app[SETTINGS]))


# ---------------------------------------------------------------- trajectory


EVENT_COLUMNS = """e.ts, e.received_at, e.msg_id, e.cylinder_id, e.tag, e.kind, e.biz_step,
    e.disposition, e.site_id, s.code AS site_code, s.name AS site_name, e.company_id,
    co.name AS company_name, e.device_id, e.operator, e.lat, e.lon, e.district_code, e.details"""
EVENT_FROM = """events e LEFT JOIN sites s ON s.id = e.site_id
    LEFT JOIN companies co ON co.id = e.company_id"""


@api_doc(
    "Trajectory of a cylinder",
    tags=["cylinders", "events"],
    roles=ROLES,
    paginated=True,
    query=(
        Param(
            "format", "string", "json (a page), csv or xlsx (every event)", ("json", "csv", "xlsx")
        ),
    ),
    formats=("json", "csv", "xlsx"),
    description="Events oldest first, with site and company names (EPCIS step/disposition); "
    "format=csv|xlsx: every event as a file (server.api.trajectory_export).",
)
async def trajectory(request: web.Request) -> web.StreamResponse:
    """Everything that happened to one cylinder, oldest first (paginated, or a file)."""
    p = require(request)
    check_query(request, ["format"])
    fmt = q_format(request)
    cid = path_int(request)
    page = q_page(request)
    pool = request.app[POOL]
    row = await fetch_visible(pool, p, cid)
    if fmt != "json":
        return await trajectory_file(request, p, cid, fmt, row["tag"])
    q = Sql(cid)
    rows, total = await fetch_page(
        pool,
        EVENT_COLUMNS,
        f"{EVENT_FROM} WHERE e.cylinder_id = $1",
        "e.ts, e.received_at, e.msg_id",
        q,
        page,
    )
    return json_response(envelope([event_json(r, p) for r in rows], page, total))


# ---------------------------------------------------------------- registration (建档)


@api_doc(
    "Register a cylinder (建档)",
    tags=["cylinders"],
    roles=REGISTRANT_ROLES,
    body=CylinderCreate,
    responses={
        201: "created",
        403: "a field the role may not state at registration (details.field)",
        409: "tag taken or voided (details.reason: taken | voided), or barcode taken",
    },
    description='Omitted next inspection / scrap dates are derived (DOMAIN.md "Dates"); a '
    "company admin registers for its own company only and states no inspection dates or "
    "status (server.domain.registration). A 'register' event opens the trajectory.",
)
async def register(request: web.Request) -> web.Response:
    """``create_cylinder``, with a refused tag explained: a tag that was on a scrapped cylinder
    is voided for ever (DOMAIN.md "Standards") — the registrant must be told that, not only
    that the tag "already exists", or it will try the same chip again."""
    try:
        return await create_cylinder(request)
    except ApiError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        if exc.status != 409 or details.get("field") != "tag":
            raise
        # the body was read and checked (it reached the insert); aiohttp keeps its bytes
        tag = msgspec.json.decode(await request.read(), type=CylinderCreate).tag
        raise tag_refused(tag, *await tag_state(request.app[POOL], require(request), tag)) from None


def tag_refused(tag: str, state: str | None, cylinder_id: int | None) -> ApiError:
    """The 409 of a tag that cannot be registered, with its reason (``taken`` / ``voided``)."""
    if state == "voided":
        message = (
            f"tag: {tag} is voided — it was on a scrapped cylinder, and a voided tag is never"
            " registered again"
        )
    else:
        message = f"tag: {tag} is already registered to another cylinder"
    details = {"field": "tag", "reason": state or "taken", "cylinder_id": cylinder_id}
    return ApiError(409, errors.CONFLICT, message, details)


PREVIEW_QUERY = (
    Param("manufacture_date", "date", required=True),
    Param("last_inspection_date", "date"),
    Param("next_inspection_date", "date", description="stated instead of derived"),
    Param("scrap_date", "date", description="stated instead of derived (legacy rules)"),
    Param("spec", description="a configured model; its volume and maximum fill are returned"),
)


@api_doc(
    "Preview a registration's derived dates",
    tags=["cylinders"],
    roles=ROLES,
    query=PREVIEW_QUERY,
    description="The next inspection and scrap dates POST /api/v1/cylinders would store for "
    'these dates (DOMAIN.md "Dates"), and the compliance status they give today; the same '
    "checks as the registration (400 naming the field). Reads no data.",
)
async def preview(request: web.Request) -> web.Response:
    """What a registration with these dates would store, as the form is filled in: the
    rules are the domain's (``server.domain.dates``) and the checks the registration's own
    (``check_dates``, ``check_spec``), so the page never computes a date itself."""
    require(request)
    check_query(request, [x.name for x in PREVIEW_QUERY])
    settings = request.app[SETTINGS]
    made = q_date(request, "manufacture_date")
    if made is None:
        raise bad_query("manufacture_date", "is required")
    last = q_date(request, "last_inspection_date")
    stated_next = q_date(request, "next_inspection_date")
    stated_scrap = q_date(request, "scrap_date")
    spec = q_str(request, "spec", max_len=64)
    model = None
    if spec is not None:
        check_spec(settings, spec)
        model = settings.model(spec)
    rules = settings.dates
    if last is not None and last < made:
        raise bad_field("last_inspection_date", "is before manufacture_date")
    try:
        next_insp = stated_next or derive_next_inspection(made, last, rules)
        scrap = stated_scrap or derive_scrap_date(made, rules)
    except ValueError as exc:  # a date beyond the calendar
        raise bad_field("manufacture_date", str(exc)) from None
    check_dates(settings, made, last, next_insp, scrap)
    day = city_today(settings)
    derived = [
        name
        for name, stated in (("next_inspection_date", stated_next), ("scrap_date", stated_scrap))
        if stated is None
    ]
    return json_response(
        {
            "manufacture_date": made,
            "last_inspection_date": last,
            "next_inspection_date": next_insp,
            "scrap_date": scrap,
            "derived": derived,
            "compliance": compliance_status(IN_SERVICE, next_insp, scrap, day, rules).value,
            "today": day,
            "model": (
                {"spec": model.spec, "volume_l": model.volume_l, "max_fill_kg": model.max_fill_kg}
                if model is not None
                else None
            ),
        }
    )


_TAG = re.compile(r"^[A-Za-z0-9._:/\-]{1,64}$")
"""What ``server.api.fields.Code`` accepts for a tag."""


@api_doc(
    "Can this tag be registered?",
    tags=["cylinders"],
    roles=REGISTRANT_ROLES,
    query=(Param("tag", required=True, description="the RFID/EPC tag to register"),),
    description="`{tag, available, reason, cylinder_id}`: reason `taken` or `voided` (the tag "
    "was on a scrapped cylinder: never registered again); `cylinder_id` only when the caller's "
    'scope holds that cylinder, so another company\'s cylinder is only "taken".',
)
async def tag_check(request: web.Request) -> web.Response:
    """Whether a tag may be registered, asked as the form's tag is typed or scanned."""
    p = require(request, *REGISTRANT_ROLES)
    check_query(request, ["tag"])
    tag = q_str(request, "tag", max_len=64)
    if tag is None:
        raise bad_query("tag", "is required")
    if not _TAG.match(tag):
        raise bad_query("tag", "letters, digits and . _ : / - only")
    state, cid = await tag_state(request.app[POOL], p, tag)
    return json_response(
        {"tag": tag, "available": state is None, "reason": state, "cylinder_id": cid}
    )


def routes() -> list[web.RouteDef]:
    # `{id:\d+}` keeps /cylinders/import and /cylinders/export (server.api.archive) free.
    return [
        web.get(f"{API}/cylinders", list_cylinders, allow_head=False),
        web.post(f"{API}/cylinders", register),
        web.get(f"{API}/cylinders/preview", preview, allow_head=False),
        web.get(f"{API}/cylinders/tag-check", tag_check, allow_head=False),
        web.get(API + r"/cylinders/{id:\d+}", get_cylinder, allow_head=False),
        web.patch(API + r"/cylinders/{id:\d+}", patch_cylinder),
        web.get(API + r"/cylinders/{id:\d+}/trajectory", trajectory, allow_head=False),
        web.post(API + r"/cylinders/{id:\d+}/inspections", inspect),
    ]
