"""Cylinder API specifics: validation, derived dates, compliance in SQL vs the domain,
status changes and their events, inspections, trajectory order and pagination."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.domain.dates import add_years, compliance_status
from server.kernel.clock import city_today
from tests.api.conftest import Fresh, call, cylinder_body, unique
from tests.conftest import World


async def test_register_derives_dates_and_opens_the_trajectory(
    client: Any, world: World, settings: Any
) -> None:
    made = world.today - dt.timedelta(days=100)
    body = cylinder_body(world, manufacture_date=made.isoformat())
    status, cyl = await call(client, "POST", "/api/v1/cylinders", "t_inspector", body)
    assert status == 201, cyl
    rules = settings.dates
    assert (
        cyl["next_inspection_date"] == add_years(made, rules.inspection_interval_years).isoformat()
    )
    assert cyl["scrap_date"] == add_years(made, rules.design_life_years).isoformat()
    assert cyl["registered_by_site_id"] == world.sites["INS-1"]
    assert cyl["owner_name"] == "测试燃气A公司" and cyl["compliance"] == "ok"
    assert cyl["location"]["site_code"] == "STA-A1"
    status, traj = await call(client, "GET", f"/api/v1/cylinders/{cyl['id']}/trajectory", "t_admin")
    first = traj["items"][0]
    assert (first["kind"], first["biz_step"], first["disposition"]) == (
        "register",
        "commissioning",
        "active",
    )
    assert first["msg_id"].startswith("api-") and first["operator"] == "t_inspector"


async def test_register_by_owner_code(client: Any, world: World) -> None:
    body = cylinder_body(world)
    del body["owner_company_id"]
    body["owner_code"] = "TEST-B"
    body["location_site_id"] = world.sites["STA-B1"]
    status, cyl = await call(client, "POST", "/api/v1/cylinders", "t_admin", body)
    assert status == 201 and cyl["owner_company_id"] == world.companies["B"]
    assert cyl["district_code"] == "410103"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"spec": "YSP999"}, "spec"),
        (
            {"manufacture_date": "2020-01-01", "next_inspection_date": "2019-06-01"},
            "next_inspection_date",
        ),
        (
            {"manufacture_date": "2020-01-01", "last_inspection_date": "2019-06-01"},
            "last_inspection_date",
        ),
        (
            {
                "manufacture_date": "2020-01-01",
                "last_inspection_date": "2022-01-01",
                "next_inspection_date": "2021-06-01",
            },
            "next_inspection_date",
        ),
        ({"manufacture_date": "2020-01-01", "scrap_date": "2019-01-01"}, "scrap_date"),
        ({"manufacture_date": "2999-01-01"}, "manufacture_date"),
        ({"status": "exploded"}, "status"),
        ({"owner_code": "TEST-A"}, "owner_company_id"),  # both owner forms
    ],
)
async def test_register_validation_names_the_field(
    client: Any, world: World, over: dict[str, Any], field: str
) -> None:
    status, body = await call(
        client, "POST", "/api/v1/cylinders", "t_admin", cylinder_body(world, **over)
    )
    assert status == 400, body
    assert body["error"]["details"]["field"] == field


async def test_duplicate_tag_or_barcode_is_409_naming_the_field(
    client: Any, world: World, make_cylinder: Any
) -> None:
    first = await make_cylinder()
    for field in ("tag", "barcode"):
        body = cylinder_body(world, **{field: first[field]})
        status, err = await call(client, "POST", "/api/v1/cylinders", "t_admin", body)
        assert status == 409, err
        assert err["error"]["code"] == "conflict" and err["error"]["details"]["field"] == field
    other = await make_cylinder()
    status, err = await call(
        client, "PATCH", f"/api/v1/cylinders/{other['id']}", "t_admin", {"tag": first["tag"]}
    )
    assert status == 409 and err["error"]["details"]["field"] == "tag"


async def test_lookup_by_tag_barcode_stamp_and_prefix(
    client: Any, world: World, make_cylinder: Any
) -> None:
    c = await make_cylinder()
    for query in (
        f"tag={c['tag']}",
        f"barcode={c['barcode']}",
        f"stamp={c['stamp']}",
        f"q={c['tag'][:-3]}",
        f"q={c['barcode']}",
        f"company=TEST-A&tag={c['tag']}",
    ):
        status, body = await call(client, "GET", f"/api/v1/cylinders?{query}", "t_regulator")
        assert status == 200 and [x["id"] for x in body["items"]] == [c["id"]], query
        assert body["total"] == 1


async def test_compliance_in_sql_agrees_with_the_domain(
    client: Any, world: World, fresh: Fresh, settings: Any
) -> None:
    """Cylinders on every boundary of docs/ARCHITECTURE.md §4; the SQL filter and the domain must agree."""
    day = city_today(settings)
    r = settings.dates
    d = dt.timedelta
    made = day - d(days=3000)
    cases = [  # (next inspection, scrap date, status)
        (day + d(days=500), day + d(days=1000), "in_service"),
        (day + d(days=r.inspection_due_days), day + d(days=1000), "in_service"),
        (day + d(days=r.inspection_due_days + 1), day + d(days=1000), "in_service"),
        (day, day + d(days=1000), "in_service"),
        (day - d(days=1), day + d(days=1000), "in_service"),
        (day + d(days=500), day + d(days=r.scrap_due_days), "in_service"),
        (day + d(days=500), day + d(days=r.scrap_due_days + 1), "in_service"),
        (day + d(days=5), day + d(days=10), "in_service"),
        (day + d(days=500), day, "in_service"),
        (day - d(days=1), day - d(days=1), "in_service"),
        (day + d(days=500), day + d(days=1000), "scrapped"),
        (day + d(days=500), day + d(days=1000), "lost"),
    ]
    ids = {}
    for nxt, scrap, status in cases:
        cid = await fresh.cylinder(
            "A",
            manufacture_date=made,
            next_inspection_date=nxt,
            scrap_date=scrap,
            status=status,
            spec="YSP12",
        )
        ids[cid] = compliance_status(status, nxt, scrap, day, r).value
    seen: dict[int, str] = {}
    for value in ("ok", "inspection_due", "scrap_due", "overdue", "scrapped"):
        code, body = await call(
            client,
            "GET",
            f"/api/v1/cylinders?compliance={value}&spec=YSP12&page_size=1000",
            "t_admin",
        )
        assert code == 200
        for item in body["items"]:
            assert item["compliance"] == value, item  # displayed (domain) == filtered (SQL)
            if item["id"] in ids:
                assert item["id"] not in seen
                seen[item["id"]] = value
    assert seen == ids
    assert set(ids.values()) == {"ok", "inspection_due", "scrap_due", "overdue", "scrapped"}


async def test_status_changes_write_events_and_scrapped_never_returns(
    client: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    status, body = await call(
        client,
        "PATCH",
        f"/api/v1/cylinders/{cid}",
        "t_company_a",
        {"status": "lost", "reason": "用户报失"},
    )
    assert status == 200 and body["status"] == "lost"
    status, body = await call(
        client, "PATCH", f"/api/v1/cylinders/{cid}", "t_company_a", {"status": "in_service"}
    )
    assert status == 200
    status, body = await call(
        client, "PATCH", f"/api/v1/cylinders/{cid}", "t_admin", {"status": "scrapped"}
    )
    assert status == 200 and body["compliance"] == "scrapped"
    status, err = await call(
        client, "PATCH", f"/api/v1/cylinders/{cid}", "t_admin", {"status": "in_service"}
    )
    assert status == 409 and err["error"]["code"] == "invalid_transition"
    status, traj = await call(client, "GET", f"/api/v1/cylinders/{cid}/trajectory", "t_admin")
    kinds = [(e["kind"], e["disposition"]) for e in traj["items"]]
    assert kinds == [("lost", "stolen"), ("status_change", None), ("scrap", "inactive")]
    assert traj["items"][0]["details"]["reason"] == "用户报失"


async def test_who_may_change_which_field(client: Any, fresh: Fresh) -> None:
    cid = await fresh.cylinder("A")
    checks: list[tuple[str, dict[str, Any], int]] = [
        ("t_company_a", {"spec": "YSP12"}, 403),  # archive field: not the company's
        ("t_company_a", {"status": "in_inspection"}, 400),  # not a status a company sets
        ("t_company_a", {"barcode": unique("NB")}, 200),
        ("t_inspector", {"spec": "YSP12"}, 200),
        ("t_inspector", {"owner_company_id": 1}, 403),
        ("t_inspector", {"status": "suspended"}, 200),
        ("t_company_a", {"status": "in_service"}, 403),  # cannot lift the agency's suspension
        ("t_admin", {"status": "in_service"}, 200),
    ]
    for user, body, expected in checks:
        status, out = await call(client, "PATCH", f"/api/v1/cylinders/{cid}", user, body)
        assert status == expected, (user, body, out)
        if status == 403:
            assert out["error"]["details"]["field"] in body


async def test_inspection_results(client: Any, world: World, fresh: Fresh, settings: Any) -> None:
    r = settings.dates
    made = world.today - dt.timedelta(days=2000)
    cid = await fresh.cylinder("A", manufacture_date=made, status="in_inspection")
    far = add_years(made, r.absolute_scrap_age_years + 5)
    status, out = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid}/inspections",
        "t_inspector",
        {
            "inspected_on": world.today.isoformat(),
            "result": "pass",
            "scrap_date": far.isoformat(),
            "report_no": "R-1",
        },
    )
    assert status == 201, out
    cyl = out["cylinder"]
    assert cyl["status"] == "in_service" and cyl["inspection_count"] == 1
    assert cyl["last_inspection_date"] == world.today.isoformat()
    assert (
        cyl["next_inspection_date"]
        == add_years(world.today, r.inspection_interval_years).isoformat()
    )
    assert cyl["scrap_date"] == add_years(made, r.absolute_scrap_age_years).isoformat()  # capped
    assert out["scrap_date_capped"] is True
    status, out = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid}/inspections",
        "t_inspector",
        {"inspected_on": world.today.isoformat(), "result": "fail"},
    )
    assert out["cylinder"]["status"] == "scrapped"  # 判废: a failed inspection scraps
    assert out["inspection"]["scrap_reason"] == "failed_inspection"
    status, out = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid}/inspections",
        "t_admin",
        {
            "inspected_on": world.today.isoformat(),
            "result": "scrap",
            "agency_site_id": world.sites["INS-1"],
        },
    )
    assert status == 409
    status, _err = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid}/inspections",
        "t_inspector",
        {"inspected_on": world.today.isoformat(), "result": "pass"},
    )
    assert status == 409
    status, traj = await call(client, "GET", f"/api/v1/cylinders/{cid}/trajectory", "t_admin")
    got = [(e["kind"], e["disposition"]) for e in traj["items"]]
    assert got == [
        ("inspection", "conformant"),
        ("inspection", "non_conformant"),
        ("scrap", "inactive"),
    ]
    assert traj["items"][0]["site_name"] == "站点INS-1"


async def test_trajectory_is_oldest_first_and_paginates(
    client: Any, world: World, pool: Any, fresh: Fresh
) -> None:
    cid = await fresh.cylinder("A")
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    kinds = ["fill", "dispatch", "deliver", "return", "fill", "dispatch", "deliver"]
    # inserted out of order: the API must sort by event time, not by arrival
    for i in (3, 0, 6, 1, 5, 2, 4):
        await pool.execute(
            """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, site_id, company_id,
                                   district_code)
               VALUES ($1, $2, $3, 'x', $4, $5, $6, '410105')""",
            base + dt.timedelta(hours=i),
            unique("ev"),
            cid,
            kinds[i],
            world.sites["STA-A1"],
            world.companies["A"],
        )
    seen: list[str] = []
    for page in (1, 2, 3, 4):
        status, body = await call(
            client,
            "GET",
            f"/api/v1/cylinders/{cid}/trajectory?page={page}&page_size=2",
            "t_company_a",
        )
        assert status == 200 and body["total"] == 7 and body["page"] == page
        seen += [e["ts"] for e in body["items"]]
        if page == 4:
            assert len(body["items"]) == 1
        for e in body["items"]:
            assert e["site_code"] == "STA-A1" and e["company_name"] == "测试燃气A公司"
    assert seen == sorted(seen) and len(seen) == 7
    status, body = await call(
        client, "GET", f"/api/v1/cylinders/{cid}/trajectory?page=9", "t_company_a"
    )
    assert body["items"] == [] and body["total"] == 7


async def test_detail_shows_last_fill(client: Any, world: World, pool: Any, fresh: Fresh) -> None:
    cid = await fresh.cylinder("A")
    ts = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    await pool.execute(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, cylinder_id, tag, net_kg)
           VALUES ($1, $2, 'GUN-STA-A1', $3, $4, $5, 'x', 14.7)""",
        ts,
        unique("f"),
        world.sites["STA-A1"],
        world.companies["A"],
        cid,
    )
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}", "t_operator_a")
    assert body["last_fill"]["net_kg"] == 14.7 and body["last_fill"]["site_code"] == "STA-A1"
    status, body = await call(client, "GET", f"/api/v1/cylinders/{cid}", "t_inspector")
    assert status == 200 and body["location"]["customer_id"] is None
