"""Circulation, periodic inspections and credit on the regulator's menu
(server/api/report_business_flow.py, server/api/report_business_credit.py; docs/API.md
"Reports") on hand-built rows of this test's own in a period two years back (no other test
writes there, and the credit round's snapshots never reach that far back): counts against the
fixture's own tally, every drill-down against its cell, the scope of an inspection agency and
of a company admin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import call, unique
from tests.conftest import World

FIRST = dt.date(2024, 3, 1)
LAST = dt.date(2024, 4, 30)
SPAN = (LAST - FIRST).days + 1
PREV_LAST = FIRST - dt.timedelta(days=1)
PREV_FIRST = PREV_LAST - dt.timedelta(days=SPAN - 1)
PERIOD = f"from={FIRST}&to={LAST}"


def _at(settings: Any, day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZoneInfo(settings.alerts.timezone))


async def _company(pool: Any, code: str, district: str = "410105") -> int:
    return int(
        await pool.fetchval(
            "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, $3) RETURNING id",
            code,
            "流转测试" + code,
            district,
        )
    )


async def _site(pool: Any, code: str, company: int | None, kind: str = "store") -> int:
    return int(
        await pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code)
               VALUES ($1, $2, $3, $4, '410105') RETURNING id""",
            code,
            "站点" + code,
            kind,
            company,
        )
    )


