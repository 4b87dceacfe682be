"""The deliveries rollup (migration 0229; server/db/rollup_deliveries.py): ``sales`` and
``real-name-progress`` read the rollup for the days before its watermark and the raw events
after it, and answer exactly what the raw events answer — the same rows, totals and previous
totals for a city-wide regulator, a district regulator and a company admin, on a hand-built
city with deliveries on both sides of the watermark, in the rollup's history and recent views
and today. A closed day's delivery removed from the raw events still counts on the rollup path
until the next refresh (the rollup is read), and not after it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.api.report_business import SPECS
from server.api.report_frame import build_context, compute_report
from server.db import rollup_deliveries
from server.db.rollups import RECENT_DAYS
from server.domain.localtime import city_zone
from server.kernel.principal import Principal
from tests.api.conftest import unique
from tests.api.report_activity_city import period_query, refreshed, three_callers, without_rollup

PERIOD_DAYS = 45
"""The report period reaches back past a month boundary and past the rollup's recent view
(RECENT_DAYS), so its rows come from the history view, the recent view and the live day."""
NO_CUSTOMER = 2**62
"""A customer id no account has: a scan naming an account that does not exist."""

# (days ago, customer: "real" | "ghost" | None, company "x" | "y", at the company's store?)
DELIVERIES = [
    (70, "real", "x", False),  # the previous period
    (52, None, "x", True),
    (44, "real", "x", True),
    (44, "ghost", "x", False),
    (30, "real", "x", True),
    (21, None, "x", False),
    (RECENT_DAYS + 3, "real", "x", True),
    (RECENT_DAYS, "real", "x", False),
    (RECENT_DAYS - 2, "ghost", "x", True),
    (2, "real", "x", True),
    (1, "real", "x", False),
    (1, None, "x", True),
    (0, "real", "x", True),  # today: after the watermark
    (30, "real", "y", False),
    (3, None, "y", True),
    (0, "real", "y", False),
]
REMOVED = 21
"""Days ago of X's delivery removed from the raw events after a refresh (a closed day)."""

NAMES = ("sales", "real-name-progress")


@dataclass
class City:
    x: str
    y: str
    ids: dict[str, int] = field(default_factory=dict)
    stores: dict[str, str] = field(default_factory=dict)  # company key -> store code
    today: dt.date = dt.date.min
    # (city day, customer, company key, at the store) of each delivery stored
    rows: list[tuple[dt.date, str | None, str, bool]] = field(default_factory=list)


def _instant(zone: Any, today: dt.date, days_ago: int) -> dt.datetime:
    """Noon of the city day *days_ago* before today; earlier today when noon is to come."""
    moment = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12), zone)
    now = dt.datetime.now(dt.UTC)
    if moment > now:
        start = dt.datetime.combine(today, dt.time(0, 0, 1), zone)
        moment = max(start, now - dt.timedelta(seconds=30))
    return moment


@pytest.fixture
async def city(pool: Any, settings: Any) -> City:
    zone = city_zone(settings.alerts)
    c = City(unique("DLVX"), unique("DLVY"), today=dt.datetime.now(zone).date())
    districts = {"x": "410105", "y": "410103"}
    customers: dict[str, int] = {}
    sites: dict[str, int] = {}
    for key, code in (("x", c.x), ("y", c.y)):
        c.ids[key] = await pool.fetchval(
            "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3) RETURNING id",
            code,
            "配送汇总测试" + code,
            districts[key],
        )
        customers[key] = await pool.fetchval(
            """INSERT INTO customers (company_id, account_no, name, district_code, opened_on)
               VALUES ($1, $2, '实名用户', $3, '2020-01-01') RETURNING id""",
            c.ids[key],
            unique("ACC"),
            districts[key],
        )
        c.stores[key] = f"{code}-S"
        sites[key] = await pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
               VALUES ($1, $2, 'store', $3, $4, 34.8, 113.65) RETURNING id""",
            c.stores[key],
            "门店" + code,
            c.ids[key],
            districts[key],
        )
    for days_ago, who, key, at_store in DELIVERIES:
        ts = _instant(zone, c.today, days_ago)
        customer = customers[key] if who == "real" else NO_CUSTOMER if who == "ghost" else None
        await pool.execute(
            """INSERT INTO events (ts, msg_id, tag, kind, site_id, company_id, customer_id,
                                   district_code)
               VALUES ($1, $2, $3, 'deliver', $4, $5, $6, $7)""",
            ts,
            f"dlv-{c.x}-{days_ago}-{len(c.rows)}",
            unique("TAG"),
            sites[key] if at_store else None,
            c.ids[key],
            customer,
            districts[key],
        )
        c.rows.append((ts.astimezone(zone).date(), who, key, at_store))
    await refreshed(pool, settings)
    return c


def _principals(c: City) -> dict[str, Principal]:
    return three_callers("dlv", "410105", c.ids["x"])


def _period(c: City, **extra: str) -> dict[str, str]:
    return period_query(c.today, PERIOD_DAYS) | extra


async def _body(pool: Any, settings: Any, who: Principal, name: str, query: dict[str, str]) -> Any:
    spec = next(s for s in SPECS if s.name == name)
    body = await compute_report(build_context(pool, settings, who, spec, query), spec)
    return body["rows"], body["totals"], body["previous"]


async def _both(
    pool: Any, settings: Any, who: Principal, name: str, query: dict[str, str], raw: Any
) -> tuple[Any, Any]:
    """The report on the rollup path, then on the raw path (no watermark: every day from the
    raw events)."""
    rolled = await _body(pool, settings, who, name, query)
    with raw():
        plain = await _body(pool, settings, who, name, query)
    return rolled, plain


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A context in which the reports see no deliveries rollup (as before its first refresh)."""
    return without_rollup(monkeypatch, rollup_deliveries)


