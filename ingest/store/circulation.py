"""Circulation checks in the batch: alarms at every scan, not only at the gun.

DOMAIN.md "Circulation checks"; the rules are :mod:`server.domain.circulation`, pure. This
module gathers their facts and raises their alerts (docs/ARCHITECTURE.md §4, §11):

- :func:`fetch_facts` — what the registry rows of :mod:`ingest.store.lookups` lack, in one
  query per batch, and only when the batch has scans or gun reads: the entrustments between
  the companies its handhelds meet (their own and the owners' of what they scan, or of a
  site they name), and the earlier reads with a place of every cylinder a handheld or a gun
  read — a smart valve's positions included — within ``[circulation] cloned_tag_window_s``
  (at most :data:`READS_PER_TAG` of each kind per cylinder, on the (``cylinder_id``, ``ts``)
  indexes of ``events`` and ``telemetry``).
- :func:`site_problem` — a scan naming a site of another company is refused (a dead letter,
  like a message from an unknown device): the site decides where stock is counted.
- :func:`check_scan` — ``circulation_violation``, ``suspected_illegal_fill`` and
  ``foreign_cylinder`` of one scan, from the locked cylinder row as the batch has it so far
  (a fill earlier in the same batch counts).
- :func:`note_read` and :func:`check_cloned_tags` — every read of a watched cylinder in the
  batch (handheld, gun, valve) is noted as the batch applies it; after the batch, each
  handheld or gun read is compared with every other read of its tag, earlier or later, in
  the batch or before it: ``cloned_tag`` when two are further apart than a vehicle could go.

All of these are facts about what happened, so they fire for late (buffered) data too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from ingest.schemas import GunAuth, GunFill, HandheldScan, Parsed, ValveTelemetry
from ingest.store.context import BatchContext, Item, NewRead, PendingAlert, Read
from server.domain.circulation import (
    CylinderState,
    FillHistory,
    entrusted_on,
    illegal_fill_suspected,
    impossible_trip,
    is_foreign,
    site_allowed,
    station_licensed,
    violation_reasons,
)
from server.domain.statuses import SCAN_ACTION_NAMES

__all__ = [
    "EARTH_RADIUS_KM",
    "READS_PER_TAG",
    "check_cloned_tags",
    "check_scan",
    "distance_km",
    "fetch_facts",
    "note_read",
    "scanner_company",
    "site_problem",
]

READS_PER_TAG: Final = 32
"""Earlier reads fetched per cylinder and kind (tag reads, valve fixes), the latest first.
A smart valve reports every few seconds from one place; its latest 32 fixes stand for all
of them, and no handheld or gun reads one tag 32 times in five minutes."""

EARTH_RADIUS_KM: Final = 6371.0088
"""Mean Earth radius (IUGG): the great-circle distance is within 0.5 % of the ellipsoid's,
far below a handheld's positioning error, let alone the tens of km ``cloned_tag`` looks for."""

GUN_READS: Final = ("fill", "fill_authorized", "fill_refused")
"""Trajectory events of a gun reading a tag (ingest.store.rows): placed at the station."""

TAG_READS: Final = (*GUN_READS, *SCAN_ACTION_NAMES)
"""Trajectory events that are a tag read; a scan is placed by its own fix only."""

