"""`cylwatch seed --history-months N` writes household safety inspections (入户安检) a regulator
can work with: by the company's own delivery workers at its own real-name customers, inside
the history, every item of the customer's catalogue answered, a rectification for every
failed item (closed by a re-check or still open, marked overdue where the round would have),
sealed so the records' seal check passes — and the ``safety-inspections`` report over the
seeded city counts exactly what was written.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from server.api.report_frame import ReportContext, compute_report, parse_filters
from server.api.report_safety import SPECS
from server.db.install import load_id_hash_key
from server.db.pool import connect
from server.db.safety import stored_record
from server.domain.safety import canonical, seal_key, verify
from server.kernel.principal import Principal
from server.seed import SeedSummary, seed_city
from server.seed.timeline import history_start
from tests.integration.test_seed import TODAY, Seeded, _drop, _scratch

CYLINDERS = 1500
MONTHS = 3
ZONE = "Asia/Shanghai"
START = history_start(TODAY, MONTHS)


def _day(moment: datetime) -> date:
    """The city's calendar day of *moment* (asyncpg answers in UTC)."""
    return moment.astimezone(ZoneInfo(ZONE)).date()


@pytest.fixture(scope="module")
async def seeded() -> AsyncIterator[Seeded]:
    name, dsn, settings = await _scratch("safety")
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


async def test_the_summary_counts_the_records(seeded: Seeded, db: asyncpg.Connection) -> None:
    s = seeded.summary
    assert s.safety_inspections == await db.fetchval("SELECT count(*) FROM safety_inspections")
    assert s.rectifications == await db.fetchval("SELECT count(*) FROM safety_rectifications")
    customers = await db.fetchval("SELECT count(*) FROM customers")
    # about once a year each: a quarter of the households in three months, fewer at the bad
    # companies and for accounts opened meanwhile
    assert 0.12 * customers < s.safety_inspections < 0.3 * customers
    line = next(x for x in s.lines() if x.startswith("history (3 months)"))
    assert f"{s.safety_inspections:,} safety inspections" in line


async def test_the_companys_workers_inspect_its_own_customers_inside_the_history(
    db: asyncpg.Connection,
) -> None:
    wrong = await db.fetchval(
        """SELECT count(*) FROM safety_inspections s
             JOIN customers cu ON cu.id = s.customer_id
             JOIN users u ON u.id = s.inspector_id
             JOIN safety_catalogues c ON c.id = s.catalogue_id
            WHERE s.company_id <> cu.company_id OR u.company_id <> cu.company_id
               OR u.role <> 'station_operator' OR s.inspector_role <> u.role
               OR s.district_code IS DISTINCT FROM cu.district_code
               OR c.customer_kind <> cu.kind
               OR s.inspected_at::date < greatest($1::date, cu.opened_on)
               OR s.inspected_at::date >= $2::date
               OR s.received_at < s.inspected_at OR s.received_at >= $2::date
               OR s.corrects IS NOT NULL""",
        START,
        TODAY,
    )
    assert wrong == 0
    twice = await db.fetchval(
        "SELECT count(*) FROM (SELECT customer_id FROM safety_inspections GROUP BY 1 "
        "HAVING count(*) > 1) x"
    )
    assert twice == 0  # once a year: never twice in three months
    at_delivery = await db.fetchval(
        """SELECT count(*) FROM safety_inspections s
            WHERE EXISTS (SELECT 1 FROM events e WHERE e.kind = 'deliver'
                             AND e.customer_id = s.customer_id
                             AND e.ts BETWEEN s.inspected_at - interval '1 hour'
                                          AND s.inspected_at)"""
    )
    total = await db.fetchval("SELECT count(*) FROM safety_inspections")
    assert 0.2 * total < at_delivery < 0.7 * total  # some at a delivery, most on their own
    demo = await db.fetchval(
        """SELECT count(*) FROM safety_inspections s JOIN users u ON u.id = s.inspector_id
            WHERE u.username = 'station'"""
    )
    assert demo > 0  # the demo's station login sees records of its own


