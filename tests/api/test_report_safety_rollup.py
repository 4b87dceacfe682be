"""The safety-inspection rollup (migration 0231; server/db/rollup_safety.py): the
``safety-inspections`` report reads the rollup for the days before its watermark and the raw
records after it, and answers exactly what the raw records answer — the same rows (items with
their names, companies) and totals for a city-wide regulator, a district regulator and a
company admin, over periods crossing the watermark, with records in the rollup's history and
recent views and today. A record stored late for a closed day, or a correction of a closed
day's record, counts from the next refresh; a rollup never refreshed is not read (no 500).
A property test checks rollup + live records against a count in Python of the records
written, whatever the watermark."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.api.report_frame import build_context, compute_report
from server.api.report_safety import SPECS, pass_rate
from server.db import rollup_safety
from server.db.rollups import closed_until
from server.domain.localtime import city_zone
from server.kernel.principal import Principal
from tests.api.conftest import unique
from tests.api.report_activity_city import (
    period_query,
    refreshed,
    refreshed_to,
    three_callers,
    without_rollup,
)
from tests.conftest import World

SPEC = SPECS[0]
PERIOD_DAYS = 45
"""The report period reaches back past the rollup's recent view (RECENT_DAYS) into its
history, so its rows come from the history view, the recent view and the live day."""
HOME, OTHER = "410105", "410103"

# key: (days ago, company "x" | "y", district (None: none known), catalogue version
#       "v1" | "v2", failed codes, n/a codes, key of the record it corrects)
Rec = tuple[int, str, str | None, str, tuple[str, ...], tuple[str, ...], str | None]
RECORDS: dict[str, Rec] = {
    "p1": (60, "x", HOME, "v1", ("hose_type",), (), None),  # the previous period
    "h1": (40, "x", HOME, "v1", ("hose_condition",), ("gas_alarm",), None),
    "h2": (30, "x", None, "v1", ("valve_no_leak",), (), None),  # no district known
    "h3": (20, "x", OTHER, "v1", (), (), None),  # X's household in the other district
    "h4": (20, "x", HOME, "v1", ("regulator_ok",), (), None),  # corrected by c4
    "c4": (19, "x", HOME, "v1", (), ("gas_alarm",), "h4"),
    "r1": (3, "x", HOME, "v2", ("regulator_ok", "hose_type"), (), None),  # the recent view
    "t1": (0, "x", HOME, "v2", (), ("gas_alarm",), None),  # today: after the watermark
    "y1": (30, "y", OTHER, "v1", ("valve_no_leak",), (), None),
    "y2": (2, "y", OTHER, "v2", (), (), None),
}
LATE = 25
"""Days ago of a record of X stored after the refresh (a closed day of the history view)."""


@dataclass
class City:
    x: str
    y: str
    ids: dict[str, int] = field(default_factory=dict)  # company key -> id
    customers: dict[str, int] = field(default_factory=dict)
    catalogues: dict[str, int] = field(default_factory=dict)  # "v1" / "v2" -> id
    items: dict[str, dict[str, int]] = field(default_factory=dict)  # version -> code -> id
    records: dict[str, int] = field(default_factory=dict)  # key -> record id
    inspector: int = 0
    upload: int = 0
    today: dt.date = dt.date.min


def _instant(zone: Any, today: dt.date, days_ago: int, hour: int = 12) -> dt.datetime:
    """*hour* of the city day *days_ago* before today; a moment ago when that is to come."""
    moment = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour), zone)
    now = dt.datetime.now(dt.UTC)
    if moment > now:
        start = dt.datetime.combine(today, dt.time(0, 0, 1), zone)
        moment = max(start, now - dt.timedelta(seconds=30))
    return moment


async def _record(
    pool: Any,
    c: City,
    zone: Any,
    days_ago: int,
    key: str,
    district: str | None,
    version: str,
    failed: tuple[str, ...],
    na: tuple[str, ...],
    corrects: int | None = None,
    hour: int = 12,
) -> int:
    """A signed record answering every item of its catalogue version, as the API writes one
    (its answers in the record's transaction)."""
    async with pool.acquire() as conn, conn.transaction():
        rid: int = await conn.fetchval(
            """INSERT INTO safety_inspections (client_id, customer_id, company_id,
                   district_code, catalogue_id, inspector_id, inspector_role, inspected_at,
                   result, failed_count, signature_upload_id, corrects, prev_hash,
                   record_hash, seal)
               VALUES ($1, $2, $3, $4, $5, $6, 'officer', $7, $8, $9, $10, $11, $12, $13, $12)
               RETURNING id""",
            uuid.uuid4(),
            c.customers[key],
            c.ids[key],
            district,
            c.catalogues[version],
            c.inspector,
            _instant(zone, c.today, days_ago, hour),
            "fail" if failed else "pass",
            len(failed),
            c.upload,
            corrects,
            "0" * 64,
            uuid.uuid4().hex * 2,
        )
        await conn.executemany(
            "INSERT INTO safety_answers (inspection_id, item_id, answer) VALUES ($1, $2, $3)",
            [
                (rid, iid, "fail" if code in failed else "na" if code in na else "pass")
                for code, iid in c.items[version].items()
            ],
        )
    return rid


async def _city(pool: Any, world: World, settings: Any, prefix: str) -> City:
    """Two companies of the test's own with a household each, and resident catalogue
    versions 1 and 2 (migration 0211 renamed two items in version 2)."""
    zone = city_zone(settings.alerts)
    c = City(unique(prefix + "X"), unique(prefix + "Y"), today=dt.datetime.now(zone).date())
    c.inspector = world.users["t_officer"]
    for key, code, district in (("x", c.x, HOME), ("y", c.y, OTHER)):
        c.ids[key] = await pool.fetchval(
            "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3) RETURNING id",
            code,
            "安检汇总测试" + code,
            district,
        )
        c.customers[key] = await pool.fetchval(
            """INSERT INTO customers (company_id, account_no, name, district_code, opened_on)
               VALUES ($1, $2, '安检用户', $3, '2020-01-01') RETURNING id""",
            c.ids[key],
            unique("ACC"),
            district,
        )
    for version in (1, 2):
        cat = await pool.fetchval(
            """SELECT id FROM safety_catalogues WHERE customer_kind = 'resident'
                AND version = $1""",
            version,
        )
        c.catalogues[f"v{version}"] = cat
        c.items[f"v{version}"] = {
            r["code"]: r["id"]
            for r in await pool.fetch(
                "SELECT id, code FROM safety_items WHERE catalogue_id = $1", cat
            )
        }
    c.upload = await pool.fetchval(
        """INSERT INTO uploads (sha256, mime, size, purpose) VALUES ($1, 'image/png', 1,
           'safety_signature') RETURNING id""",
        secrets.token_hex(32),
    )
    return c


@pytest.fixture
async def city(pool: Any, world: World, settings: Any) -> City:
    c = await _city(pool, world, settings, "SAF")
    zone = city_zone(settings.alerts)
    for key, (days_ago, comp, district, version, failed, na, corrects) in RECORDS.items():
        c.records[key] = await _record(
            pool,
            c,
            zone,
            days_ago,
            comp,
            district,
            version,
            failed,
            na,
            c.records[corrects] if corrects else None,
        )
    await refreshed(pool, settings)
    return c


def _principals(c: City) -> dict[str, Principal]:
    return three_callers("saf", HOME, c.ids["x"])


def _period(c: City, days: int = PERIOD_DAYS, back: int = 0, **extra: str) -> dict[str, str]:
    return period_query(c.today, days, back=back, **extra)


async def _body(db: Any, settings: Any, who: Principal, query: dict[str, str]) -> dict[str, Any]:
    body = await compute_report(build_context(db, settings, who, SPEC, query), SPEC)
    return {k: body[k] for k in ("rows", "totals", "by_item", "by_company")}


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A context in which the report sees no safety rollup (as before its first refresh)."""
    return without_rollup(monkeypatch, rollup_safety)


async def _both(
    pool: Any, settings: Any, who: Principal, query: dict[str, str], raw: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report on the rollup path, then on the raw path (every day from the records)."""
    rolled = await _body(pool, settings, who, query)
    with raw():
        plain = await _body(pool, settings, who, query)
    return rolled, plain


def _counted(c: City, keys: set[str], comp: str) -> dict[str, Any]:
    """What the report must say of company *comp*'s records *keys* (a corrected one left
    out): records/passed/failed, and per item code answers/pass/fail/n-a."""
    corrected = {RECORDS[k][6] for k in keys if RECORDS[k][6]}
    mine = [RECORDS[k] for k in keys if RECORDS[k][1] == comp and k not in corrected]
    items: dict[str, list[int]] = {}
    for _, _, _, version, failed, na, _ in mine:
        for code in c.items[version]:
            e = items.setdefault(code, [0, 0, 0, 0])
            e[0] += 1
            e[2 if code in failed else 3 if code in na else 1] += 1
    failed_records = sum(1 for r in mine if r[4])
    return {
        "records": (len(mine), len(mine) - failed_records, failed_records),
        "items": {code: tuple(e) for code, e in items.items()},
    }


def _days(c: City, query: dict[str, str]) -> set[str]:
    first, last = dt.date.fromisoformat(query["from"]), dt.date.fromisoformat(query["to"])
    return {k for k, r in RECORDS.items() if first <= c.today - dt.timedelta(days=r[0]) <= last}


async def test_the_rollup_answers_what_the_raw_records_answer(
    pool: Any, settings: Any, city: City, raw: Any
) -> None:
    upto = await rollup_safety.watermark(pool, settings)
    assert upto == closed_until(dt.datetime.now(dt.UTC), settings)
    people = _principals(city)
    queries = [
        _period(city),
        _period(city, days=365),
        _period(city, days=30, back=15),  # wholly in the rollup's history view
        _period(city, company=city.x),
    ]
    for who in people.values():
        for query in queries:
            rolled, plain = await _both(pool, settings, who, query, raw)
            assert rolled == plain, (who.role, who.districts, query)

    # and what they answer is the records written: X's, scoped and filtered
    query = _period(city)
    want = _counted(city, _days(city, query), "x")
    for who, q in (
        (people["regulator"], _period(city, company=city.x)),
        (people["company_admin"], query),
    ):
        body = await _body(pool, settings, who, q)
        assert [r["code"] for r in body["by_company"]] == [city.x]
        (company,) = body["by_company"]
        assert (company["records"], company["passed"], company["failed"]) == want["records"]
        assert company["pass_rate"] == pass_rate(*want["records"][1:])
        got = {
            r["code"]: (r["records"], r["passed"], r["failed"], r["na"]) for r in body["by_item"]
        }
        assert got == want["items"]
        # the name is the newest version's (r1 and t1 used version 2: its text names the
        # configured service life), and the rollup's newest item is what says so
        regulator = next(r for r in body["by_item"] if r["code"] == "regulator_ok")
        assert (
            "{" not in regulator["name"]
            and str(settings.safety.regulator_life_months) in (regulator["name"])
        )
    # the district regulator sees X's records in its district only (h2 has none, h3 is in the
    # other), and none of Y's
    body = await _body(pool, settings, people["district"], _period(city, company=city.x))
    home = {k for k in _days(city, query) if RECORDS[k][2] == HOME}
    assert body["totals"]["records"] == _counted(city, home, "x")["records"][0]
    body = await _body(pool, settings, people["district"], _period(city, company=city.y))
    assert body["totals"]["records"] == 0 and body["by_company"] == []

    # the watermark set back into the period: a closed day's records from the rollup, the
    # days from it on from the raw records — the same answer again
    back = city.today - dt.timedelta(days=25)
    try:
        await refreshed_to(pool, "cyl_safety_refresh", settings, back)
        assert await rollup_safety.watermark(pool, settings) == back
        for who in people.values():
            for query in queries:
                rolled, plain = await _both(pool, settings, who, query, raw)
                assert rolled == plain, (who.role, who.districts, query, back)
    finally:
        await refreshed(pool, settings)


async def test_a_late_record_counts_from_the_next_refresh(
    pool: Any, settings: Any, city: City, raw: Any
) -> None:
    """A phone offline for weeks uploads a record of a closed day, and a correction today
    names a closed day's record: the rollup holds that day as of the last refresh, so the
    report counts the late record and drops the corrected one from the next refresh on."""
    zone = city_zone(settings.alerts)
    admin = _principals(city)["company_admin"]
    query = _period(city)
    before = await _body(pool, settings, admin, query)
    await _record(pool, city, zone, LATE, "x", HOME, "v1", ("valve_no_leak",), ())
    await _record(pool, city, zone, 0, "x", OTHER, "v2", (), (), city.records["h3"])
    rolled, plain = await _both(pool, settings, admin, query, raw)
    # raw: +1 late, −1 corrected (h3), +1 correction; the rollup: only the correction (today)
    assert plain["totals"]["records"] == before["totals"]["records"] + 1
    assert rolled["totals"]["records"] == before["totals"]["records"] + 1
    assert rolled["totals"]["failed"] == before["totals"]["failed"]
    assert plain["totals"]["failed"] == before["totals"]["failed"] + 1
    await refreshed(pool, settings)
    rolled, plain = await _both(pool, settings, admin, query, raw)
    assert rolled == plain
    assert rolled["totals"]["failed"] == before["totals"]["failed"] + 1
    # the rollup's rows: per city day, company and district, the late day's held now
    late_day = city.today - dt.timedelta(days=LATE)
    held = await pool.fetchrow(
        """SELECT records, passed, failed FROM rollup_safety_records_day
            WHERE company_id = $1 AND day = $2 AND district_code = $3""",
        city.ids["x"],
        late_day,
        HOME,
    )
    assert tuple(held) == (1, 0, 1)


async def test_a_rollup_never_refreshed_reads_the_raw_records(
    fresh_databases: Any, settings: Any
) -> None:
    """Before the first refresh the views hold no data, and PostgreSQL refuses a statement
    naming them: the report reads the raw records then — also when the state row says a day
    was rolled up but a view is empty (a restore that left it so) — and the rollup once
    refreshed."""
    name = f"cylwatch_test_safety_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(await fresh_databases.create(name))
    from tests.fresh_db import drop_database

    regulator = Principal(user_id=1, username="saf-fresh", role="regulator")
    today = dt.datetime.now(city_zone(settings.alerts)).date()
    query = {"from": (today - dt.timedelta(days=364)).isoformat(), "to": today.isoformat()}
    try:
        assert await rollup_safety.watermark(conn, settings) is None
        assert (await _body(conn, settings, regulator, query))["totals"]["records"] == 0
        await conn.execute(
            """INSERT INTO rollup_safety_state (name, tz, upto)
               VALUES ('safety', $1, $2)""",
            settings.alerts.timezone,
            today,
        )
        assert await rollup_safety.watermark(conn, settings) is None
        assert (await _body(conn, settings, regulator, query))["totals"]["records"] == 0
        await refreshed_to(conn, "cyl_safety_refresh", settings, today, full=False)
        assert await rollup_safety.watermark(conn, settings) == today
        assert (await _body(conn, settings, regulator, query))["totals"]["records"] == 0
    finally:
        await conn.close()
        await drop_database(name)


# ---------------------------------------------------------------- property

HORIZON = 12
"""Days back the generated records and periods reach."""
CODES = ("valve_no_leak", "hose_type", "gas_alarm")
"""The items a generated record fails or finds not applicable (the rest pass)."""

record_st = st.tuples(
    st.integers(0, HORIZON),  # days ago
    st.integers(0, 23),  # hour
    st.sampled_from(["x", "y"]),
    st.sampled_from([HOME, OTHER, None]),
    st.sampled_from(["v1", "v2"]),
    st.frozensets(st.sampled_from(CODES)),  # failed
    st.frozensets(st.sampled_from(CODES)),  # n/a (a failed one stays failed)
    st.booleans(),  # corrects the company's previous record
)


@pytest.fixture
async def restored(pool: Any, settings: Any) -> Any:
    """The rollups refreshed as of now after the test moved the safety watermark back."""
    yield
    await refreshed(pool, settings)


@given(
    rows=st.lists(record_st, max_size=8),
    later=st.lists(record_st, max_size=4),
    closed_days_ago=st.integers(0, HORIZON + 2),
    span=st.tuples(st.integers(0, HORIZON + 1), st.integers(0, HORIZON + 1)),
)
@hsettings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_rollup_plus_live_records_equal_the_records_written(
    pool: Any,
    world: World,
    settings: Any,
    restored: Any,
    raw: Any,
    rows: list[Any],
    later: list[Any],
    closed_days_ago: int,
    span: tuple[int, int],
) -> None:
    c = await _city(pool, world, settings, "PSA")
    zone = city_zone(settings.alerts)
    # (city day, company, district, version, failed, n/a, id) of every record, and the ids
    # corrected
    written: list[tuple[dt.date, str, str | None, str, frozenset[str], frozenset[str], int]] = []
    corrected: set[int] = set()

    async def put(row: Any, may_correct: bool) -> None:
        days_ago, hour, comp, district, version, failed, na, correct = row
        prior = [w[6] for w in written if w[1] == comp and w[6] not in corrected]
        target = prior[-1] if may_correct and correct and prior else None
        rid = await _record(
            pool,
            c,
            zone,
            days_ago,
            comp,
            district,
            version,
            tuple(failed),
            tuple(na - failed),
            target,
            hour,
        )
        if target is not None:
            corrected.add(target)
        at = _instant(zone, c.today, days_ago, hour)
        written.append(
            (at.astimezone(zone).date(), comp, district, version, failed, na - failed, rid)
        )

    for row in rows:
        await put(row, may_correct=True)
    # a refresh as of some day in the past: the watermark anywhere in the period or outside
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=closed_days_ago)
    upto = closed_until(now, settings)
    await refreshed_to(pool, "cyl_safety_refresh", settings, upto)
    assert await rollup_safety.watermark(pool, settings) == upto
    # records stored after the refresh on the days it left open (the live half's)
    for row in later:
        if _instant(zone, c.today, row[0], row[1]).astimezone(zone).date() >= upto:
            await put(row, may_correct=False)
    first = c.today - dt.timedelta(days=max(span))
    last = c.today - dt.timedelta(days=min(span))
    query = {"from": first.isoformat(), "to": last.isoformat()}
    admin = Principal(user_id=3, username="psa", role="company_admin", company_id=c.ids["x"])
    district = Principal(user_id=2, username="psa-d", role="regulator", districts=(HOME,))
    cases: list[tuple[Principal, dict[str, str], str, set[str | None]]] = [
        (admin, query, "x", {HOME, OTHER, None}),
        (district, {**query, "company": c.y}, "y", {HOME}),
    ]
    for who, q, comp, districts in cases:
        mine = [
            w
            for w in written
            if w[1] == comp
            and w[2] in districts
            and first <= w[0] <= last
            and w[6] not in corrected
        ]
        rolled, plain = await _both(pool, settings, who, q, raw)
        assert rolled == plain
        failed = sum(1 for w in mine if w[4])
        totals = rolled["totals"]
        assert (totals["records"], totals["passed"], totals["failed"]) == (
            len(mine),
            len(mine) - failed,
            failed,
        )
        for r in rolled["by_item"]:
            answering = [w for w in mine if r["code"] in c.items[w[3]]]
            assert (r["records"], r["failed"], r["na"]) == (
                len(answering),
                sum(1 for w in answering if r["code"] in w[4]),
                sum(1 for w in answering if r["code"] in w[5]),
            ), r["code"]
        assert {r["code"] for r in rolled["by_item"]} == (
            {code for w in mine for code in c.items[w[3]]}
        )
