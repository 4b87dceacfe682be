"""Credit evaluation over the REST API on a small hand-built city (docs/API.md "Credit
evaluation"; DOMAIN.md "Credit evaluation"):

- refused fills, overfill / overstock / suspected-illegal-fill alerts, upheld complaints and
  licence lapses become the expected ledger and score after a round, caps applied;
- a second round changes nothing; two rounds at once write each entry once; a scheduled
  round that finds one running steps aside;
- a regulator's manual event counts from the next round; bad input is one error shape with
  nothing written; scope (district regulators, companies) in the ranking and the detail;
- the ranking's fuzzy search and grade counts; the public search shows grades only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from server.db.credit_round import LOCK_KEY, recompute
from server.kernel.clock import city_today
from tests.api.conftest import call, unique
from tests.conftest import World

RANKING = "/api/v1/credit"
RECOMPUTE = "/api/v1/credit/recompute"
PUBLIC = "/api/v1/public/credit"
_msg = itertools.count()


def _detail(cid: int) -> str:
    return f"/api/v1/companies/{cid}/credit"


def _events(cid: int) -> str:
    return f"/api/v1/companies/{cid}/credit/events"


def _error(body: Any, code: str, field: str | None = None) -> None:
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    if field is not None:
        assert body["error"]["details"]["field"] == field, body


@dataclass
class City:
    """Companies made for one test (removed afterwards, with their ledger)."""

    pool: asyncpg.Pool
    companies: list[int] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)

    async def company(
        self, name: str, district: str = "410105", *, years_old: int = 3, **extra: Any
    ) -> int:
        cid = await self.pool.fetchval(
            """INSERT INTO companies (code, name, district_code, created_at, licence_no,
                                      licence_expiry)
               VALUES ($1, $2, $3, now() - make_interval(years => $4), $5, $6) RETURNING id""",
            unique("CRCO"),
            name,
            district,
            years_old,
            unique("LIC"),
            extra.get("licence_expiry", dt.date.today() + dt.timedelta(days=300)),
        )
        self.companies.append(int(cid))
        return int(cid)

    async def station(self, company: int, district: str = "410105") -> int:
        sid = await self.pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code)
               VALUES ($1, '信用测试充装站', 'filling_station', $2, $3) RETURNING id""",
            unique("CRST"),
            company,
            district,
        )
        self.sites.append(int(sid))
        return int(sid)

    async def refusals(
        self, company: int, site: int, reasons: list[str], n: int, *, ago: dt.timedelta
    ) -> None:
        at = dt.datetime.now(dt.UTC) - ago
        for _ in range(n):
            await self.pool.execute(
                """INSERT INTO events (ts, msg_id, kind, site_id, company_id, details)
                   VALUES ($1, $2, 'fill_refused', $3, $4, $5)""",
                at,
                f"credit-test-{next(_msg)}-{unique()}",
                site,
                company,
                {"decision": "deny", "reasons": reasons},
            )

    async def alert(
        self,
        kind: str,
        company: int,
        site: int,
        *,
        count: int = 1,
        first: dt.timedelta = dt.timedelta(days=1),
        last: dt.timedelta = dt.timedelta(0),
    ) -> int:
        now = dt.datetime.now(dt.UTC)
        subject = "site" if kind == "overstock" else "cylinder"
        return int(
            await self.pool.fetchval(
                """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id,
                                       site_id, first_at, last_at, count)
                   VALUES ($1, 'critical', $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
                kind,
                subject,
                unique("SUBJ"),
                company,
                site,
                now - first,
                now - last,
                count,
            )
        )

    async def complaint(self, company: int, outcome: str) -> int:
        return int(
            await self.pool.fetchval(
                """INSERT INTO complaints (text, company_id, state, outcome, closed_at)
                   VALUES ('气瓶缺斤短两', $1, 'closed', $2, now()) RETURNING id""",
                company,
                outcome,
            )
        )


@pytest.fixture
async def city(pool: asyncpg.Pool) -> AsyncIterator[City]:
    c = City(pool)
    yield c
    await pool.execute("DELETE FROM alerts WHERE company_id = ANY($1)", c.companies)
    await pool.execute("DELETE FROM events WHERE company_id = ANY($1)", c.companies)
    await pool.execute("DELETE FROM complaints WHERE company_id = ANY($1)", c.companies)
    await pool.execute("DELETE FROM sites WHERE id = ANY($1)", c.sites)
    await pool.execute("DELETE FROM companies WHERE id = ANY($1)", c.companies)


def _line(detail: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(x for x in detail["breakdown"] if x["kind"] == kind)


async def _ledger(pool: asyncpg.Pool, cid: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT id, kind, day, points, count, source_type, source_id, updated_at
             FROM credit_events WHERE company_id = $1 ORDER BY id""",
        cid,
    )
    return [dict(r.items()) for r in rows]


async def test_facts_become_the_ledger_and_the_score(
    client: Any, pool: asyncpg.Pool, settings: Any, city: City
) -> None:
    x = await city.company("信用测试甲燃气有限公司")
    y = await city.company("信用测试乙燃气有限公司", "410103")
    sx = await city.station(x)
    await city.station(y, "410103")
    day = dt.timedelta(days=2)
    await city.refusals(x, sx, ["scrapped"], 3, ago=day)
    await city.refusals(x, sx, ["not_owner", "scrapped"], 1, ago=day)  # one attempt, once
    await city.refusals(x, sx, ["unknown_tag"], 5, ago=day)  # not a counted reason
    await city.alert("overfill", x, sx, count=2)
    await city.alert("overstock", x, sx, first=dt.timedelta(days=2))  # three city days at most
    await city.alert("suspected_illegal_fill", x, sx)
    await city.alert("repeat_fill", x, sx, count=9)  # not a credit kind
    await city.complaint(x, "upheld")
    await city.complaint(x, "not_upheld")
    # a regulator suspends company Y's licence: a lapse, −10
    status, body = await call(
        client,
        "POST",
        f"/api/v1/licences/company/{y}/status",
        "t_regulator",
        {"status": "suspended", "reason": "信用测试：暂停"},
    )
    assert status == 200, body
    # an overfill 14 months ago: in the ledger and the history, not in today's score
    await city.alert(
        "overfill", x, sx, count=4, first=dt.timedelta(days=425), last=dt.timedelta(days=425)
    )

    status, done = await call(client, "POST", RECOMPUTE, "t_admin")
    assert status == 200, done
    # (a round the app ran at start-up may have found some of the facts first)
    assert done["companies"] >= 2 and done["as_of"] == city_today(settings).isoformat()

    status, d = await call(client, "GET", _detail(x), "t_admin")
    assert status == 200, d
    overstock_days = _line(d, "overstock_day")["count"]
    assert overstock_days in (2, 3)  # first_at two days ago: two or three city days
    assert _line(d, "denied_attempt") | {"cap": None} == {
        "kind": "denied_attempt",
        "count": 4,
        "raw": -2.0,
        "cap": None,
        "points": -2.0,
        "capped": False,
    }
    assert _line(d, "overfill")["points"] == -2.0
    assert _line(d, "suspected_illegal_fill")["points"] == -5.0
    assert _line(d, "complaint_upheld") | {"cap": None} == {
        "kind": "complaint_upheld",
        "count": 1,
        "raw": -3.0,
        "cap": None,
        "points": -3.0,
        "capped": False,
    }
    assert _line(d, "licence_lapsed")["count"] == 0
    assert _line(d, "rectification_overdue")["count"] == 0  # defined, no source yet
    assert d["score"] == 100 - 2 - 2 - 2 * overstock_days - 5 - 3
    assert d["grade"] == "B"
    assert d["as_of"] == city_today(settings).isoformat()
    # the ledger: one row per source, the old overfill outside the window
    kinds = sorted((e["kind"], e["in_window"]) for e in d["ledger"]["items"])
    assert ("overfill", False) in kinds and ("overfill", True) in kinds
    assert d["ledger"]["total"] == 5 + overstock_days
    # the history: twelve months; a year ago the old overfill counted
    assert len(d["history"]) == settings.credit.history_months
    assert d["history"][-1]["score"] == d["score"]
    assert d["history"][0]["score"] == 100 - 4

    status, dy = await call(client, "GET", _detail(y), "t_admin")
    assert status == 200
    assert _line(dy, "licence_lapsed")["points"] == -10.0
    assert dy["score"] == 90.0 and dy["grade"] == "A"
    # reinstated: the lapse happened, and stays (a sticky kind)
    status, _ = await call(
        client,
        "POST",
        f"/api/v1/licences/company/{y}/status",
        "t_regulator",
        {"status": "valid", "reason": "整改完成"},
    )
    assert status == 200
    await recompute(pool, settings, trigger="test")
    status, dy = await call(client, "GET", _detail(y), "t_admin")
    assert dy["score"] == 90.0


async def test_caps_and_expired_licences(
    client: Any, pool: asyncpg.Pool, settings: Any, city: City
) -> None:
    x = await city.company(
        "信用封顶测试燃气公司", licence_expiry=city_today(settings) - dt.timedelta(days=10)
    )
    sx = await city.station(x)
    await city.refusals(x, sx, ["overdue_inspection"], 45, ago=dt.timedelta(days=3))
    await city.alert("overfill", x, sx, count=20)
    await recompute(pool, settings, trigger="test")
    status, d = await call(client, "GET", _detail(x), "t_admin")
    assert status == 200
    assert _line(d, "denied_attempt") == {
        "kind": "denied_attempt",
        "count": 45,
        "raw": -22.5,
        "cap": 20.0,
        "points": -20.0,
        "capped": True,
    }
    assert _line(d, "overfill")["points"] == -15.0 and _line(d, "overfill")["capped"]
    assert _line(d, "licence_lapsed")["points"] == -10.0  # expired ten days ago
    assert d["score"] == 100 - 20 - 15 - 10 and d["grade"] == "D"


async def test_a_second_round_changes_nothing(
    pool: asyncpg.Pool, settings: Any, city: City
) -> None:
    x = await city.company("信用幂等测试燃气公司")
    sx = await city.station(x)
    await city.refusals(x, sx, ["scrapped"], 2, ago=dt.timedelta(days=1))
    await city.alert("overstock", x, sx, first=dt.timedelta(days=1))
    await city.complaint(x, "upheld")
    first = await recompute(pool, settings, trigger="test")
    assert first is not None
    before = await _ledger(pool, x)
    assert sorted(e["kind"] for e in before) == [
        "complaint_upheld",
        "denied_attempt",
        "overstock_day",
        "overstock_day",
    ] or sorted(e["kind"] for e in before) == [
        "complaint_upheld",
        "denied_attempt",
        "overstock_day",
    ]
    again = await recompute(pool, settings, trigger="test")
    assert again is not None and (again.inserted, again.updated) == (0, 0)
    assert await _ledger(pool, x) == before  # same rows, not even touched
    # a fact that goes (the complaint reopened) takes its entry with it at the next round
    await pool.execute(
        "UPDATE complaints SET state = 'answered', outcome = NULL, closed_at = NULL,"
        " answer = 'x', answered_at = now() WHERE company_id = $1",
        x,
    )
    third = await recompute(pool, settings, trigger="test")
    assert third is not None and third.deleted >= 1
    assert {e["kind"] for e in await _ledger(pool, x)} == {"denied_attempt", "overstock_day"}


async def test_concurrent_rounds_do_not_double(
    pool: asyncpg.Pool, settings: Any, city: City
) -> None:
    x = await city.company("信用并发测试燃气公司")
    sx = await city.station(x)
    await city.refusals(x, sx, ["not_owner"], 6, ago=dt.timedelta(days=1))
    await city.alert("suspected_illegal_fill", x, sx, count=2)
    results = await asyncio.gather(
        *(recompute(pool, settings, trigger=f"test-{i}") for i in range(3))
    )
    assert all(r is not None for r in results)
    assert sorted(r.round for r in results if r) == list(
        range(min(r.round for r in results if r), min(r.round for r in results if r) + 3)
    )
    ledger = await _ledger(pool, x)
    assert sorted((e["kind"], e["count"]) for e in ledger) == [
        ("denied_attempt", 6),
        ("suspected_illegal_fill", 2),
    ]
    # one snapshot per company and month, whatever ran
    dupes = await pool.fetchval(
        "SELECT count(*) FROM (SELECT company_id, month FROM credit_scores"
        " GROUP BY 1, 2 HAVING count(*) > 1) d"
    )
    assert dupes == 0
    # a scheduled round finding one running steps aside instead of queueing
    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            assert await recompute(pool, settings, trigger="schedule", wait=False) is None
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def test_manual_events(client: Any, pool: asyncpg.Pool, settings: Any, city: City) -> None:
    x = await city.company("信用人工测试燃气公司")
    y = await city.company("信用人工测试二七燃气公司", "410103")
    await recompute(pool, settings, trigger="test")
    status, d = await call(client, "GET", _detail(x), "t_regulator")
    assert d["score"] == 100.0 and d["may_add_events"] is True

    status, ev = await call(
        client,
        "POST",
        _events(x),
        "t_regulator_jinshui",
        {"kind": "bad_conduct", "points": 4.5, "reason": "拒不配合检查"},
    )
    assert status == 201, ev
    assert ev["points"] == -4.5 and ev["source_type"] == "manual"
    assert ev["day"] == city_today(settings).isoformat()
    status, ev = await call(
        client,
        "POST",
        _events(x),
        "t_admin",
        {
            "kind": "good_conduct",
            "points": 2,
            "reason": "主动报告隐患",
            "day": str(city_today(settings) - dt.timedelta(days=3)),
        },
    )
    assert status == 201, ev
    audited = await pool.fetch(
        "SELECT username, details FROM audit_log WHERE action = 'credit.event'"
        " AND entity = 'company' AND entity_id = $1 ORDER BY id",
        str(x),
    )
    assert [a["username"] for a in audited] == ["t_regulator_jinshui", "t_admin"]
    assert audited[0]["details"]["reason"] == "拒不配合检查"
    # counted from the next round, not before
    status, d = await call(client, "GET", _detail(x), "t_admin")
    assert d["score"] == 100.0
    assert d["ledger"]["items"][0]["created_by"] == "t_regulator_jinshui"
    status, done = await call(client, "POST", RECOMPUTE, "t_regulator")
    assert status == 200
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'credit.recompute' AND entity_id = $1",
            str(done["round"]),
        )
        == 1
    )
    status, d = await call(client, "GET", _detail(x), "t_company_a")
    assert status == 404  # another company's credit
    status, d = await call(client, "GET", _detail(x), "t_officer")
    assert status == 200
    assert d["score"] == 100 - 4.5 + 2 and d["may_add_events"] is False
    assert _line(d, "good_conduct")["points"] == 2.0

    before = await pool.fetchval("SELECT count(*) FROM credit_events WHERE company_id = $1", x)
    cases: list[tuple[str, str, Any, int, str, str | None]] = [
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 0, "reason": "r"},
            400,
            "invalid_field",
            "points",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 10.5, "reason": "r"},
            400,
            "invalid_field",
            "points",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 1.234, "reason": "r"},
            400,
            "invalid_field",
            "points",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "overfill", "points": 1, "reason": "r"},
            400,
            "invalid_field",
            "kind",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 1, "reason": "  "},
            400,
            "invalid_field",
            "reason",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 1},
            400,
            "invalid_field",
            "reason",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 1, "reason": "r", "day": "2999-01-01"},
            400,
            "invalid_field",
            "day",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 1, "reason": "r", "day": "2001-01-01"},
            400,
            "invalid_field",
            "day",
        ),
        (
            "t_admin",
            _events(x),
            {"kind": "good_conduct", "points": 1, "reason": "r", "extra": 1},
            400,
            "invalid_field",
            None,
        ),
        (
            "t_admin",
            _events(999_999_999),
            {"kind": "good_conduct", "points": 1, "reason": "r"},
            404,
            "not_found",
            None,
        ),
        (
            "t_regulator_jinshui",
            _events(y),
            {"kind": "good_conduct", "points": 1, "reason": "r"},
            404,
            "not_found",
            None,
        ),
        (
            "t_officer",
            _events(x),
            {"kind": "good_conduct", "points": 1, "reason": "r"},
            403,
            "forbidden",
            None,
        ),
        (
            "t_company_a",
            _events(x),
            {"kind": "good_conduct", "points": 1, "reason": "r"},
            403,
            "forbidden",
            None,
        ),
    ]
    for user, url, body, want, code, fld in cases:
        status, err = await call(client, "POST", url, user, body)
        assert status == want, (body, err)
        _error(err, code, fld)
    assert (
        await pool.fetchval("SELECT count(*) FROM credit_events WHERE company_id = $1", x) == before
    )