FACTS_SQL: Final = """
SELECT 'entrustment' AS fact, e.owner_company_id AS owner_id, e.filler_company_id AS holder_id,
       e.valid_from, e.valid_to,
       NULL::bigint AS cylinder_id, NULL::timestamptz AS ts, NULL::float8 AS lat,
       NULL::float8 AS lon, NULL::text AS via, NULL::text AS device_id
  FROM entrustments e
  JOIN unnest($1::bigint[], $2::bigint[]) AS k (owner_id, holder_id)
       ON e.owner_company_id = k.owner_id AND e.filler_company_id = k.holder_id
UNION ALL
SELECT 'read', NULL, NULL, NULL, NULL, w.cylinder_id, r.ts, r.lat, r.lon, r.via, r.device_id
  FROM unnest($3::bigint[], $4::timestamptz[], $5::timestamptz[]) AS w (cylinder_id, t0, t1)
  CROSS JOIN LATERAL (
      (SELECT e.ts, coalesce(e.lat, s.lat) AS lat, coalesce(e.lon, s.lon) AS lon,
              CASE WHEN e.kind = 'fill' OR e.kind <> ALL($6::text[]) THEN e.kind
                   ELSE 'auth' END AS via,
              e.device_id
         FROM events e
         LEFT JOIN sites s ON s.id = e.site_id AND e.kind = ANY($6::text[])
        WHERE e.cylinder_id = w.cylinder_id AND e.ts BETWEEN w.t0 AND w.t1
          AND e.ts BETWEEN $9 AND $10 AND e.kind = ANY($7::text[])
          AND coalesce(e.lat, s.lat) IS NOT NULL AND coalesce(e.lon, s.lon) IS NOT NULL
        ORDER BY e.ts DESC LIMIT $8)
      UNION ALL
      (SELECT t.ts, t.lat, t.lon, 'valve', t.tag
         FROM telemetry t
        WHERE t.cylinder_id = w.cylinder_id AND t.ts BETWEEN w.t0 AND w.t1
          AND t.ts BETWEEN $9 AND $10 AND t.lat IS NOT NULL AND t.lon IS NOT NULL
        ORDER BY t.ts DESC LIMIT $8)
  ) AS r
"""
"""One round trip: entrustments of the company pairs, earlier reads of the watched tags."""


def scanner_company(dev: Any) -> int | None:
    """The company a handheld works for: its own, else its site's."""
    company: int | None = dev["company_id"]
    return company if company is not None else dev["site_company_id"]


def _station_place(dev: Any, batch: BatchContext) -> tuple[float, float, int] | None:
    site = batch.sites_by_id.get(dev["site_id"]) if dev is not None else None
    if site is None or site["lat"] is None or site["lon"] is None:
        return None
    return site["lat"], site["lon"], site["id"]


def _read_of(p: Parsed, batch: BatchContext) -> tuple[dict[str, Any], NewRead] | None:
    """The cylinder a message reads and where, if it has a place (see the module doc)."""
    body = p.body
    if isinstance(body, ValveTelemetry):
        cyl = batch.cylinders.get(p.device_id)
        if cyl is None or body.lat is None or body.lon is None:
            return None
        return cyl, NewRead(Read(p.ts, body.lat, body.lon, "valve", p.device_id), rfid=False)
    if isinstance(body, HandheldScan):
        cyl = batch.cylinders.get(body.tag)
        if cyl is None or body.lat is None or body.lon is None:
            return None
        return cyl, NewRead(Read(p.ts, body.lat, body.lon, body.action, p.device_id), rfid=True)
    if isinstance(body, GunFill | GunAuth):
        cyl = batch.cylinders.get(body.tag)
        place = _station_place(batch.devices.get(p.device_id), batch)
        if cyl is None or place is None:
            return None
        via = "fill" if isinstance(body, GunFill) else "auth"
        return cyl, NewRead(Read(p.ts, place[0], place[1], via, p.device_id), True, place[2])
    return None


