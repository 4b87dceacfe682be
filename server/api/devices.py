"""Devices: filling guns, smart valves, handhelds, vehicles (docs/ARCHITECTURE.md §5, §7).

A gun belongs to one station and the station is never taken from a payload, so the
device registry is what ties a fill to a station: only the admin and the owning company's
admin may register or move a device, and a company admin only to its own sites.

Broker access follows the registry (docs/SECURITY.md "Broker", docs/ARCHITECTURE.md §5):

- registering an active device generates its MQTT password, stores only its Mosquitto hash
  (for the password-file fallback) and, when the platform manages the broker, creates the
  device's client and role at once (:func:`ingest.dynsec.create_device_client`); the 201
  answer carries the password once (``mqtt_password``) — it is never stored or returned
  again. If the broker cannot take the client now, no password is handed out (the hash is
  cleared) and ``cylwatch devices broker-sync`` issues one later;
- deactivating (PATCH ``"active": false``) disables the device's broker client, which also
  closes its connection; re-activating enables it with its old password
  (:func:`ingest.dynsec.apply_device_active`). The registry is the truth either way: ingest
  refuses an inactive device's messages and fill requests at once, and a change the broker
  could not take (``pending``) is applied by the next ``broker-sync``;
- both answers say what became of the change on the broker (``broker``:
  ``applied`` / ``no_client`` / ``pending`` / ``unmanaged``, :data:`ingest.dynsec.BrokerOutcome`),
  so the devices page tells its user the truth.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ingest.credentials import mosquitto_hash, new_password
from ingest.dynsec import (
    BrokerOutcome,
    apply_device_active,
    create_device_client,
    may_have_client,
)
from server.api.common import (
    API,
    UNSET,
    Code,
    Id,
    Name,
    Param,
    UnsetType,
    api_doc,
    changes,
    check_query,
    envelope,
    fetch_in_scope,
    fetch_page,
    insert_row,
    jsonable,
    like_prefix,
    plain,
    q_id,
    read_body,
    require_some,
)
from server.api.params import company_filter
from server.api.rows import before_after, update_row_audited
from server.domain.statuses import DEVICE_KINDS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.audit import audit
from server.kernel.errors import ApiError, bad_field, forbidden
from server.kernel.http import json_response, path_int, q_bool, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, can_read, scope_where

READ_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator")
WRITE_ROLES = ("admin", "company_admin")
HIDDEN = ("mqtt_password_hash", "status_at")
COLUMNS = "d.*, s.code AS site_code, s.name AS site_name, co.name AS company_name"
JOINED = (
    "devices d LEFT JOIN sites s ON s.id = d.site_id LEFT JOIN companies co ON co.id = d.company_id"
)
"""A device with the names of its site and company (the devices page shows them)."""


class DeviceCreate(msgspec.Struct, forbid_unknown_fields=True):
    device_id: Code
    kind: str
    company_id: Id | None = None
    site_id: Id | None = None
    name: Name | None = None
    plate_no: Code | None = None
    active: bool = True


class DevicePatch(msgspec.Struct, forbid_unknown_fields=True):
    company_id: Id | UnsetType | None = UNSET
    site_id: Id | UnsetType | None = UNSET
    name: Name | UnsetType | None = UNSET
    plate_no: Code | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET


async def _check_site(request: web.Request, p: Principal, fields: dict[str, Any]) -> None:
    """The site must exist and, for a company admin, be its own; the company follows it."""
    if p.role == "company_admin":
        if fields.get("company_id", p.company_id) != p.company_id:
            raise ApiError(
                403,
                "forbidden",
                "company_id: a company admin registers its own devices",
                {"field": "company_id"},
            )
        fields["company_id"] = p.company_id
    site_id = fields.get("site_id")
    if site_id is None:
        return
    company = await request.app[POOL].fetchrow(
        "SELECT company_id FROM sites WHERE id = $1", site_id
    )
    if company is None:
        raise bad_field("site_id", "no such site")
    if p.role == "company_admin" and company["company_id"] != p.company_id:
        raise ApiError(
            403, "forbidden", "site_id: not a site of your company", {"field": "site_id"}
        )
    fields.setdefault("company_id", company["company_id"])


def _readable(p: Principal) -> None:
    if not can_read(p, "devices"):
        raise forbidden(f"role {p.role} may not read devices")


QUERY = (
    Param("q", description="prefix of the device id"),
    Param("kind", enum=DEVICE_KINDS),
    Param("company", description="company code or id"),
    Param("site", "integer", description="site id"),
    Param("online", "boolean"),
    Param("active", "boolean"),
)


@api_doc("List devices", tags=["devices"], roles=READ_ROLES, query=QUERY, paginated=True)
async def list_devices(request: web.Request) -> web.Response:
    """Devices in the caller's scope, by device id."""
    p = require(request, *READ_ROLES)
    _readable(p)
    check_query(request, [x.name for x in QUERY])
    page = q_page(request)
    q = Sql()
    where = [scope_where(p, "devices", "d", q)]
    prefix = q_str(request, "q", max_len=64)
    if prefix:
        lo, hi = like_prefix(prefix)
        where.append(f"(d.device_id ~>=~ {q.add(lo)} AND d.device_id ~<~ {q.add(hi)})")
    kind = q_choice(request, "kind", DEVICE_KINDS)
    if kind:
        where.append(f"d.kind = {q.add(kind)}")
    comp = company_filter(request, "d.company_id", q)
    if comp:
        where.append(comp)
    site = q_id(request, "site")
    if site:
        where.append(f"d.site_id = {q.add(site)}")
    for flag in ("online", "active"):
        value = q_bool(request, flag)
        if value is not None:
            where.append(f"d.{flag} IS {'TRUE' if value else 'NOT TRUE'}")
    rows, total = await fetch_page(
        request.app[POOL],
        COLUMNS,
        f"{JOINED} WHERE {' AND '.join(where)}",
        "d.device_id",
        q,
        page,
    )
    return json_response(envelope([plain(r, HIDDEN) for r in rows], page, total))


