"""The audit log, read through ``GET /api/v1/audit`` (server/api/audit_log.py, docs/API.md
"Audit log"): filters, a district regulator's scope, exports with formula cells neutralised,
and every bad filter answered with the one error shape."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest

from server.kernel.audit import audit
from server.kernel.principal import Principal
from tests.api.conftest import call, unique
from tests.conftest import World

AUDIT = "/api/v1/audit"
FORMULA = '=HYPERLINK("#x","y")'


async def _rows(client: Any, user: str, query: str) -> list[dict[str, Any]]:
    status, body = await call(client, "GET", AUDIT + query, user)
    assert status == 200, body
    return list(body["items"])


async def _site(client: Any, world: World, company: str, district: str) -> int:
    status, site = await call(
        client,
        "POST",
        "/api/v1/sites",
        "t_admin",
        {
            "code": unique("AUD"),
            "name": "审计测试站",
            "kind": "store",
            "company_id": world.companies[company],
            "district_code": district,
        },
    )
    assert status == 201, site
    return int(site["id"])


async def test_an_edit_is_read_back_with_who_what_and_the_values(client: Any, world: World) -> None:
    uid = world.users["t_operator_a"]
    name = unique("充装工")
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, _ = await call(
        client, "PATCH", f"/api/v1/users/{uid}", "t_admin", {"display_name": name}
    )
    assert status == 200
    rows = await _rows(client, "t_admin", f"?action=user.update&entity=user&entity_id={uid}")
    row = next(r for r in rows if r["details"]["after"].get("display_name") == name)
    assert row["username"] == "t_admin" and row["role"] == "admin"
    assert row["entity"] == "user" and row["target_label"] == "t_operator_a"
    assert row["remote"] and row["at"]
    # every filter finds it, and a filter that excludes it does
    for query in (
        "?user=t_admin",
        "?role=admin",
        "?action=user.*",
        f"?from={since}",
        f"?q={name}",
        f"?q={name}&action=user.update&user=t_admin&role=admin&from={since}",
    ):
        ids = {r["id"] for r in await _rows(client, "t_admin", query + "&page_size=200")}
        assert row["id"] in ids, query
    for query in (
        "?user=t_company_a",
        "?role=regulator",
        "?action=user.create",
        "?action=site.*",
        f"?to={since}",
        f"?q={name}-no",
        f"?entity=site&entity_id={uid}",
    ):
        ids = {r["id"] for r in await _rows(client, "t_admin", query + "&page_size=200")}
        assert row["id"] not in ids, query
    # newest first, and paged with a total
    status, body = await call(client, "GET", AUDIT + "?page_size=2", "t_admin")
    assert status == 200 and len(body["items"]) == 2 and body["total"] >= 2
    assert body["items"][0]["id"] > body["items"][1]["id"]


async def test_a_district_regulator_reads_the_rows_about_its_districts(
    client: Any, world: World
) -> None:
    jinshui = await _site(client, world, "A", "410105")
    erqi = await _site(client, world, "B", "410103")

    def ids(rows: list[dict[str, Any]]) -> set[str]:
        return {r["entity_id"] for r in rows}

    query = "?action=site.create&page_size=200"
    assert {str(jinshui), str(erqi)} <= ids(await _rows(client, "t_admin", query))
    city = await _rows(client, "t_regulator", query)
    assert {str(jinshui), str(erqi)} <= ids(city)
    district = await _rows(client, "t_regulator_jinshui", query)
    assert str(jinshui) in ids(district) and str(erqi) not in ids(district)
    assert all("remote" not in r for r in city + district)
    # rows whose target has no place (a login) are the city-wide's only
    status, _ = await call(
        client,
        "POST",
        "/api/v1/auth/login",
        "anonymous",
        {"username": "no-such-user", "password": "x"},
    )
    assert status == 401
    assert await _rows(client, "t_regulator", "?action=auth.login_failed")
    assert not await _rows(client, "t_regulator_jinshui", "?action=auth.login_failed")
    # the scope holds in the export too
    status, raw = await call(
        client, "GET", AUDIT + "?format=csv&action=site.create", "t_regulator_jinshui"
    )
    assert status == 200
    exported = {r["entity_id"] for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}
    assert str(jinshui) in exported and str(erqi) not in exported


async def test_exports_neutralise_formulas_and_are_audited(
    client: Any, pool: Any, world: World
) -> None:
    from python_calamine import CalamineWorkbook

    action = f"test.formula_{unique('x').lower().replace('-', '_')}"
    actor = Principal(world.users["t_admin"], "t_admin", "admin")
    await audit(pool, actor, action, "cylinder", FORMULA, {"note": FORMULA, "n": 1})
    status, raw = await call(client, "GET", f"{AUDIT}?format=csv&action={action}", "t_admin")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["entity_id"] == "'" + FORMULA
    assert rows[0]["username"] == "t_admin" and rows[0]["action"] == action
    assert '"note"' in rows[0]["details"] and rows[0]["remote"] == ""
    status, raw = await call(client, "GET", f"{AUDIT}?format=xlsx&action={action}", "t_admin")
    assert status == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(raw)).get_sheet_by_index(0).to_python()
    header, first = sheet[0], sheet[1]
    assert first[header.index("entity_id")] == "'" + FORMULA
    exports = await _rows(client, "t_admin", f"?action=audit.export&q={action}")
    assert {r["details"]["format"] for r in exports} == {"csv", "xlsx"}


async def test_a_district_total_is_counted_a_little_past_the_page(
    client: Any, pool: Any, world: World
) -> None:
    """LOOKAHEAD_ROWS: a district regulator's total stops past the page (each row is placed in
    a district by a lookup); a city-wide reader's total is exact."""
    from server.api.audit_log import LOOKAHEAD_ROWS

    action = f"test.many_{unique('x').lower().replace('-', '_')}"
    site = world.sites["STA-A1"]  # in 410105, the district of t_regulator_jinshui
    many = LOOKAHEAD_ROWS + 5
    await pool.execute(
        """INSERT INTO audit_log (user_id, username, role, action, entity, entity_id, details)
           SELECT $1, 't_admin', 'admin', $2, 'site', $3, jsonb_build_object('n', g)
             FROM generate_series(1, $4) g""",
        world.users["t_admin"],
        action,
        str(site),
        many,
    )
    query = f"{AUDIT}?action={action}&page_size=2"
    status, district = await call(client, "GET", query, "t_regulator_jinshui")
    assert status == 200 and len(district["items"]) == 2
    assert district["total"] == 2 + LOOKAHEAD_ROWS and district["total_capped"] is True
    status, city = await call(client, "GET", query, "t_regulator")
    assert city["total"] == many and city["total_capped"] is False
    # the last page of a district regulator is exact
    status, last = await call(client, "GET", f"{query}&page={many // 2}", "t_regulator_jinshui")
    assert status == 200 and last["total"] == many and last["total_capped"] is False
    status, few = await call(
        client, "GET", f"{AUDIT}?action={action}&q=nothing", "t_regulator_jinshui"
    )
    assert few == {**few, "items": [], "total": 0, "total_capped": False}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=2026-03-01T00:00:00Z&to=2026-02-01T00:00:00Z", "to"),
        ("?from=2026-03-01&to=2026-03-01", "to"),
        ("?from=yesterday", "from"),
        ("?to=2026-13-40", "to"),
        ("?action=DROP TABLE audit_log", "action"),
        ("?action=user.", "action"),
        ("?action=" + "a" * 65, "action"),
        ("?entity=Cylinder;", "entity"),
        ("?role=king", "role"),
        ("?page_size=100000", "page_size"),
        ("?page=1000000000", "page"),
        ("?page=0", "page"),
        ("?format=pdf", "format"),
        ("?q=" + "x" * 201, "q"),
        ("?who=t_admin", "who"),
        ("?user=a%00b", "user"),
    ],
)
async def test_bad_filters_are_one_error_shape(client: Any, query: str, field: str) -> None:
    status, body = await call(client, "GET", AUDIT + query, "t_admin")
    assert status == 400, body
    assert set(body) == {"error"} and body["error"]["code"] == "invalid_query"
    assert body["error"]["details"]["field"] == field


async def test_other_roles_are_refused(client: Any) -> None:
    for user in ("t_officer", "t_company_a", "t_operator_a", "t_inspector"):
        status, body = await call(client, "GET", AUDIT + "?format=csv", user)
        assert status == 403 and body["error"]["code"] == "forbidden", user
    status, body = await call(client, "GET", AUDIT, "anonymous")
    assert status == 401
