"""`cylwatch seed --history-months N`: the city's past, checked the way a regulator would.

One scratch database (as test_seed.py's) with a 2,000-cylinder city and 3 months of history:
monthly fills at stations allowed to fill the cylinder, refusals where they were not,
nothing after a cylinder's dates, inspections on the cylinder's own dates, no repeat fill,
deliveries to customers whose accounts were open, every row where the live state says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import orjson
import pytest

from server.db.pool import connect
from server.domain.dates import add_years, derive_next_inspection
from server.domain.filling import assess_fill
from server.seed import SeedSummary, seed_city
from server.seed.timeline import history_start
from tests.integration.test_seed import TODAY, Seeded, _drop, _parse, _scratch

CYLINDERS = 2000
MONTHS = 3
ZONE = "Asia/Shanghai"
START = history_start(TODAY, MONTHS)


@pytest.fixture(scope="module")
async def seeded() -> AsyncIterator[Seeded]:
    name, dsn, settings = await _scratch("history")
    try:
        conn = await connect(settings, dsn)
        try:
            summary: SeedSummary = await seed_city(
                conn,
                settings,
                cylinders=CYLINDERS,
                history_months=MONTHS,
                today=TODAY,
                progress=False,
            )
        finally:
            await conn.close()
        yield Seeded(dsn, settings, summary)
    finally:
        await _drop(name)


@pytest.fixture
async def db(seeded: Seeded) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(seeded.settings, seeded.dsn)
    await conn.execute(f"SET TIME ZONE '{ZONE}'")  # local days, as the city counts them
    yield conn
    await conn.close()


async def test_the_summary_counts_what_was_written(seeded: Seeded, db: asyncpg.Connection) -> None:
    s = seeded.summary
    assert s.history_months == MONTHS
    assert s.fills == await db.fetchval("SELECT count(*) FROM fills")
    assert s.events == await db.fetchval("SELECT count(*) FROM events")
    assert s.inspections == await db.fetchval("SELECT count(*) FROM inspections") > 0
    assert s.alerts == await db.fetchval("SELECT count(*) FROM alerts") > 0
    assert s.refusals == await db.fetchval(
        "SELECT count(*) FROM events WHERE kind = 'fill_refused'"
    )
    assert "history (3 months)" in "\n".join(s.lines())


async def test_each_cylinder_in_service_is_filled_about_once_a_month(
    db: asyncpg.Connection,
) -> None:
    in_service = await db.fetchval(
        "SELECT count(*) FROM cylinders WHERE status = 'in_service' AND registered_at < $1",
        START,
    )
    for first, end in ((START, date(2026, 1, 1)), (date(2026, 1, 1), date(2026, 2, 1)),
                       (date(2026, 2, 1), date(2026, 3, 1)), (START, TODAY)):  # fmt: skip
        fills = await db.fetchval(
            """SELECT count(*) FROM fills WHERE result = 'completed'
                AND ts >= $1::date AND ts < $2::date""",
            first,
            end,
        )
        per_month = fills / in_service * 30.4 / (end - first).days
        assert 0.7 <= per_month <= 1.2, (first, fills, in_service)
    gaps = [
        r["gap"]
        for r in await db.fetch(
            """SELECT extract(epoch FROM ts - lag(ts) OVER w) / 86400 AS gap FROM fills
                WHERE result = 'completed' WINDOW w AS (PARTITION BY cylinder_id ORDER BY ts)"""
        )
        if r["gap"] is not None
    ]
    assert gaps and sum(14 <= g <= 50 for g in gaps) / len(gaps) > 0.97


async def test_no_repeat_fill(seeded: Seeded, db: asyncpg.Connection) -> None:
    window = seeded.settings.filling.repeat_fill_window_h
    repeats = await db.fetchval(
        """SELECT count(*) FROM (
               SELECT ts - lag(ts) OVER (PARTITION BY cylinder_id ORDER BY ts) AS gap FROM fills
                WHERE result = 'completed') g
            WHERE gap <= make_interval(hours => $1)""",
        window,
    )
    assert repeats == 0


async def test_every_fill_is_at_a_station_allowed_to_fill_it_that_day(
    db: asyncpg.Connection,
) -> None:
    """Own station or entrusted (委托充装), licence valid that day; everything else refused."""
    wrong = await db.fetchval(
        """SELECT count(*) FROM fills f
             JOIN cylinders c ON c.id = f.cylinder_id
             JOIN sites s ON s.id = f.station_id
            WHERE f.result = 'completed'
              AND (s.kind <> 'filling_station'
                   OR (s.company_id <> c.owner_company_id AND NOT EXISTS (
                        SELECT 1 FROM entrustments e
                         WHERE e.owner_company_id = c.owner_company_id
                           AND e.filler_company_id = s.company_id
                           AND e.valid_from <= f.ts::date
                           AND (e.valid_to IS NULL OR e.valid_to >= f.ts::date)))
                   OR (s.licence_status <> 'valid' AND f.ts >= s.licence_status_at))"""
    )
    assert wrong == 0
    entrusted = await db.fetchval(
        """SELECT count(*) FROM fills f JOIN cylinders c ON c.id = f.cylinder_id
             JOIN sites s ON s.id = f.station_id WHERE s.company_id <> c.owner_company_id"""
    )
    assert entrusted > 0  # some at entrusted stations
    refused = await db.fetch(
        """SELECT e.details, e.cylinder_id, c.owner_company_id, s.company_id AS station_company
             FROM events e JOIN sites s ON s.id = e.site_id
             LEFT JOIN cylinders c ON c.id = e.cylinder_id
            WHERE e.kind = 'fill_refused'"""
    )
    assert refused
    reasons = Counter(r for row in refused for r in row["details"]["reasons"])
    assert {"not_owner", "unknown_tag", "overdue_inspection"} <= set(reasons)
    for row in refused:
        assert row["details"]["decision"] == "deny" and row["details"]["reasons"]
        if "not_owner" in row["details"]["reasons"]:
            assert row["owner_company_id"] != row["station_company"]
        if "unknown_tag" in row["details"]["reasons"]:
            assert row["cylinder_id"] is None


async def test_refusals_are_counted_per_station_and_day(db: asyncpg.Connection) -> None:
    counted = {
        (r["station_id"], r["day"], r["reason"]): r["count"]
        for r in await db.fetch("SELECT station_id, day, reason, count FROM fill_denials_daily")
    }
    seen: Counter[tuple[int, date, str]] = Counter()
    for r in await db.fetch(
        "SELECT site_id, ts::date AS day, details FROM events WHERE kind = 'fill_refused'"
    ):
        for reason in r["details"]["reasons"]:
            seen[(r["site_id"], r["day"], reason)] += 1
    assert counted == dict(seen)
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE kind = 'fill_denied'") > 0


async def test_nothing_is_filled_past_its_dates_or_after_scrapping(db: asyncpg.Connection) -> None:
    late = await db.fetchval(
        """SELECT count(*) FROM fills f JOIN cylinders c ON c.id = f.cylinder_id
            WHERE f.result = 'completed'
              AND (f.ts::date > c.next_inspection_date OR f.ts::date >= c.scrap_date
                   OR f.ts < c.registered_at)"""
    )
    assert late == 0
    scrapped = await db.fetch(
        """SELECT i.cylinder_id, i.inspected_on, c.scrap_date, c.status, c.tag_voided
             FROM inspections i JOIN cylinders c ON c.id = i.cylinder_id
            WHERE i.result = 'scrap'"""
    )
    assert scrapped
    for r in scrapped:
        assert r["status"] == "scrapped" and r["tag_voided"]
        assert r["inspected_on"] == r["scrap_date"]  # on the date DOMAIN.md gives
        after = await db.fetchval(
            """SELECT count(*) FROM events WHERE cylinder_id = $1 AND ts::date >= $2
                AND kind NOT IN ('scrap')""",
            r["cylinder_id"],
            r["inspected_on"],
        )
        assert after == 0


async def test_inspections_fall_on_the_cylinders_own_dates(
    seeded: Seeded, db: asyncpg.Connection
) -> None:
    rules = seeded.settings.dates
    rows = await db.fetch(
        """SELECT i.*, c.manufacture_date, c.last_inspection_date, c.next_inspection_date AS next,
                  c.inspection_count, c.registered_by_site_id
             FROM inspections i JOIN cylinders c ON c.id = i.cylinder_id
            WHERE i.result = 'pass'"""
    )
    assert rows
    for r in rows:
        assert START <= r["inspected_on"] < TODAY
        assert r["inspected_on"] == r["last_inspection_date"]
        assert r["next_inspection_date"] == r["next"]
        assert r["next"] == derive_next_inspection(r["manufacture_date"], r["inspected_on"], rules)
        assert r["agency_site_id"] == r["registered_by_site_id"]
        if r["inspection_count"] == 1:  # the first one: due one interval after manufacture
            due = add_years(r["manufacture_date"], rules.inspection_interval_years)
            assert due - timedelta(days=60) <= r["inspected_on"] <= due
    events = await db.fetchval(
        """SELECT count(*) FROM inspections i JOIN events e
               ON e.cylinder_id = i.cylinder_id AND e.kind IN ('inspection', 'scrap')
              AND e.ts::date = i.inspected_on AND e.site_id = i.agency_site_id"""
    )
    assert events == len(rows) + await db.fetchval(
        "SELECT count(*) FROM inspections WHERE result = 'scrap'"
    )
    # never inspected while at a customer: the scan before an inspection is not a delivery
    at_customer = await db.fetchval(
        """SELECT count(*) FROM inspections i
            CROSS JOIN LATERAL (SELECT e.kind FROM events e
                                 WHERE e.cylinder_id = i.cylinder_id AND e.ts::date <= i.inspected_on
                                   AND e.kind IN ('dispatch', 'deliver', 'return')
                                 ORDER BY e.ts DESC LIMIT 1) last_scan
            WHERE i.inspected_on < $1 AND last_scan.kind IN ('dispatch', 'deliver')""",
        TODAY - timedelta(days=3),
    )
    assert at_customer == 0


async def test_deliveries_go_to_real_name_customers_opened_month_by_month(
    db: asyncpg.Connection,
) -> None:
    opened = {
        r["m"]: r["n"]
        for r in await db.fetch(
            """SELECT date_trunc('month', opened_on)::date AS m, count(*) AS n FROM customers
                WHERE opened_on >= $1 GROUP BY 1""",
            START,
        )
    }
    assert all(opened.get(date(y, m, 1), 0) > 0 for y, m in ((2025, 12), (2026, 1), (2026, 2)))
    bad = await db.fetchval(
        """SELECT count(*) FROM events e JOIN customers cu ON cu.id = e.customer_id
             JOIN cylinders c ON c.id = e.cylinder_id
            WHERE e.kind = 'deliver'
              AND (e.ts::date < cu.opened_on OR cu.company_id <> c.owner_company_id)"""
    )
    assert bad == 0
    shares = await db.fetchrow(
        """SELECT count(*) FILTER (WHERE customer_id IS NOT NULL) AS named, count(*) AS all
             FROM events WHERE kind = 'deliver'"""
    )
    assert 0.75 < shares["named"] / shares["all"] < 1  # some sold over the counter
    details = Counter(
        orjson.dumps(r["details"]).decode()
        for r in await db.fetch("SELECT details FROM events WHERE kind = 'deliver'")
    )
    assert set(details) <= {'{"action":"deliver"}', '{"action":"deliver","out_of_region":true}'}
    outside = await db.fetch(
        """SELECT e.tag, e.customer_id, e.district_code,
                  EXISTS (SELECT 1 FROM alerts a WHERE a.kind = 'out_of_region'
                             AND a.subject_id = e.tag AND a.first_at = e.ts) AS alerted
             FROM events e WHERE e.kind = 'deliver' AND e.details ? 'out_of_region'"""
    )
    assert all(r["customer_id"] is None and r["district_code"] is None for r in outside)
    assert all(r["alerted"] for r in outside)


async def test_the_history_ends_where_each_cylinder_is(db: asyncpg.Connection) -> None:
    mismatched = await db.fetchval(
        """SELECT count(*) FROM cylinders c
             JOIN LATERAL (SELECT f.ts, f.station_id FROM fills f
                            WHERE f.cylinder_id = c.id AND f.result = 'completed'
                            ORDER BY f.ts DESC LIMIT 1) f ON true
            WHERE c.last_fill_at IS DISTINCT FROM f.ts OR c.last_fill_site_id <> f.station_id"""
    )
    assert mismatched == 0
    at_customer = await db.fetch(
        """SELECT c.location_customer_id, d.customer_id FROM cylinders c
             JOIN LATERAL (SELECT e.customer_id FROM events e
                            WHERE e.cylinder_id = c.id AND e.kind = 'deliver'
                            ORDER BY e.ts DESC LIMIT 1) d ON true
            WHERE c.location_kind = 'customer' AND c.last_fill_at >= $1""",
        START,
    )
    assert at_customer
    assert all(r["location_customer_id"] == r["customer_id"] for r in at_customer)


async def test_fills_are_judged_like_a_guns(seeded: Seeded, db: asyncpg.Connection) -> None:
    rows = await db.fetch("SELECT spec, net_kg, assessment, result, pre_check FROM fills")
    models, rules = seeded.settings.models, seeded.settings.filling
    assert all(
        assess_fill(r["spec"], float(r["net_kg"]), models, rules).value == r["assessment"]
        for r in rows
    )
    masses = await db.fetchrow(
        """SELECT count(*) FILTER (WHERE f.gross_kg <> f.net_kg + f.tare_kg
                                      OR f.tare_kg <> c.tare_kg) AS wrong,
                  min(f.net_kg) FILTER (WHERE f.result = 'completed') AS least,
                  max(f.net_kg) AS most
             FROM fills f JOIN cylinders c ON c.id = f.cylinder_id"""
    )
    assert masses["wrong"] == 0
    assert 1 < masses["least"] < masses["most"] < 60  # kilograms, as the models allow
    shortest = await db.fetchval(
        """SELECT min(f.net_kg / 2.0) FROM fills f WHERE f.result = 'completed' AND f.spec = 'YSP4.7'"""
    )
    assert shortest is None or shortest > 0.5  # a 2 kg cylinder is never mostly empty
    judged = Counter(r["assessment"] for r in rows if r["result"] == "completed")
    assert judged["overfill"] > 0 and judged["underfill"] > 0
    assert judged["ok"] / sum(judged.values()) > 0.8
    aborted = [r for r in rows if r["result"] == "aborted"]
    assert aborted and any(False in r["pre_check"].values() for r in aborted)
    assert all(all(r["pre_check"].values()) for r in rows if r["result"] == "completed")


async def test_anomalies_concentrate_in_a_few_companies(db: asyncpg.Connection) -> None:
    per_company = [
        r["n"]
        for r in await db.fetch(
            """SELECT company_id, count(*) AS n FROM alerts
                WHERE kind IN ('overfill', 'underfill', 'fill_denied', 'overstock')
                GROUP BY company_id ORDER BY n DESC"""
        )
    ]
    companies = await db.fetchval("SELECT count(*) FROM companies")
    assert sum(per_company[:5]) > 0.5 * sum(per_company) and companies > 10


async def test_alerts_of_the_past_were_worked(db: asyncpg.Connection) -> None:
    states = Counter(r["state"] for r in await db.fetch("SELECT state FROM alerts"))
    assert states["resolved"] > 0.9 * sum(states.values())
    stale = await db.fetchval(
        "SELECT count(*) FROM alerts WHERE state <> 'resolved' AND last_at < $1::date - 3",
        TODAY,
    )
    assert stale == 0
    kinds = {r["kind"] for r in await db.fetch("SELECT DISTINCT kind FROM alerts")}
    assert {"overfill", "underfill", "fill_denied", "overstock"} <= kinds
    assert await db.fetchval(
        """SELECT bool_and(resolved_at >= last_at AND resolved_by IS NOT NULL) FROM alerts
            WHERE state = 'resolved'"""
    )


async def test_history_is_stored_in_its_months_partitions(db: asyncpg.Connection) -> None:
    defaults = {
        (r["relname"], r["attname"]): r["def"]
        for r in await db.fetch(
            """SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) AS def
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE c.relname IN ('events', 'fills')
                  AND a.attname IN ('details', 'pre_check', 'post_check')"""
        )
    }  # the seed's bulk-loading defaults are gone again
    assert defaults == {
        ("events", "details"): "'{}'::jsonb",
        ("fills", "pre_check"): None,
        ("fills", "post_check"): None,
    }
    for table in ("events", "fills"):
        stray = await db.fetchval(f"SELECT count(*) FROM {table}_default WHERE ts >= $1", START)
        assert stray == 0
        assert (
            await db.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = $1", table) >= 4
        )  # the parent's indexes are back


async def test_complaints_are_worked_as_the_api_does(db: asyncpg.Connection) -> None:
    rows = await db.fetch("SELECT * FROM complaints")
    for r in rows:
        history = [
            e["kind"]
            for e in await db.fetch(
                "SELECT kind FROM complaint_events WHERE complaint_id = $1 ORDER BY at, id",
                r["id"],
            )
        ]
        expected = {"new": ["filed"], "assigned": ["filed", "assign"],
                    "answered": ["filed", "assign", "answer"],
                    "closed": ["filed", "assign", "answer", "close"]}[r["state"]]  # fmt: skip
        assert history == expected


async def test_history_months_zero_keeps_only_a_small_sample() -> None:
    """`--history-months 0`: the seed of before — a sample of recent fills, nothing else."""
    name, dsn, settings = await _scratch("nohist")
    conn = await asyncpg.connect(dsn)  # a plain connection, as the benchmarks seed through
    try:
        args = _parse(["seed", "--history-months", "0", "--cylinders", "300"])
        assert args.history_months == 0
        summary = await seed_city(
            conn, settings, cylinders=300, customers=200, history_months=0, today=TODAY,
            progress=False,
        )  # fmt: skip
        assert summary.history_months == 0 and summary.inspections == 0
        assert 0 < await conn.fetchval("SELECT count(*) FROM fills") <= 20
        assert await conn.fetchval("SELECT count(*) FROM inspections") == 0
        assert await conn.fetchval("SELECT count(*) FROM alerts") == 0
    finally:
        await conn.close()
        await _drop(name)
