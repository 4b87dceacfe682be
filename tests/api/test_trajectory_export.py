"""A cylinder's trajectory as a file (issue 11 item 6): the CSV and the XLSX hold the JSON
trajectory's events in its order, times in the city's zone; coordinates only for the roles
that may read positions; out of scope is a 404 as for the JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import zoneinfo
from typing import Any

import asyncpg
import python_calamine

from server.kernel.settings import Settings
from server.kernel.tabular import CSV_BOM
from tests.api.conftest import call
from tests.conftest import World


async def _cylinder_with_events(pool: asyncpg.Pool, world: World) -> tuple[int, str, list[str]]:
    tag = f"TRX-{secrets.token_hex(4).upper()}"
    cid = await pool.fetchval(
        """INSERT INTO cylinders (tag, stamp, barcode, owner_company_id, spec, volume_l, tare_kg,
               manufacture_date, next_inspection_date, scrap_date, status, district_code)
           VALUES ($1, $2, $3, $4, 'YSP35.5', 35.5, 15.5, '2015-01-01', '2099-01-01',
                   '2099-06-01', 'in_service', '410105') RETURNING id""",
        tag,
        f"ST{tag}",
        f"BC{tag}",
        world.companies["A"],
    )
    start = dt.datetime(2023, 5, 1, 23, 30, tzinfo=dt.UTC)  # the next day in the city
    msgs = []
    for i, (kind, step, disp, details) in enumerate(
        (
            ("fill", "filling", "in_progress", {"net_kg": 14.5}),
            ("dispatch", "shipping", "in_transit", {"vehicle": "豫A12345"}),
            ("deliver", "receiving", "in_possession", {"note": '=HYPERLINK("x")'}),
        )
    ):
        msg = f"trx-{tag}-{i}"
        await pool.execute(
            """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
                   site_id, company_id, operator, lat, lon, district_code, details)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '=cmd()', 34.8, 113.65, '410105', $10)""",
            start + dt.timedelta(hours=i),
            msg,
            cid,
            tag,
            kind,
            step,
            disp,
            world.sites["STA-A1"],
            world.companies["A"],
            details,
        )
        msgs.append(msg)
    return int(cid), tag, msgs


async def test_trajectory_files_hold_the_json_events(
    client: Any, pool: asyncpg.Pool, world: World, settings: Settings
) -> None:
    cid, tag, msgs = await _cylinder_with_events(pool, world)
    path = f"/api/v1/cylinders/{cid}/trajectory"
    status, body = await call(client, "GET", path)
    assert status == 200 and [e["msg_id"] for e in body["items"]] == msgs
    zone = zoneinfo.ZoneInfo(settings.alerts.timezone)

    status, raw = await call(client, "GET", f"{path}?format=csv")
    assert status == 200 and raw.startswith(CSV_BOM)
    rows = list(csv.DictReader(io.StringIO(raw[len(CSV_BOM) :].decode())))
    assert [r["msg_id"] for r in rows] == msgs
    for r, e in zip(rows, body["items"], strict=True):
        assert r["time"] == dt.datetime.fromisoformat(e["ts"]).astimezone(zone).isoformat()
        assert (r["kind"], r["biz_step"], r["site_name"]) == (
            e["kind"],
            e["biz_step"],
            e["site_name"],
        )
        assert float(r["lat"]) == e["lat"]
    assert rows[0]["time"].startswith("2023-05-02T07:30")  # Asia/Shanghai
    assert {r["operator"] for r in rows} == {"'=cmd()"}  # formula-like text neutralised
    assert '"vehicle":"豫A12345"' in rows[1]["details"]

    status, raw = await call(client, "GET", f"{path}?format=xlsx")
    assert status == 200
    sheet = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0)
    table = sheet.to_python()
    assert table[0][0] == "time"
    got = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    assert [r["msg_id"] for r in got] == msgs
    assert [r["kind"] for r in got] == ["fill", "dispatch", "deliver"]
    assert tag in sheet.name


async def test_trajectory_file_privacy_and_scope(
    client: Any, pool: asyncpg.Pool, world: World
) -> None:
    cid, _, msgs = await _cylinder_with_events(pool, world)
    path = f"/api/v1/cylinders/{cid}/trajectory?format=csv"
    status, raw = await call(client, "GET", path, "t_inspector")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(raw[len(CSV_BOM) :].decode())))
    assert [r["msg_id"] for r in rows] == msgs
    assert {r["lat"] for r in rows} == {""} and {r["lon"] for r in rows} == {""}
    status, _ = await call(client, "GET", path, "t_company_b")
    assert status == 404
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}/trajectory?format=pdf")
    assert status == 400 and body["error"]["details"]["field"] == "format"
