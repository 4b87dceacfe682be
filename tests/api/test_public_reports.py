"""The public QR endpoint (no personal data, rate-limited), complaints, articles; reports in
JSON, CSV and XLSX (parsed back with python_calamine); the OpenAPI document."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest

from server.kernel.appkeys import SETTINGS
from tests.api.conftest import Fresh, call, unique
from tests.conftest import World

PUBLIC_KEYS = {
    "code",
    "barcode",
    "owner",
    "spec",
    "medium",
    "volume_l",
    "manufacturer",
    "manufacture_date",
    "compliance",
    "status_label",
    "next_inspection_date",
    "scrap_date",
    "scrapped",
    "last_fill",
    "checked_on",
    "trajectory",
    "order_phone",
    "order_tel",
    "notice",
}


async def test_public_cylinder_has_no_personal_data(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    code = await pool.fetchval("SELECT barcode FROM cylinders WHERE id = $1", cid)
    await pool.execute(
        """UPDATE cylinders SET location_kind = 'customer', location_customer_id = $2,
                  last_fill_at = now(), last_fill_site_id = $3, lat = 34.8, lon = 113.65
            WHERE id = $1""",
        cid,
        world.customers["A"],
        world.sites["STA-A1"],
    )
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, cylinder_id, tag, net_kg, operator)
           VALUES (now(), $1, 'GUN-STA-A1', $2, $3, 'x', 14.5, '操作员王五')""",
        unique("f"),
        world.sites["STA-A1"],
        cid,
    )
    status, body = await call(client, "GET", f"/api/v1/public/cylinders/{code}", "anonymous")
    assert status == 200, body
    assert set(body) == PUBLIC_KEYS
    assert body["owner"] == "测试燃气A公司" and body["status_label"] == "合格"
    assert body["last_fill"]["station"] == "站点STA-A1"
    text = str(body)
    for secret in ("客户A", "13800000000", "测试路1号", "410105********1234", "操作员王五", "34.8"):
        assert secret not in text
    status, body = await call(
        client, "GET", "/api/v1/public/cylinders/TAG-A-OVERDUE?lang=en", "anonymous"
    )
    assert body["status_label"] == "Overdue" and body["compliance"] == "overdue"
    # looked up by its RFID tag, the answer still never holds the tag (issue 9, item 11)
    assert "TAG-A-OVERDUE" not in str(body).replace("BC-TAG-A-OVERDUE", "")
    assert body["code"] == body["barcode"] == "BC-TAG-A-OVERDUE"
    status, body = await call(
        client, "GET", "/api/v1/public/cylinders/BC-TAG-B-SCRAPPED", "anonymous"
    )
    assert body["status_label"] == "报废" and body["scrapped"] is True
    # a voided tag reads 报废 whatever its dates and status say (issue 13: it could look valid)
    voided = await fresh.cylinder("A", tag_voided=True)
    vcode = await pool.fetchval("SELECT barcode FROM cylinders WHERE id = $1", voided)
    status, body = await call(client, "GET", f"/api/v1/public/cylinders/{vcode}", "anonymous")
    assert status == 200
    assert body["status_label"] == "报废" and body["scrapped"] is True
    assert body["compliance"] == "scrapped"


async def test_public_endpoints_are_rate_limited(client: Any, app: Any) -> None:
    limit = client.server.app[SETTINGS].public.rate_limit_per_min
    for _ in range(limit):
        status, _ = await call(client, "GET", "/api/v1/public/articles", "anonymous")
        assert status == 200
    resp = await client.get("/api/v1/public/cylinders/BC-TAG-A-OK")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limited"


async def test_complaints_are_stored_and_scoped(client: Any, world: World, settings: Any) -> None:
    text = "钢瓶没有标签 " + unique()
    status, body = await call(
        client,
        "POST",
        "/api/v1/public/complaints",
        "anonymous",
        {"code": "TAG-A-OK", "text": text, "contact": "匿名"},
    )
    assert status == 201 and body["matched_cylinder"] is True
    status, err = await call(
        client,
        "POST",
        "/api/v1/public/complaints",
        "anonymous",
        {"text": "x" * (settings.public.complaint_max_chars + 1)},
    )
    assert status == 400 and err["error"]["details"]["field"] == "text"
    for user, visible in (
        ("t_company_a", True),
        ("t_company_b", False),
        ("t_officer", True),
        ("t_regulator", True),
    ):
        status, body = await call(client, "GET", "/api/v1/complaints?page_size=1000", user)
        assert (text in {c["text"] for c in body["items"]}) is visible, user