async def test_ranking_scope_search_and_grades(
    client: Any, pool: asyncpg.Pool, settings: Any, city: City, world: World
) -> None:
    tag = unique("Q")
    good = await city.company(f"Credit Ranking Gas {tag} Zhengzhou")
    bad = await city.company(f"信用排名二七燃气 {tag}", "410103")
    sb = await city.station(bad, "410103")
    await city.alert("suspected_illegal_fill", bad, sb, count=4)  # −20: 80, B
    await recompute(pool, settings, trigger="test")

    status, r = await call(client, "GET", RANKING, "t_admin", params={"q": tag})
    assert status == 200, r
    assert [i["company_id"] for i in r["items"]] == [good, bad]
    assert [(i["score"], i["grade"]) for i in r["items"]] == [(100.0, "A"), (80.0, "B")]
    assert r["items"][0]["rank"] < r["items"][1]["rank"]
    assert r["grades"] == {"A": 1, "B": 1, "C": 0, "D": 0}
    assert r["grading"]["mode"] == "thresholds" and r["computed"]["round"] >= 1
    status, r = await call(client, "GET", RANKING, "t_admin", params={"q": tag, "grade": "B"})
    assert [i["company_id"] for i in r["items"]] == [bad] and r["grades"]["A"] == 1
    # a misspelt name still finds the company (pg_trgm here; the migration installed it)
    assert await pool.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
    status, r = await call(
        client, "GET", RANKING, "t_admin", params={"q": f"Credt Rankng Gas {tag} Zhengzou"}
    )
    assert good in [i["company_id"] for i in r["items"]]
    # scope: the 金水区 regulator sees the 金水 company only; a company sees itself
    status, r = await call(client, "GET", RANKING, "t_regulator_jinshui", params={"q": tag})
    assert [i["company_id"] for i in r["items"]] == [good]
    status, r = await call(client, "GET", RANKING, "t_company_a")
    assert [i["company_id"] for i in r["items"]] == [world.companies["A"]]
    assert r["items"][0]["ranked_of"] >= 2
    status, r = await call(client, "GET", RANKING, "t_operator_a")
    assert status == 403
    status, r = await call(client, "GET", _detail(bad), "t_regulator_jinshui")
    assert status == 404
    # a company's store in the district brings it into the district regulator's view
    await city.station(bad, "410105")
    status, r = await call(client, "GET", _detail(bad), "t_regulator_jinshui")
    assert status == 200
    for params, name in (
        ({"grade": "E"}, "grade"),
        ({"district": "41"}, "district"),
        ({"sort": "x"}, "sort"),
    ):
        status, err = await call(client, "GET", RANKING, "t_admin", params=params)
        assert status == 400
        _error(err, "invalid_query", name)
    status, err = await call(client, "GET", _detail(good), "t_admin", params={"kind": "nope"})
    assert status == 400
    status, d = await call(
        client, "GET", _detail(bad), "t_admin", params={"kind": "overfill", "page_size": 1}
    )
    assert status == 200 and d["ledger"]["total"] == 0 and d["score"] == 80.0


