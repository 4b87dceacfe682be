"""One batch of device messages → rows, state, alerts and live events, in one transaction.

The batch is the unit of durability (DESIGN §5): everything a batch's messages cause —
their time-series rows, the cylinders' and devices' live state, the per-station denial
counters, the alerts — commits together, and only then are the messages acknowledged to
the broker and the live events published. A crash anywhere before the commit loses
nothing: the broker redelivers, and the ``(msg_id, ts)`` de-duplication makes the second
pass a no-op for what had been stored.

Order of work for a batch:

1. look up, in one query each, the devices, cylinders (``FOR UPDATE``, in id order so
   concurrent workers cannot deadlock), sites and customers the messages mention;
2. refuse what names an unknown device (→ dead letters);
3. COPY the rows and learn which messages are new (``records.insert_dedupe``);
4. for the new ones only, in device-time order, move cylinders through their states,
   evaluate the rules of DOMAIN.md "Abnormal behaviour" and raise alerts;
5. write the changed state with one ``UPDATE … FROM unnest`` per table.

Late data (a device that buffered while offline): rows are stored with their own ``ts``;
a state change applies only if it is not older than the state it would replace
(``cylinders.state_at``, ``devices.position_at`` / ``status_at``), and live-only rules —
device offline, overstock — do not fire when the message is older than
``[ingest] live_lag_s``. ``out_of_region`` does fire for late data: that a cylinder was
outside the city is a fact about the cylinder, not about "now".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from ingest.auth import AuthOutcome
from ingest.records import DEAD_LETTER_COLUMNS, TABLES, Key, copy_plain, insert_dedupe
from ingest.schemas import (
    DeviceStatus,
    GunAuth,
    GunFill,
    HandheldScan,
    MessageKind,
    Parsed,
    ValveTelemetry,
    VehiclePosition,
)
from server.db.alerts import ALERT_KINDS, alert_event, raise_alert
from server.domain.events import SCAN_ACTIONS, EventKind, epcis_for
from server.domain.filling import FillAssessment, assess_fill, checks_failed, is_repeat_fill
from server.domain.supervision import is_leak, is_live, is_overstock, permitted_storage
from server.kernel.districts import DistrictIndex
from server.kernel.events import Event
from server.kernel.settings import Settings

__all__ = ["BatchResult", "BatchStore", "Item"]

log = logging.getLogger(__name__)


YIELD_EVERY: Final = 200
"""Per-message Python work of a batch gives the event loop a turn this often. A full
batch's rows and rules take hundreds of milliseconds of pure Python; without a turn, a
gun's authorization request waiting on the same loop waits for all of it (measured: p99
66 ms → the target's 50 ms is met once the loop is yielded, docs/BENCHMARKS.md)."""


@dataclass(slots=True)
class Item:
    """One received message on its way to the database."""

    topic: str
    payload: bytes
    received_at: datetime
    parsed: Parsed | None = None
    reject: str | None = None
    auth: AuthOutcome | None = None
    seq: int = 0


@dataclass(slots=True)
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    dead_letters: list[str] = field(default_factory=list)
    alerts: int = 0
    events: list[Event] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent per step of :meth:`BatchStore.store` (profiling, metrics)."""


@dataclass(slots=True)
class _Alert:
    kind: str
    subject_id: str
    at: datetime
    subject_type: str | None = None
    company_id: int | None = None
    site_id: int | None = None
    district_code: str | None = None
    cylinder_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    count: int = 1


_CYL_STATE = (
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

_CYL_SQL = f"""
SELECT id, tag, owner_company_id, spec, tag_voided, {", ".join(_CYL_STATE)}
  FROM cylinders WHERE tag = ANY($1::text[]) ORDER BY id FOR UPDATE
"""

_CYL_UPDATE = """
UPDATE cylinders c SET fill_state = u.fill_state, location_kind = u.location_kind,
       location_site_id = u.location_site_id, location_device_id = u.location_device_id,
       location_customer_id = u.location_customer_id, last_fill_at = u.last_fill_at,
       last_fill_site_id = u.last_fill_site_id, last_return_at = u.last_return_at,
       last_seen_at = u.last_seen_at, lat = u.lat, lon = u.lon,
       district_code = u.district_code, state_at = u.state_at, updated_at = now()
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
              $7::timestamptz[], $8::bigint[], $9::timestamptz[], $10::timestamptz[],
              $11::float8[], $12::float8[], $13::text[], $14::timestamptz[])
       AS u (id, fill_state, location_kind, location_site_id, location_device_id,
             location_customer_id, last_fill_at, last_fill_site_id, last_return_at,
             last_seen_at, lat, lon, district_code, state_at)
 WHERE c.id = u.id
"""

_DEV_SQL = """
SELECT d.id, d.device_id, d.kind, d.active, d.site_id, d.company_id, d.online,
       d.last_seen_at, d.status_at, d.position_at,
       s.code AS site_code, s.kind AS site_kind, s.company_id AS site_company_id,
       s.district_code AS site_district
  FROM devices d LEFT JOIN sites s ON s.id = d.site_id
 WHERE d.device_id = ANY($1::text[])