async def fetch_facts(conn: asyncpg.Connection, items: Sequence[Item], batch: BatchContext) -> None:
    """Fill ``batch.circulation`` for *items* (all parsed); no query when nothing needs one."""
    settings = batch.territory.settings
    rules = settings.circulation
    window = timedelta(seconds=rules.cloned_tag_window_s)
    pairs: set[tuple[int, int]] = set()
    spans: dict[int, tuple[datetime, datetime]] = {}
    for item in items:
        p = item.parsed
        assert p is not None
        body = p.body
        if isinstance(body, HandheldScan):
            dev = batch.devices.get(p.device_id)
            scanner = scanner_company(dev) if dev is not None else None
            cyl = batch.cylinders.get(body.tag)
            if scanner is not None and cyl is not None and cyl["owner_company_id"] != scanner:
                pairs.add((cyl["owner_company_id"], scanner))
            site = batch.sites_by_code.get(body.site) if body.site else None
            other = site["company_id"] if site is not None else None
            if scanner is not None and other is not None and other != scanner:
                pairs.update(((other, scanner), (scanner, other)))
        elif not isinstance(body, GunFill | GunAuth):
            continue
        if not rules.cloned_tag:
            continue
        found = _read_of(p, batch)
        if found is not None:
            cyl_id = found[0]["id"]
            lo, hi = spans.get(cyl_id, (p.ts, p.ts))
            spans[cyl_id] = (min(lo, p.ts), max(hi, p.ts))
    facts = batch.circulation
    facts.watched = set(spans)
    if not pairs and not spans:
        return
    ps = sorted(pairs)
    ws = sorted(spans.items())
    lows = [s[0] - window for _, s in ws]
    highs = [s[1] + window for _, s in ws]
    rows = await conn.fetch(
        FACTS_SQL,
        [k[0] for k in ps],
        [k[1] for k in ps],
        [c for c, _ in ws],
        lows,
        highs,
        list(GUN_READS),
        list(TAG_READS),
        READS_PER_TAG,
        # the whole span as plain parameters too, so the planner prunes the time partitions
        # instead of planning every one (measured on native monthly partitions: planning
        # 13 ms → 0.7 ms for a batch reading 110 tags)
        min(lows, default=None),
        max(highs, default=None),
    )
    for r in rows:
        if r["fact"] == "entrustment":
            key = (r["owner_id"], r["holder_id"])
            facts.entrustments.setdefault(key, []).append((r["valid_from"], r["valid_to"]))
        else:
            read = Read(r["ts"], r["lat"], r["lon"], r["via"], r["device_id"])
            facts.reads.setdefault(r["cylinder_id"], []).append(read)


def site_problem(p: Parsed, batch: BatchContext) -> str | None:
    """Why a scan naming another company's site is refused; None if it is not."""
    body = p.body
    if not isinstance(body, HandheldScan) or not body.site:
        return None
    site = batch.sites_by_code.get(body.site)
    dev = batch.devices.get(p.device_id)
    if site is None or dev is None or dev["site_id"] == site["id"]:
        return None  # an unknown code is stored, flagged ``unknown_site`` (ingest.store.rows)
    scanner = scanner_company(dev)
    facts = batch.circulation
    day = batch.territory.local_day(p.ts)
    owner = site["company_id"]
    entrusted = entrusted_on([*facts.periods(owner, scanner), *facts.periods(scanner, owner)], day)
    if site_allowed(owner, scanner, entrusted):
        return None
    return f"foreign site: site {body.site} belongs to another company than handheld {p.device_id}"


def check_scan(
    p: Parsed,
    body: HandheldScan,
    batch: BatchContext,
    cyl: dict[str, Any],
    site: Any,
    district: str | None,
) -> None:
    """The scan rules of one known cylinder's scan (call before the scan changes its state)."""
    territory = batch.territory
    settings = territory.settings
    rules = settings.circulation
    dev = batch.devices[p.device_id]
    day = territory.local_day(p.ts)
    lat, lon = body.lat, body.lon
    if (lat is None or lon is None) and site is not None:
        lat, lon = site["lat"], site["lon"]
    owner = cyl["owner_company_id"]

    def alert(kind: str, details: dict[str, Any]) -> None:
        batch.alerts.append(
            PendingAlert(
                kind,
                body.tag,
                p.ts,
                company_id=owner,
                site_id=site["id"] if site is not None else None,
                district_code=territory.fk_district(district),
                cylinder_id=cyl["id"],
                lat=lat,
                lon=lon,
                details={
                    "action": body.action,
                    "seen_by": p.device_id,
                    "site": site["code"] if site is not None else None,
                    "msg_id": body.msg_id,
                    **details,
                },
            )
        )

    state = CylinderState(
        cyl["status"], cyl["next_inspection_date"], cyl["scrap_date"], cyl["tag_voided"]
    )
    reasons = violation_reasons(body.action, state, day, settings.dates, rules)
    if reasons:
        alert("circulation_violation", {"reason": reasons[0], "reasons": list(reasons)})
    if body.action == "deliver" and _illegal_fill(p.ts, cyl, batch):
        alert(
            "suspected_illegal_fill",
            {
                "customer": body.customer,
                "last_fill_at": _iso(cyl["last_fill_at"]),
                "last_fill_site_id": cyl["last_fill_site_id"],
                "last_return_at": _iso(cyl["last_return_at"]),
            },
        )
    scanner = scanner_company(dev)
    entrusted = entrusted_on(batch.circulation.periods(owner, scanner), day)
    if is_foreign(owner, scanner, entrusted, rules):
        alert("foreign_cylinder", {"scanner_company_id": scanner, "owner_company_id": owner})


