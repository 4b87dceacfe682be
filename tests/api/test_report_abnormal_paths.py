"""``abnormal-cylinders`` read the fast way (server/api/report_cylinders_abnormal.py: the
abnormal rollup folded per cylinder, the cylinders looked up by id or found held through their
date indexes; migration 0232) answers exactly what the raw rows answer — every day from the
fills and scans — for a city-wide regulator, a district regulator and a company admin, over
periods crossing the watermark (now, and set back into the period), with rows in the rollup's
history and recent views and today, and what the rows written make. A fill stored late for a
closed day counts from the next refresh; a rollup never refreshed (or a state row over empty
views) reads the raw rows instead of answering 500."""

from __future__ import annotations

import datetime as dt
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from server.api.report_cylinders_flow import SPECS
from server.api.report_frame import build_context, compute_report
from server.db import rollup_abnormal
from server.db.rollups import RECENT_DAYS, closed_until
from server.domain.localtime import city_zone
from server.kernel.principal import Principal
from server.kernel.scope import Sql
from tests.api.conftest import unique
from tests.api.report_activity_city import period_query, refreshed, refreshed_to, three_callers

SPEC = next(s for s in SPECS if s.name == "abnormal-cylinders")
HOME, OTHER = "410105", "410103"
Y = 365
PERIOD_DAYS = 45
"""The period reaches back past the recent view (RECENT_DAYS) into the rollup's history; the
previous period (46–90 days ago) holds one fill."""

# key: (company, district, status, manufactured days ago, days to the next inspection, days
#       to the scrap date, place today, [(fill | scan kind, days ago)], inspected days ago)
Cyl = tuple[str, str, str, int, int, int, str, list[tuple[str, int]], int | None]
CITY: dict[str, Cyl] = {
    # overdue for months, at a household: filled in the previous period, in the history, in
    # the recent view and today, delivered in the history and the recent view
    "x1": (
        "x",
        HOME,
        "in_service",
        5 * Y,
        -100,
        900,
        "customer",
        [("fill", 60), ("fill", 40), ("deliver", 39), ("fill", 3), ("deliver", 2), ("fill", 0)],
        None,
    ),
    # scrap date passed (not recorded scrapped), on a vehicle in the other district
    "x2": (
        "x",
        OTHER,
        "in_service",
        9 * Y,
        300,
        -50,
        "vehicle",
        [("fill", 30), ("dispatch", 30)],
        None,
    ),
    # overdue since 10 days: in date when filled 20 days ago, overdue when filled 5 days ago
    "x3": ("x", HOME, "in_service", 5 * Y, -10, 900, "site", [("fill", 20), ("fill", 5)], None),
    # in date
    "x4": ("x", HOME, "in_service", 2 * Y, 500, 2000, "customer", [("fill", 20)], None),
    # filled while overdue 25 days ago, inspected since: manufacture + the interval was in force
    "x5": ("x", HOME, "in_service", 5 * Y, 4 * Y, 2000, "site", [("fill", 25)], 10),
    # overdue at a station, nothing before the refresh (the late fill's cylinder)
    "x6": ("x", HOME, "in_service", 5 * Y, -100, 2000, "site", [], None),
    # overdue at a station, filled in the previous period only: in its totals, not the rows'
    "x7": ("x", HOME, "in_service", 5 * Y, -100, 2000, "site", [("fill", 60)], None),
    # the other company: overdue at a household, transferred today
    "y1": (
        "y",
        OTHER,
        "in_service",
        5 * Y,
        -100,
        900,
        "customer",
        [("fill", 20), ("transfer", 0)],
        None,
    ),
    # scrapped, still at a household in the home district
    "y2": ("y", HOME, "scrapped", 9 * Y, 300, -100, "customer", [], None),
}
LATE = 15
"""Days ago of x6's fill stored after the refresh (a closed day of the rollup's history)."""
X_WANT = {  # company X over PERIOD_DAYS: what the rows above make
    "cylinders": 4,  # x1, x2, x3, x5
    "filled_overdue": 3,  # x1, x3, x5
    "filled_scrapped": 1,  # x2
    "moved_overdue": 1,  # x1
    "moved_scrapped": 1,  # x2
    "held_overdue": 1,  # x1
    "held_scrapped": 1,  # x2
}


@dataclass
class City:
    x: str
    y: str
    today: dt.date
    zone: Any
    ids: dict[str, int] = field(default_factory=dict)  # company key -> id
    customers: dict[str, int] = field(default_factory=dict)  # company key -> its household
    cylinders: dict[str, int] = field(default_factory=dict)