async def _cylinder(pool: Any, tag: str, owner: int) -> int:
    return int(
        await pool.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, district_code)
               VALUES ($1, $2, 'YSP35.5', '2020-01-01', '2028-01-01', '2028-01-01', '410105')
               RETURNING id""",
            tag,
            owner,
        )
    )


# ---------------------------------------------------------------- circulation

# (cylinder, kind, site, day, hour): sites "sx", "sx2" are X's, "sy" Y's; cylinders are X's
SCANS = [
    ("c1", "transfer", "sx", dt.date(2024, 3, 5), 10),
    ("c1", "receive", "sy", dt.date(2024, 3, 5), 15),  # X → Y
    ("c2", "transfer", "sx", dt.date(2024, 3, 6), 10),
    ("c2", "receive", "sx2", dt.date(2024, 3, 6), 15),  # within X: not between companies
    ("c3", "transfer", "sy", dt.date(2024, 3, 10), 10),
    ("c3", "receive", "sx", dt.date(2024, 3, 11), 9),  # Y → X
    ("c3", "receive", "sx", dt.date(2024, 3, 12), 9),  # a second receive: no transfer before it
    ("c4", "transfer", "sx", dt.date(2024, 2, 26), 10),
    ("c4", "receive", "sy", dt.date(2024, 3, 1), 9),  # X → Y, left before the period began
    ("c1", "transfer", "sx", dt.date(2024, 4, 1), 10),
    ("c1", "receive", "sy", dt.date(2024, 4, 20), 10),  # after the pairing window: unknown
    ("c5", "transfer", "sx", dt.date(2024, 2, 1), 10),
    ("c5", "receive", "sy", dt.date(2024, 2, 2), 10),  # X → Y in the previous period
]
# (company, first seen, last seen) of out-of-region alerts
SIGHTINGS = [
    ("x", dt.date(2024, 3, 15), dt.date(2024, 3, 16)),
    ("x", dt.date(2024, 4, 1), dt.date(2024, 4, 1)),
    ("x", dt.date(2024, 2, 20), dt.date(2024, 3, 20)),  # raised in the previous period
    ("y", dt.date(2024, 2, 1), dt.date(2024, 2, 1)),  # the previous period
]
# X: out c1, c4; in c3. Y: out c3; in c1, c4.
EXPECTED = {"x": (2, 1, 2), "y": (1, 2, 0)}
EXPECTED_PREV = {"x": (1, 0, 1), "y": (0, 1, 1)}


@dataclass
class Flow:
    codes: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def flow(pool: Any, settings: Any) -> Flow:
    f = Flow()
    for key in ("x", "y"):
        f.codes[key] = unique("FLOW" + key.upper())
        f.ids[key] = await _company(pool, f.codes[key])
    sites = {
        "sx": await _site(pool, unique("SX"), f.ids["x"]),
        "sx2": await _site(pool, unique("SX2"), f.ids["x"]),
        "sy": await _site(pool, unique("SY"), f.ids["y"]),
    }
    cylinders: dict[str, tuple[int, str]] = {}
    for name in ("c1", "c2", "c3", "c4", "c5"):
        tag = unique("FT")
        cylinders[name] = (await _cylinder(pool, tag, f.ids["x"]), tag)
    for cyl, kind, site, day, hour in SCANS:
        cid, tag = cylinders[cyl]
        await pool.execute(
            """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, site_id, company_id,
                                   district_code)
               VALUES ($1, $2, $3, $4, $5, $6, $7, '410105')""",
            _at(settings, day, hour),
            unique("MSG"),
            cid,
            tag,
            kind,
            sites[site],
            f.ids["x"],
        )
    for comp, first, last in SIGHTINGS:
        await pool.execute(
            """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id,
                                   district_code, first_at, last_at, count, state)
               VALUES ('out_of_region', 'warning', 'cylinder', $1, $2, '410105', $3, $4, 2,
                       'resolved')""",
            unique("OOR"),
            f.ids[comp],
            _at(settings, first),
            _at(settings, last),
        )
    return f


async def _drill(client: Any, report: str, query: str, user: str = "t_admin") -> dict[str, Any]:
    status, body = await call(client, "GET", f"/api/v1/reports/{report}/drill?{query}", user=user)
    assert status == 200, body
    return dict(body)


async def test_circulation_counts_previous_and_drills(client: Any, flow: Flow) -> None:
    keys = ("transfers_out", "transfers_in", "out_of_region")
    for comp in ("x", "y"):
        code = flow.codes[comp]
        status, body = await call(
            client, "GET", f"/api/v1/reports/circulation?{PERIOD}&company={code}"
        )
        assert status == 200, body
        (row,) = body["rows"]
        assert row["company_code"] == code
        assert tuple(row[k] for k in keys) == EXPECTED[comp], comp
        assert body["totals"] == dict(zip(keys, EXPECTED[comp], strict=True))
        assert body["previous"] == dict(zip(keys, EXPECTED_PREV[comp], strict=True))
        for measure in keys:
            drill = await _drill(
                client,
                "circulation",
                f"{PERIOD}&company={code}&company_code={code}&measure={measure}&page_size=50",
            )
            assert drill["total"] == row[measure], (comp, measure)
            if measure == "out_of_region":
                assert drill["target"] == "alerts"
                assert {i["kind"] for i in drill["items"]} <= {"out_of_region"}
            else:
                assert drill["target"] == "events"
                assert {i["kind"] for i in drill["items"]} <= {"receive"}
    # both companies at once: the rows of the one period, the district filter keeps them
    status, body = await call(
        client, "GET", f"/api/v1/reports/circulation?{PERIOD}&district=410105"
    )
    mine = {r["company_code"]: r for r in body["rows"] if r["company_code"] in flow.codes.values()}
    assert {c: tuple(r[k] for k in keys) for c, r in mine.items()} == {
        flow.codes[c]: EXPECTED[c] for c in ("x", "y")
    }
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/circulation?{PERIOD}&district=410103&company={flow.codes['x']}",
    )
    assert body["rows"] == []


async def test_circulation_scope(client: Any, flow: Flow) -> None:
    """A company admin counts its own company only; a district regulator its districts."""
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/circulation?{PERIOD}&company={flow.codes['x']}",
        user="t_company_a",
    )
    assert status == 200 and body["rows"] == []
    drill = await _drill(
        client,
        "circulation",
        f"{PERIOD}&company_code={flow.codes['x']}&measure=transfers_out",
        user="t_company_a",
    )
    assert drill["total"] == 0
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/circulation?{PERIOD}&company={flow.codes['x']}",
        user="t_regulator_jinshui",
    )
    assert [r["transfers_out"] for r in body["rows"]] == [EXPECTED["x"][0]]


# ---------------------------------------------------------------- periodic inspections

# (cylinder, agency: "ag" ours / "ins" the test inspector's / None, day, result)
INSPECTIONS = [
    ("c1", "ag", dt.date(2024, 3, 3), "pass"),
    ("c2", "ag", dt.date(2024, 3, 9), "fail"),
    ("c2", "ag", dt.date(2024, 3, 20), "scrap"),  # the same cylinder twice in a month
    ("c3", "ins", dt.date(2024, 4, 2), "pass"),
    ("c1", None, dt.date(2024, 4, 5), "pass"),
    ("c3", "ag", dt.date(2024, 2, 10), "pass"),  # the previous period
    ("c1", "ag", dt.date(2024, 5, 3), "pass"),  # after the period
]
RESULT_KEYS = {"pass": "passed", "fail": "failed", "scrap": "scrapped"}


@pytest.fixture
async def inspected(pool: Any, world: World) -> tuple[str, str]:
    code = unique("YJ")
    owner = await _company(pool, code)
    agency_code = unique("AG")
    agencies = {"ag": await _site(pool, agency_code, None, "inspection_agency")}
    agencies["ins"] = world.sites["INS-1"]
    cyl = {n: await _cylinder(pool, unique("YT"), owner) for n in ("c1", "c2", "c3")}
    for name, agency, day, result in INSPECTIONS:
        await pool.execute(
            """INSERT INTO inspections (cylinder_id, agency_site_id, inspected_on, result)
               VALUES ($1, $2, $3, $4)""",
            cyl[name],
            agencies[agency] if agency else None,
            day,
            result,
        )
    return code, agency_code


def _tally(first: dt.date, last: dt.date, agency: str | None = "*") -> dict[str, int]:
    out = {"inspections": 0, "passed": 0, "failed": 0, "scrapped": 0}
    for _, ag, day, result in INSPECTIONS:
        if first <= day <= last and (agency == "*" or ag == agency):
            out["inspections"] += 1
            out[RESULT_KEYS[result]] += 1
    return out


async def test_periodic_inspections_counts_and_drills(
    client: Any, inspected: tuple[str, str]
) -> None:
    code, agency = inspected
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/periodic-inspections?{PERIOD}&group=month&company={code}",
    )
    assert status == 200, body
    got = {(r["period"], r["agency_code"]): r for r in body["rows"]}
    assert set(got) == {("2024-03-01", agency), ("2024-04-01", "INS-1"), ("2024-04-01", None)}
    march = got[("2024-03-01", agency)]
    assert {k: march[k] for k in _tally(FIRST, LAST)} == _tally(FIRST, dt.date(2024, 3, 31), "ag")
    assert body["totals"] == _tally(FIRST, LAST)
    assert body["previous"] == _tally(PREV_FIRST, PREV_LAST)
    for row in body["rows"]:
        for measure in ("inspections", "passed", "failed", "scrapped"):
            drill = await _drill(
                client,
                "periodic-inspections",
                f"{PERIOD}&group=month&company={code}&company_code={code}"
                f"&agency_code={row['agency_code'] or ''}&period={row['period']}"
                f"&measure={measure}",
            )
            assert drill["total"] == row[measure], (row["period"], row["agency_code"], measure)
            assert drill["target"] == "cylinders"
            assert all(i["owner_code"] == code for i in drill["items"])
    # the inspection agency reads its own inspections only
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/periodic-inspections?{PERIOD}&company={code}",
        user="t_inspector",
    )
    assert status == 200
    assert [(r["agency_code"], r["inspections"]) for r in body["rows"]] == [("INS-1", 1)]
    status, body = await call(
        client,
        "GET",
        f"/api/v1/reports/periodic-inspections?{PERIOD}&company={code}&station={agency}",
    )
    assert body["totals"] == _tally(FIRST, LAST, "ag")


# ---------------------------------------------------------------- credit

# (day, kind, points, count) of the ledger
LEDGER = [
    (dt.date(2024, 3, 10), "good_conduct", 2, 1),
    (dt.date(2024, 3, 15), "licence_lapsed", -10, 1),
    (dt.date(2024, 4, 2), "bad_conduct", -3, 1),
    (dt.date(2024, 2, 15), "bad_conduct", -1.5, 1),  # the previous period
    (dt.date(2024, 5, 2), "bad_conduct", -4, 1),  # after the period
]
# (month, score, grade, rank): the newest up to April is the report's
SNAPSHOTS = [
    (dt.date(2024, 3, 1), 88, "B", 3),
    (dt.date(2024, 4, 1), 91.5, "A", 1),
    (dt.date(2024, 5, 1), 50, "D", 9),
]


@pytest.fixture
async def rated(pool: Any) -> str:
    code = unique("XY")
    cid = await _company(pool, code)
    for day, kind, points, count in LEDGER:
        manual = kind in ("good_conduct", "bad_conduct")
        await pool.execute(
            """INSERT INTO credit_events (company_id, day, kind, points, count, source_type,
                                          source_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            cid,
            day,
            kind,
            points,
            count,
            "manual" if manual else "licence",
            unique("SRC"),
        )
    for month, score, grade, rank in SNAPSHOTS:
        last_day = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        await pool.execute(
            """INSERT INTO credit_scores (company_id, month, as_of, score, grade, rank,
                                          ranked_of, breakdown)
               VALUES ($1, $2, $3, $4, $5, $6, 10, '[]')""",
            cid,
            month,
            last_day,
            score,
            grade,
            rank,
        )
    return code


