"""Fill checks on the API (issue 11 item 6): each fill's failed items, the summary of failed
checks per company and per item, the fills behind a count, and fills as CSV/XLSX files.

The fills are hand-built for two companies of this module's own, on a day long past (so a
period filter holds them and nothing else); the expected counts come from the domain's rule
(``server.domain.filling.checks_failed``) over the same check lists, so the SQL that counts
failures is checked against the Python that judges one fill.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import secrets
import zoneinfo
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import python_calamine

from server.api.fill_checks import KNOWN_CHECKS
from server.domain.filling import checks_failed
from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from server.kernel.settings import Settings
from server.kernel.tabular import CSV_BOM
from tests.api.conftest import call

PRE_OK = dict.fromkeys(PRE_CHECK_ITEMS, True)
POST_OK = dict.fromkeys(POST_CHECK_ITEMS, True)

# (company, pre_check, post_check) of each hand-built fill
PLAN: tuple[tuple[str, dict[str, Any] | None, dict[str, Any] | None], ...] = (
    ("X", PRE_OK, POST_OK),
    ("X", {**PRE_OK, "markings_colour": False, "residual_pressure": None}, POST_OK),
    ("X", PRE_OK, {**POST_OK, "no_leak_at_valve": False}),
    ("X", None, None),  # no checks recorded: not checked, nothing failed
    ("X", {**PRE_OK, "valve": False}, POST_OK),  # an item beyond the domain's list
    ("X", {**PRE_OK, "own_cylinder": "yes"}, None),  # only true passes
    ("X", {**PRE_OK, "markings_colour": False}, {**POST_OK, "seals_intact": False}),
    ("Y", {**PRE_OK, "markings_colour": False}, POST_OK),
    ("Y", PRE_OK, POST_OK),
    ("Y", {**PRE_OK, "gas_smell": True}, POST_OK),  # an item beyond the list, passed
)


@dataclass(frozen=True)
class Fills:
    codes: dict[str, str]
    ids: dict[str, int]
    stations: dict[str, int]
    start: dt.datetime
    end: dt.datetime
    msg_ids: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any] | None]]

    def period(self) -> str:
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}".replace("+", "%2B")


@pytest.fixture(scope="module")
async def fills(pool: asyncpg.Pool) -> Fills:
    suffix = secrets.token_hex(4).upper()
    # a day of its own, years back: the period filter holds these fills and no other test's
    day = dt.datetime(2015, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        days=secrets.randbelow(3000), seconds=secrets.randbelow(86_400)
    )
    codes, ids, stations = {}, {}, {}
    for key in ("X", "Y"):
        codes[key] = f"FCK{key}-{suffix}"
        ids[key] = await pool.fetchval(
            "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
            codes[key],
            f"充装检查{key}{suffix}",
        )
        stations[key] = await pool.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
               VALUES ($1, $2, 'filling_station', $3, '410105', 34.8, 113.65) RETURNING id""",
            f"FCKS{key}-{suffix}",
            f"检查站{key}",
            ids[key],
        )
    msg_ids = {}
    for i, (key, pre, post) in enumerate(PLAN):
        msg = f"fck-{suffix}-{i}"
        failed = checks_failed(pre, post)
        await pool.execute(
            """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code,
                   tag, spec, net_kg, result, operator, pre_check, post_check)
               VALUES ($1, $2, $3, $4, $5, '410105', $6, 'YSP35.5', 14.5, $7, '=cmd()', $8, $9)""",
            day + dt.timedelta(minutes=i),
            msg,
            f"GUN-FCK{key}",
            stations[key],
            ids[key],
            f"FCKTAG-{suffix}-{i}",
            "aborted" if failed else "completed",
            pre,
            post,
        )
        msg_ids[msg] = (key, pre, post)
    return Fills(codes, ids, stations, day, day + dt.timedelta(hours=1), msg_ids)


def expected_items(fills: Fills, key: str) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for k, pre, post in fills.msg_ids.values():
        if k == key:
            out.update(checks_failed(pre, post))
    return out


