"""The registry rows a batch needs, fetched once per batch, one query per table.

Devices, cylinders, sites and customers the batch's messages mention are read before any
row is built. Cylinders are locked ``FOR UPDATE`` in id order: two workers whose batches
share cylinders then queue on the same row first instead of deadlocking, and the state a
batch computes from these rows is the state it writes (docs/BENCHMARKS.md "Ingest transport"
measures what that lock costs). Devices are read without locks: they are few and every batch
touches them, so :mod:`ingest.store.live_state` guards each device column by its own device
time instead.

A message from a device the registry does not know, or has disabled, is refused here
(:func:`registry_problem`) and dead-lettered by the batch; so is a handheld's scan naming a
site of another company (:func:`ingest.store.circulation.site_problem`). The facts of the
circulation checks are fetched last, in one more query (:mod:`ingest.store.circulation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import asyncpg

from ingest.schemas import GunAuth, GunFill, HandheldScan, MessageKind
from ingest.store.circulation import fetch_facts, site_problem
from ingest.store.context import BatchContext, Item, Territory

__all__ = [
    "CYLINDER_STATE",
    "add_sites",
    "look_up",
    "registry_problem",
    "scan_customer",
    "scan_site",
]

CYLINDER_STATE: Final = (
    "fill_state",
    "location_kind",
    "location_site_id",
    "location_device_id",
    "location_customer_id",
    "last_fill_at",
    "last_fill_site_id",
    "last_return_at",
    "last_seen_at",
    "lat",
    "lon",
    "district_code",
    "state_at",
)
"""The cylinder columns the rules read and :mod:`ingest.store.live_state` writes back."""

_CYL_SQL = f"""
SELECT id, tag, owner_company_id, spec, tag_voided, status, next_inspection_date, scrap_date,
       registered_at, {", ".join(CYLINDER_STATE)}
  FROM cylinders WHERE tag = ANY($1::text[]) ORDER BY id FOR UPDATE
"""

_DEV_SQL = """
SELECT d.id, d.device_id, d.kind, d.active, d.site_id, d.company_id, d.online,
       d.last_seen_at, d.status_at, d.position_at,
       s.code AS site_code, s.kind AS site_kind, s.company_id AS site_company_id,
       s.district_code AS site_district
  FROM devices d LEFT JOIN sites s ON s.id = d.site_id
 WHERE d.device_id = ANY($1::text[])
"""

_SITES_SQL = """
SELECT id, code, kind, company_id, district_code, permitted_full_storage, lat, lon,
       licence_no, licence_expiry, licence_status
  FROM sites WHERE code = ANY($1::text[]) OR id = ANY($2::bigint[])
"""

_CUSTOMERS_SQL = """
SELECT c.id, c.company_id, c.account_no, c.district_code, c.lat, c.lon
  FROM customers c
  JOIN unnest($1::bigint[], $2::text[]) AS k (company_id, account_no)
       ON c.company_id = k.company_id AND c.account_no = k.account_no