async def test_credit_scores_and_ledger(client: Any, pool: Any, rated: str) -> None:
    status, body = await call(client, "GET", f"/api/v1/reports/credit?{PERIOD}&company={rated}")
    assert status == 200, body
    (row,) = body["rows"]
    snapshot = await pool.fetchrow(
        """SELECT s.score, s.grade, s.rank FROM credit_scores s JOIN companies co
               ON co.id = s.company_id
            WHERE co.code = $1 AND s.month <= $2 ORDER BY s.month DESC LIMIT 1""",
        rated,
        LAST,
    )
    assert (row["score"], row["grade"], row["rank"]) == (
        float(snapshot["score"]),
        snapshot["grade"],
        snapshot["rank"],
    )
    assert (row["score"], row["grade"]) == (91.5, "A")
    in_period = [e for e in LEDGER if FIRST <= e[0] <= LAST]
    assert row["events"] == len(in_period)
    assert row["points"] == sum(e[2] for e in in_period)
    for kind in ("good_conduct", "licence_lapsed", "bad_conduct", "overfill"):
        assert row[kind] == sum(e[3] for e in in_period if e[1] == kind), kind
    assert body["totals"]["events"] == len(in_period)
    assert "score" not in body["totals"]  # a score is no sum
    before = [e for e in LEDGER if PREV_FIRST <= e[0] <= PREV_LAST]
    assert body["previous"]["events"] == len(before)
    assert body["previous"]["points"] == sum(e[2] for e in before)
    # the credit pages' scope: company B's admin does not see another company's credit
    status, body = await call(
        client, "GET", f"/api/v1/reports/credit?{PERIOD}&company={rated}", user="t_company_b"
    )
    assert status == 200 and body["rows"] == []
    status, body = await call(
        client, "GET", f"/api/v1/reports/credit?{PERIOD}&company={rated}", user="t_officer"
    )
    assert [r["company_code"] for r in body["rows"]] == [rated]
    status, body = await call(
        client, "GET", f"/api/v1/reports/credit/drill?{PERIOD}&measure=events"
    )
    assert status == 400