async def test_summary_counts_failed_items_per_company_and_item(client: Any, fills: Fills) -> None:
    status, body = await call(client, "GET", f"/api/v1/fills/check-summary?{fills.period()}")
    assert status == 200, body
    mine = {
        c["company_code"]: c for c in body["companies"] if c["company_id"] in fills.ids.values()
    }
    x, y = mine[fills.codes["X"]], mine[fills.codes["Y"]]
    assert (x["fills"], x["checked"], x["failed_fills"]) == (7, 6, 5)
    assert x["items"] == dict(expected_items(fills, "X"))
    assert x["items"] == {
        "pre:markings_colour": 2,
        "pre:residual_pressure": 1,
        "pre:valve": 1,
        "pre:own_cylinder": 1,
        "post:no_leak_at_valve": 1,
        "post:seals_intact": 1,
    }
    assert x["failed_items"] == 7
    assert (y["fills"], y["checked"], y["failed_fills"], y["failed_items"]) == (3, 3, 1, 1)
    assert y["items"] == {"pre:markings_colour": 1}
    # the worse company first
    codes = [c["company_code"] for c in body["companies"]]
    assert codes.index(fills.codes["X"]) < codes.index(fills.codes["Y"])
    # every known item is listed, zeros included, in the domain's order, the extra one after
    checks = [i["check"] for i in body["items"]]
    assert checks[: len(KNOWN_CHECKS)] == list(KNOWN_CHECKS)
    assert "pre:valve" in checks[len(KNOWN_CHECKS) :]
    assert body["from"].startswith(fills.start.isoformat()[:19])


async def test_summary_filters_and_scope(client: Any, fills: Fills) -> None:
    base = f"/api/v1/fills/check-summary?{fills.period()}"
    for company in (fills.codes["X"], str(fills.ids["X"])):
        status, body = await call(client, "GET", f"{base}&company={company}")
        assert status == 200
        assert [c["company_code"] for c in body["companies"]] == [fills.codes["X"]]
        by_item = {i["check"]: i["failed"] for i in body["items"]}
        assert by_item["pre:markings_colour"] == 2 and by_item["post:filling_label_attached"] == 0
        assert body["totals"] == {"fills": 7, "checked": 6, "failed_fills": 5, "failed_items": 7}
    status, body = await call(client, "GET", f"{base}&station={fills.stations['Y']}")
    assert body["totals"]["failed_items"] == 1
    # another company's admin sees none of them; a district regulator of 410105 sees them
    status, body = await call(client, "GET", base, "t_company_a")
    assert status == 200
    assert not {c["company_id"] for c in body["companies"]} & set(fills.ids.values())
    status, body = await call(client, "GET", base, "t_regulator_jinshui")
    assert {c["company_id"] for c in body["companies"]} >= set(fills.ids.values())
    # without `from`: the last 30 days, which hold none of these fills
    status, body = await call(
        client, "GET", f"/api/v1/fills/check-summary?company={fills.codes['X']}"
    )
    assert status == 200 and body["totals"]["fills"] == 0 and body["to"] is None
    # as a file: one row per company, a column per item
    status, raw = await call(client, "GET", f"{base}&company={fills.codes['X']}&format=csv")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(raw[len(CSV_BOM) :].decode())))
    assert len(rows) == 1
    assert rows[0]["company_code"] == fills.codes["X"]
    assert (rows[0]["failed_fills"], rows[0]["pre:markings_colour"], rows[0]["pre:valve"]) == (
        "5",
        "2",
        "1",
    )


