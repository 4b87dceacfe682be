"""The inspection list on a hand-built town (GET /api/v1/risk/sites): the ranking and its
reasons are what a person would expect, the officer of one district never sees another's
sites, and the CSV / XLSX hold the same rows.

The session database is shared: the town is a company of this module's own with sites whose
codes carry one prefix, and every assertion is about those rows (other tests' sites may rank
above, below or between them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from python_calamine import CalamineWorkbook

from tests.api.conftest import call, unique
from tests.conftest import World

LIST = "/api/v1/risk/sites?limit=500"
_msg = itertools.count(1)


@dataclass
class Town:
    prefix: str
    company: int
    sites: dict[str, int] = field(default_factory=dict)

    def code(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    def mine(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [it for it in items if it["code"].startswith(self.prefix + "-")]

    def keys(self, items: list[dict[str, Any]]) -> list[str]:
        return [it["code"].removeprefix(self.prefix + "-") for it in self.mine(items)]


async def _event(
    conn: asyncpg.Connection, ts: dt.datetime, kind: str, site: int, company: int, cyl: int | None
) -> None:
    await conn.execute(
        """INSERT INTO events (ts, msg_id, kind, site_id, company_id, cylinder_id, details)
           VALUES ($1, $2, $3, $4, $5, $6, '{}')""",
        ts,
        f"risk-test-{next(_msg)}-{unique()}",
        kind,
        site,
        company,
        cyl,
    )


async def _cylinder(conn: asyncpg.Connection, t: Town, next_inspection: dt.date) -> int:
    tag = unique("RISK")
    return int(
        await conn.fetchval(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                      next_inspection_date, scrap_date, district_code)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, '410105') RETURNING id""",
            tag,
            t.company,
            next_inspection - dt.timedelta(days=4 * 365),
            next_inspection,
            next_inspection + dt.timedelta(days=4 * 365),
        )
    )


async def _alert(
    conn: asyncpg.Connection,
    t: Town,
    site: str,
    kind: str,
    first: dt.datetime,
    last: dt.datetime,
    state: str,
) -> None:
    await conn.execute(
        """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                               district_code, first_at, last_at, state, resolved_at, details)
           VALUES ($1, 'critical', 'site', $2, $3, $4, '410105', $5, $6, $7,
                   CASE WHEN $7::text = 'resolved' THEN $6::timestamptz END, $8)""",
        kind,
        unique("SUBJ"),
        t.company,
        t.sites[site],
        first,
        last,
        state,
        # as ingest writes them (ingest/store/storage.py): the count and the permit
        {"full": 120, "permitted": 100} if kind == "overstock" else {},
    )


async def _complaint(
    conn: asyncpg.Connection, t: Town, cyl: int, at: dt.datetime, outcome: str | None = None
) -> None:
    await conn.execute(
        """INSERT INTO complaints (created_at, cylinder_id, company_id, district_code, text,
                                   state, outcome, closed_at)
           VALUES ($1, $2, $3, '410105', '气瓶缺斤短两', $4, $5, CASE WHEN $5::text IS NOT NULL THEN $1::timestamptz END)""",
        at,
        cyl,
        t.company,
        "closed" if outcome else "new",
        outcome,
    )


@pytest.fixture(scope="module")
async def town(pool: asyncpg.Pool, world: World) -> Town:
    return await build_town(pool, world)