async def test_articles_in_both_languages(client: Any) -> None:
    _, zh = await call(client, "GET", "/api/v1/public/articles", "anonymous")
    _, en = await call(client, "GET", "/api/v1/public/articles?lang=en", "anonymous")
    assert len(zh["items"]) == len(en["items"]) >= 3
    assert zh["items"][0]["title"] != en["items"][0]["title"]


# ---------------------------------------------------------------- reports


async def _seed_activity(pool: Any, world: World) -> None:
    now = dt.datetime.now(dt.UTC)
    for reasons in (["overdue_inspection"], ["not_owner", "scrapped"], ["not_owner"]):
        await pool.execute(
            """INSERT INTO events (ts, msg_id, tag, kind, site_id, company_id, district_code,
                                   details)
               VALUES ($1, $2, 'TAG-B-OK', 'fill_refused', $3, $4, '410105', $5)""",
            now,
            unique("deny"),
            world.sites["STA-A1"],
            world.companies["A"],
            {"reasons": reasons},
        )
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code, tag,
                              net_kg)
           VALUES ($1, $2, 'GUN-STA-A1', $3, $4, '410105', 'TAG-A-OK', 14.9)""",
        now,
        unique("fill"),
        world.sites["STA-A1"],
        world.companies["A"],
    )


@pytest.mark.parametrize(
    "name",
    ["compliance-summary", "inspection-due", "fills-daily", "denials", "anomalies-by-company"],
)
async def test_reports_in_json_csv_and_xlsx(
    client: Any, world: World, pool: Any, fresh: Fresh, name: str
) -> None:
    from python_calamine import CalamineWorkbook

    await _seed_activity(pool, world)
    await fresh.alert("A", kind="overstock")
    status, js = await call(client, "GET", f"/api/v1/reports/{name}", "t_regulator")
    assert status == 200, js
    rows_json = js.get("rows") or js.get("items") or (js["by_district"] + js["by_company"])
    assert rows_json
    status, raw = await call(client, "GET", f"/api/v1/reports/{name}?format=csv", "t_regulator")
    assert status == 200 and raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(table) >= 2
    status, raw = await call(client, "GET", f"/api/v1/reports/{name}?format=xlsx", "t_regulator")
    assert status == 200 and raw[:2] == b"PK"
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    assert [str(c) for c in sheet[0]] == table[0]
    assert len(sheet) == len(table)


async def test_denials_count_each_reason(client: Any, world: World, pool: Any) -> None:
    before = await _denials(client, world)
    await _seed_activity(pool, world)
    after = await _denials(client, world)
    assert after.get("not_owner", 0) - before.get("not_owner", 0) == 2
    assert after.get("scrapped", 0) - before.get("scrapped", 0) == 1
    assert after.get("overdue_inspection", 0) - before.get("overdue_inspection", 0) == 1
    _status, body = await call(client, "GET", "/api/v1/reports/denials", "t_company_b")
    assert body["rows"] == []


async def _denials(client: Any, world: World) -> dict[str, int]:
    status, body = await call(client, "GET", "/api/v1/reports/denials", "t_company_a")
    assert status == 200
    out: dict[str, int] = {}
    for r in body["rows"]:
        assert r["station_code"] == "STA-A1"
        out[r["reason"]] = out.get(r["reason"], 0) + r["attempts"]
    return out


async def test_inspection_due_lists_due_and_overdue_only(client: Any, world: World) -> None:
    _status, body = await call(
        client, "GET", "/api/v1/reports/inspection-due?page_size=1000", "t_admin"
    )
    tags = {r["tag"] for r in body["items"]}
    assert "TAG-A-OVERDUE" in tags and "TAG-A-OK" not in tags and "TAG-B-SCRAPPED" not in tags
    assert {r["compliance"] for r in body["items"]} <= {"overdue", "inspection_due", "scrap_due"}