async def test_every_item_is_answered_and_every_failure_rectified(
    seeded: Seeded, db: asyncpg.Connection
) -> None:
    unanswered = await db.fetchval(
        """SELECT count(*) FROM safety_inspections s JOIN safety_items i
               ON i.catalogue_id = s.catalogue_id
            WHERE NOT EXISTS (SELECT 1 FROM safety_answers a
                               WHERE a.inspection_id = s.id AND a.item_id = i.id)"""
    )
    stray = await db.fetchval(
        """SELECT count(*) FROM safety_answers a JOIN safety_inspections s
               ON s.id = a.inspection_id JOIN safety_items i ON i.id = a.item_id
            WHERE i.catalogue_id <> s.catalogue_id"""
    )
    assert unanswered == stray == 0
    miscounted = await db.fetchval(
        """SELECT count(*) FROM safety_inspections s
            WHERE s.failed_count <> (SELECT count(*) FROM safety_answers a
                                      WHERE a.inspection_id = s.id AND a.answer = 'fail')
               OR (s.result = 'fail') <> (s.failed_count > 0)"""
    )
    assert miscounted == 0
    unrectified = await db.fetchval(
        """SELECT count(*) FROM safety_answers a WHERE a.answer = 'fail'
              AND NOT EXISTS (SELECT 1 FROM safety_rectifications r
                               WHERE r.inspection_id = a.inspection_id AND r.item_id = a.item_id)"""
    )
    unfailed = await db.fetchval(
        """SELECT count(*) FROM safety_rectifications r
            WHERE NOT EXISTS (SELECT 1 FROM safety_answers a WHERE a.answer = 'fail'
                                 AND a.inspection_id = r.inspection_id AND a.item_id = r.item_id)"""
    )
    assert unrectified == unfailed == 0
    no_photo = await db.fetchval(
        """SELECT count(*) FROM safety_answers a JOIN safety_items i ON i.id = a.item_id
            WHERE a.answer = 'fail' AND i.photo_required_on_fail
              AND NOT EXISTS (SELECT 1 FROM safety_photos p
                               WHERE p.inspection_id = a.inspection_id AND p.item_id = a.item_id)"""
    )
    assert no_photo == 0  # as the API requires of a submission
    default_days = seeded.settings.safety.rectification_days
    rows = await db.fetch(
        """SELECT r.*, s.inspected_at, s.company_id AS inspection_company, i.rectification_days
             FROM safety_rectifications r JOIN safety_inspections s ON s.id = r.inspection_id
             JOIN safety_items i ON i.id = r.item_id"""
    )
    assert rows
    for r in rows:
        days = r["rectification_days"] if r["rectification_days"] is not None else default_days
        assert r["deadline"] == _day(r["inspected_at"]) + timedelta(days=days)
        assert r["company_id"] == r["inspection_company"]
        assert r["state"] in ("open", "closed")
        if r["state"] == "closed":
            assert r["inspected_at"] < r["closed_at"] and _day(r["closed_at"]) < TODAY
            assert r["closed_by"] is not None and r["recheck_upload_id"] is not None
        else:
            assert r["closed_at"] is None
        # the overdue round's mark: once the deadline's day was over, if still open then
        if r["overdue_at"] is not None:
            assert _day(r["overdue_at"]) == r["deadline"] + timedelta(days=1)
            assert r["closed_at"] is None or r["closed_at"] > r["overdue_at"]
        elif r["deadline"] < TODAY - timedelta(days=1):
            assert r["state"] == "closed"
            assert _day(r["closed_at"]) <= r["deadline"] + timedelta(days=1)
    states = [r["state"] for r in rows]
    assert 0 < states.count("open") < states.count("closed")  # most closed later, some open