def _expected(c: City, key: str, first: dt.date, last: dt.date) -> tuple[int, int]:
    """(deliveries, to a real-name customer) of company *key* in [first, last], from the rows
    written."""
    days = [who for day, who, k, _ in c.rows if k == key and first <= day <= last]
    return len(days), sum(who == "real" for who in days)


async def test_the_rollup_answers_what_the_raw_events_answer(
    pool: Any, settings: Any, city: City, raw: Any
) -> None:
    upto = await rollup_deliveries.watermark(pool, settings)
    assert upto is not None
    days = {day for day, *_ in city.rows}
    # deliveries on both sides of the watermark, in the history and the recent view
    assert min(days) < upto - dt.timedelta(days=RECENT_DAYS) and max(days) >= upto
    people = _principals(city)
    queries = [_period(city), _period(city, group="month"), _period(city, group="week")]
    for name in NAMES:
        for who in people.values():
            for query in queries:
                rolled, plain = await _both(pool, settings, who, name, query, raw)
                assert rolled == plain, (name, who.role, who.districts, query)
    # and what they answer is the rows written: X's counts, scoped and filtered
    first = city.today - dt.timedelta(days=PERIOD_DAYS - 1)
    prev_first = first - dt.timedelta(days=PERIOD_DAYS)
    n, real = _expected(city, "x", first, city.today)
    pn, preal = _expected(city, "x", prev_first, first - dt.timedelta(days=1))
    for who, query in (
        (people["regulator"], _period(city, company=city.x, group="month")),
        (people["district"], _period(city, company=city.x)),
        (people["company_admin"], _period(city)),
    ):
        for rows, totals, previous in await _both(
            pool, settings, who, "real-name-progress", query, raw
        ):
            assert {r["company_code"] for r in rows} == {city.x}
            assert (totals["deliveries"], totals["real_name"]) == (n, real)
            assert (previous["deliveries"], previous["real_name"]) == (pn, preal)
    # Y's deliveries: not the company admin's of X, not in the district regulator's districts
    for who in (people["company_admin"], people["district"]):
        for rows, totals, _ in await _both(
            pool, settings, who, "sales", _period(city, company=city.y), raw
        ):
            assert rows == [] and totals["deliveries"] == 0
    # the station filter goes on the rollup's site
    at_store = sum(1 for day, _, k, s in city.rows if k == "x" and s and day >= first)
    for _, totals, _ in await _both(
        pool, settings, people["regulator"], "sales", _period(city, station=city.stores["x"]), raw
    ):
        assert totals["deliveries"] == at_store


async def test_a_closed_day_is_read_from_the_rollup_until_the_next_refresh(
    pool: Any, settings: Any, city: City, raw: Any
) -> None:
    admin = _principals(city)["company_admin"]
    query = _period(city)
    day = city.today - dt.timedelta(days=REMOVED)
    deleted = await pool.execute(
        """DELETE FROM events WHERE kind = 'deliver' AND company_id = $1 AND ts >= $2
              AND ts < $3""",
        city.ids["x"],
        dt.datetime.combine(day, dt.time(), city_zone(settings.alerts)),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), city_zone(settings.alerts)),
    )
    assert deleted == "DELETE 1"
    (_, rolled, _), (_, plain, _) = await _both(pool, settings, admin, "sales", query, raw)
    assert rolled["deliveries"] == plain["deliveries"] + 1
    await refreshed(pool, settings)
    (rows, rolled, _), (plain_rows, plain, _) = await _both(
        pool, settings, admin, "sales", query, raw
    )
    assert rolled == plain and rows == plain_rows
    # the rollup's rows are per city day, company, district and site
    upto = await rollup_deliveries.watermark(pool, settings)
    assert upto is not None
    held = await pool.fetch(
        """SELECT day, district_code, site_id IS NOT NULL AS at_store, deliveries, real_name
             FROM rollup_deliveries_day WHERE company_id = $1 AND day < $2""",
        city.ids["x"],
        upto,
    )
    counted: Counter[tuple[dt.date, bool]] = Counter()
    for r in held:
        assert r["district_code"] == "410105"
        counted[(r["day"], r["at_store"])] += r["deliveries"]
    written = Counter((d, s) for d, _, k, s in city.rows if k == "x" and d < upto and d != day)
    assert counted == written
