"""Scheduled reports (server/api/report_schedules.py, server/api/report_scheduler.py; docs/API.md
"Scheduled reports"): a schedule made over HTTP runs once per closed period however many
rounds and processes ask, its file opens with the report's rows, it lands in the owner's
inbox with the file attached, a lost run is taken again, and nobody else reads it."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from server.api.report_scheduler import schedule_round
from server.domain.report_periods import last_closed, period_label
from server.kernel.clock import city_today
from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

DAYS = st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2099, 12, 31))


@given(DAYS)
def test_periods_are_whole_and_closed(today: dt.date) -> None:
    d0, d1 = last_closed("daily", today)
    assert d0 == d1 == today - dt.timedelta(days=1)
    w0, w1 = last_closed("weekly", today)
    assert w0.weekday() == 0 and (w1 - w0).days == 6 and w1 < today
    assert (today - w1).days <= 7
    m0, m1 = last_closed("monthly", today)
    assert m0.day == 1 and m1 < today and (m1 + dt.timedelta(days=1)).day == 1
    assert (m1 + dt.timedelta(days=1)) == today.replace(day=1)
    assert period_label("weekly", w0, w1).startswith(str(w0.isocalendar()[0]))


async def _company_with_fleet(pool: Any, world: World, n: int) -> str:
    code = unique("SCHED")
    cid = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105') RETURNING id",
        code,
        "定期报表测试" + code,
    )
    for i in range(n):
        await pool.execute(
            """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                   next_inspection_date, scrap_date, district_code)
               VALUES ($1, $2, 'YSP35.5', $3, $4, $5, '410105')""",
            f"{code}-{i}",
            cid,
            world.today - dt.timedelta(days=400),
            world.today + dt.timedelta(days=300),
            world.today + dt.timedelta(days=3000),
        )
    return code


async def test_schedule_runs_once_and_lands_in_the_inbox(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    code = await _company_with_fleet(pool, world, 3)
    await refreshed(pool, settings)  # holdings counts on the census (migration 0226)
    status, made = await call(
        client,
        "POST",
        "/api/v1/report-schedules",
        "t_regulator",
        {"report": "holdings", "frequency": "daily", "format": "xlsx", "params": {"company": code}},
    )
    assert status == 201, made
    sid = made["id"]
    assert made["last_run"] is None

    # three processes' rounds at once: one run for the period, not three
    await asyncio.gather(*(schedule_round(pool, settings, only=sid) for _ in range(3)))
    await schedule_round(pool, settings, only=sid)
    runs = await pool.fetch("SELECT * FROM report_runs WHERE schedule_id = $1", sid)
    assert len(runs) == 1
    run = runs[0]
    assert run["state"] == "done", run["error"]
    # the city's yesterday: from 16:00 UTC Zhengzhou is already a day ahead of world.today
    assert run["period_first"] == city_today(settings) - dt.timedelta(days=1)
    assert run["row_count"] == 1

    status, raw = await call(client, "GET", f"/api/v1/report-runs/{run['id']}/file", "t_regulator")
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    assert sheet[0][:3] == ["企业代码", "企业", "合计"]
    assert sheet[1][0] == code and sheet[1][2] == 3

    # the owner's inbox holds it, with the file attached
    message = await pool.fetchrow(
        """SELECT m.subject FROM messages m JOIN message_recipients r ON r.message_id = m.id
            WHERE m.id = $1 AND r.user_id = $2""",
        run["message_id"],
        world.users["t_regulator"],
    )
    assert message is not None and "企业钢瓶保有量" in message["subject"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM message_attachments WHERE message_id = $1 AND upload_id = $2",
            run["message_id"],
            run["upload_id"],
        )
        == 1
    )

    # nobody else reads the file or the runs
    status, _ = await call(
        client, "GET", f"/api/v1/report-runs/{run['id']}/file", "t_regulator_jinshui"
    )
    assert status == 404
    status, _ = await call(client, "GET", f"/api/v1/report-schedules/{sid}/runs", "t_company_a")
    assert status == 404
    status, listed = await call(
        client, "GET", f"/api/v1/report-schedules/{sid}/runs", "t_regulator"
    )
    assert status == 200 and listed["items"][0]["has_file"] is True
    status, mine = await call(client, "GET", "/api/v1/report-schedules", "t_regulator")
    assert any(s["id"] == sid and s["last_run"]["state"] == "done" for s in mine["items"])


async def test_a_lost_run_is_taken_again_and_a_failure_is_kept(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    status, made = await call(
        client,
        "POST",
        "/api/v1/report-schedules",
        "t_regulator",
        {"report": "holdings", "frequency": "weekly", "format": "csv"},
    )
    assert status == 201
    sid = made["id"]
    first, last = last_closed("weekly", city_today(settings))
    # a process claimed the period and died an hour ago
    await pool.execute(
        """INSERT INTO report_runs (schedule_id, period_first, period_last, state, claimed_at)
           VALUES ($1, $2, $3, 'running', now() - interval '1 hour')""",
        sid,
        first,
        last,
    )
    await schedule_round(pool, settings, only=sid)
    run = await pool.fetchrow("SELECT * FROM report_runs WHERE schedule_id = $1", sid)
    assert run["state"] == "done" and run["attempts"] == 2
    status, raw = await call(client, "GET", f"/api/v1/report-runs/{run['id']}/file", "t_admin")
    assert status == 200 and raw.decode("utf-8-sig").startswith("企业代码,企业,合计")

    # a schedule whose filter no longer holds fails with its reason, retried to the cap
    await pool.execute(
        "UPDATE report_schedules SET params = '{\"district\": \"41\"}', frequency = 'monthly' WHERE id = $1",
        sid,
    )
    for _ in range(settings.reports.schedule_max_attempts + 2):
        await schedule_round(pool, settings, only=sid)
    m0, _ = last_closed("monthly", city_today(settings))
    failed = await pool.fetchrow(
        "SELECT * FROM report_runs WHERE schedule_id = $1 AND period_first = $2", sid, m0
    )
    if failed is None:  # the week and the month start on one day: the same row ran above
        return
    assert failed["state"] == "failed" and "district" in failed["error"]
    assert failed["attempts"] == settings.reports.schedule_max_attempts


async def test_refusals_and_audit(client: Any, pool: Any, world: World) -> None:
    cases = [
        ({"report": "nope", "frequency": "daily"}, "report"),
        ({"report": "holdings", "frequency": "hourly"}, None),
        (
            {"report": "holdings", "frequency": "daily", "params": {"district": "41"}},
            "params.district",
        ),
        (
            {"report": "holdings", "frequency": "daily", "params": {"from": "2026-01-01"}},
            "params.from",
        ),
        (
            {"report": "holdings", "frequency": "daily", "params": {"colour": "red"}},
            "params.colour",
        ),
    ]
    for body, field in cases:
        status, answer = await call(client, "POST", "/api/v1/report-schedules", "t_regulator", body)
        assert status == 400, (body, answer)
        if field:
            assert answer["error"]["details"]["field"] == field
    status, made = await call(
        client,
        "POST",
        "/api/v1/report-schedules",
        "t_company_a",
        {"report": "holdings", "frequency": "monthly"},
    )
    assert status == 201
    sid = made["id"]
    status, changed = await call(
        client,
        "PATCH",
        f"/api/v1/report-schedules/{sid}",
        "t_company_a",
        {"format": "csv", "active": False},
    )
    assert status == 200 and changed["format"] == "csv" and changed["active"] is False
    status, _ = await call(
        client, "PATCH", f"/api/v1/report-schedules/{sid}", "t_company_b", {"active": True}
    )
    assert status == 404
    status, _ = await call(client, "DELETE", f"/api/v1/report-schedules/{sid}", "t_company_a")
    assert status == 204
    actions = [
        r["action"]
        for r in await pool.fetch(
            "SELECT action FROM audit_log WHERE entity = 'report_schedule' AND entity_id = $1 ORDER BY id",
            str(sid),
        )
    ]
    assert actions == ["report_schedule.create", "report_schedule.update", "report_schedule.delete"]


async def test_old_runs_are_pruned_to_the_kept_number(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    """Past ``[reports] schedule_keep_runs`` the oldest runs go; a file an inbox message
    attaches stays readable from the inbox."""
    import msgspec

    status, made = await call(
        client,
        "POST",
        "/api/v1/report-schedules",
        "t_regulator",
        {"report": "holdings", "frequency": "daily", "format": "csv"},
    )
    assert status == 201
    sid = made["id"]
    today = city_today(settings)  # the scheduler's day is the city's, not the machine's
    old = today - dt.timedelta(days=30)
    await pool.execute(
        """INSERT INTO report_runs (schedule_id, period_first, period_last, state)
           VALUES ($1, $2, $2, 'failed'), ($1, $3, $3, 'failed')""",
        sid,
        old,
        old + dt.timedelta(days=1),
    )
    keep_two = msgspec.structs.replace(
        settings, reports=msgspec.structs.replace(settings.reports, schedule_keep_runs=2)
    )
    await schedule_round(pool, keep_two, only=sid)
    periods = [
        r["period_first"]
        for r in await pool.fetch(
            "SELECT period_first FROM report_runs WHERE schedule_id = $1 ORDER BY period_first", sid
        )
    ]
    assert periods == [old + dt.timedelta(days=1), today - dt.timedelta(days=1)]
    upload = await pool.fetchval(
        "SELECT upload_id FROM report_runs WHERE schedule_id = $1 AND state = 'done'", sid
    )
    assert upload is not None
