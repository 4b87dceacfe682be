"""Reports are exports too: a company or station named like a spreadsheet formula comes back
from the CSV and the XLSX (read with python-calamine) as literal text starting with `'`,
while counts stay numbers (server.kernel.tabular)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from tests.api.conftest import call, unique
from tests.api.report_activity_city import refreshed
from tests.conftest import World

FORMULA = '=HYPERLINK("#x","y")'


async def _formula_names(pool: Any, world: World) -> tuple[str, str]:
    """A company and its filling station, both named FORMULA, with a cylinder and a fill."""
    company_code, station_code = unique("INJ"), unique("INJ-S")
    company = await pool.fetchval(
        """INSERT INTO companies (code, name, district_code) VALUES ($1, $2, '410105')
           RETURNING id""",
        company_code,
        FORMULA,
    )
    station = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
           VALUES ($1, $2, 'filling_station', $3, '410105', 34.8, 113.65) RETURNING id""",
        station_code,
        FORMULA,
        company,
    )
    tag = unique("INJ-T")
    await pool.execute(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                  next_inspection_date, scrap_date, district_code)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, '410105')""",
        tag,
        company,
        world.today - dt.timedelta(days=700),
        world.today + dt.timedelta(days=600),
        world.today + dt.timedelta(days=2000),
    )
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code, tag,
                              net_kg, result)
           VALUES (now(), $1, 'GUN-INJ', $2, $3, '410105', $4, 14.5, 'completed')""",
        unique("fill"),
        station,
        company,
        tag,
    )
    return company_code, station_code


async def _tables(client: Any, name: str) -> tuple[list[list[str]], list[list[Any]]]:
    from python_calamine import CalamineWorkbook

    status, raw = await call(client, "GET", f"/api/v1/reports/{name}?format=csv", "t_regulator")
    assert status == 200
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    status, raw = await call(client, "GET", f"/api/v1/reports/{name}?format=xlsx", "t_regulator")
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    return table, sheet


async def test_report_csv_and_xlsx_quote_formula_names(
    client: Any, world: World, pool: Any, settings: Any
) -> None:
    company_code, station_code = await _formula_names(pool, world)
    await refreshed(pool, settings)  # compliance-summary counts on the census (migration 0226)

    table, sheet = await _tables(client, "compliance-summary")
    header = table[0]  # the frame's labels (zh-CN by default)
    code, name, total = header.index("代码"), header.index("名称"), header.index("合计")
    [csv_row] = [r for r in table if r[code] == company_code]
    [xlsx_row] = [r for r in sheet if r[code] == company_code]
    assert csv_row[name] == xlsx_row[name] == "'" + FORMULA
    assert csv_row[total] == "1" and xlsx_row[total] == 1.0

    table, sheet = await _tables(client, "fills-daily")
    header = table[0]
    code, name = header.index("station_code"), header.index("station_name")
    net = header.index("net_kg")
    [csv_row] = [r for r in table if r[code] == station_code]
    [xlsx_row] = [r for r in sheet if r[code] == station_code]
    assert csv_row[name] == xlsx_row[name] == "'" + FORMULA
    assert csv_row[header.index("company_name")] == "'" + FORMULA
    assert csv_row[net] == "14.5" and xlsx_row[net] == 14.5