"""


async def look_up(
    conn: asyncpg.Connection, items: Sequence[Item], territory: Territory
) -> BatchContext:
    """Read (and lock) what *items* (all parsed) mention; return the batch's context."""
    device_ids: set[str] = set()
    tags: set[str] = set()
    scanned: set[str] = set()
    site_codes: set[str] = set()
    for item in items:
        p = item.parsed
        assert p is not None
        body = p.body
        if isinstance(body, GunAuth):
            if item.auth is not None and item.auth.cylinder is not None:
                tags.add(body.tag)
            device_ids.add(p.device_id)
            continue
        device_ids.add(p.device_id)  # a valve may also be registered as a device
        if p.device_kind == "valve":
            tags.add(p.device_id)
        if isinstance(body, GunFill | HandheldScan):
            tags.add(body.tag)
        if isinstance(body, HandheldScan):
            scanned.add(body.tag)
            if body.site:
                site_codes.add(body.site)
    devices = (
        {r["device_id"]: r for r in await conn.fetch(_DEV_SQL, list(device_ids))}
        if device_ids
        else {}
    )
    cylinders: dict[str, dict[str, Any]] = {}
    if tags:
        for r in await conn.fetch(_CYL_SQL, sorted(tags)):
            cylinders[r["tag"]] = dict(r)
    site_ids = {d["site_id"] for d in devices.values() if d["site_id"] is not None}
    # the station of a scanned cylinder's last fill: was it licensed? (suspected_illegal_fill)
    site_ids.update(
        c["last_fill_site_id"]
        for t in scanned
        if (c := cylinders.get(t)) is not None and c["last_fill_site_id"] is not None
    )
    sites_by_code: dict[str, asyncpg.Record] = {}
    sites_by_id: dict[int, asyncpg.Record] = {}
    if site_codes or site_ids:
        for r in await conn.fetch(_SITES_SQL, list(site_codes), list(site_ids)):
            sites_by_code[r["code"]] = r
            sites_by_id[r["id"]] = r
    wanted: set[tuple[int, str]] = set()
    for item in items:
        scan = item.parsed.body if item.parsed else None
        if isinstance(scan, HandheldScan) and scan.customer and scan.tag in cylinders:
            wanted.add((cylinders[scan.tag]["owner_company_id"], scan.customer))
    customers: dict[tuple[int, str], asyncpg.Record] = {}
    if wanted:
        ks = sorted(wanted)
        for r in await conn.fetch(_CUSTOMERS_SQL, [k[0] for k in ks], [k[1] for k in ks]):
            customers[(r["company_id"], r["account_no"])] = r
    batch = BatchContext(territory, devices, cylinders, sites_by_code, sites_by_id, customers)
    batch.cyl_by_id = {c["id"]: c for c in cylinders.values()}
    await fetch_facts(conn, items, batch)
    return batch


async def add_sites(conn: asyncpg.Connection, batch: BatchContext, site_ids: list[int]) -> None:
    """Read sites the batch learnt of only from cylinder state (by id) into its context."""
    missing = [s for s in site_ids if s not in batch.sites_by_id]
    if missing:
        for r in await conn.fetch(_SITES_SQL, [], missing):
            batch.sites_by_id[r["id"]] = r


def registry_problem(item: Item, batch: BatchContext) -> str | None:
    """Why a message from an unknown (or disabled) device is refused; None if it is not."""
    p = item.parsed
    assert p is not None
    if p.kind is MessageKind.AUTH:
        if item.auth is None or not item.auth.gun_known:
            return f"unknown device: gun {p.device_id} is not registered or inactive"
        return None
    dev = batch.devices.get(p.device_id)
    if p.device_kind == "valve":
        if p.device_id in batch.cylinders or (dev is not None and dev["kind"] == "valve"):
            return None
        return f"unknown device: valve {p.device_id} is no cylinder's tag"
    if dev is None or dev["kind"] != p.device_kind or not dev["active"]:
        return f"unknown device: {p.device_kind} {p.device_id} is not registered or inactive"
    return site_problem(p, batch)


def scan_site(
    body: HandheldScan, dev: asyncpg.Record, batch: BatchContext
) -> asyncpg.Record | None:
    """The site a scan names, else the handheld's own site (a store's handheld)."""
    if body.site and body.site in batch.sites_by_code:
        return batch.sites_by_code[body.site]
    if dev["site_id"] is not None:
        return batch.sites_by_id.get(dev["site_id"])
    return None


def scan_customer(
    body: HandheldScan, cyl: Mapping[str, Any] | None, batch: BatchContext
) -> asyncpg.Record | None:
    """``customer`` is an account number of the cylinder owner's company (实名制)."""
    if not body.customer or cyl is None:
        return None
    return batch.customers.get((cyl["owner_company_id"], body.customer))
