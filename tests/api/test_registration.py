"""Registration (建档) through the API: the preview of derived dates agrees with what a
registration stores, the tag check (free / taken / voided, scoped), a refused tag's reason, a
company admin registering its own cylinders only and stating no inspection findings, every
registration audited and nothing half-written on a refusal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.domain.dates import add_years
from tests.api.conftest import Fresh, call, cylinder_body, unique
from tests.conftest import World

PREVIEW = "/api/v1/cylinders/preview"
TAG_CHECK = "/api/v1/cylinders/tag-check"


async def _written(pool: Any, tag: str) -> tuple[int, int, int]:
    """(cylinders, register events, audit rows) carrying *tag*."""
    return (
        await pool.fetchval("SELECT count(*) FROM cylinders WHERE tag = $1", tag),
        await pool.fetchval("SELECT count(*) FROM events WHERE tag = $1", tag),
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'cylinder.create' AND details->>'tag' = $1",
            tag,
        ),
    )


# ---------------------------------------------------------------- preview


@pytest.mark.parametrize(
    ("made_days_ago", "last_days_ago"),
    [(100, None), (3000, None), (2000, 300), (4000, 10)],
)
async def test_preview_agrees_with_what_registration_stores(
    client: Any, world: World, made_days_ago: int, last_days_ago: int | None
) -> None:
    made = world.today - dt.timedelta(days=made_days_ago)
    query: dict[str, str] = {"manufacture_date": made.isoformat(), "spec": "YSP35.5"}
    body = cylinder_body(world, manufacture_date=made.isoformat())
    if last_days_ago is not None:
        last = (world.today - dt.timedelta(days=last_days_ago)).isoformat()
        query["last_inspection_date"] = body["last_inspection_date"] = last
    status, preview = await call(client, "GET", PREVIEW, "t_inspector", params=query)
    assert status == 200, preview
    status, cyl = await call(client, "POST", "/api/v1/cylinders", "t_inspector", body)
    assert status == 201, cyl
    assert preview["next_inspection_date"] == cyl["next_inspection_date"]
    assert preview["scrap_date"] == cyl["scrap_date"]
    assert preview["compliance"] == cyl["compliance"]
    assert preview["derived"] == ["next_inspection_date", "scrap_date"]
    assert preview["model"] == {"spec": "YSP35.5", "volume_l": 35.5, "max_fill_kg": 14.9}


async def test_preview_of_a_leap_day_is_the_domain_rule(
    client: Any, world: World, settings: Any
) -> None:
    made = dt.date(2020, 2, 29)
    status, r = await call(
        client, "GET", PREVIEW, "t_company_a", params={"manufacture_date": made.isoformat()}
    )
    assert status == 200, r
    rules = settings.dates
    assert r["next_inspection_date"] == add_years(made, rules.inspection_interval_years).isoformat()
    assert r["scrap_date"] == add_years(made, rules.design_life_years).isoformat()
    assert r["model"] is None


async def test_preview_keeps_stated_dates(client: Any, world: World) -> None:
    made = world.today - dt.timedelta(days=400)
    scrap = world.today + dt.timedelta(days=4000)
    status, r = await call(
        client,
        "GET",
        PREVIEW,
        "t_inspector",
        params={"manufacture_date": made.isoformat(), "scrap_date": scrap.isoformat()},
    )
    assert status == 200, r
    assert r["scrap_date"] == scrap.isoformat() and r["derived"] == ["next_inspection_date"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"manufacture_date": "2999-01-01"}, 400, "manufacture_date"),
        (
            {"manufacture_date": "2020-06-01", "last_inspection_date": "2019-01-01"},
            400,
            "last_inspection_date",
        ),
        (
            {"manufacture_date": "2020-06-01", "last_inspection_date": "2999-01-01"},
            400,
            "last_inspection_date",
        ),
        ({"manufacture_date": "2020-06-01", "spec": "YSP999"}, 400, "spec"),
        ({"manufacture_date": "2020-02-30"}, 400, "manufacture_date"),
        (
            {"manufacture_date": "2020-06-01", "next_inspection_date": "2020-01-01"},
            400,
            "next_inspection_date",
        ),
        ({"spec": "YSP35.5"}, 400, "manufacture_date"),
        ({"manufacture_date": "2020-06-01", "colour": "red"}, 400, "colour"),
    ],
)
async def test_preview_refuses_impossible_input_naming_the_field(
    client: Any, params: dict[str, str], status: int, field: str
) -> None:
    got, r = await call(client, "GET", PREVIEW, "t_inspector", params=params)
    assert got == status, r
    assert r["error"]["details"]["field"] == field
    assert r["error"]["code"] in ("invalid_field", "invalid_query")


# ---------------------------------------------------------------- tag check


async def test_tag_check_free_taken_and_voided(client: Any, world: World, fresh: Fresh) -> None:
    free = unique("FREE")
    status, r = await call(client, "GET", TAG_CHECK, "t_inspector", params={"tag": free})
    assert status == 200
    assert r == {"tag": free, "available": True, "reason": None, "cylinder_id": None}

    own = world.cylinders["TAG-A-OK"]
    for user, visible in (("t_company_a", own), ("t_inspector", own), ("t_company_b", None)):
        status, r = await call(client, "GET", TAG_CHECK, user, params={"tag": "TAG-A-OK"})
        assert status == 200
        assert (r["available"], r["reason"], r["cylinder_id"]) == (False, "taken", visible), user

    voided = unique("VOID")
    await fresh.cylinder("A", tag=voided, status="scrapped", tag_voided=True)
    status, r = await call(client, "GET", TAG_CHECK, "t_company_b", params={"tag": voided})
    assert (r["available"], r["reason"], r["cylinder_id"]) == (False, "voided", None)
    # a scrapped record whose flag was never set (an old import) is voided all the same
    old = unique("OLD")
    await fresh.cylinder("A", tag=old, status="scrapped")
    status, r = await call(client, "GET", TAG_CHECK, "t_admin", params={"tag": old})
    assert r["reason"] == "voided"


@pytest.mark.parametrize("params", [{}, {"tag": "有空格 的标签"}, {"tag": "X" * 65}])
async def test_tag_check_refuses_a_malformed_tag(client: Any, params: dict[str, str]) -> None:
    status, r = await call(client, "GET", TAG_CHECK, "t_inspector", params=params)
    assert status == 400 and r["error"]["details"]["field"] == "tag"


# ---------------------------------------------------------------- registering


async def test_a_voided_or_taken_tag_is_refused_with_its_reason(
    client: Any, world: World, fresh: Fresh, pool: Any
) -> None:
    voided = unique("VOID")
    await fresh.cylinder("A", tag=voided, status="scrapped", tag_voided=True)
    status, r = await call(
        client, "POST", "/api/v1/cylinders", "t_inspector", cylinder_body(world, tag=voided)
    )
    assert status == 409, r
    # the scrapped cylinder is company A's, in the inspector's scope: named
    assert r["error"]["details"]["field"] == "tag" and r["error"]["details"]["reason"] == "voided"
    assert "voided" in r["error"]["message"]
    assert await _written(pool, voided) == (1, 0, 0)  # the scrapped one only

    status, r = await call(
        client,
        "POST",
        "/api/v1/cylinders",
        "t_company_b",
        cylinder_body(world, "B", tag="TAG-A-OK"),
    )
    assert status == 409, r
    assert r["error"]["details"] == {"field": "tag", "reason": "taken", "cylinder_id": None}


async def test_registration_is_audited_and_nothing_is_half_written(
    client: Any, world: World, pool: Any
) -> None:
    body = cylinder_body(world)
    status, cyl = await call(client, "POST", "/api/v1/cylinders", "t_inspector", body)
    assert status == 201, cyl
    assert await _written(pool, body["tag"]) == (1, 1, 1)
    who = await pool.fetchrow(
        "SELECT username, entity_id FROM audit_log WHERE action = 'cylinder.create'"
        " AND details->>'tag' = $1",
        body["tag"],
    )
    assert (who["username"], who["entity_id"]) == ("t_inspector", str(cyl["id"]))
    # refused at the insert (a taken barcode): no row, no event, no audit
    again = cylinder_body(world, barcode=body["barcode"])
    status, r = await call(client, "POST", "/api/v1/cylinders", "t_inspector", again)
    assert status == 409 and r["error"]["details"]["field"] == "barcode", r
    assert await _written(pool, again["tag"]) == (0, 0, 0)


async def test_company_admin_registers_its_own_cylinder(
    client: Any, world: World, pool: Any, settings: Any
) -> None:
    made = world.today - dt.timedelta(days=500)
    body: dict[str, Any] = {
        "tag": unique("COA"),
        "spec": "YSP12",
        "manufacture_date": made.isoformat(),
        "barcode": unique("BC"),
        "valve_type": "ordinary",
        "status": "in_service",  # the default, stated: not a finding
        "location_site_id": world.sites["STA-A1"],
    }
    status, cyl = await call(client, "POST", "/api/v1/cylinders", "t_company_a", body)
    assert status == 201, cyl
    rules = settings.dates
    assert cyl["owner_company_id"] == world.companies["A"]  # no owner named: its own
    assert (
        cyl["next_inspection_date"] == add_years(made, rules.inspection_interval_years).isoformat()
    )
    assert cyl["scrap_date"] == add_years(made, rules.design_life_years).isoformat()
    assert cyl["registered_by_site_id"] is None and cyl["volume_l"] == 12
    assert await _written(pool, body["tag"]) == (1, 1, 1)
    status, found = await call(
        client, "GET", "/api/v1/cylinders", "t_company_a", params={"tag": body["tag"]}
    )
    assert [c["id"] for c in found["items"]] == [cyl["id"]]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"owner_company_id": "B"}, "owner_company_id"),
        ({"owner_code": "TEST-B"}, "owner_code"),
        ({"owner_company_id": 999_999_999}, "owner_company_id"),
        ({"location_site_id": "STA-B1"}, "location_site_id"),
    ],
)
async def test_company_admin_cannot_register_for_another_company(
    client: Any, world: World, pool: Any, over: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {
        "tag": unique("COX"),
        "spec": "YSP35.5",
        "manufacture_date": (world.today - dt.timedelta(days=30)).isoformat(),
    }
    for k, v in over.items():
        if v == "B":
            v = world.companies["B"]
        elif v == "STA-B1":
            v = world.sites["STA-B1"]
        body[k] = v
    status, r = await call(client, "POST", "/api/v1/cylinders", "t_company_a", body)
    assert status == 400, r
    assert r["error"]["details"]["field"] == field
    assert await _written(pool, body["tag"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("last_inspection_date", "2024-01-01"),
        ("next_inspection_date", "2099-01-01"),
        ("scrap_date", "2099-01-01"),
        ("inspection_count", 2),
        ("status", "suspended"),
        ("district_code", "410103"),
    ],
)
async def test_company_admin_states_no_inspection_finding(
    client: Any, world: World, pool: Any, field: str, value: Any
) -> None:
    body = cylinder_body(world, manufacture_date="2023-01-01", **{field: value})
    del body["owner_company_id"]
    status, r = await call(client, "POST", "/api/v1/cylinders", "t_company_a", body)
    assert status == 403, r
    assert r["error"]["details"]["field"] == field
    assert await _written(pool, body["tag"]) == (0, 0, 0)
    # the inspection agency states them
    body["owner_company_id"] = world.companies["A"]
    status, r = await call(client, "POST", "/api/v1/cylinders", "t_inspector", body)
    assert status == 201, r