async def build_town(pool: asyncpg.Pool, world: World) -> Town:
    """Sites of one company of its own, each with the facts its name says (now = the
    database's now; every fact but the old one within the 30-day window):

    ============  =================================================  ======
    site          facts                                              score
    ============  =================================================  ======
    B1 (二七区)   40 refused fills (capped at 30)                        30
    D1            40 refused fills (capped at 30)                        30
    S1 (store)    overstock alert over 5 days, resolved                  20
    D2            12 refused fills                                       12
    O1            2 overfilled fills, 1 open alert                        8
    C1 (store)    delivered a cylinder later complained about             5
    F1            filled that cylinder                                    5
    V1 (store)    dispatched an overdue cylinder twice                    2
    R1 (store)    took an overdue cylinder back; delivered one           —
                  before it was due; a complaint dismissed
    X1 (store)    overstock 45 to 40 days ago                             —
    Q1 (store)    nothing                                                 —
    ============  =================================================  ======
    """
    prefix = unique("RK")
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    async with pool.acquire() as conn, conn.transaction():
        company = await conn.fetchval(
            """INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105')
               RETURNING id""",
            prefix,
            f"风险测试燃气{prefix}",
        )
        t = Town(prefix, company)
        for key, kind, district in (
            ("B1", "filling_station", "410103"),
            ("D1", "filling_station", "410105"),
            ("S1", "store", "410105"),
            ("D2", "filling_station", "410105"),
            ("O1", "filling_station", "410105"),
            ("C1", "store", "410105"),
            ("F1", "filling_station", "410105"),
            ("V1", "store", "410105"),
            ("R1", "store", "410105"),
            ("X1", "store", "410105"),
            ("Q1", "store", "410105"),
        ):
            t.sites[key] = await conn.fetchval(
                """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
                   VALUES ($1, $2, $3, $4, $5, 34.8, 113.65) RETURNING id""",
                t.code(key),
                f"风险站点{key}",
                kind,
                company,
                district,
            )
        for key, n in (("B1", 40), ("D1", 40), ("D2", 12)):
            for i in range(n):
                await _event(
                    conn,
                    now - day - i * dt.timedelta(minutes=1),
                    "fill_refused",
                    t.sites[key],
                    company,
                    None,
                )
        await _alert(conn, t, "S1", "overstock", now - 4 * day, now, "resolved")
        await _alert(conn, t, "X1", "overstock", now - 45 * day, now - 40 * day, "resolved")
        await _alert(conn, t, "O1", "leak", now - 2 * day, now - 2 * day, "open")
        ok = await _cylinder(conn, t, world.today + 300 * day)
        for i in range(2):
            await conn.execute(
                """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, cylinder_id, tag,
                                      spec, net_kg, assessment)
                   VALUES ($1, $2, 'GUN-RISK', $3, $4, $5, 'RISK-TAG', 'YSP35.5', 16.2, 'overfill')""",
                now - (i + 1) * day,
                f"risk-fill-{next(_msg)}-{unique()}",
                t.sites["O1"],
                company,
                ok,
            )
        # a complaint about a cylinder F1 filled and C1 delivered; one dismissed about R1's
        await _event(conn, now - 5 * day, "fill", t.sites["F1"], company, ok)
        await _event(conn, now - 3 * day, "deliver", t.sites["C1"], company, ok)
        await _complaint(conn, t, ok, now - day)
        other = await _cylinder(conn, t, world.today + 300 * day)
        await _event(conn, now - 6 * day, "deliver", t.sites["R1"], company, other)
        await _complaint(conn, t, other, now - 2 * day, "not_upheld")
        # overdue for ten days, dispatched twice by V1 and taken back by R1
        overdue = await _cylinder(conn, t, world.today - 10 * day)
        await _event(conn, now - 2 * day, "dispatch", t.sites["V1"], company, overdue)
        await _event(conn, now - day, "dispatch", t.sites["V1"], company, overdue)
        await _event(conn, now - day, "return", t.sites["R1"], company, overdue)
        # due yesterday: delivered by R1 five days ago, when it was still in date
        due = await _cylinder(conn, t, world.today - day)
        await _event(conn, now - 5 * day, "deliver", t.sites["R1"], company, due)
    return t


async def _list(client: Any, user: str, query: str = "") -> dict[str, Any]:
    status, body = await call(client, "GET", LIST + query, user)
    assert status == 200, body
    return dict(body)


async def test_the_ranking_is_what_a_person_expects(client: Any, town: Town) -> None:
    body = await _list(client, "t_admin")
    assert town.keys(body["items"]) == ["B1", "D1", "S1", "D2", "O1", "C1", "F1", "V1"]
    scores = {it["code"]: it["score"] for it in town.mine(body["items"])}
    assert [scores[town.code(k)] for k in ("B1", "D1", "S1", "D2", "O1", "C1", "F1", "V1")] == [
        30,
        30,
        20,
        12,
        8,
        5,
        5,
        2,
    ]
    ranks = [it["rank"] for it in body["items"]]
    assert ranks == list(range(1, len(ranks) + 1))
    assert body["window_days"] == 30 and body["ranked_of"] >= 8
    assert {f["factor"] for f in body["factors"]} == {
        "denied_attempt",
        "overfill",
        "overstock_day",
        "open_alert",
        "overdue_cylinder",
        "complaint",
    }


