"""One cylinder as the REST API reads, shows and records it (docs/API.md "Cylinders").

Why a module of its own: searching, registering, changing and inspecting a cylinder all
need the same three things — the row only if the caller's scope holds it (404 otherwise,
so another company's cylinder does not reveal that it exists; docs/API.md "Roles and
scope"), the same JSON with its compliance status judged on the city's day, and a
trajectory event (EPCIS step and disposition, ``server.domain.events``) for every change.
Registering one needs, besides, the owner and site looked up within the caller's scope and the
state of the tag (free, taken, or voided for ever by a scrapping), which the registration form
also asks as one types (``GET /api/v1/cylinders/tag-check``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeVar

import asyncpg
import msgspec

from server.api.rows import plain
from server.domain.dates import compliance_status
from server.domain.events import EventKind, epcis_for
from server.domain.registration import refused_at_registration
from server.domain.statuses import SCRAPPED
from server.kernel import errors
from server.kernel.clock import city_today
from server.kernel.errors import ApiError, bad_field, not_found
from server.kernel.principal import Principal
from server.kernel.scope import Sql, can_read, scope_where
from server.kernel.settings import Settings

__all__ = [
    "LIST_COLUMNS",
    "LIST_FROM",
    "compliance_of",
    "cylinder_detail",
    "cylinder_json",
    "event_json",
    "fetch_visible",
    "record_event",
    "registrant_body",
    "registration_owner",
    "registration_site",
    "tag_state",
]

LIST_COLUMNS = """c.id, c.tag, c.stamp, c.barcode, c.owner_company_id, o.code AS owner_code,
    o.name AS owner_name, c.spec, c.medium, c.manufacture_date, c.last_inspection_date,
    c.next_inspection_date, c.scrap_date, c.inspection_count, c.status, c.district_code,
    c.fill_state, c.location_kind, c.location_site_id, c.last_fill_at, c.updated_at"""

LIST_FROM: Final = "cylinders c JOIN companies o ON o.id = c.owner_company_id"

_DETAIL_COLUMNS = """c.*, o.code AS owner_code, o.name AS owner_name,
    ls.code AS location_site_code, ls.name AS location_site_name,
    rs.code AS registered_by_site_code, rs.name AS registered_by_site_name,
    fs.code AS last_fill_site_code, fs.name AS last_fill_site_name,
    dv.device_id AS location_device"""

_DETAIL_FROM = """cylinders c JOIN companies o ON o.id = c.owner_company_id
    LEFT JOIN sites ls ON ls.id = c.location_site_id
    LEFT JOIN sites rs ON rs.id = c.registered_by_site_id
    LEFT JOIN sites fs ON fs.id = c.last_fill_site_id
    LEFT JOIN devices dv ON dv.id = c.location_device_id"""

# Columns a client never needs (internal ingest bookkeeping).
_HIDDEN = ("state_at",)

# Keys of the detail row shown under "location" / "last_fill" instead of at the top level.
_NESTED = (
    "location_site_code",
    "location_site_name",
    "location_device",
    "last_fill_site_code",
    "last_fill_site_name",
)


def _new_msg_id() -> str:
    return f"api-{uuid.uuid4()}"


async def record_event(
    conn: asyncpg.Connection,
    cyl: Mapping[str, Any],
    kind: EventKind,
    p: Principal,
    details: Mapping[str, Any],
    *,
    conformant: bool = True,
    site_id: int | None = None,
) -> None:
    """A trajectory event caused by a person through the API (EPCIS step and disposition)."""
    epcis = epcis_for(kind, conformant=conformant)
    await conn.execute(
        """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                               company_id, operator, district_code, details)
           VALUES (clock_timestamp(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        _new_msg_id(),
        cyl["id"],
        cyl["tag"],
        kind.value,
        epcis.biz_step,
        epcis.disposition,
        site_id if site_id is not None else cyl.get("location_site_id"),
        cyl["owner_company_id"],
        p.username,
        cyl.get("district_code"),
        dict(details),
    )


def compliance_of(record: Mapping[str, Any], settings: Settings, day: dt.date) -> str:
    """The domain's verdict for one row (``server.db.compliance`` must agree with it)."""
    return compliance_status(
        record["status"], record["next_inspection_date"], record["scrap_date"], day, settings.dates
    ).value


def cylinder_json(row: Mapping[str, Any], settings: Settings, day: dt.date) -> dict[str, Any]:
    """A cylinder row as JSON, with its compliance status on *day*."""
    out = plain(row, drop=_HIDDEN)
    out["compliance"] = compliance_of(row, settings, day)
    return out


async def fetch_visible(
    db: asyncpg.Pool | asyncpg.Connection, p: Principal, cid: int, *, for_update: bool = False
) -> asyncpg.Record:
    """The cylinder if the caller's scope holds it, else 404 (existence is not revealed)."""
    q = Sql(cid)
    where = scope_where(p, "cylinders", "c", q)
    lock = " FOR UPDATE OF c" if for_update else ""
    row = await db.fetchrow(
        f"SELECT {_DETAIL_COLUMNS} FROM {_DETAIL_FROM} WHERE c.id = $1 AND {where}{lock}", *q.params
    )
    if row is None:
        raise not_found(f"cylinder {cid}")
    return row


async def cylinder_detail(
    db: asyncpg.Pool | asyncpg.Connection, p: Principal, row: Mapping[str, Any], settings: Settings
) -> dict[str, Any]:
    """The archive with owner, current location, compliance and last fill (GET and writes).

    The customer a cylinder is at, and its last fill's weights, are shown only to roles
    that may read customers and fills (docs/API.md "Roles and scope").
    """
    out = cylinder_json(row, settings, city_today(settings))
    out["location"] = {
        "kind": row["location_kind"],
        "site_id": row["location_site_id"],
        "site_code": row["location_site_code"],
        "site_name": row["location_site_name"],
        "device": row["location_device"],
        "customer_id": row["location_customer_id"] if can_read(p, "customers") else None,
        "district_code": row["district_code"],
        "lat": row["lat"],
        "lon": row["lon"],
        "seen_at": row["last_seen_at"],
    }
    last_fill: dict[str, Any] | None = None
    if row["last_fill_at"] is not None:
        last_fill = {
            "ts": row["last_fill_at"],
            "site_id": row["last_fill_site_id"],
            "site_code": row["last_fill_site_code"],
            "site_name": row["last_fill_site_name"],
        }
    if can_read(p, "fills"):
        # the latest fill, shown in full only if the caller's fills scope holds it (a station
        # operator sees the weights of its own station's fills, not another station's of the
        # same company); otherwise the time and station the archive row shows to anyone
        q = Sql(row["id"])
        f = await db.fetchrow(
            f"""SELECT f.ts, f.net_kg, f.result, f.assessment, f.station_id, s.code, s.name
                  FROM (SELECT * FROM fills WHERE cylinder_id = $1 ORDER BY ts DESC LIMIT 1) f
                  LEFT JOIN sites s ON s.id = f.station_id
                 WHERE {scope_where(p, "fills", "f", q)}""",
            *q.params,
        )
        if f is not None:
            last_fill = {
                "ts": f["ts"],
                "net_kg": f["net_kg"],
                "result": f["result"],
                "assessment": f["assessment"],
                "site_id": f["station_id"],
                "site_code": f["code"],
                "site_name": f["name"],
            }
    out["last_fill"] = plain(last_fill) if last_fill else None
    for k in _NESTED:
        out.pop(k, None)
    if not can_read(p, "customers"):
        out["location_customer_id"] = None
    if not can_read(p, "positions"):
        for where in (out, out["location"]):
            where["lat"] = where["lon"] = None
    return out


def event_json(row: Mapping[str, Any], p: Principal) -> dict[str, Any]:
    """A trajectory event as JSON; its coordinates only for roles that may read positions
    (a delivery's are the customer's door; docs/SECURITY.md "Privacy")."""
    out = plain(row)
    if not can_read(p, "positions"):
        out["lat"] = out["lon"] = None
    return out


# ---------------------------------------------------------------- registration (建档)

S = TypeVar("S", bound=msgspec.Struct)


def registrant_body(p: Principal, body: S) -> S:
    """*body* of a registration as *p* may send it (``server.domain.registration``): a field
    the role may not state is a 403 naming it; a company admin who names no owner registers
    for its own company (the owner is then still checked in SQL, :func:`registration_owner`).

    A field counts as stated when its value differs from the schema's default, so a client
    that sends every field with its default (``"status": "in_service"``) is not refused.
    """
    stated = [
        f.name
        for f in msgspec.structs.fields(body)
        if f.default is msgspec.NODEFAULT or getattr(body, f.name) != f.default
    ]
    refused = refused_at_registration(p.role, stated)
    if refused is not None:
        raise ApiError(
            403,
            errors.FORBIDDEN,
            f"{refused}: role {p.role} may not state this at registration; "
            "the dates are derived from the manufacture date and set by inspections",
            {"field": refused},
        )
    if (
        p.role == "company_admin"
        and getattr(body, "owner_company_id", None) is None
        and getattr(body, "owner_code", None) is None
    ):
        body = msgspec.structs.replace(body, owner_company_id=p.company_id)
    return body


async def registration_owner(
    conn: asyncpg.Connection, p: Principal, owner_id: int | None, owner_code: str | None
) -> asyncpg.Record:
    """The owner company of a new cylinder, looked up within the caller's companies scope
    (docs/ARCHITECTURE.md §7): a company admin reaches only its own company, so it cannot
    register a cylinder for another — which answers like an unknown company, revealing nothing."""
    if (owner_id is None) == (owner_code is None):
        raise bad_field("owner_company_id", "give exactly one of owner_company_id or owner_code")
    field = "owner_code" if owner_code is not None else "owner_company_id"
    column = "code" if owner_code is not None else "id"
    q = Sql(owner_code if owner_code is not None else owner_id)
    owner = await conn.fetchrow(
        f"""SELECT co.id, co.district_code FROM companies co
             WHERE co.{column} = $1 AND {scope_where(p, "companies", "co", q)}""",
        *q.params,
    )
    if owner is None:
        if p.role == "company_admin":
            raise bad_field(field, "not your company: a company admin registers its own cylinders")
        raise bad_field(field, "no such company")
    return owner


async def registration_site(conn: asyncpg.Connection, p: Principal, site_id: int) -> asyncpg.Record:
    """The site a new cylinder is at, within the caller's sites scope (a company admin: its
    own company's sites)."""
    q = Sql(site_id)
    site = await conn.fetchrow(
        f"""SELECT s.id, s.district_code FROM sites s
             WHERE s.id = $1 AND {scope_where(p, "sites", "s", q)}""",
        *q.params,
    )
    if site is None:
        raise bad_field("location_site_id", "no such site")
    return site


TagState = Literal["taken", "voided"]


async def tag_state(
    db: asyncpg.Pool | asyncpg.Connection, p: Principal, tag: str
) -> tuple[TagState | None, int | None]:
    """Why *tag* cannot be registered — ``"voided"`` (it was on a scrapped cylinder: a tag is
    never reused after scrapping, DOMAIN.md "Standards"), ``"taken"``, or None when it is free —
    and the id of the cylinder holding it when the caller's scope holds that cylinder (a
    cylinder of another company stays unnamed: one probe of the unique index on ``tag``)."""
    q = Sql(tag)
    scrapped = q.add(SCRAPPED)
    row = await db.fetchrow(
        f"""SELECT c.tag_voided OR c.status = {scrapped} AS voided,
                   CASE WHEN {scope_where(p, "cylinders", "c", q)} THEN c.id END AS visible_id
              FROM cylinders c WHERE c.tag = $1""",
        *q.params,
    )
    if row is None:
        return None, None
    return ("voided" if row["voided"] else "taken"), row["visible_id"]