async def test_public_search_shows_grades_only(
    client: Any, pool: asyncpg.Pool, settings: Any, city: City
) -> None:
    tag = unique("P")
    x = await city.company(f"公众查询燃气{tag}有限公司")
    sx = await city.station(x)
    await city.alert("suspected_illegal_fill", x, sx, count=5)  # 75: B
    await recompute(pool, settings, trigger="test")
    status, r = await call(client, "GET", PUBLIC, "anonymous", params={"q": tag})
    assert status == 200, r
    assert r["items"] == [
        {
            "name": f"公众查询燃气{tag}有限公司",
            "grade": "B",
            "as_of": city_today(settings).isoformat(),
        }
    ]
    status, err = await call(client, "GET", PUBLIC, "anonymous")
    assert status == 400
    _error(err, "invalid_query")
    status, err = await call(client, "GET", PUBLIC, "anonymous", params={"q": tag, "score": "1"})
    assert status == 400
    status, err = await call(client, "GET", PUBLIC, "anonymous", params={"q": "x" * 51})
    assert status == 400
    # rate-limited with the other public endpoints
    limit = settings.public.rate_limit_per_min
    statuses = [
        (await call(client, "GET", PUBLIC, "anonymous", params={"q": tag}))[0] for _ in range(limit)
    ]
    assert statuses[-1] == 429
