"""Rows the browser tests look for: alerts, fills, a cylinder with a located trajectory.

Unique codes per test and removed afterwards: the session database and its `world` are
shared with other suites that count rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from typing import Any

import asyncpg

from tests.conftest import World


@dataclasses.dataclass
class Seeded:
    tag: str
    alerts: dict[str, int]
    alert_subjects: dict[str, str]
    cylinder_id: int
    cylinder_tag: str
    fills: list[str]
    other_cylinders: list[int]


async def seed(pool: asyncpg.Pool, world: World) -> Seeded:
    tag = secrets.token_hex(3).upper()
    now = dt.datetime.now(dt.UTC)
    alerts: dict[str, int] = {}
    subjects: dict[str, str] = {}
    for key, kind, sev, comp, site, district, lat in (
        ("A", "overfill", "critical", "A", "STA-A1", "410105", 34.805),
        ("B", "leak", "critical", "B", "STA-B1", "410103", 34.705),
    ):
        subjects[key] = f"BR-{tag}-{key}"
        alerts[key] = await pool.fetchval(
            """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                   district_code, first_at, last_at, lat, lon, count, details)
               VALUES ($1, $2, 'cylinder', $3, $4, $5, $6, $7, $7, $8, 113.655, 2, $9)
               RETURNING id""",
            kind,
            sev,
            subjects[key],
            world.companies[comp],
            world.sites[site],
            district,
            # newest of all: lists are most-recent-first and paginated, and the session
            # database holds every alert earlier test modules raised in the same districts
            now + dt.timedelta(minutes=30),
            lat,
            {"net_kg": 15.4},
        )
    cyl_tag = f"BR-{tag}-CYL"
    cid = await pool.fetchval(
        """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l, tare_kg,
               manufacturer, manufacture_date, next_inspection_date, scrap_date, status,
               district_code, location_kind, location_customer_id, fill_state, lat, lon,
               registered_by_site_id, last_fill_at, last_fill_site_id)
           VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.2, '测试压力容器厂', $5, $6, $7,
                   'in_service',
                   '410105', 'customer', $8, 'full', 34.812, 113.672, $9, $10, $11)
           RETURNING id""",
        cyl_tag,
        f"ST-{tag}",
        f"BC-{tag}",
        world.companies["A"],
        world.today - dt.timedelta(days=700),
        world.today + dt.timedelta(days=20),
        world.today + dt.timedelta(days=2000),
        world.customers["A"],
        world.sites["INS-1"],
        now - dt.timedelta(hours=5),
        world.sites["STA-A1"],
    )
    steps = [
        ("register", "commissioning", "active", "INS-1", 34.78, 113.65, {}),
        (
            "fill",
            "urn:cylwatch:bizstep:filling",
            "active",
            "STA-A1",
            34.80,
            113.65,
            {"net_kg": 14.6},
        ),
        ("dispatch", "shipping", "in_transit", "STA-A1", 34.801, 113.66, {"action": "dispatch"}),
        ("deliver", "retail_selling", "retail_sold", None, 34.812, 113.672, {"action": "deliver"}),
    ]
    for i, (kind, step, disp, site, lat, lon, details) in enumerate(steps):
        await pool.execute(
            """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
                   site_id, company_id, operator, lat, lon, district_code, details)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '410105', $13)""",
            now - dt.timedelta(hours=8 - 2 * i),
            f"br-{tag}-{i}",
            cid,
            cyl_tag,
            kind,
            step,
            disp,
            world.sites.get(site or ""),
            world.companies["A"],
            "张师傅",
            lat,
            lon,
            json.loads(json.dumps(details)),
        )
    fills = []
    for comp, net in (("A", 14.7), ("B", 14.2)):
        msg = f"brf-{tag}-{comp}"
        fills.append(msg)
        await pool.execute(
            """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code,
                   cylinder_id, tag, spec, net_kg, result, assessment, operator)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'YSP35.5', $9, 'completed', 'ok', '李四')""",
            now - dt.timedelta(hours=1),
            msg,
            f"GUN-STA-{comp}1",
            world.sites[f"STA-{comp}1"],
            world.companies[comp],
            "410105" if comp == "A" else "410103",
            cid if comp == "A" else world.cylinders["TAG-B-OK"],
            cyl_tag if comp == "A" else "TAG-B-OK",
            net,
        )
    return Seeded(tag, alerts, subjects, cid, cyl_tag, fills, [])


async def unseed(pool: asyncpg.Pool, s: Seeded) -> None:
    await pool.execute("DELETE FROM alerts WHERE id = ANY($1)", list(s.alerts.values()))
    await pool.execute("DELETE FROM fills WHERE msg_id = ANY($1)", s.fills)
    await pool.execute("DELETE FROM events WHERE cylinder_id = $1", s.cylinder_id)
    await pool.execute("DELETE FROM complaints WHERE cylinder_id = $1", s.cylinder_id)
    await pool.execute("DELETE FROM cylinders WHERE id = $1", s.cylinder_id)


def row_of(alert_id: int, **over: Any) -> dict[str, Any]:
    """An alerts row as live events carry it (docs/ARCHITECTURE.md §6)."""
    now = dt.datetime.now(dt.UTC).isoformat()
    row = {
        "id": alert_id,
        "kind": "leak",
        "severity": "critical",
        "subject_type": "cylinder",
        "subject_id": f"LIVE-{alert_id}",
        "company_id": None,
        "site_id": None,
        "district": "410105",
        "cylinder_id": None,
        "state": "open",
        "count": 1,
        "first_at": now,
        "last_at": now,
        "lat": 34.79,
        "lon": 113.64,
        "details": {"leak_ppm": 2400},
    }
    row.update(over)
    return row