"""

# Device state without row locks: devices are few and every batch touches them, so locks
# would serialize all workers. Each column is guarded by its own device time instead.
_DEV_UPDATE = """
UPDATE devices d SET
       last_seen_at = greatest(d.last_seen_at, u.seen_at),
       online = CASE
           WHEN u.status_at IS NOT NULL AND u.status_at >= coalesce(d.status_at, '-infinity')
                AND u.status_at >= coalesce(u.seen_at, '-infinity') THEN u.status_online
           WHEN u.seen_at IS NOT NULL
                AND u.seen_at > greatest(coalesce(d.status_at, '-infinity'),
                                         coalesce(u.status_at, '-infinity')) THEN true
           ELSE d.online END,
       status_at = CASE WHEN u.status_at IS NOT NULL
                         AND u.status_at >= coalesce(d.status_at, '-infinity')
                        THEN u.status_at ELSE d.status_at END,
       lat = CASE WHEN u.position_at IS NOT NULL
                   AND u.position_at >= coalesce(d.position_at, '-infinity')
                  THEN u.lat ELSE d.lat END,
       lon = CASE WHEN u.position_at IS NOT NULL
                   AND u.position_at >= coalesce(d.position_at, '-infinity')
                  THEN u.lon ELSE d.lon END,
       position_at = CASE WHEN u.position_at IS NOT NULL
                           AND u.position_at >= coalesce(d.position_at, '-infinity')
                          THEN u.position_at ELSE d.position_at END,
       updated_at = now()
  FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::bool[],
              $5::timestamptz[], $6::float8[], $7::float8[])
       AS u (id, seen_at, status_at, status_online, position_at, lat, lon)
 WHERE d.id = u.id
RETURNING d.id, d.device_id, d.kind, d.online, d.company_id, d.site_id, d.last_seen_at
"""

_SITES_SQL = """
SELECT id, code, kind, company_id, district_code, permitted_full_storage, lat, lon
  FROM sites WHERE code = ANY($1::text[]) OR id = ANY($2::bigint[])
"""

_CUSTOMERS_SQL = """
SELECT c.id, c.company_id, c.account_no, c.district_code, c.lat, c.lon
  FROM customers c
  JOIN unnest($1::bigint[], $2::text[]) AS k (company_id, account_no)
       ON c.company_id = k.company_id AND c.account_no = k.account_no
"""

_FULL_COUNT_SQL = """
SELECT location_site_id AS site_id, count(*) AS full
  FROM cylinders
 WHERE location_site_id = ANY($1::bigint[]) AND location_kind = 'site' AND fill_state = 'full'
 GROUP BY location_site_id
