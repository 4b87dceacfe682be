"""Alerts: de-duplication, the open → acknowledged → resolved life cycle, periodic rules."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ingest import housekeeping
from server.db.alerts import ALERT_KINDS, InvalidTransition, raise_alert, transition_alert
from tests.ingest.conftest import Env

T0 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)


async def test_a_repeat_while_open_bumps_the_counter(env: Env) -> None:
    async with env.pool.acquire() as conn:
        first, created = await raise_alert(
            conn,
            kind="leak",
            subject_id="T-DEDUPE",
            at=T0,
            district_code="410105",
            details={"leak_ppm": 1200},
        )
        assert created and first["count"] == 1 and first["severity"] == "critical"
        assert first["subject_type"] == "cylinder" and first["district"] == "410105"
        assert first["first_at"] == T0.isoformat() and first["state"] == "open"
        again, created = await raise_alert(
            conn,
            kind="leak",
            subject_id="T-DEDUPE",
            at=T0 + dt.timedelta(minutes=5),
            details={"leak_ppm": 1500, "valve": "open"},
        )
        assert not created and again["id"] == first["id"] and again["count"] == 2
        assert again["details"] == {"leak_ppm": 1500, "valve": "open"}
        # late data cannot move last_at back
        late, _ = await raise_alert(conn, kind="leak", subject_id="T-DEDUPE", at=T0)
        assert late["count"] == 3
        assert late["last_at"] == (T0 + dt.timedelta(minutes=5)).isoformat()
        assert late["district"] == "410105"  # scope kept when a repeat does not know it


async def test_acknowledge_and_resolve(env: Env) -> None:
    async with env.pool.acquire() as conn:
        alert, _ = await raise_alert(conn, kind="overstock", subject_id="SITE-LIFE", at=T0)
        acked = await transition_alert(conn, alert["id"], "ack", None, "on my way")
        assert acked is not None and acked["state"] == "acknowledged"
        assert acked["note"] == "on my way" and acked["acknowledged_at"] is not None
        with pytest.raises(InvalidTransition):
            await transition_alert(conn, alert["id"], "ack", None, None)
        resolved = await transition_alert(conn, alert["id"], "resolve", None, None)
        assert resolved is not None and resolved["state"] == "resolved"
        assert resolved["note"] == "on my way"
        with pytest.raises(InvalidTransition) as err:
            await transition_alert(conn, alert["id"], "resolve", None, None)
        assert isinstance(err.value, ValueError) and err.value.state == "resolved"
        assert await transition_alert(conn, 987_654_321, "ack", None, None) is None
        # once resolved, the same condition opens a new alert
        fresh, created = await raise_alert(conn, kind="overstock", subject_id="SITE-LIFE", at=T0)
        assert created and fresh["id"] != alert["id"]
        # an open alert can be resolved directly
        assert (await transition_alert(conn, fresh["id"], "resolve", None, "dup"))["state"] == (
            "resolved"
        )


def test_every_kind_of_design_has_a_severity() -> None:
    kinds = {
        "fill_denied",
        "overfill",
        "underfill",
        "repeat_fill",
        "unknown_tag",
        "overstock",
        "leak",
        "device_offline",
        "out_of_region",
        "licence_expiring",
        "circulation_violation",
        "suspected_illegal_fill",
        "foreign_cylinder",
        "cloned_tag",
    }
    assert set(ALERT_KINDS) == kinds
    assert {k.severity for k in ALERT_KINDS.values()} <= {"info", "warning", "critical"}


async def test_periodic_rules_find_silent_devices_and_expiring_licences(env: Env) -> None:
    zone = ZoneInfo(env.settings.alerts.timezone)
    # 10:00 local: stations are open
    now = dt.datetime.combine(env.world.today, dt.time(10, 0), zone).astimezone(dt.UTC)
    rules = env.settings.alerts
    await env.pool.execute(
        "UPDATE devices SET last_seen_at = $1, online = true WHERE device_id = 'GUN-A1'",
        now - dt.timedelta(minutes=rules.gun_offline_min + 5),
    )
    await env.pool.execute(
        "UPDATE devices SET last_seen_at = $1, online = true WHERE device_id = 'GUN-B1'",
        now - dt.timedelta(minutes=1),
    )
    await env.pool.execute(
        "UPDATE cylinders SET last_seen_at = $1 WHERE tag = 'TAG-A18'",
        now - dt.timedelta(hours=rules.valve_offline_h + 1),
    )
    await env.pool.execute(
        "UPDATE companies SET licence_expiry = $1 WHERE code = 'CO-B'",
        env.world.today + dt.timedelta(days=rules.licence_expiring_days - 5),
    )
    events = await housekeeping.run_once(env.pool, env.settings, now)
    kinds = {
        (e.channel, e.data.get("kind"), e.data.get("subject_id") or e.data.get("device_id"))
        for e in events
    }
    assert ("alerts", "device_offline", "GUN-A1") in kinds
    assert ("alerts", "device_offline", "GUN-B1") not in kinds
    assert ("alerts", "device_offline", "TAG-A18") in kinds
    assert ("alerts", "licence_expiring", "CO-B") in kinds
    assert any(e.channel == "devices" and e.data["device_id"] == "GUN-A1" for e in events)
    assert await env.pool.fetchval("SELECT online FROM devices WHERE device_id = 'GUN-A1'") is False
    lic = await env.pool.fetchrow(
        "SELECT * FROM alerts WHERE kind = 'licence_expiring' AND subject_id = 'CO-B'"
    )
    assert lic["details"]["days_left"] == rules.licence_expiring_days - 5
    # another worker a moment later does nothing; the next period repeats nothing
    assert await housekeeping.run_once(env.pool, env.settings, now + dt.timedelta(seconds=1)) == []
    later = now + dt.timedelta(seconds=env.settings.ingest.housekeeping_interval_s)
    again = await housekeeping.run_once(env.pool, env.settings, later)
    # only the gun that has gone silent since (GUN-B1) is news
    assert {e.data["subject_id"] for e in again if e.channel == "alerts"} == {"GUN-B1"}
    counts = await env.pool.fetch(
        "SELECT subject_id, count FROM alerts WHERE kind IN ('device_offline', 'licence_expiring')"
        " AND subject_id IN ('GUN-A1', 'TAG-A18', 'CO-B')"
    )
    assert sorted((r["subject_id"], r["count"]) for r in counts) == [
        ("CO-B", 1),
        ("GUN-A1", 1),
        ("TAG-A18", 1),
    ]


async def test_a_gun_is_not_offline_at_night(env: Env) -> None:
    zone = ZoneInfo(env.settings.alerts.timezone)
    night = dt.datetime.combine(
        env.world.today + dt.timedelta(days=3), dt.time(2, 0), zone
    ).astimezone(dt.UTC)
    await env.pool.execute(
        "UPDATE devices SET last_seen_at = $1, online = true WHERE device_id = 'GUN-AX'",
        night - dt.timedelta(hours=3),
    )
    events = await housekeeping.run_once(env.pool, env.settings, night)
    assert not [e for e in events if e.data.get("subject_id") == "GUN-AX"]
