"""`cylwatch seed`: the synthetic demo city, checked the way a user would notice it.

Self-contained: each test module run creates its own scratch databases on the real
PostgreSQL (``CYL_TEST_ADMIN_DSN``, default postgres@127.0.0.1), migrates and seeds them,
and drops them at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest
from shapely.geometry import MultiPoint, Point, shape
from shapely.ops import unary_union

from device_sim.routes import Route, Stop
from server.db.migrate import migrate
from server.db.pool import connect
from server.domain.dates import ComplianceStatus, compliance_status
from server.kernel.districts import DistrictIndex, load_districts
from server.kernel.passwords import verify_password
from server.kernel.settings import Settings, load_settings
from server.seed import DEMO_USERS, AlreadySeeded, SeedSummary, add_commands, seed_city

ADMIN_DSN = os.environ.get("CYL_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TODAY = date(2026, 3, 16)
CYLINDERS = 3000


@dataclass
class Seeded:
    dsn: str
    settings: Settings
    summary: SeedSummary


def _settings_for(dsn: str) -> Settings:
    env = dict(os.environ)
    env["CYL_DATABASE_URL"] = dsn
    # argon2 at full cost would make seeding 7 users and verifying them the slowest part
    env.update({"CYL_AUTH__ARGON2_TIME_COST": "1", "CYL_AUTH__ARGON2_MEMORY_KIB": "1024"})
    return load_settings(environ=env)


async def _drop(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _scratch(tag: str) -> tuple[str, str, Settings]:
    name = f"cylwatch_test_seed_{tag}_{secrets.token_hex(4)}"
    dsn = urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()
    settings = _settings_for(dsn)
    await migrate(settings, dsn)
    return name, dsn, settings


@pytest.fixture(scope="module")
async def seeded() -> AsyncIterator[Seeded]:
    name, dsn, settings = await _scratch("city")
    try:
        conn = await connect(settings, dsn)
        try:
            summary = await seed_city(
                conn, settings, cylinders=CYLINDERS, today=TODAY, progress=False
            )
        finally:
            await conn.close()
        yield Seeded(dsn, settings, summary)
    finally:
        await _drop(name)


@pytest.fixture
async def db(seeded: Seeded) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(seeded.settings, seeded.dsn)
    yield conn
    await conn.close()


async def test_summary_matches_what_is_stored(seeded: Seeded, db: asyncpg.Connection) -> None:
    s = seeded.summary
    assert s.cylinders == CYLINDERS == await db.fetchval("SELECT count(*) FROM cylinders")
    assert s.customers == await db.fetchval("SELECT count(*) FROM customers")
    assert s.companies == seeded.settings.seed.companies
    assert s.filling_stations == seeded.settings.seed.filling_stations
    assert s.stores == seeded.settings.seed.stores
    assert s.inspection_agencies >= 3
    assert s.vehicles == seeded.settings.seed.vehicles
    assert s.entrustments >= 1
    assert sum(s.compliance.values()) == CYLINDERS
    assert s.events == await db.fetchval("SELECT count(*) FROM events")
    assert s.fills == await db.fetchval("SELECT count(*) FROM fills") > 0


async def test_every_district_boundary_is_valid(db: asyncpg.Connection) -> None:
    # stored as a GeoJSON object, not as a JSON string holding one
    assert await db.fetchval("SELECT bool_and(jsonb_typeof(boundary) = 'object') FROM districts")
    rows = await db.fetch("SELECT code, boundary FROM districts")
    assert len(rows) >= 6
    shapes = {r["code"]: shape(r["boundary"]) for r in rows}
    assert all(s.is_valid for s in shapes.values())
    codes = sorted(shapes)
    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            assert shapes[a].intersection(shapes[b]).area < 1e-12, (a, b)


async def test_every_site_lies_inside_its_district(db: asyncpg.Connection) -> None:
    shapes = {d.code: d.shape for d in load_districts()}
    sites = await db.fetch("SELECT code, district_code, lat, lon FROM sites")
    assert len(sites) > 400
    outside = [
        s["code"] for s in sites if not shapes[s["district_code"]].covers(Point(s["lon"], s["lat"]))
    ]
    assert outside == []


async def test_customers_and_cylinders_are_placed_in_their_district(
    db: asyncpg.Connection,
) -> None:
    shapes = {d.code: d.shape for d in load_districts()}
    rows = await db.fetch(
        "SELECT district_code, lat, lon FROM customers UNION ALL "
        "SELECT district_code, lat, lon FROM cylinders"
    )
    assert all(shapes[r["district_code"]].covers(Point(r["lon"], r["lat"])) for r in rows)


def test_the_city_is_one_region_without_gaps() -> None:
    """The districts tile the city: one polygon, no holes, convex — so a straight leg between
    any two places of the city (a delivery vehicle's, device_sim/routes.py) never leaves it
    and raises a false out_of_region alert."""
    union = unary_union([d.shape for d in load_districts()])
    assert union.geom_type == "Polygon"
    assert not list(union.interiors)
    assert union.convex_hull.area - union.area < 1e-9


async def test_every_seeded_place_and_the_simulators_roads_lie_in_the_city(
    db: asyncpg.Connection,
) -> None:
    index = DistrictIndex(load_districts())
    places = [
        (r["lat"], r["lon"])
        for r in await db.fetch(
            "SELECT lat, lon FROM sites UNION ALL SELECT lat, lon FROM customers "
            "UNION ALL SELECT lat, lon FROM devices WHERE lat IS NOT NULL "
            "UNION ALL SELECT lat, lon FROM cylinders WHERE lat IS NOT NULL"
        )
    ]
    assert [p for p in places if index.lookup(*p) is None] == []
    union = unary_union([d.shape for d in load_districts()])
    assert union.covers(MultiPoint([(lon, lat) for lat, lon in places]).convex_hull)
    # the simulator drives straight legs between stations, stores and customers
    stops = [
        Stop(r["lat"], r["lon"], r["kind"], str(r["ref"]))
        for r in await db.fetch(
            "SELECT lat, lon, kind, code AS ref FROM sites WHERE kind <> 'inspection_agency' "
            "UNION ALL SELECT lat, lon, 'customer', account_no FROM customers"
        )
    ]
    rng = random.Random(5)
    fixes = []
    for _ in range(300):
        route = Route(rng.sample(stops, 3), 0, 30.0, 0.0)
        fixes += [route.fix_at(t) for t in range(0, route.end_ms, max(1, route.end_ms // 20))]
    assert [f for f in fixes if index.lookup(f.lat, f.lon) is None] == []


async def test_codes_are_unique_and_well_formed(db: asyncpg.Connection) -> None:
    row = await db.fetchrow(
        """SELECT count(*) AS n, count(DISTINCT tag) AS tags, count(DISTINCT barcode) AS barcodes,
                  count(DISTINCT stamp) AS stamps FROM cylinders"""
    )
    assert row["n"] == row["tags"] == row["barcodes"] == row["stamps"] == CYLINDERS
    tags = await db.fetch("SELECT tag, barcode, stamp FROM cylinders")
    assert all(re.fullmatch(r"E[0-9A-F]{12}", r["tag"]) for r in tags)
    assert all(re.fullmatch(r"\d{16}", r["barcode"]) for r in tags)
    assert all(re.fullmatch(r"ZZ\d{8}", r["stamp"]) for r in tags)


async def test_the_fleet_has_a_realistic_spread_of_dates(
    seeded: Seeded, db: asyncpg.Connection
) -> None:
    rows = await db.fetch("SELECT status, next_inspection_date, scrap_date FROM cylinders")
    rules = seeded.settings.dates
    spread = Counter(
        compliance_status(r["status"], r["next_inspection_date"], r["scrap_date"], TODAY, rules)
        for r in rows
    )
    assert spread == Counter({ComplianceStatus(k): v for k, v in seeded.summary.compliance.items()})
    share = {k: v / CYLINDERS for k, v in spread.items()}
    assert 0.02 <= share[ComplianceStatus.OVERDUE] <= 0.07
    assert 0.01 <= share[ComplianceStatus.SCRAPPED] <= 0.04
    assert 0.005 <= share[ComplianceStatus.SCRAP_DUE] <= 0.05
    assert 0.005 <= share[ComplianceStatus.INSPECTION_DUE] <= 0.05
    assert share[ComplianceStatus.OK] > 0.8
    statuses = Counter(r["status"] for r in rows)
    assert statuses["scrapped"] > 0 and statuses["in_service"] > 0.9 * CYLINDERS
    assert {"lost", "suspended", "in_inspection"} <= set(statuses)


async def test_dates_obey_the_configured_rules(seeded: Seeded, db: asyncpg.Connection) -> None:
    rules = seeded.settings.dates
    bad = await db.fetchval(
        """SELECT count(*) FROM cylinders
            WHERE scrap_date > manufacture_date + make_interval(years => $1)
               OR next_inspection_date > coalesce(last_inspection_date, manufacture_date)
                                         + make_interval(years => $2)
               OR (last_inspection_date IS NULL) <> (inspection_count = 0)
               OR manufacture_date > $3""",
        rules.absolute_scrap_age_years,
        rules.inspection_interval_years,
        TODAY,
    )
    assert bad == 0
    oldest = await db.fetchval("SELECT min(manufacture_date) FROM cylinders")
    assert oldest < TODAY - timedelta(days=365 * rules.absolute_scrap_age_years)


async def test_cylinders_belong_to_where_they_are(db: asyncpg.Connection) -> None:
    mismatched = await db.fetchval(
        """SELECT count(*) FROM cylinders c
             LEFT JOIN customers cu ON cu.id = c.location_customer_id
             LEFT JOIN sites s ON s.id = c.location_site_id
             LEFT JOIN devices v ON v.id = c.location_device_id
            WHERE (c.location_kind = 'customer' AND cu.company_id <> c.owner_company_id)
               OR (c.location_kind = 'site' AND s.kind <> 'inspection_agency'
                   AND s.company_id <> c.owner_company_id)
               OR (c.location_kind = 'vehicle' AND v.company_id <> c.owner_company_id)"""
    )
    assert mismatched == 0
    kinds = Counter(
        r["location_kind"] for r in await db.fetch("SELECT location_kind FROM cylinders")
    )
    assert kinds["customer"] > kinds["site"] > kinds["vehicle"] > 0


async def test_no_customer_has_a_full_identity_number(db: asyncpg.Connection) -> None:
    ids = [r["id_number_masked"] for r in await db.fetch("SELECT id_number_masked FROM customers")]
    assert ids and all(len(i) == 18 and "********" in i for i in ids)
    assert not any(re.fullmatch(r"\d{17}[\dX]", i) for i in ids)


async def test_licences_include_trouble_to_supervise(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "SELECT licence_status, licence_expiry FROM companies UNION ALL "
        "SELECT licence_status, licence_expiry FROM sites WHERE kind = 'filling_station'"
    )
    expiring = [r for r in rows if TODAY <= r["licence_expiry"] <= TODAY + timedelta(days=30)]
    assert len(expiring) >= 2
    assert any(r["licence_status"] == "suspended" for r in rows)


async def test_every_station_has_guns_and_history_is_consistent(db: asyncpg.Connection) -> None:
    gunless = await db.fetchval(
        """SELECT count(*) FROM sites s WHERE s.kind = 'filling_station'
              AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.site_id = s.id AND d.kind = 'gun')"""
    )
    assert gunless == 0
    orphan_fills = await db.fetchval(
        """SELECT count(*) FROM fills f
             LEFT JOIN devices g ON g.device_id = f.gun_id AND g.site_id = f.station_id
             LEFT JOIN cylinders c ON c.id = f.cylinder_id AND c.tag = f.tag
            WHERE g.id IS NULL OR c.id IS NULL OR f.ts >= $1::date""",
        TODAY,
    )
    assert orphan_fills == 0
    assert await db.fetchval("SELECT count(*) FROM events WHERE kind = 'register'") > 0


async def test_each_demo_user_logs_in_with_its_password(
    seeded: Seeded, db: asyncpg.Connection
) -> None:
    rows = {r["username"]: r for r in await db.fetch("SELECT * FROM users")}
    for user in DEMO_USERS:
        row = rows[user.username]
        assert row["role"] == user.role
        assert len(user.password) >= seeded.settings.auth.min_password_length
        assert verify_password(seeded.settings.auth, row["password_hash"], user.password)
        assert not verify_password(seeded.settings.auth, row["password_hash"], "wrong-password")
    assert rows["station"]["company_id"] == rows["company"]["company_id"] is not None
    assert rows["officer"]["districts"] == ["410105", "410103"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cylwatch")
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


async def test_if_empty_leaves_a_seeded_database_alone(
    seeded: Seeded, db: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await db.fetchval("SELECT max(id) FROM cylinders")
    args = _parse(["seed", "--if-empty", "--cylinders", "50", "--database-url", seeded.dsn])
    assert await args.func(args, seeded.settings) == 0
    assert "already seeded" in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM cylinders") == CYLINDERS
    assert await db.fetchval("SELECT max(id) FROM cylinders") == before


async def test_seeding_twice_fails_with_a_clear_message(
    seeded: Seeded, db: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse(["seed", "--cylinders", "50", "--database-url", seeded.dsn])
    assert await args.func(args, seeded.settings) == 1
    err = capsys.readouterr().err
    assert f"database already seeded: {CYLINDERS:,} cylinders" in err
    assert "--if-empty" in err and "Traceback" not in err
    with pytest.raises(AlreadySeeded):
        await seed_city(db, seeded.settings, cylinders=10, today=TODAY, progress=False)
    assert await db.fetchval("SELECT count(*) FROM cylinders") == CYLINDERS


async def test_the_seed_is_deterministic_and_the_command_prints_the_logins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Same random seed and day → the same city, whatever ids the database hands out.

    Seeds through a plain asyncpg connection (no JSON codecs), as the benchmarks do.
    """
    name, dsn, settings = await _scratch("det")
    conn = await asyncpg.connect(dsn)
    try:
        fingerprints = []
        for _ in range(2):
            # seed inside a transaction rolled back afterwards: sequences are not rolled
            # back, so the second run gets other ids
            outer = conn.transaction()
            await outer.start()
            try:
                await seed_city(
                    conn,
                    settings,
                    cylinders=400,
                    companies=5,
                    stations=4,
                    stores=6,
                    customers=150,
                    vehicles=3,
                    random_seed=42,
                    today=TODAY,
                    progress=False,
                )
                fingerprints.append(
                    await conn.fetchval(
                        """SELECT md5(string_agg(concat_ws('|', tag, stamp, barcode, spec,
                                  manufacture_date, next_inspection_date, scrap_date, status,
                                  location_kind, district_code, lat, lon), ',' ORDER BY id))
                             FROM cylinders"""
                    )
                )
                assert await conn.fetchval(
                    "SELECT bool_and(jsonb_typeof(boundary) = 'object') FROM districts"
                )
            finally:
                await outer.rollback()
        assert fingerprints[0] == fingerprints[1]
        args = _parse(["seed", "--cylinders", "200", "--customers", "100", "--database-url", dsn])
        assert await args.func(args, settings) == 1  # not marked as the demo: refused
        assert "--demo" in capsys.readouterr().err
        assert await conn.fetchval("SELECT count(*) FROM cylinders") == 0
        args = _parse(
            ["seed", "--demo", "--cylinders", "200", "--customers", "100", "--database-url", dsn]
        )
        assert await args.func(args, settings) == 0
        assert (
            await conn.fetchval("SELECT value FROM install_settings WHERE name = 'kind'") == "demo"
        )
        out = capsys.readouterr().out
        assert "cylinders 200" in out
        assert all(u.username in out and u.password in out for u in DEMO_USERS)
    finally:
        await conn.close()
        await _drop(name)