def _instant(c: City, days_ago: int) -> dt.datetime:
    """Noon of the city day *days_ago* before today; a moment ago when that is to come."""
    moment = dt.datetime.combine(c.today - dt.timedelta(days=days_ago), dt.time(12), c.zone)
    now = dt.datetime.now(dt.UTC)
    if moment > now:
        start = dt.datetime.combine(c.today, dt.time(0, 0, 1), c.zone)
        moment = max(start, now - dt.timedelta(seconds=30))
    return moment


async def _fill(db: Any, c: City, key: str, days_ago: int) -> None:
    await db.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, tag, cylinder_id, net_kg, result)
           VALUES ($1, $2, 'GUN-ABP', $3, $4, 14.5, 'completed')""",
        _instant(c, days_ago),
        unique("abp-fill"),
        f"{c.x}-{key}",
        c.cylinders[key],
    )


async def _build(db: Any, c: City, city: dict[str, Cyl], districts: bool = True) -> None:
    """The companies and *city*'s cylinders with their fills, scans and inspections
    (*districts* false: none recorded, for a database without the test districts)."""
    for key in {v[0] for v in city.values()}:
        c.ids[key] = await db.fetchval(
            "INSERT INTO companies (code, name) VALUES ($1, $2) RETURNING id",
            c.x if key == "x" else c.y,
            "异常路径测试" + (c.x if key == "x" else c.y),
        )
    for key in c.ids:  # a household of each company, where its cylinders at a customer's are
        c.customers[key] = await db.fetchval(
            """INSERT INTO customers (company_id, account_no, name, district_code, opened_on)
               VALUES ($1, $2, '异常路径用户', $3, '2020-01-01') RETURNING id""",
            c.ids[key],
            unique("ABP-ACC"),
            HOME if districts else None,
        )
    for key, (comp, district, status, made, to_next, to_scrap, place, seen, insp) in city.items():
        d = c.today
        c.cylinders[key] = await db.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, status, tag_voided, district_code,
                   location_kind, location_customer_id, last_inspection_date, registered_at)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, $8, $9, $10, $11,
                       now() - interval '200 days') RETURNING id""",
            f"{c.x}-{key}",
            c.ids[comp],
            d - dt.timedelta(days=made),
            d + dt.timedelta(days=to_next),
            d + dt.timedelta(days=to_scrap),
            status,
            status == "scrapped",
            district if districts else None,
            place,
            c.customers[comp] if place == "customer" else None,
            None if insp is None else d - dt.timedelta(days=insp),
        )
        for what, days_ago in seen:
            if what == "fill":
                await _fill(db, c, key, days_ago)
            else:
                await db.execute(
                    """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, company_id)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    _instant(c, days_ago),
                    unique("abp-ev"),
                    c.cylinders[key],
                    f"{c.x}-{key}",
                    what,
                    c.ids[comp],
                )
        if insp is not None:
            await db.execute(
                """INSERT INTO inspections (cylinder_id, inspected_on, result, next_inspection_date)
                   VALUES ($1, $2, 'pass', $3)""",
                c.cylinders[key],
                d - dt.timedelta(days=insp),
                d + dt.timedelta(days=to_next),
            )


def _new_city(settings: Any) -> City:
    zone = city_zone(settings.alerts)
    return City(unique("ABPX"), unique("ABPY"), dt.datetime.now(zone).date(), zone)


@pytest.fixture
async def city(pool: Any, settings: Any) -> City:
    c = _new_city(settings)
    await _build(pool, c, CITY)
    await refreshed(pool, settings)
    return c


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A context in which the report reads every day from the raw fills and scans (no
    rollup)."""

    def daily(q: Sql, settings: Any, start: dt.datetime, end: dt.datetime) -> str:
        return (
            f"cyl_abnormal_daily({q.add(settings.alerts.timezone)}::text, "
            f"{q.add(start)}::timestamptz, {q.add(end)}::timestamptz, "
            f"{q.add(settings.dates.inspection_interval_years)}::integer)"
        )

    @contextmanager
    def ctx() -> Any:
        with monkeypatch.context() as m:
            m.setattr(rollup_abnormal, "source", daily)
            yield

    return ctx


def _people(c: City) -> dict[str, Principal]:
    return three_callers("abp", HOME, c.ids["x"])


def _period(c: City, days: int = PERIOD_DAYS, back: int = 0, **extra: str) -> dict[str, str]:
    return period_query(c.today, days, back=back, **extra)


async def _body(db: Any, settings: Any, who: Principal, query: dict[str, str]) -> dict[str, Any]:
    body = await compute_report(build_context(db, settings, who, SPEC, query), SPEC)
    return {k: body[k] for k in ("rows", "totals", "previous")}


async def _both(
    db: Any, settings: Any, who: Principal, query: dict[str, str], raw: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report the fast way, then from the raw rows."""
    fast = await _body(db, settings, who, query)
    with raw():
        plain = await _body(db, settings, who, query)
    return fast, plain


def _kinds(body: dict[str, Any]) -> dict[str, int]:
    return {k: body["totals"][k] for k in X_WANT}


async def test_the_fast_path_answers_what_the_raw_rows_answer(
    pool: Any, settings: Any, city: City, raw: Any
) -> None:
    people = _people(city)
    queries = [
        _period(city),
        _period(city, days=365),
        _period(city, days=30, back=15),  # wholly in the rollup's history view
        _period(city, company=city.x),
        _period(city, company=city.y),
    ]

    async def same() -> None:
        for who in people.values():
            for query in queries:
                fast, plain = await _both(pool, settings, who, query, raw)
                assert fast == plain, (who.username, query)

    await same()
    # what they answer is the rows written: X's, scoped and filtered
    admin = await _body(pool, settings, people["company_admin"], _period(city))
    assert [r["company_code"] for r in admin["rows"]] == [city.x]
    assert _kinds(admin) == X_WANT
    assert admin["previous"]["filled_overdue"] == 2  # x1 and x7, 60 days ago
    regulator = await _body(pool, settings, people["regulator"], _period(city, company=city.x))
    assert regulator == admin
    # the district regulator: X's cylinders in its district (not x2), Y's scrapped one there
    home = await _body(pool, settings, people["district"], _period(city, company=city.x))
    assert _kinds(home) == X_WANT | {
        "cylinders": 3,
        "filled_scrapped": 0,
        "moved_scrapped": 0,
        "held_scrapped": 0,
    }
    home_y = await _body(pool, settings, people["district"], _period(city, company=city.y))
    assert _kinds(home_y) == dict.fromkeys(X_WANT, 0) | {"cylinders": 1, "held_scrapped": 1}

    # the watermark set back into the period: the days from it on from the raw rows, the
    # days before from the rollup — the same answers again
    back = city.today - dt.timedelta(days=25)
    try:
        await refreshed_to(pool, "cyl_abnormal_refresh", settings, back)
        assert await pool.fetchval("SELECT upto FROM rollup_abnormal_state") == back
        await same()
        admin = await _body(pool, settings, people["company_admin"], _period(city))
        assert _kinds(admin) == X_WANT
    finally:
        await refreshed(pool, settings)


async def test_a_late_fill_counts_from_the_next_refresh(
    pool: Any, settings: Any, city: City, raw: Any
) -> None:
    """A gun back from weeks offline sends x6's fill of a closed day: the rollup holds that
    day as of the last refresh, so the report counts it from the next refresh on (the raw
    rows at once)."""
    admin = _people(city)["company_admin"]
    query = _period(city)
    await _fill(pool, city, "x6", LATE)
    fast, plain = await _both(pool, settings, admin, query, raw)
    assert _kinds(fast) == X_WANT
    assert _kinds(plain) == X_WANT | {"cylinders": 5, "filled_overdue": 4}
    await refreshed(pool, settings)
    fast, plain = await _both(pool, settings, admin, query, raw)
    assert fast == plain
    assert _kinds(fast) == X_WANT | {"cylinders": 5, "filled_overdue": 4}


async def test_a_rollup_never_refreshed_reads_the_raw_rows(
    fresh_databases: Any, settings: Any
) -> None:
    """Before the first refresh the views hold no data, and PostgreSQL refuses a statement
    naming them: the report reads the raw rows then — also when the state row says otherwise
    (a restore that left the views empty; 0227's reader trusted it) — and the rollup once
    refreshed, with the same answer."""
    name = f"cylwatch_test_abnormal_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(await fresh_databases.create(name))
    from tests.fresh_db import drop_database

    try:
        c = _new_city(settings)
        await _build(conn, c, {k: CITY[k] for k in ("x1", "x3")}, districts=False)
        who = Principal(user_id=1, username="abp-fresh", role="regulator")
        query = _period(c)
        want = dict.fromkeys(X_WANT, 0) | {
            "cylinders": 2,
            "filled_overdue": 2,
            "moved_overdue": 1,
            "held_overdue": 1,
        }
        assert _kinds(await _body(conn, settings, who, query)) == want
        await conn.execute(
            """INSERT INTO rollup_abnormal_state (name, tz, years, split, upto)
               VALUES ('abnormal', $1, $2, $3, $4)""",
            settings.alerts.timezone,
            settings.dates.inspection_interval_years,
            c.today - dt.timedelta(days=RECENT_DAYS),
            c.today,
        )
        assert _kinds(await _body(conn, settings, who, query)) == want
        await conn.execute("DELETE FROM rollup_abnormal_state")
        await refreshed(conn, settings)
        upto = closed_until(dt.datetime.now(dt.UTC), settings)
        assert await conn.fetchval("SELECT upto FROM rollup_abnormal_state") == upto
        assert _kinds(await _body(conn, settings, who, query)) == want
    finally:
        await conn.close()
        await drop_database(name)
