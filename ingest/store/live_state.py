"""Write the live state a batch changed: cylinders, devices, refused-fill counters.

One ``UPDATE … FROM unnest`` per table, whatever the number of rows. Cylinders were locked
by :mod:`ingest.store.lookups` and are written as the rules left them (in id order, like the
lock): those whose state changed with every state column, those only seen (valve telemetry,
most of the traffic) with just "last seen" and the position — a third of the parameters.
Timestamps that come from messages are sent as microseconds since the Unix epoch
(:func:`ingest.records.micros`): asyncpg's ``timestamptz`` encoder costs ~7,400 instructions a
value (docs/BENCHMARKS.md "Ingest worker CPU per message"). Devices are not locked (every batch touches them; a lock would serialize all
workers), so each device column is guarded in SQL by its own device time: ``last_seen_at``
only grows, ``online`` follows the newest of its status and its last message, the position
only moves forward. A device whose ``online`` flag changed is announced on the ``devices``
channel (:func:`ingest.live.device_event`).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ingest.live import device_event
from ingest.records import micros
from ingest.store.context import BatchContext
from ingest.store.lookups import CYLINDER_STATE

__all__ = ["write_state"]

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

_CYL_SEEN = """
UPDATE cylinders c SET last_seen_at = timestamptz 'epoch' + u.seen_us * interval '1 microsecond',
       lat = u.lat, lon = u.lon, district_code = u.district_code, updated_at = now()
  FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::text[])
       AS u (id, seen_us, lat, lon, district_code)
 WHERE c.id = u.id
"""

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
  FROM (SELECT id, timestamptz 'epoch' + seen_us * interval '1 microsecond' AS seen_at,
               timestamptz 'epoch' + status_us * interval '1 microsecond' AS status_at,
               status_online,
               timestamptz 'epoch' + position_us * interval '1 microsecond' AS position_at,
               lat, lon
          FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bool[], $5::bigint[],
                      $6::float8[], $7::float8[])
               AS v (id, seen_us, status_us, status_online, position_us, lat, lon)) AS u
 WHERE d.id = u.id
RETURNING d.id, d.device_id, d.kind, d.online, d.company_id, d.site_id, d.last_seen_at
"""

_DENIALS_SQL = """
INSERT INTO fill_denials_daily AS f (station_id, day, reason, count)
SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::int[])
ON CONFLICT (station_id, day, reason) DO UPDATE SET count = f.count + EXCLUDED.count
"""


async def write_state(conn: asyncpg.Connection, batch: BatchContext) -> None:
    if batch.dirty_cylinders:
        cyls = [batch.cyl_by_id[i] for i in sorted(batch.dirty_cylinders)]
        cols: list[list[Any]] = [[c["id"] for c in cyls]]
        for name in CYLINDER_STATE:
            cols.append([c[name] for c in cyls])
        await conn.execute(_CYL_UPDATE, *cols)
    seen = batch.seen_cylinders - batch.dirty_cylinders
    if seen:
        cyls = [batch.cyl_by_id[i] for i in sorted(seen)]
        await conn.execute(
            _CYL_SEEN,
            [c["id"] for c in cyls],
            [micros(c["last_seen_at"]) for c in cyls],
            [c["lat"] for c in cyls],
            [c["lon"] for c in cyls],
            [c["district_code"] for c in cyls],
        )
    if batch.denials:
        keys = sorted(batch.denials)
        await conn.execute(
            _DENIALS_SQL,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [batch.denials[k] for k in keys],
        )
    await _write_devices(conn, batch)


async def _write_devices(conn: asyncpg.Connection, batch: BatchContext) -> None:
    dev_ids = sorted(set(batch.dev_seen) | set(batch.dev_status) | set(batch.dev_position))
    if not dev_ids:
        return
    before = {d["id"]: d["online"] for d in batch.devices.values()}
    status = [batch.dev_status.get(i) for i in dev_ids]
    pos = [batch.dev_position.get(i) for i in dev_ids]
    seen = [batch.dev_seen.get(i) for i in dev_ids]
    rows = await conn.fetch(
        _DEV_UPDATE,
        dev_ids,
        [None if t is None else micros(t) for t in seen],
        [micros(s[0]) if s else None for s in status],
        [s[1] if s else None for s in status],
        [micros(q[0]) if q else None for q in pos],
        [q[1] if q else None for q in pos],
        [q[2] if q else None for q in pos],
    )
    for r in rows:
        if r["online"] == before.get(r["id"]):
            continue
        site = batch.sites_by_id.get(r["site_id"]) if r["site_id"] else None
        batch.live_events.append(
            device_event(
                device_id=r["device_id"],
                kind=r["kind"],
                online=r["online"],
                last_seen_at=r["last_seen_at"],
                site_id=r["site_id"],
                company_id=r["company_id"],
                district=site["district_code"] if site else None,
            )
        )