async def _visible(request: web.Request, p: Principal, did: int) -> dict[str, Any]:
    row = await fetch_in_scope(
        request,
        p,
        entity="devices",
        alias="d",
        select=f"SELECT {COLUMNS} FROM {JOINED}",
        row_id=did,
        what="device",
    )
    return plain(row, HIDDEN)


@api_doc("Get a device", tags=["devices"], roles=READ_ROLES)
async def get_device(request: web.Request) -> web.Response:
    """One device, if the caller's scope holds it."""
    p = require(request, *READ_ROLES)
    _readable(p)
    return json_response(await _visible(request, p, path_int(request)))


@api_doc(
    "Register a device",
    tags=["devices"],
    roles=WRITE_ROLES,
    body=DeviceCreate,
    responses={201: "created", 409: "device_id already exists"},
)
async def create_device(request: web.Request) -> web.Response:
    """Register a device (a gun needs its station)."""
    p = require(request, *WRITE_ROLES)
    body = await read_body(request, DeviceCreate)
    if body.kind not in DEVICE_KINDS:
        raise bad_field("kind", f"must be one of {', '.join(DEVICE_KINDS)}")
    if body.kind == "gun" and body.site_id is None:
        raise bad_field("site_id", "a gun belongs to a station: site_id is required")
    values = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
    await _check_site(request, p, values)
    settings = request.app[SETTINGS]
    password = new_password() if body.active and may_have_client(settings, body.device_id) else None
    if password is not None:
        values["mqtt_password_hash"] = mosquitto_hash(password)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await insert_row(conn, "devices", values, "device_id")
        shown = {k: v for k, v in values.items() if k not in HIDDEN}
        await audit(conn, p, "device.create", "device", row["id"], jsonable(shown), request.remote)
        if password is not None:
            # as `devices mosquitto-config` / `broker-sync` do: who, which device, never the password
            await audit(
                conn,
                p,
                "device.credentials",
                "device",
                body.device_id,
                {"via": "api"},
                request.remote,
            )
    broker: BrokerOutcome = "no_client"  # inactive, or an id that cannot be an MQTT username
    if password is not None:
        broker = await create_device_client(settings, body.device_id, body.kind, password)
        if broker == "pending":
            # not on the broker: a password handed out now would not be the one broker-sync sets
            await request.app[POOL].execute(
                "UPDATE devices SET mqtt_password_hash = NULL WHERE id = $1", row["id"]
            )
            password = None
    out = plain(row, HIDDEN)
    out["mqtt_password"] = password
    out["broker"] = broker
    return json_response(out, 201)


@api_doc("Change a device", tags=["devices"], roles=WRITE_ROLES, body=DevicePatch)
async def patch_device(request: web.Request) -> web.Response:
    """Rename, move or (de)activate a device of the caller's company (admin: any)."""
    p = require(request, *WRITE_ROLES)
    did = path_int(request)
    body = await read_body(request, DevicePatch)
    fields = changes(body)
    require_some(fields)
    await _visible(request, p, did)
    if p.role == "company_admin" and "company_id" in fields:
        raise ApiError(
            403,
            "forbidden",
            "company_id: only the admin moves a device between companies",
            {"field": "company_id"},
        )
    await _check_site(request, p, fields)
    if p.role == "company_admin":
        fields.pop("company_id", None)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row, before = await update_row_audited(conn, "devices", did, fields, "site_id")
        details = before_after(before, fields, HIDDEN)
        await audit(conn, p, "device.update", "device", did, jsonable(details), request.remote)
    out = plain(row, HIDDEN)
    if "active" in fields:
        # after the commit: a deactivated device is cut off the broker at once (its client
        # disabled, its connection closed); docs/SECURITY.md "Broker"
        out["broker"] = await apply_device_active(
            request.app[SETTINGS], row["device_id"], fields["active"]
        )
    return json_response(out)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{API}/devices", list_devices, allow_head=False),
        web.post(f"{API}/devices", create_device),
        web.get(API + r"/devices/{id:\d+}", get_device, allow_head=False),
        web.patch(API + r"/devices/{id:\d+}", patch_device),
    ]