async def test_each_site_says_why(client: Any, town: Town) -> None:
    items = {it["code"]: it for it in town.mine((await _list(client, "t_admin"))["items"])}
    d1 = items[town.code("D1")]
    (denied,) = d1["reasons"]
    assert (denied["factor"], denied["count"], denied["counted"], denied["points"]) == (
        "denied_attempt",
        40,
        30,
        30,
    )
    assert denied["text_en"] == (
        "40 fill attempts refused at its guns in the last 30 days (the score counts 30)"
    )
    assert "40" in denied["text"]
    s1 = items[town.code("S1")]
    assert s1["counts"]["overstock_day"] == 5
    assert s1["reasons"][0]["text_en"] == (
        "over its permitted full-cylinder storage on 5 days of the last 30"
    )
    o1 = items[town.code("O1")]
    assert [(r["factor"], r["count"]) for r in o1["reasons"]] == [
        ("overfill", 2),
        ("open_alert", 1),
    ]
    assert o1["reasons"][1]["text"] == "尚有1条告警未解除"
    for key in ("C1", "F1"):
        assert items[town.code(key)]["counts"]["complaint"] == 1, key
    v1 = items[town.code("V1")]
    assert [(r["factor"], r["count"]) for r in v1["reasons"]] == [("overdue_cylinder", 1)]
    assert v1["reasons"][0]["text_en"] == "1 overdue cylinder handled there in the last 30 days"
    assert v1["site_id"] == town.sites["V1"] and v1["name"] == "风险站点V1"
    assert v1["company_code"] == town.prefix and v1["district_code"] == "410105"


async def test_an_officer_sees_only_their_districts(client: Any, town: Town) -> None:
    """t_officer and the district regulator are 金水区's: B1 (二七区) is never theirs, not even
    when they ask for 二七区 by name."""
    for user in ("t_officer", "t_regulator_jinshui"):
        body = await _list(client, user)
        assert town.keys(body["items"]) == ["D1", "S1", "D2", "O1", "C1", "F1", "V1"], user
        assert all(it["district_code"] == "410105" for it in body["items"]), user
        other = await _list(client, user, "&district=410103")
        assert other["items"] == [] and other["ranked_of"] == 0, user
    city = await _list(client, "t_regulator", "&district=410103")
    assert town.keys(city["items"]) == ["B1"]


async def test_limit_keeps_the_top(client: Any, town: Town) -> None:
    full = await _list(client, "t_officer")
    status, top = await call(client, "GET", "/api/v1/risk/sites?limit=2", "t_officer")
    assert status == 200
    assert [it["code"] for it in top["items"]] == [it["code"] for it in full["items"][:2]]
    assert top["ranked_of"] == full["ranked_of"]


async def test_csv_and_xlsx_hold_the_same_rows(client: Any, town: Town) -> None:
    body = await _list(client, "t_officer")
    status, raw = await call(client, "GET", LIST + "&format=csv", "t_officer")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["code"] for r in rows] == [it["code"] for it in body["items"]]
    o1 = next(r for r in rows if r["code"] == town.code("O1"))
    assert (o1["overfill"], o1["open_alert"], float(o1["score"])) == ("2", "1", 8.0)
    assert o1["reasons_en"].startswith("2 cylinders overfilled") and "；" in o1["reasons"]
    status, raw = await call(client, "GET", LIST + "&format=xlsx", "t_officer")
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw))
    table = sheet.get_sheet_by_index(0).to_python()
    header = table[0]
    codes = [r[header.index("code")] for r in table[1:]]
    assert codes == [it["code"] for it in body["items"]]


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=501", "?limit=many", "?district=41", "?format=pdf", "?districts=410105"],
)
async def test_bad_input_is_a_400(client: Any, query: str) -> None:
    status, body = await call(client, "GET", "/api/v1/risk/sites" + query, "t_officer")
    assert status == 400, body
    assert body["error"]["code"]