async def test_bad_queries_are_400(client: Any, fills: Fills) -> None:
    for path, field in (
        ("/api/v1/fills/check-summary?tag=x", "tag"),
        ("/api/v1/fills/check-summary?from=yesterday", "from"),
        ("/api/v1/fills/check-summary?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "to"),
        ("/api/v1/fills/check-summary?format=pdf", "format"),
        ("/api/v1/fills?failed_check=bogus", "failed_check"),
        ("/api/v1/fills?failed_check=mid:x", "failed_check"),
        ("/api/v1/fills?failed_check=pre:", "failed_check"),
        ("/api/v1/fills?format=ods", "format"),
    ):
        status, body = await call(client, "GET", path)
        assert status == 400, (path, body)
        assert body["error"]["details"]["field"] == field, path
    status, _ = await call(client, "GET", "/api/v1/fills/check-summary", "t_inspector")
    assert status == 403


async def test_each_fill_names_its_failed_checks_and_leads_from_a_count(
    client: Any, fills: Fills
) -> None:
    base = f"/api/v1/fills?{fills.period()}&company={fills.ids['X']}&page_size=50"
    status, body = await call(client, "GET", base)
    assert status == 200 and body["total"] == 7
    for item in body["items"]:
        _, pre, post = fills.msg_ids[item["msg_id"]]
        assert item["failed_checks"] == list(checks_failed(pre, post))
        assert item["pre_check"] == pre and item["post_check"] == post
        assert item["company_code"] == fills.codes["X"]
    for check, n in (*expected_items(fills, "X").items(), ("any", 5), ("post:seals_intact", 1)):
        status, body = await call(client, "GET", f"{base}&failed_check={check}")
        assert status == 200 and body["total"] == n, check
        if check != "any":
            assert all(check in i["failed_checks"] for i in body["items"]), check
    status, body = await call(client, "GET", f"{base}&failed_check=pre:inspection_in_date")
    assert body["total"] == 0


def _csv(raw: bytes) -> list[dict[str, str]]:
    assert raw.startswith(CSV_BOM)
    return list(csv.DictReader(io.StringIO(raw[len(CSV_BOM) :].decode())))


def _xlsx(raw: bytes) -> list[dict[str, Any]]:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw))
    table = book.get_sheet_by_index(0).to_python()
    header = [str(h) for h in table[0]]
    return [dict(zip(header, r, strict=True)) for r in table[1:]]


async def test_exports_hold_the_json_rows(client: Any, fills: Fills, settings: Settings) -> None:
    base = f"/api/v1/fills?{fills.period()}&district=410105&station={fills.stations['X']}"
    status, body = await call(client, "GET", f"{base}&page_size=50")
    assert status == 200 and body["total"] == 7
    zone = zoneinfo.ZoneInfo(settings.alerts.timezone)
    want = [
        {
            "msg_id": i["msg_id"],
            "time": dt.datetime.fromisoformat(i["ts"]).astimezone(zone).isoformat(),
            "tag": i["tag"],
            "company_code": i["company_code"],
            "station_name": i["station_name"],
            "net_kg": float(i["net_kg"]),
            "result": i["result"],
            "failed_checks": "; ".join(i["failed_checks"]),
            "operator": i["operator"],
        }
        for i in body["items"]
    ]
    status, raw = await call(client, "GET", f"{base}&format=csv")
    assert status == 200
    got = [{k: float(r[k]) if k == "net_kg" else r[k] for k in want[0]} for r in _csv(raw)]
    # formula-like text is neutralised in the file ('=cmd()' → "'=cmd()")
    assert all(r["operator"] == "'=cmd()" for r in got)
    assert [{**r, "operator": "=cmd()"} for r in got] == want
    status, raw = await call(client, "GET", f"{base}&format=xlsx")
    assert status == 200
    rows = _xlsx(raw)
    assert [r["msg_id"] for r in rows] == [w["msg_id"] for w in want]
    assert [r["failed_checks"] or "" for r in rows] == [w["failed_checks"] for w in want]
    assert [float(r["net_kg"]) for r in rows] == [w["net_kg"] for w in want]
    assert [r["time"] for r in rows] == [w["time"] for w in want]
    assert all(r["operator"] == "'=cmd()" for r in rows)
    # filters reach the file: the failed ones only
    status, raw = await call(client, "GET", f"{base}&format=csv&failed_check=any")
    assert {r["msg_id"] for r in _csv(raw)} == {w["msg_id"] for w in want if w["failed_checks"]}
    # the scope reaches it too: company A's admin gets a header and no row
    status, raw = await call(client, "GET", f"{base}&format=csv", "t_company_a")
    assert status == 200 and _csv(raw) == []