def _illegal_fill(delivered_at: datetime, cyl: dict[str, Any], batch: BatchContext) -> bool:
    licensed = False
    fill_at = cyl["last_fill_at"]
    station = batch.sites_by_id.get(cyl["last_fill_site_id"])
    if fill_at is not None and station is not None and station["company_id"] is not None:
        licensed = station_licensed(
            station["id"],
            station["company_id"],
            station["licence_no"],
            station["licence_expiry"],
            station["licence_status"],
            batch.territory.local_day(fill_at),
        )
    history = FillHistory(cyl["registered_at"], fill_at, licensed, cyl["last_return_at"])
    return illegal_fill_suspected(delivered_at, history, batch.territory.settings.circulation)


def note_read(p: Parsed, batch: BatchContext) -> None:
    """Note a read of a watched cylinder (any message kind) for :func:`check_cloned_tags`."""
    if not batch.circulation.watched:
        return
    found = _read_of(p, batch)
    if found is not None and found[0]["id"] in batch.circulation.watched:
        batch.new_reads.setdefault(found[0]["id"], []).append(found[1])


def distance_km(a: Read, b: Read) -> float:
    """Great-circle (haversine) distance between two reads' WGS-84 fixes, in km."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class _Trip:
    """Two reads of one tag no vehicle could connect (the earlier first)."""

    first: Read
    second: Read
    km: float

    @property
    def seconds(self) -> float:
        return (self.second.at - self.first.at).total_seconds()

    @property
    def speed_kmh(self) -> float | None:
        """None for two reads at the same instant (infinitely fast)."""
        s = self.seconds
        return None if s <= 0 else self.km * 3600.0 / s


def _worst_trip(read: Read, others: Sequence[Read], batch: BatchContext) -> _Trip | None:
    """The farthest of *others* that *read* makes an impossible trip with."""
    rules = batch.territory.settings.circulation
    worst: _Trip | None = None
    for other in others:
        km = distance_km(read, other)
        if (worst is None or km > worst.km) and impossible_trip(km, read.at - other.at, rules):
            first, second = (other, read) if other.at <= read.at else (read, other)
            worst = _Trip(first, second, km)
    return worst


def check_cloned_tags(batch: BatchContext) -> None:
    """``cloned_tag`` for each watched cylinder whose reads no vehicle could connect."""
    for cyl_id, news in batch.new_reads.items():
        earlier = batch.circulation.reads.get(cyl_id, [])
        worst: tuple[_Trip, NewRead] | None = None
        for new in news:
            if not new.rfid:
                continue
            others = [*earlier, *(n.read for n in news if n is not new)]
            trip = _worst_trip(new.read, others, batch)
            if trip is not None and (worst is None or trip.km > worst[0].km):
                worst = (trip, new)
        if worst is None:
            continue
        trip, new = worst
        cyl = batch.cyl_by_id[cyl_id]
        _, district = batch.district_at(new.read.lat, new.read.lon)
        batch.alerts.append(
            PendingAlert(
                "cloned_tag",
                cyl["tag"],
                trip.second.at,
                company_id=cyl["owner_company_id"],
                site_id=new.site_id,
                district_code=district,
                cylinder_id=cyl_id,
                lat=new.read.lat,
                lon=new.read.lon,
                details={
                    "km": round(trip.km, 1),
                    "seconds": round(trip.seconds, 1),
                    "speed_kmh": None if trip.speed_kmh is None else round(trip.speed_kmh),
                    "first": _read_json(trip.first),
                    "second": _read_json(trip.second),
                },
            )
        )


def _read_json(read: Read) -> dict[str, Any]:
    return {
        "at": read.at.isoformat(),
        "lat": read.lat,
        "lon": read.lon,
        "via": read.via,
        "device_id": read.device_id,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
