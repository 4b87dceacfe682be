"""The activity reports (server/api/report_activity.py, report_activity_abnormal.py,
report_activity_legacy.py; docs/API.md "Reports"): on a company of the test's own, every
count against an independent count of the rows written, the previous period, every
drill-down's total against its cell, the scope, and the bad input each refuses."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import call
from tests.api.report_activity_city import (
    Mini,
    add_alert,
    add_fill,
    add_refusal,
    mini_city,
    refreshed,
)


def _iso(d: dt.date) -> str:
    return d.isoformat()


async def _fills_city(pool: Any, settings: Any) -> Mini:
    """Fills over the last 13 days (the period: the last 7, today live; the previous period:
    the 6 before), at two stations, of every result and assessment."""
    m = await mini_city(pool, settings)
    plan = [
        (0, 0, "completed", "ok", "14.50"),
        (0, 1, "completed", "underfill", "13.20"),
        (1, 0, "aborted", "overfill", "15.40"),
        (1, 0, "completed", "overfill", "15.10"),
        (2, 1, "completed", "ok", "14.90"),
        (4, 0, "aborted", "ok", "3.00"),
        (6, 1, "completed", "ok", "14.70"),
        (7, 0, "completed", "ok", "14.80"),  # previous period
        (9, 1, "completed", "underfill", "12.00"),  # previous period
        (12, 0, "completed", "overfill", "16.00"),  # previous period
        (20, 0, "completed", "ok", "14.50"),  # before both
    ]
    for days_ago, station, result, assessment, net in plan:
        await add_fill(pool, m, m.at(days_ago), station, result, assessment, net)
    return m


def _count(fills: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "fills": len(fills),
        "completed": sum(f["result"] == "completed" for f in fills),
        "aborted": sum(f["result"] != "completed" for f in fills),
        "overfill": sum(f["assessment"] == "overfill" for f in fills),
        "underfill": sum(
            f["assessment"] == "underfill" and f["result"] == "completed" for f in fills
        ),
        "net_kg": sum((f["net_kg"] for f in fills if f["result"] == "completed"), Decimal(0)),
    }


def _same(got: dict[str, Any], want: dict[str, Any]) -> None:
    for k, v in want.items():
        assert Decimal(str(got[k])) == Decimal(str(v)), (k, got, want)


async def test_fill_volume_counts_previous_and_drill(client: Any, pool: Any, settings: Any) -> None:
    m = await _fills_city(pool, settings)
    await refreshed(pool, settings)
    first, last = m.today - dt.timedelta(days=6), m.today
    period = f"from={_iso(first)}&to={_iso(last)}&company={m.company_code}"
    status, body = await call(client, "GET", f"/api/v1/reports/fill-volume?{period}")
    assert status == 200, body
    in_period = [f for f in m.fills if first <= f["day"] <= last]
    before = [f for f in m.fills if first - dt.timedelta(days=7) <= f["day"] < first]
    # per day (group=day, by=company): one row per day with fills
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for f in in_period:
        by_day.setdefault(f["day"], []).append(f)
    assert [r["period"] for r in body["rows"]] == [_iso(d) for d in sorted(by_day)]
    for row in body["rows"]:
        assert row["code"] == m.company_code
        _same(row, _count(by_day[dt.date.fromisoformat(row["period"])]))
    _same(body["totals"], _count(in_period))
    _same(body["previous"], _count(before))

    # every count of every row opens exactly the fills it counts
    drillable = [c["key"] for c in body["columns"] if c["drill"]]
    assert drillable == ["fills", "completed", "aborted", "overfill", "underfill"]
    for row in body["rows"]:
        for key in drillable:
            status, drill = await call(
                client,
                "GET",
                f"/api/v1/reports/fill-volume/drill?{period}&measure={key}"
                f"&period={row['period']}&code={m.company_code}&page_size=50",
            )
            assert status == 200, drill
            assert drill["total"] == row[key], (row["period"], key)
            assert drill["target"] == "fills"
            assert {i["station_code"] for i in drill["items"]} <= set(m.station_codes)

    # per station per week
    status, body = await call(
        client, "GET", f"/api/v1/reports/fill-volume?{period}&by=station&group=week"
    )
    assert status == 200, body
    weeks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in in_period:
        monday = f["day"] - dt.timedelta(days=f["day"].weekday())
        weeks.setdefault((_iso(monday), m.station_codes[f["station"]]), []).append(f)
    assert {(r["period"], r["code"]) for r in body["rows"]} == set(weeks)
    for row in body["rows"]:
        _same(row, _count(weeks[(row["period"], row["code"])]))
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/fill-volume/drill?{period}&by=station&group=week&measure=fills"
            f"&period={row['period']}&code={row['code']}",
        )
        assert drill["total"] == row["fills"]

    # per district: the whole company is in one
    status, body = await call(client, "GET", f"/api/v1/reports/fill-volume?{period}&by=district")
    assert [r["code"] for r in body["rows"]] == ["410105"] * len(by_day)

    # the CSV holds the same numbers under the caller's labels
    status, raw = await call(
        client, "GET", f"/api/v1/reports/fill-volume?{period}&group=month&format=csv"
    )
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[:4] == ["期间", "编码", "名称", "充装瓶次"]
    assert sum(int(line.split(",")[3]) for line in lines[1:]) == len(in_period)


async def test_fill_volume_scope(client: Any, pool: Any, settings: Any) -> None:
    """A district regulator counts the company's fills in its district; another company's
    admin none of them, whatever company it names."""
    m = await _fills_city(pool, settings)
    period = f"from={_iso(m.today - dt.timedelta(days=6))}&company={m.company_code}"
    _, mine = await call(client, "GET", f"/api/v1/reports/fill-volume?{period}")
    status, jinshui = await call(
        client, "GET", f"/api/v1/reports/fill-volume?{period}", "t_regulator_jinshui"
    )
    assert status == 200 and jinshui["totals"] == mine["totals"]
    assert mine["totals"]["fills"] > 0
    status, other = await call(
        client, "GET", f"/api/v1/reports/fill-volume?{period}", "t_company_a"
    )
    assert status == 200 and other["rows"] == [] and other["totals"]["fills"] == 0


async def test_overstock_days_peaks_and_drill(client: Any, pool: Any, settings: Any) -> None:
    m = await mini_city(pool, settings, "OS")
    # an overstock lasting three days, its count rising and falling (each write of the alert
    # is sampled: the day's peak is kept), then resolved
    aid = await add_alert(
        pool, m, "overstock", m.at(5, 10), details={"full": 120, "permitted": 100}
    )
    for days_ago, full in ((4, 150), (4, 140), (3, 110)):
        await pool.execute(
            """UPDATE alerts SET last_at = $2, count = count + 1,
                                 details = details || jsonb_build_object('full', $3::int)
                WHERE id = $1""",
            aid,
            m.at(days_ago, 12, full % 60),
            full,
        )
    await pool.execute("UPDATE alerts SET state = 'resolved' WHERE id = $1", aid)
    # another, from yesterday and still open: yesterday has no sample (a bulk-loaded alert),
    # its count is the alert's own
    await add_alert(
        pool,
        m,
        "overstock",
        m.at(1, 8),
        m.at(0, 8),
        details={"full": 130, "permitted": 100},
    )
    # the other station: one day in the previous period
    await add_alert(
        pool, m, "overstock", m.at(9, 9), station=1, details={"full": 101, "permitted": 100}
    )
    await refreshed(pool, settings)
    first = m.today - dt.timedelta(days=6)
    period = f"from={_iso(first)}&company={m.company_code}"
    status, body = await call(client, "GET", f"/api/v1/reports/overstock?{period}")
    assert status == 200, body
    s1 = m.station_codes[0]
    want = {5: 120, 4: 150, 3: 110, 1: 130, 0: 130}
    got = {(m.today - dt.date.fromisoformat(r["period"])).days: r for r in body["rows"]}
    assert set(got) == set(want)
    for days_ago, peak in want.items():
        row = got[days_ago]
        assert row["site_code"] == s1 and row["days"] == 1
        assert (row["peak_full"], row["permitted"], row["excess"]) == (peak, 100, peak - 100)
    assert body["totals"]["days"] == 5 and body["totals"]["peak_full"] == 150
    assert body["previous"]["days"] == 1

    # a day's cell opens the alert covering it
    for row in body["rows"]:
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/overstock/drill?{period}&measure=days&period={row['period']}"
            f"&site_code={s1}",
        )
        assert status == 200, drill
        assert drill["total"] == 1 and drill["items"][0]["kind"] == "overstock"

    # by week: the days of a week add up, the peak is the week's highest
    status, body = await call(client, "GET", f"/api/v1/reports/overstock?{period}&group=week")
    week_days: Counter[str] = Counter()
    week_peak: dict[str, int] = {}
    for days_ago, peak in want.items():
        day = m.today - dt.timedelta(days=days_ago)
        monday = _iso(day - dt.timedelta(days=day.weekday()))
        week_days[monday] += 1
        week_peak[monday] = max(week_peak.get(monday, 0), peak)
    assert {r["period"]: r["days"] for r in body["rows"]} == dict(week_days)
    assert {r["period"]: r["peak_full"] for r in body["rows"]} == week_peak
    for row in body["rows"]:
        # the alerts behind a week's days cover exactly those days of it
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/overstock/drill?{period}&group=week&measure=days"
            f"&period={row['period']}&site_code={s1}",
        )
        covered: set[dt.date] = set()
        start = max(dt.date.fromisoformat(row["period"]), first)
        end = min(start + dt.timedelta(days=7 - start.weekday()), m.today + dt.timedelta(1))
        for item in drill["items"]:
            a = dt.datetime.fromisoformat(item["first_at"]).astimezone(m.zone).date()
            b = dt.datetime.fromisoformat(item["last_at"]).astimezone(m.zone).date()
            covered |= {
                a + dt.timedelta(days=i)
                for i in range((b - a).days + 1)
                if start <= a + dt.timedelta(days=i) < end
            }
        assert len(covered) == row["days"], row


async def _abnormal_city(pool: Any, settings: Any) -> Mini:
    m = await mini_city(pool, settings, "AB")
    for days_ago, reasons in (
        (0, ["not_owner"]),
        (1, ["not_owner", "scrapped"]),
        (2, ["overdue_inspection"]),
        (3, ["unknown_tag"]),
        (10, ["not_owner"]),  # previous period
    ):
        await add_refusal(pool, m, m.at(days_ago), reasons)
    for days_ago, assessment, result in (
        (0, "overfill", "aborted"),
        (2, "overfill", "completed"),
        (2, "underfill", "completed"),
        (3, "underfill", "aborted"),  # an aborted underfill is no underfill
        (9, "overfill", "completed"),  # previous period
    ):
        await add_fill(pool, m, m.at(days_ago), 0, result, assessment, "15.00")
    for days_ago, kind in (
        (0, "repeat_fill"),
        (1, "repeat_fill"),
        (1, "cloned_tag"),
        (4, "out_of_region"),
        (2, "leak"),  # a household's emergency: not the company's conduct
        (20, "repeat_fill"),  # before both periods
    ):
        await add_alert(pool, m, kind, m.at(days_ago), count=3)
    return m


async def test_abnormal_behaviour_matrix_and_drill(client: Any, pool: Any, settings: Any) -> None:
    m = await _abnormal_city(pool, settings)
    await refreshed(pool, settings)
    period = f"from={_iso(m.today - dt.timedelta(days=6))}&company={m.company_code}"
    status, body = await call(client, "GET", f"/api/v1/reports/abnormal-behaviour?{period}")
    assert status == 200, body
    (row,) = body["rows"]
    want = {
        "refused_not_owner": 2,
        "refused_scrapped": 1,
        "refused_overdue_inspection": 1,
        "refused_unknown_tag": 1,
        "refused_not_in_service": 0,
        "overfill": 2,
        "underfill": 1,
        "repeat_fill": 2,
        "cloned_tag": 1,
        "out_of_region": 1,
        "overstock": 0,
    }
    for k, v in want.items():
        assert row[k] == v, k
    assert row["total"] == sum(want.values())
    assert "leak" not in row
    assert body["previous"]["refused_not_owner"] == 1 and body["previous"]["overfill"] == 1
    for col in body["columns"]:
        if not col["drill"]:
            continue
        status, drill = await call(
            client,
            "GET",
            f"/api/v1/reports/abnormal-behaviour/drill?{period}&measure={col['key']}"
            f"&company_code={m.company_code}",
        )
        assert status == 200, (col["key"], drill)
        assert drill["total"] == row[col["key"]], col["key"]
        assert drill["target"] == col["drill"]


async def test_legacy_reports_read_from_the_rollups(client: Any, pool: Any, settings: Any) -> None:
    """fills-daily, denials and anomalies-by-company answer their earlier keys, with counts
    of the rows written (closed days from the rollups, today live)."""
    m = await _abnormal_city(pool, settings)
    await add_fill(pool, m, m.at(1), 1, "completed", "ok", "14.50")
    await refreshed(pool, settings)
    period = f"from={_iso(m.today - dt.timedelta(days=6))}&company={m.company_code}"
    status, body = await call(client, "GET", f"/api/v1/reports/fills-daily?{period}")
    assert status == 200 and {"rows", "from", "to"} <= set(body)
    recent = [f for f in m.fills if f["day"] >= m.today - dt.timedelta(days=6)]
    assert sum(r["fills"] for r in body["rows"]) == len(recent)
    assert set(body["rows"][0]) == {
        "day",
        "station_id",
        "station_code",
        "station_name",
        "company_id",
        "company_name",
        "fills",
        "completed",
        "aborted",
        "net_kg",
    }
    per_station_day = Counter((_iso(f["day"]), m.station_codes[f["station"]]) for f in recent)
    assert {(r["day"], r["station_code"]): r["fills"] for r in body["rows"]} == dict(
        per_station_day
    )
    status, body = await call(client, "GET", f"/api/v1/reports/denials?{period}")
    reasons: Counter[str] = Counter()
    for r in body["rows"]:
        reasons[r["reason"]] += r["attempts"]
    assert reasons == Counter(
        {"not_owner": 2, "scrapped": 1, "overdue_inspection": 1, "unknown_tag": 1}
    )
    status, body = await call(client, "GET", f"/api/v1/reports/anomalies-by-company?{period}")
    kinds = {r["kind"]: r for r in body["rows"]}
    assert {k: r["alerts"] for k, r in kinds.items()} == {
        "repeat_fill": 2,
        "cloned_tag": 1,
        "out_of_region": 1,
        "leak": 1,
    }
    assert kinds["repeat_fill"]["occurrences"] == 6 and kinds["repeat_fill"]["unresolved"] == 2
    status, raw = await call(client, "GET", f"/api/v1/reports/denials?{period}&format=csv")
    assert raw.decode("utf-8-sig").splitlines()[0] == (
        "day,station_id,station_code,station_name,company_id,company_name,reason,attempts"
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("fill-volume?by=province", "by"),
        ("fill-volume?group=fortnight", "group"),
        ("fill-volume?from=2026-02-30", "from"),
        ("fill-volume?station=" + "x" * 80, "station"),
        ("fill-volume/drill?measure=net_kg", "measure"),
        ("fill-volume/drill?measure=fills&period=someday", "period"),
        ("fill-volume/drill?measure=fills&by=planet", "by"),
        ("overstock/drill?measure=peak_full", "measure"),
        ("overstock/drill?measure=days&period=2026-13-01", "period"),
        ("abnormal-behaviour/drill?measure=total", "measure"),
        ("abnormal-behaviour/drill?measure=refused_bribery", "measure"),
        ("abnormal-behaviour?group=week", "group"),
        ("fills-daily?station=1", "station"),
        ("denials?to=9999-12-31", "to"),
    ],
)
async def test_bad_input_is_a_400(client: Any, path: str, field: str) -> None:
    status, body = await call(client, "GET", f"/api/v1/reports/{path}")
    assert status == 400, body
    assert body["error"]["details"]["field"] == field


async def test_catalogue_lists_the_activity_reports(client: Any) -> None:
    status, body = await call(client, "GET", "/api/v1/reports", "t_company_a")
    assert status == 200
    specs = {r["name"]: r for r in body["items"] if "columns" in r}
    assert specs["fill-volume"]["chart"]["kind"] == "line"
    assert specs["fill-volume"]["params"] == ["by"]
    assert specs["overstock"]["chart"] == {
        "kind": "heat",
        "x": "period",
        "series": ["peak_full"],
        "y": "site_code",
    }
    assert specs["abnormal-behaviour"]["chart"]["kind"] == "stacked_bar"
    for name in ("fills-daily", "denials", "anomalies-by-company", "safety-inspections"):
        assert name in specs, name
