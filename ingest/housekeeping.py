"""Periodic rules: silence of devices, licences close to expiry (DOMAIN.md "Abnormal behaviour").

These rules fire on the *absence* of messages or on the calendar, so no message triggers
them; every worker runs this loop but a transaction-scoped PostgreSQL advisory lock lets
only one of them work at a time, and a run that starts within half an interval of the
previous one (another worker just did it) does nothing. State lives in the database
(``ingest_housekeeping``), so a worker restart neither repeats nor skips a window.

- Guns: no message for ``gun_offline_min`` during opening hours → ``device_offline`` and
  ``devices.online = false`` (the flag keeps the alert from repeating every run; any
  message from the gun sets it back).
- Valves: a cylinder whose valve's last message crossed the ``valve_offline_h`` silence
  threshold since the previous run → ``device_offline`` (subject ``valve``, the tag). The
  scan is a window on ``cylinders.last_seen_at`` (deliberately unindexed, migration 0030:
  telemetry rewrites it constantly and must stay a HOT update), once a minute, and raises
  each silence once.
- Licences: a company's or site's filling licence within ``licence_expiring_days`` →
  ``licence_expiring``, once per (holder, expiry date): renewing moves the date and arms it
  again; resolving the alert does not make it come back every minute.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

from ingest.live import device_event
from server.db.alerts import alert_event, raise_alert
from server.domain.localtime import city_date
from server.domain.supervision import is_device_offline, licence_expiring
from server.kernel.events import Event
from server.kernel.settings import Settings

__all__ = ["LOCK_KEY", "run_once"]

log = logging.getLogger(__name__)

LOCK_KEY: Final = 0x0C71_1A6E
"""Advisory lock id of the periodic rules (distinct from the migrations' lock)."""
VALVE_BATCH: Final = 10_000
"""Valves handled per run at most; the cursor resumes there next run."""
FIRST_RUN_LOOKBACK: Final = timedelta(days=1)
"""On the very first run, silences older than this are history, not news."""


async def run_once(
    pool: asyncpg.Pool, settings: Settings, now: datetime | None = None
) -> list[Event]:
    """One pass of the periodic rules; returns the live events to publish after commit."""
    now = now or datetime.now(UTC)
    interval = timedelta(seconds=settings.ingest.housekeeping_interval_s)
    events: list[Event] = []
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return []
        last = await conn.fetchval(
            "SELECT last_run_at FROM ingest_housekeeping WHERE name = 'periodic'"
        )
        if last is not None and now - last < interval / 2:
            return []
        events += await _guns_offline(conn, settings, now)
        events += await _valves_offline(conn, settings, now)
        events += await _licences(conn, settings, now)
        await _mark(conn, "periodic", now)
    return events


async def _mark(conn: asyncpg.Connection, name: str, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO ingest_housekeeping (name, last_run_at) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at""",
        name,
        at,
    )


async def _guns_offline(conn: asyncpg.Connection, settings: Settings, now: datetime) -> list[Event]:
    rules = settings.alerts
    rows = await conn.fetch(
        """SELECT d.id, d.device_id, d.kind, d.company_id, d.site_id, d.last_seen_at,
                  s.district_code
             FROM devices d LEFT JOIN sites s ON s.id = d.site_id
            WHERE d.kind = 'gun' AND d.active AND d.online IS DISTINCT FROM false
              AND d.last_seen_at IS NOT NULL AND d.last_seen_at <= $1
            ORDER BY d.id""",
        now - timedelta(minutes=rules.gun_offline_min),
    )
    silent = [r for r in rows if is_device_offline("gun", r["last_seen_at"], now, rules)]
    events: list[Event] = []
    if not silent:
        return events
    await conn.execute(
        "UPDATE devices SET online = false, updated_at = now() WHERE id = ANY($1::bigint[])",
        [r["id"] for r in silent],
    )
    for r in silent:
        alert, _ = await raise_alert(
            conn,
            kind="device_offline",
            subject_type="device",
            subject_id=r["device_id"],
            at=now,
            company_id=r["company_id"],
            site_id=r["site_id"],
            district_code=r["district_code"],
            details={
                "via": "inactivity",
                "device_kind": "gun",
                "last_seen_at": r["last_seen_at"].isoformat(),
            },
        )
        events.append(alert_event(alert))
        events.append(
            device_event(
                device_id=r["device_id"],
                kind="gun",
                online=False,
                last_seen_at=r["last_seen_at"],
                site_id=r["site_id"],
                company_id=r["company_id"],
                district=r["district_code"],
            )
        )
    log.info("periodic rules: %d gun(s) offline", len(silent))
    return events


async def _valves_offline(
    conn: asyncpg.Connection, settings: Settings, now: datetime
) -> list[Event]:
    rules = settings.alerts
    window_end = now - timedelta(hours=rules.valve_offline_h)
    cursor = await conn.fetchval(
        "SELECT last_run_at FROM ingest_housekeeping WHERE name = 'valve_offline'"
    )
    if cursor is None:
        cursor = window_end - FIRST_RUN_LOOKBACK
    rows = await conn.fetch(
        """SELECT id, tag, owner_company_id, district_code, location_site_id, last_seen_at,
                  lat, lon
             FROM cylinders
            WHERE last_seen_at > $1 AND last_seen_at <= $2 AND valve_type = 'smart'
            ORDER BY last_seen_at LIMIT $3""",
        cursor,
        window_end,
        VALVE_BATCH,
    )
    events: list[Event] = []
    for r in rows:
        if not is_device_offline("valve", r["last_seen_at"], now, rules):
            continue
        alert, _ = await raise_alert(
            conn,
            kind="device_offline",
            subject_type="valve",
            subject_id=r["tag"],
            at=now,
            company_id=r["owner_company_id"],
            site_id=r["location_site_id"],
            district_code=r["district_code"],
            cylinder_id=r["id"],
            lat=r["lat"],
            lon=r["lon"],
            details={
                "via": "inactivity",
                "device_kind": "valve",
                "last_seen_at": r["last_seen_at"].isoformat(),
            },
        )
        events.append(alert_event(alert))
    new_cursor = rows[-1]["last_seen_at"] if len(rows) == VALVE_BATCH else window_end
    await _mark(conn, "valve_offline", new_cursor)
    if events:
        log.info("periodic rules: %d valve(s) silent", len(events))
    return events


async def _licences(conn: asyncpg.Connection, settings: Settings, now: datetime) -> list[Event]:
    rules = settings.alerts
    today = city_date(now, rules)
    rows = await conn.fetch(
        """SELECT 'company' AS subject_type, code, id AS company_id, NULL::bigint AS site_id,
                  district_code, licence_no, licence_expiry
             FROM companies
            WHERE licence_expiry BETWEEN $1 AND $2 AND licence_status = 'valid'
           UNION ALL
           SELECT 'site', code, company_id, id, district_code, licence_no, licence_expiry
             FROM sites
            WHERE licence_expiry BETWEEN $1 AND $2 AND licence_status = 'valid'""",
        today,
        today + timedelta(days=rules.licence_expiring_days),
    )
    events: list[Event] = []
    for r in rows:
        if not licence_expiring(r["licence_expiry"], today, rules):
            continue
        expiry = r["licence_expiry"].isoformat()
        seen = await conn.fetchval(
            """SELECT 1 FROM alerts WHERE kind = 'licence_expiring' AND subject_type = $1
                  AND subject_id = $2 AND details->>'expiry' = $3 LIMIT 1""",
            r["subject_type"],
            r["code"],
            expiry,
        )
        if seen:
            continue
        alert, _ = await raise_alert(
            conn,
            kind="licence_expiring",
            subject_type=r["subject_type"],
            subject_id=r["code"],
            at=now,
            company_id=r["company_id"],
            site_id=r["site_id"],
            district_code=r["district_code"],
            details={
                "expiry": expiry,
                "licence_no": r["licence_no"],
                "days_left": (r["licence_expiry"] - today).days,
            },
        )
        events.append(alert_event(alert))
    return events