"""

_DENIALS_SQL = """
INSERT INTO fill_denials_daily AS f (station_id, day, reason, count)
SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::int[])
ON CONFLICT (station_id, day, reason) DO UPDATE SET count = f.count + EXCLUDED.count
"""


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(slots=True)
class _Ctx:
    """Lookups and accumulators of one batch."""

    devices: dict[str, asyncpg.Record]
    cylinders: dict[str, dict[str, Any]]
    sites_by_code: dict[str, asyncpg.Record]
    sites_by_id: dict[int, asyncpg.Record]
    customers: dict[tuple[int, str], asyncpg.Record]
    dirty_cylinders: set[int] = field(default_factory=set)
    cyl_by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    dev_seen: dict[int, datetime] = field(default_factory=dict)
    dev_status: dict[int, tuple[datetime, bool]] = field(default_factory=dict)
    dev_position: dict[int, tuple[datetime, float, float]] = field(default_factory=dict)
    touched_sites: set[int] = field(default_factory=set)
    alerts: list[_Alert] = field(default_factory=list)
    denials: dict[tuple[int, Any, str], int] = field(default_factory=lambda: defaultdict(int))
    live_events: list[Event] = field(default_factory=list)


class BatchStore:
    """Writes batches for one worker. Holds no state between batches but configuration."""

    def __init__(
        self,
        settings: Settings,
        districts: DistrictIndex,
        known_districts: Iterable[str],
        worker: str,
    ) -> None:
        self.settings = settings
        self.districts = districts
        self.known_districts = frozenset(known_districts)
        self.worker = worker
        self.live_lag = timedelta(seconds=settings.ingest.live_lag_s)
        self.zone = ZoneInfo(settings.alerts.timezone)
        self.max_dl = settings.ingest.dead_letter_max_bytes

    # ------------------------------------------------------------------ helpers

    def district_at(self, lat: float | None, lon: float | None) -> tuple[bool, str | None]:
        """(inside the city?, district code usable as a foreign key)."""
        if lat is None or lon is None:
            return True, None
        code = self.districts.lookup(lat, lon)
        if code is None:
            return False, None
        return True, code if code in self.known_districts else None

    def dead_letter_row(self, item: Item, reason: str) -> tuple[Any, ...]:
        return (
            item.received_at,
            item.topic[:1024],
            item.payload[: self.max_dl],
            reason,
            self.worker,
        )

    # ------------------------------------------------------------------ the batch

    async def store(self, conn: asyncpg.Connection, items: Sequence[Item]) -> BatchResult:
        """Store *items* in the caller's transaction; return what to publish after commit."""
        clock = time.perf_counter
        t0 = clock()
        now = datetime.now(UTC)
        result = BatchResult()
        phases = result.phases
        dead: list[tuple[Any, ...]] = []
        good: list[Item] = []
        for item in items:
            if item.parsed is None:
                rejected = item.reject or "invalid payload"
                dead.append(self.dead_letter_row(item, rejected))
                result.dead_letters.append(rejected)
            else:
                good.append(item)
        ctx = await self._lookups(conn, good)
        t1 = clock()
        phases["lookups"] = t1 - t0

        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}
        primary: list[tuple[Item, str, Key]] = []
        accepted: list[Item] = []
        for n, item in enumerate(good, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            reason = self._registry_problem(item, ctx)
            if reason is not None:
                dead.append(self.dead_letter_row(item, reason))
                result.dead_letters.append(reason)
                continue
            built = self._rows_for(item, ctx)
            if built is None:  # status: no time-series row, idempotent by its own ts
                accepted.append(item)
                continue
            table, key = built[0]
            for t, row in built[1]:
                rows[t].append(row)
            primary.append((item, table, key))
        t2 = clock()
        phases["rows"] = t2 - t1
        await copy_plain(conn, "dead_letters", DEAD_LETTER_COLUMNS, dead)

        inserted: dict[str, set[Key]] = {}
        for name, spec in TABLES.items():
            inserted[name] = await insert_dedupe(conn, spec, _unique(rows[name]))
        t3 = clock()
        phases["insert"] = t3 - t2
        seen: set[tuple[str, Key]] = set()
        for item, table, key in primary:
            if key in inserted[table] and (table, key) not in seen:
                seen.add((table, key))
                accepted.append(item)
            else:
                result.duplicates += 1
        result.stored = len(accepted)

        accepted.sort(key=lambda i: (i.parsed.ts if i.parsed else now, i.seq))
        for n, item in enumerate(accepted, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            self._apply(item, ctx, now)
        t4 = clock()
        phases["rules"] = t4 - t3
        await self._write_state(conn, ctx, now)
        t5 = clock()
        phases["state"] = t5 - t4
        result.alerts = await self._raise_alerts(conn, ctx)
        phases["alerts"] = clock() - t5
        result.events = ctx.live_events
        return result

    async def _lookups(self, conn: asyncpg.Connection, items: Sequence[Item]) -> _Ctx:
        device_ids: set[str] = set()
        tags: set[str] = set()
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
            if p.device_kind == "valve":
                tags.add(p.device_id)
                device_ids.add(p.device_id)  # a valve may also be registered as a device
            else:
                device_ids.add(p.device_id)
            if isinstance(body, GunFill | HandheldScan):
                tags.add(body.tag)
            if isinstance(body, HandheldScan) and body.site:
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
        ctx = _Ctx(devices, cylinders, sites_by_code, sites_by_id, customers)
        ctx.cyl_by_id = {c["id"]: c for c in cylinders.values()}
        return ctx

    def _registry_problem(self, item: Item, ctx: _Ctx) -> str | None:
        """Messages from devices the registry does not know (or has disabled) are refused."""
        p = item.parsed
        assert p is not None
        if p.kind is MessageKind.AUTH:
            if item.auth is None or not item.auth.gun_known:
                return f"unknown device: gun {p.device_id} is not registered or inactive"
            return None
        if p.device_kind == "valve":
            dev = ctx.devices.get(p.device_id)
            if p.device_id in ctx.cylinders or (dev is not None and dev["kind"] == "valve"):
                return None
            return f"unknown device: valve {p.device_id} is no cylinder's tag"
        dev = ctx.devices.get(p.device_id)
        if dev is None or dev["kind"] != p.device_kind or not dev["active"]:
            return f"unknown device: {p.device_kind} {p.device_id} is not registered or inactive"
        return None

    # ------------------------------------------------------------------ rows

    def _rows_for(
        self, item: Item, ctx: _Ctx
    ) -> tuple[tuple[str, Key], list[tuple[str, tuple[Any, ...]]]] | None:
        p = item.parsed
        assert p is not None
        body = p.body
        ra = item.received_at
        if isinstance(body, DeviceStatus):
            return None
        key: Key = (body.msg_id, p.ts)
        if isinstance(body, GunAuth):
            auth = item.auth
            assert auth is not None
            cyl = ctx.cylinders.get(body.tag) if auth.cylinder is not None else None
            denied = not auth.decision.allowed
            kind = "fill_refused" if denied else "fill_authorized"
            epcis = (
                epcis_for(EventKind("fill_refused"))
                if denied
                else epcis_for(EventKind("inspection"), conformant=True)
            )
            st = auth.station
            details: dict[str, Any] = {
                "decision": auth.decision.decision,
                "reasons": list(auth.decision.reason_codes),
                "code": auth.code,
                "gun_id": p.device_id,
                "latency_ms": round(auth.latency_s * 1000, 3),
            }
            row: tuple[Any, ...] = (
                p.ts,
                ra,
                body.msg_id,
                cyl["id"] if cyl else None,
                body.tag,
                kind,
                epcis.biz_step,
                epcis.disposition,
                st.station_id if st else None,
                st.company_id if st else None,
                None,
                p.device_id,
                body.operator,
                None,
                None,
                auth.station_district,
                _dumps(details),
            )
            return ("events", key), [("events", row)]
        if isinstance(body, GunFill):
            dev = ctx.devices[p.device_id]
            site = ctx.sites_by_id.get(dev["site_id"])
            cyl = ctx.cylinders.get(body.tag)
            failed = checks_failed(body.pre_check, body.post_check)
            result = "aborted" if body.result == "aborted" or failed else "completed"
            assessment: str | None = None
            if cyl is not None:
                assessment = assess_fill(
                    cyl["spec"], body.net_kg, self.settings.models, self.settings.filling
                ).value
            district = site["district_code"] if site else None
            company = site["company_id"] if site else dev["company_id"]
            fill_row = (
                p.ts,
                ra,
                body.msg_id,
                _ts(body.ts_start),
                p.device_id,
                dev["site_id"],
                company,
                district,
                cyl["id"] if cyl else None,
                body.tag,
                cyl["spec"] if cyl else None,
                body.net_kg,
                body.tare_kg,
                body.gross_kg,
                result,
                assessment,
                body.operator,
                _dumps(body.pre_check),
                _dumps(body.post_check),
            )
            epcis = epcis_for(EventKind("fill"))
            fill_details: dict[str, Any] = {
                "net_kg": body.net_kg,
                "tare_kg": body.tare_kg,
                "gross_kg": body.gross_kg,
                "result": result,
                "assessment": assessment,
                "gun_id": p.device_id,
            }
            if failed:
                fill_details["failed_checks"] = list(failed)
            ev_row = (
                p.ts,
                ra,
                body.msg_id,
                cyl["id"] if cyl else None,
                body.tag,
                EventKind("fill").value,
                epcis.biz_step,
                epcis.disposition,
                dev["site_id"],
                company,
                None,
                p.device_id,
                body.operator,
                None,
                None,
                district,
                _dumps(fill_details),
            )
            return ("fills", key), [("fills", fill_row), ("events", ev_row)]
        if isinstance(body, HandheldScan):
            dev = ctx.devices[p.device_id]
            cyl = ctx.cylinders.get(body.tag)
            kind_ev = SCAN_ACTIONS[body.action]
            epcis = epcis_for(kind_ev)
            site = self._scan_site(body, dev, ctx)
            customer = self._scan_customer(body, cyl, ctx)
            inside, district = self.district_at(body.lat, body.lon)
            if customer is not None and body.action == "deliver":
                district = customer["district_code"] or district
            elif site is not None and body.action in ("return", "receive", "dispatch"):
                district = site["district_code"] or district
            scan_details: dict[str, Any] = {"action": body.action}
            if body.site:
                scan_details["site"] = body.site
                if site is None or site["code"] != body.site:
                    scan_details["unknown_site"] = True
            if body.customer:
                scan_details["customer"] = body.customer
                if customer is None:
                    scan_details["unknown_customer"] = True
            if not inside:
                scan_details["out_of_region"] = True
            company = cyl["owner_company_id"] if cyl else dev["company_id"]
            row = (
                p.ts,
                ra,
                body.msg_id,
                cyl["id"] if cyl else None,
                body.tag,
                kind_ev.value,
                epcis.biz_step,
                epcis.disposition,
                site["id"] if site else None,
                company,
                customer["id"] if customer else None,
                p.device_id,
                body.operator,
                body.lat,
                body.lon,
                district,
                _dumps(scan_details),
            )
            return ("events", key), [("events", row)]
        if isinstance(body, ValveTelemetry):
            cyl = ctx.cylinders.get(p.device_id)
            row = (
                p.ts,
                ra,
                body.msg_id,
                p.device_id,
                cyl["id"] if cyl else None,
                body.lat,
                body.lon,
                body.valve,
                body.leak_ppm,
                body.temp_c,
                body.battery_pct,
                body.rssi,
            )
            return ("telemetry", key), [("telemetry", row)]
        assert isinstance(body, VehiclePosition)
        row = (
            p.ts,
            ra,
            body.msg_id,
            p.device_id,
            body.lat,
            body.lon,
            body.speed_kmh,
            body.heading,
            body.cargo,
        )
        return ("positions", key), [("positions", row)]

    @staticmethod
    def _scan_site(body: HandheldScan, dev: asyncpg.Record, ctx: _Ctx) -> asyncpg.Record | None:
        """The site a scan names, else the handheld's own site (a store's handheld)."""
        if body.site and body.site in ctx.sites_by_code:
            return ctx.sites_by_code[body.site]
        if dev["site_id"] is not None:
            return ctx.sites_by_id.get(dev["site_id"])
        return None

    @staticmethod
    def _scan_customer(
        body: HandheldScan, cyl: Mapping[str, Any] | None, ctx: _Ctx
    ) -> asyncpg.Record | None:
        """``customer`` is an account number of the cylinder owner's company (实名制)."""
        if not body.customer or cyl is None:
            return None
        return ctx.customers.get((cyl["owner_company_id"], body.customer))

    # ------------------------------------------------------------------ state and rules

    def _live(self, ts: datetime, now: datetime) -> bool:
        return is_live(ts, now, self.live_lag)

    def _seen(self, ctx: _Ctx, dev_pk: int, ts: datetime) -> None:
        prev = ctx.dev_seen.get(dev_pk)
        if prev is None or ts > prev:
            ctx.dev_seen[dev_pk] = ts

    def _set_state(self, cyl: dict[str, Any], ts: datetime, ctx: _Ctx, **changes: Any) -> bool:
        """Apply a state change unless a newer one is already recorded (late data)."""
        if cyl["state_at"] is not None and ts < cyl["state_at"]:
            return False
        cyl.update(changes)
        cyl["state_at"] = ts
        ctx.dirty_cylinders.add(cyl["id"])
        return True

    def _see_cylinder(
        self,
        cyl: dict[str, Any],
        ts: datetime,
        ctx: _Ctx,
        lat: float | None = None,
        lon: float | None = None,
        district: str | None = None,
    ) -> bool:
        """Record that the cylinder was seen (and where). True if its position moved."""
        if cyl["last_seen_at"] is not None and ts < cyl["last_seen_at"]:
            return False
        cyl["last_seen_at"] = ts
        ctx.dirty_cylinders.add(cyl["id"])
        if lat is None or lon is None:
            return False
        cyl["lat"], cyl["lon"] = lat, lon
        if district is not None:
            cyl["district_code"] = district
        return True

    def _apply(self, item: Item, ctx: _Ctx, now: datetime) -> None:
        p = item.parsed
        assert p is not None
        body = p.body
        live = self._live(p.ts, now)
        dev = ctx.devices.get(p.device_id)
        if isinstance(body, DeviceStatus):
            self._apply_status(p, body, dev, ctx, live)
            return
        if dev is not None:
            self._seen(ctx, dev["id"], p.ts)
        if isinstance(body, GunAuth):
            self._apply_auth(item, body, ctx)
        elif isinstance(body, GunFill):
            self._apply_fill(p, body, ctx)
        elif isinstance(body, HandheldScan):
            self._apply_scan(p, body, ctx)
        elif isinstance(body, ValveTelemetry):
            self._apply_telemetry(p, body, ctx)
        elif isinstance(body, VehiclePosition):
            self._apply_position(p, body, ctx)

    def _event(self, channel: str, data: Mapping[str, Any], **scope: Any) -> Event:
        return Event(channel=channel, data=data, **scope)

    def _trajectory(
        self,
        ctx: _Ctx,
        p: Parsed,
        kind: str,
        *,
        tag: str,
        cylinder_id: int | None,
        site_id: int | None,
        company_id: int | None,
        district: str | None,
        customer_id: int | None = None,
        lat: float | None = None,
        lon: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        mapping = epcis_for(EventKind(kind)) if kind in EventKind._value2member_map_ else None
        data = {
            "ts": p.ts.isoformat(),
            "kind": kind,
            "tag": tag,
            "cylinder_id": cylinder_id,
            "site_id": site_id,
            "company_id": company_id,
            "customer_id": customer_id,
            "device_id": p.device_id,
            "district": district,
            "lat": lat,
            "lon": lon,
            "biz_step": mapping.biz_step if mapping else None,
            "disposition": mapping.disposition if mapping else None,
            "details": dict(details or {}),
        }
        ctx.live_events.append(
            self._event(
                "events",
                data,
                district=district,
                company_id=company_id,
                site_id=site_id,
                lat=lat,
                lon=lon,
                key=f"cylinder:{tag}",
            )
        )

    def _apply_auth(self, item: Item, body: GunAuth, ctx: _Ctx) -> None:
        p = item.parsed
        auth = item.auth
        assert p is not None and auth is not None
        st = auth.station
        cyl = ctx.cylinders.get(body.tag) if auth.cylinder is not None else None
        reasons = list(auth.decision.reason_codes)
        if auth.decision.allowed:
            if cyl is not None:
                self._see_cylinder(cyl, p.ts, ctx)
            self._trajectory(
                ctx,
                p,
                "fill_authorized",
                tag=body.tag,
                cylinder_id=cyl["id"] if cyl else None,
                site_id=st.station_id if st else None,
                company_id=st.company_id if st else None,
                district=auth.station_district,
                details={"decision": "allow", "code": auth.code},
            )
            return
        station_id = st.station_id if st else None
        if station_id is not None:
            day = p.ts.astimezone(self.zone).date()
            for r in reasons:
                ctx.denials[(station_id, day, r)] += 1
        company_id = st.company_id if st else None
        district = self._fk_district(auth.station_district)
        cylinder_id = cyl["id"] if cyl else None
        details = {
            "reasons": reasons,
            "code": auth.code,
            "gun_id": p.device_id,
            "station": auth.station_code,
            "msg_id": body.msg_id,
        }
        ctx.alerts.append(
            _Alert(
                "fill_denied",
                body.tag,
                p.ts,
                company_id=company_id,
                site_id=station_id,
                district_code=district,
                cylinder_id=cylinder_id,
                details=details,
            )
        )
        if "unknown_tag" in reasons:
            ctx.alerts.append(
                _Alert(
                    "unknown_tag",
                    body.tag,
                    p.ts,
                    company_id=company_id,
                    site_id=station_id,
                    district_code=district,
                    cylinder_id=cylinder_id,
                    details={"seen_by": p.device_id, "station": auth.station_code, "via": "auth"},
                )
            )
        self._trajectory(
            ctx,
            p,
            "fill_refused",
            tag=body.tag,
            cylinder_id=cyl["id"] if cyl else None,
            site_id=station_id,
            company_id=st.company_id if st else None,
            district=auth.station_district,
            details={"reasons": reasons, "code": auth.code},
        )

    def _fk_district(self, code: str | None) -> str | None:
        return code if code in self.known_districts else None

    def _apply_fill(self, p: Parsed, body: GunFill, ctx: _Ctx) -> None:
        dev = ctx.devices[p.device_id]
        site = ctx.sites_by_id.get(dev["site_id"])
        cyl = ctx.cylinders.get(body.tag)
        failed = checks_failed(body.pre_check, body.post_check)
        completed = body.result == "completed" and not failed
        district = site["district_code"] if site else None
        company = site["company_id"] if site else dev["company_id"]
        site_id = dev["site_id"]
        scope = {
            "company_id": company,
            "site_id": site_id,
            "district_code": self._fk_district(district),
        }
        assessment: str | None = None
        if cyl is None:
            ctx.alerts.append(
                _Alert(
                    "unknown_tag",
                    body.tag,
                    p.ts,
                    details={"seen_by": p.device_id, "via": "fill", "msg_id": body.msg_id},
                    **scope,
                )
            )
        else:
            assessment = assess_fill(
                cyl["spec"], body.net_kg, self.settings.models, self.settings.filling
            ).value
            details = {
                "net_kg": body.net_kg,
                "spec": cyl["spec"],
                "gun_id": p.device_id,
                "msg_id": body.msg_id,
                "result": "completed" if completed else "aborted",
            }
            if assessment == FillAssessment.OVERFILL:
                # an aborted overfill still left too much gas in the cylinder
                ctx.alerts.append(
                    _Alert(
                        "overfill", body.tag, p.ts, cylinder_id=cyl["id"], details=details, **scope
                    )
                )
            elif assessment == FillAssessment.UNDERFILL and completed:
                ctx.alerts.append(
                    _Alert(
                        "underfill", body.tag, p.ts, cylinder_id=cyl["id"], details=details, **scope
                    )
                )
            if completed:
                previous = cyl["last_fill_at"]
                if is_repeat_fill(previous, cyl["last_return_at"], p.ts, self.settings.filling):
                    ctx.alerts.append(
                        _Alert(
                            "repeat_fill",
                            body.tag,
                            p.ts,
                            cylinder_id=cyl["id"],
                            details={
                                **details,
                                "previous_fill_at": _iso(previous),
                                "previous_site_id": cyl["last_fill_site_id"],
                            },
                            **scope,
                        )
                    )
                if previous is None or p.ts > previous:
                    cyl["last_fill_at"] = p.ts
                    cyl["last_fill_site_id"] = site_id
                    ctx.dirty_cylinders.add(cyl["id"])
                self._set_state(
                    cyl,
                    p.ts,
                    ctx,
                    fill_state="full",
                    location_kind="site",
                    location_site_id=site_id,
                    location_device_id=None,
                    location_customer_id=None,
                    district_code=self._fk_district(district) or cyl["district_code"],
                )
                self._see_cylinder(cyl, p.ts, ctx)
                if site_id is not None:
                    ctx.touched_sites.add(site_id)
        data = {
            "ts": p.ts.isoformat(),
            "tag": body.tag,
            "cylinder_id": cyl["id"] if cyl else None,
            "gun_id": p.device_id,
            "station_id": site_id,
            "company_id": company,
            "district": district,
            "net_kg": float(body.net_kg),
            "assessment": assessment,
            "result": "completed" if completed else "aborted",
        }
        ctx.live_events.append(
            self._event(
                "fills",
                data,
                district=district,
                company_id=company,
                site_id=site_id,
                key=f"cylinder:{body.tag}",
            )
        )
        self._trajectory(
            ctx,
            p,
            "fill",
            tag=body.tag,
            cylinder_id=cyl["id"] if cyl else None,
            site_id=site_id,
            company_id=company,
            district=district,
            details={"net_kg": body.net_kg, "assessment": assessment, "result": data["result"]},
        )

    def _apply_scan(self, p: Parsed, body: HandheldScan, ctx: _Ctx) -> None:
        dev = ctx.devices[p.device_id]
        cyl = ctx.cylinders.get(body.tag)
        site = self._scan_site(body, dev, ctx)
        customer = self._scan_customer(body, cyl, ctx)
        inside, pos_district = self.district_at(body.lat, body.lon)
        site_id = site["id"] if site else None
        site_district = site["district_code"] if site else None
        company = cyl["owner_company_id"] if cyl else dev["company_id"]
        scope = {"company_id": company, "site_id": site_id}
        if cyl is None:
            ctx.alerts.append(
                _Alert(
                    "unknown_tag",
                    body.tag,
                    p.ts,
                    lat=body.lat,
                    lon=body.lon,
                    district_code=self._fk_district(pos_district or site_district),
                    details={
                        "seen_by": p.device_id,
                        "via": "scan",
                        "action": body.action,
                        "msg_id": body.msg_id,
                    },
                    **scope,
                )
            )
        if not inside:
            ctx.alerts.append(
                _Alert(
                    "out_of_region",
                    body.tag,
                    p.ts,
                    lat=body.lat,
                    lon=body.lon,
                    cylinder_id=cyl["id"] if cyl else None,
                    details={"seen_by": p.device_id, "via": "scan"},
                    **scope,
                )
            )
        district: str | None = pos_district or site_district
        if cyl is not None:
            action = body.action
            if action == "dispatch" or action == "transfer":
                self._set_state(
                    cyl,
                    p.ts,
                    ctx,
                    location_kind="vehicle",
                    location_site_id=None,
                    location_device_id=dev["id"],
                    location_customer_id=None,
                )
            elif action == "deliver":
                cust_district = customer["district_code"] if customer else None
                district = cust_district or district
                self._set_state(
                    cyl,
                    p.ts,
                    ctx,
                    location_kind="customer",
                    location_site_id=None,
                    location_device_id=None,
                    location_customer_id=customer["id"] if customer else None,
                    district_code=self._fk_district(cust_district or pos_district)
                    or cyl["district_code"],
                )
            elif action == "return":
                self._set_state(
                    cyl,
                    p.ts,
                    ctx,
                    fill_state="empty",
                    location_kind="site",
                    location_site_id=site_id,
                    location_device_id=None,
                    location_customer_id=None,
                    district_code=self._fk_district(site_district) or cyl["district_code"],
                )
                if cyl["last_return_at"] is None or p.ts > cyl["last_return_at"]:
                    cyl["last_return_at"] = p.ts
                if site_id is not None:
                    ctx.touched_sites.add(site_id)
            elif action == "receive":
                self._set_state(
                    cyl,
                    p.ts,
                    ctx,
                    location_kind="site",
                    location_site_id=site_id,
                    location_device_id=None,
                    location_customer_id=None,
                    district_code=self._fk_district(site_district) or cyl["district_code"],
                )
                if site_id is not None:
                    ctx.touched_sites.add(site_id)
            moved = self._see_cylinder(
                cyl, p.ts, ctx, body.lat, body.lon, self._fk_district(pos_district)
            )
            if moved:
                self._position_event(
                    ctx,
                    "cylinder",
                    body.tag,
                    p.ts,
                    body.lat,
                    body.lon,
                    pos_district,
                    company,
                    None,
                    None,
                )
        self._trajectory(
            ctx,
            p,
            SCAN_ACTIONS[body.action].value,
            tag=body.tag,
            cylinder_id=cyl["id"] if cyl else None,
            site_id=site_id,
            company_id=company,
            district=district,
            customer_id=customer["id"] if customer else None,
            lat=body.lat,
            lon=body.lon,
            details={"action": body.action},
        )

    def _apply_telemetry(self, p: Parsed, body: ValveTelemetry, ctx: _Ctx) -> None:
        cyl = ctx.cylinders.get(p.device_id)
        if cyl is None:  # a registered valve device not (yet) fitted to an archived cylinder
            return
        inside, district = self.district_at(body.lat, body.lon)
        company = cyl["owner_company_id"]
        scope = {"company_id": company, "cylinder_id": cyl["id"], "lat": body.lat, "lon": body.lon}
        if is_leak(body.leak_ppm, self.settings.alerts):
            ctx.alerts.append(
                _Alert(
                    "leak",
                    p.device_id,
                    p.ts,
                    district_code=district or cyl["district_code"],
                    site_id=cyl["location_site_id"],
                    details={
                        "leak_ppm": body.leak_ppm,
                        "valve": body.valve,
                        "threshold_ppm": self.settings.alerts.leak_ppm_threshold,
                        "customer_id": cyl["location_customer_id"],
                    },
                    **scope,
                )
            )
        if not inside:
            ctx.alerts.append(
                _Alert("out_of_region", p.device_id, p.ts, details={"via": "valve"}, **scope)
            )
        moved = self._see_cylinder(cyl, p.ts, ctx, body.lat, body.lon, district)
        if moved:
            self._position_event(
                ctx,
                "cylinder",
                p.device_id,
                p.ts,
                body.lat,
                body.lon,
                district or cyl["district_code"],
                company,
                None,
                None,
            )

    def _apply_position(self, p: Parsed, body: VehiclePosition, ctx: _Ctx) -> None:
        dev = ctx.devices[p.device_id]
        inside, district = self.district_at(body.lat, body.lon)
        prev = ctx.dev_position.get(dev["id"])
        stored_at = dev["position_at"]
        if (prev is None or p.ts >= prev[0]) and (stored_at is None or p.ts >= stored_at):
            ctx.dev_position[dev["id"]] = (p.ts, body.lat, body.lon)
            self._position_event(
                ctx,
                "vehicle",
                p.device_id,
                p.ts,
                body.lat,
                body.lon,
                district,
                dev["company_id"],
                body.speed_kmh,
                body.heading,
            )
        if not inside:
            ctx.alerts.append(
                _Alert(
                    "out_of_region",
                    p.device_id,
                    p.ts,
                    subject_type="vehicle",
                    company_id=dev["company_id"],
                    lat=body.lat,
                    lon=body.lon,
                    details={"via": "vehicle", "cargo": list(body.cargo or ())},
                )
            )

    def _position_event(
        self,
        ctx: _Ctx,
        kind: str,
        ident: str,
        ts: datetime,
        lat: float | None,
        lon: float | None,
        district: str | None,
        company_id: int | None,
        speed: float | None,
        heading: float | None,
    ) -> None:
        if lat is None or lon is None:
            return
        data = {
            "kind": kind,
            "id": ident,
            "lat": lat,
            "lon": lon,
            "ts": _ms(ts),
            "speed_kmh": speed,
            "heading": heading,
        }
        ctx.live_events.append(
            self._event(
                "positions",
                data,
                district=district,
                company_id=company_id,
                lat=lat,
                lon=lon,
                key=f"{kind}:{ident}",
            )
        )

    def _apply_status(
        self, p: Parsed, body: DeviceStatus, dev: asyncpg.Record | None, ctx: _Ctx, live: bool
    ) -> None:
        if p.device_kind == "valve" and (dev is None or dev["kind"] != "valve"):
            cyl = ctx.cylinders.get(p.device_id)
            if cyl is None:
                return
            self._see_cylinder(cyl, p.ts, ctx)
            if not body.online and live:
                ctx.alerts.append(
                    _Alert(
                        "device_offline",
                        p.device_id,
                        p.ts,
                        subject_type="valve",
                        company_id=cyl["owner_company_id"],
                        cylinder_id=cyl["id"],
                        district_code=cyl["district_code"],
                        details={"via": "status"},
                    )
                )
            return
        assert dev is not None
        prev = ctx.dev_status.get(dev["id"])
        if prev is None or p.ts >= prev[0]:
            ctx.dev_status[dev["id"]] = (p.ts, body.online)
        if not body.online and live and (dev["status_at"] is None or p.ts >= dev["status_at"]):
            site = ctx.sites_by_id.get(dev["site_id"]) if dev["site_id"] else None
            ctx.alerts.append(
                _Alert(
                    "device_offline",
                    p.device_id,
                    p.ts,
                    subject_type="device",
                    company_id=dev["company_id"],
                    site_id=dev["site_id"],
                    district_code=self._fk_district(site["district_code"] if site else None),
                    details={"via": "status", "device_kind": dev["kind"]},
                )
            )

    # ------------------------------------------------------------------ writes

    async def _write_state(self, conn: asyncpg.Connection, ctx: _Ctx, now: datetime) -> None:
        if ctx.dirty_cylinders:
            cyls = [ctx.cyl_by_id[i] for i in sorted(ctx.dirty_cylinders)]
            cols: list[list[Any]] = [[c["id"] for c in cyls]]
            for name in _CYL_STATE:
                cols.append([c[name] for c in cyls])
            await conn.execute(_CYL_UPDATE, *cols)
        if ctx.denials:
            keys = sorted(ctx.denials)
            await conn.execute(
                _DENIALS_SQL,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [ctx.denials[k] for k in keys],
            )
        dev_ids = sorted(set(ctx.dev_seen) | set(ctx.dev_status) | set(ctx.dev_position))
        if dev_ids:
            before = {d["id"]: d["online"] for d in ctx.devices.values()}
            status = [ctx.dev_status.get(i) for i in dev_ids]
            pos = [ctx.dev_position.get(i) for i in dev_ids]
            rows = await conn.fetch(
                _DEV_UPDATE,
                dev_ids,
                [ctx.dev_seen.get(i) for i in dev_ids],
                [s[0] if s else None for s in status],
                [s[1] if s else None for s in status],
                [q[0] if q else None for q in pos],
                [q[1] if q else None for q in pos],
                [q[2] if q else None for q in pos],
            )
            for r in rows:
                if r["online"] != before.get(r["id"]):
                    site = ctx.sites_by_id.get(r["site_id"]) if r["site_id"] else None
                    district = site["district_code"] if site else None
                    ctx.live_events.append(
                        self._event(
                            "devices",
                            {
                                "device_id": r["device_id"],
                                "kind": r["kind"],
                                "online": r["online"],
                                "last_seen_at": _iso(r["last_seen_at"]),
                                "site_id": r["site_id"],
                                "company_id": r["company_id"],
                            },
                            district=district,
                            company_id=r["company_id"],
                            site_id=r["site_id"],
                            key=f"device:{r['device_id']}",
                        )
                    )
        live_sites = sorted(ctx.touched_sites)
        if live_sites:
            await self._overstock(conn, ctx, live_sites, now)

    async def _overstock(
        self, conn: asyncpg.Connection, ctx: _Ctx, site_ids: list[int], now: datetime
    ) -> None:
        """Full cylinders above permitted storage at the sites this batch filled or stocked.

        Only live messages touch a site for this rule (a buffered return from yesterday says
        nothing about the stock today)."""
        counts = {r["site_id"]: r["full"] for r in await conn.fetch(_FULL_COUNT_SQL, site_ids)}
        missing = [s for s in site_ids if s not in ctx.sites_by_id]
        if missing:
            for r in await conn.fetch(_SITES_SQL, [], missing):
                ctx.sites_by_id[r["id"]] = r
        for sid in site_ids:
            site = ctx.sites_by_id.get(sid)
            if site is None:
                continue
            try:
                permitted = permitted_storage(
                    site["kind"], site["permitted_full_storage"], self.settings.alerts
                )
            except ValueError:
                continue
            full = counts.get(sid, 0)
            if is_overstock(full, permitted):
                ctx.alerts.append(
                    _Alert(
                        "overstock",
                        site["code"],
                        now,
                        site_id=sid,
                        company_id=site["company_id"],
                        district_code=self._fk_district(site["district_code"]),
                        lat=site["lat"],
                        lon=site["lon"],
                        details={"full": full, "permitted": permitted},
                    )
                )

    async def _raise_alerts(self, conn: asyncpg.Connection, ctx: _Ctx) -> int:
        """Raise the batch's alerts, merged per (kind, subject), in a fixed order."""
        merged: dict[tuple[str, str, str], _Alert] = {}
        for a in ctx.alerts:
            subject_type = a.subject_type or ALERT_KINDS[a.kind].subject_type
            a.subject_type = subject_type
            key = (a.kind, subject_type, a.subject_id)
            have = merged.get(key)
            if have is None:
                merged[key] = a
            else:
                have.count += a.count
                if a.at >= have.at:
                    a.count = have.count
                    merged[key] = a
        for key in sorted(merged):
            a = merged[key]
            alert, _created = await raise_alert(
                conn,
                kind=a.kind,
                subject_type=a.subject_type,
                subject_id=a.subject_id,
                at=a.at,
                company_id=a.company_id,
                site_id=a.site_id,
                district_code=a.district_code,
                cylinder_id=a.cylinder_id,
                lat=a.lat,
                lon=a.lon,
                details=a.details,
                count=a.count,
            )
            ctx.live_events.append(alert_event(alert))
        return len(merged)


def _ts(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _unique(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Drop rows whose (msg_id, ts) repeats within the batch (a redelivery mid-batch)."""
    seen: set[tuple[Any, Any]] = set()
    out = []
    for r in rows:
        k = (r[2], r[0])
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out