async def test_most_households_pass_and_hazards_concentrate(db: asyncpg.Connection) -> None:
    share = await db.fetchval("SELECT avg((result = 'fail')::int)::float FROM safety_inspections")
    assert 0.1 < share < 0.5
    worst = await db.fetch(
        """SELECT i.code, count(*) FILTER (WHERE a.answer = 'fail') AS failed
             FROM safety_answers a JOIN safety_items i ON i.id = a.item_id
            GROUP BY 1 ORDER BY 2 DESC LIMIT 3"""
    )
    assert {"hose_condition", "gas_alarm"} <= {r["code"] for r in worst}
    per_company = [
        r["rate"]
        for r in await db.fetch(
            """SELECT s.company_id, avg((r.state = 'open')::int)::float AS rate
                 FROM safety_rectifications r JOIN safety_inspections s ON s.id = r.inspection_id
                WHERE r.deadline < $1::date - 30
                GROUP BY 1 HAVING count(*) >= 5 ORDER BY 2 DESC""",
            TODAY,
        )
    ]
    # the bad companies leave many failures unrectified; the others close nearly all
    assert per_company and per_company[0] > 0.2 and per_company[len(per_company) // 2] < 0.15


async def test_the_records_are_sealed_in_one_chain(seeded: Seeded, db: asyncpg.Connection) -> None:
    broken = await db.fetchval(
        """SELECT count(*) FROM (SELECT prev_hash, lag(record_hash) OVER (ORDER BY id) AS before,
                                        row_number() OVER (ORDER BY id) AS n
                                   FROM safety_inspections) c
            WHERE (n = 1 AND prev_hash <> repeat('0', 64)) OR (n > 1 AND prev_hash <> before)"""
    )
    assert broken == 0
    key = seal_key(await load_id_hash_key(seeded.settings.privacy, db, os.environ))
    ids = [r["id"] for r in await db.fetch("SELECT id FROM safety_inspections ORDER BY id")]
    for rid in ids[:: max(1, len(ids) // 50)]:
        got = await stored_record(db, rid)
        assert got is not None
        record, row = got
        assert verify(key, row["prev_hash"], canonical(record), row["record_hash"], row["seal"])


async def test_the_safety_report_counts_what_was_seeded(
    seeded: Seeded, db: asyncpg.Connection
) -> None:
    spec = SPECS[0]
    settings = seeded.settings
    query = {"from": START.isoformat(), "to": (TODAY - timedelta(days=1)).isoformat()}
    pool = await asyncpg.create_pool(seeded.dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        users = {
            r["username"]: r
            for r in await db.fetch("SELECT id, username, role, company_id FROM users")
        }
        regulator = Principal(users["regulator"]["id"], "regulator", "regulator")
        company = users["company"]
        admin = Principal(company["id"], "company", "company_admin", company["company_id"])
        for who, where, args in (
            (regulator, "true", ()),
            (admin, "s.company_id = $1", (company["company_id"],)),
        ):
            ctx = ReportContext(
                pool=pool,
                settings=settings,
                principal=who,
                f=parse_filters(spec, query, settings, TODAY),
                zone=settings.alerts.timezone,
            )
            totals = (await compute_report(ctx, spec))["totals"]
            counted = await db.fetchrow(
                f"""SELECT count(*) AS records, count(*) FILTER (WHERE result = 'pass') AS passed,
                           count(*) FILTER (WHERE result = 'fail') AS failed
                      FROM safety_inspections s WHERE {where}""",
                *args,
            )
            today = f"${len(args) + 1}"
            rects = await db.fetchrow(
                f"""SELECT count(*) AS open, count(*) FILTER (WHERE r.deadline < {today}) AS overdue
                      FROM safety_rectifications r
                      JOIN safety_inspections s ON s.id = r.inspection_id
                     WHERE r.state = 'open' AND {where}""",
                *args,
                TODAY,
            )
            assert counted["records"] > 0
            assert totals["records"] == counted["records"]
            assert totals["passed"] == counted["passed"]
            assert totals["failed"] == counted["failed"]
            assert totals["open_rectifications"] == rects["open"] > 0
            assert totals["overdue_rectifications"] == rects["overdue"]
    finally:
        await pool.close()
