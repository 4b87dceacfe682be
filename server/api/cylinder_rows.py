"""One cylinder as the REST API reads, shows and records it (docs/API.md "Cylinders").

Why a module of its own: searching, registering, changing and inspecting a cylinder all
need the same three things — the row only if the caller's scope holds it (404 otherwise,
so another company's cylinder does not reveal that it exists; docs/API.md "Roles and
scope"), the same JSON with its compliance status judged on the city's day, and a
trajectory event (EPCIS step and disposition, ``server.domain.events``) for every change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Final

import asyncpg

from server.api.rows import plain
from server.domain.dates import compliance_status
from server.domain.events import EventKind, epcis_for
from server.kernel.clock import city_today
from server.kernel.errors import not_found
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
