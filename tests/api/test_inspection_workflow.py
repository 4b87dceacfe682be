"""Periodic inspection and scrapping through the API (docs/API.md "Periodic inspection and
scrapping"): what a pass, a fail and a scrap do to the record, its trajectory and the audit
log; that the gun then refuses a scrapped cylinder; who sees which records; and every bad
input answered with the one error shape and nothing written."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import asyncpg
import pytest

from ingest.auth import FillAuthorizer
from server.domain.dates import add_years
from server.kernel.clock import city_today
from tests.api.conftest import Fresh, call, unique
from tests.conftest import World


async def _footprint(pool: asyncpg.Pool, cid: int) -> tuple[Any, ...]:
    """Everything a write to cylinder *cid* would leave behind."""
    cyl = await pool.fetchrow(
        """SELECT status, tag, tag_voided, scrap_date, next_inspection_date,
                  last_inspection_date, inspection_count FROM cylinders WHERE id = $1""",
        cid,
    )
    n_rec = await pool.fetchval("SELECT count(*) FROM inspections WHERE cylinder_id = $1", cid)
    n_ev = await pool.fetchval("SELECT count(*) FROM events WHERE cylinder_id = $1", cid)
    n_audit = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE entity = 'cylinder' AND entity_id = $1", str(cid)
    )
    return (tuple(cyl.values()) if cyl else None, n_rec, n_ev, n_audit)


async def _gun_reasons(settings: Any, pool: asyncpg.Pool, tag: str) -> list[str]:
    """What the world's gun of company A (GUN-STA-A1) is told for *tag* (ingest.auth)."""
    auth = FillAuthorizer(settings, pool)
    try:
        out = await auth.decide(
            "GUN-STA-A1", tag, city_today(settings), dt.datetime.now(dt.UTC), time.perf_counter()
        )
    finally:
        await auth.close()
    return list(out.decision.reason_codes)


async def test_a_pass_sets_the_new_dates_and_is_listed(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool, settings: Any
) -> None:
    cid = await fresh.cylinder("A", status="in_inspection")
    today = world.today.isoformat()
    body = {"inspected_on": today, "result": "pass", "report_no": unique("R")}
    before = await _footprint(pool, cid)
    status, preview = await call(
        client, "POST", f"/api/v1/cylinders/{cid}/inspections?dry_run=true", "t_inspector", body
    )
    assert status == 200, preview
    expected = add_years(world.today, settings.dates.inspection_interval_years).isoformat()
    assert preview["dry_run"] is True and preview["next_inspection_date"] == expected
    assert preview["status"] == "in_service"
    assert await _footprint(pool, cid) == before  # a preview writes nothing
    status, out = await call(
        client, "POST", f"/api/v1/cylinders/{cid}/inspections", "t_inspector", body
    )
    assert status == 201, out
    assert out["cylinder"]["next_inspection_date"] == expected
    assert out["cylinder"]["status"] == "in_service"
    assert out["inspection"]["scrap_reason"] is None
    status, hist = await call(client, "GET", f"/api/v1/cylinders/{cid}/inspections", "t_company_a")
    assert status == 200 and hist["total"] == 1
    rec = hist["items"][0]
    assert rec["result"] == "pass" and rec["next_inspection_date"] == expected
    assert rec["agency_code"] == "INS-1" and rec["recorded_by"] == "t_inspector"
    status, day = await call(
        client, "GET", f"/api/v1/inspections?date={today}&cylinder={cid}", "t_inspector"
    )
    assert status == 200 and [r["id"] for r in day["items"]] == [rec["id"]]
    assert day["items"][0]["tag"] and day["counts"] == {"pass": 1, "fail": 0, "scrap": 0}
    assert await _gun_reasons(settings, pool, day["items"][0]["tag"]) == []


async def test_a_fail_scraps_voids_the_tag_and_the_gun_refuses(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool, settings: Any
) -> None:
    cid = await fresh.cylinder("A")
    tag = await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", cid)
    assert await _gun_reasons(settings, pool, tag) == []
    status, out = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid}/inspections",
        "t_inspector",
        {"inspected_on": world.today.isoformat(), "result": "fail", "scrap_reason": "damage"},
    )
    assert status == 201, out
    assert out["cylinder"]["status"] == "scrapped" and out["cylinder"]["tag_voided"] is True
    assert out["cylinder"]["compliance"] == "scrapped"
    assert out["inspection"]["scrap_reason"] == "damage"
    assert await _gun_reasons(settings, pool, tag) == ["unknown_tag"]
    status, traj = await call(client, "GET", f"/api/v1/cylinders/{cid}/trajectory", "t_admin")
    got = [(e["kind"], e["disposition"], e["details"].get("reason")) for e in traj["items"]]
    assert got == [("inspection", "non_conformant", None), ("scrap", "inactive", "damage")]


async def test_scrap_directly_with_a_reason(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool, settings: Any
) -> None:
    cid = await fresh.cylinder("A", last_inspection_date=world.today - dt.timedelta(days=100))
    tag = await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", cid)
    status, out = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid}/scrap",
        "t_inspector",
        {"reason": "other", "note": "阀座螺纹损坏", "report_no": "BF-1"},
    )
    assert status == 201, out
    cyl = out["cylinder"]
    assert cyl["status"] == "scrapped" and cyl["tag_voided"] is True
    assert cyl["scrap_date"] == world.today.isoformat()
    # no inspection took place: its dates and count stay
    assert cyl["inspection_count"] == 0
    assert cyl["last_inspection_date"] == (world.today - dt.timedelta(days=100)).isoformat()
    rec = out["inspection"]
    assert (rec["result"], rec["scrap_reason"], rec["notes"]) == ("scrap", "other", "阀座螺纹损坏")
    assert rec["agency_site_id"] == world.sites["INS-1"]
    row = await pool.fetchrow(
        """SELECT kind, disposition, site_id, operator, details FROM events
            WHERE cylinder_id = $1 ORDER BY ts DESC LIMIT 1""",
        cid,
    )
    assert (row["kind"], row["disposition"], row["site_id"]) == (
        "scrap",
        "inactive",
        world.sites["INS-1"],
    )
    assert row["details"]["reason"] == "other" and row["operator"] == "t_inspector"
    audit = await pool.fetchrow(
        """SELECT username, details FROM audit_log WHERE action = 'cylinder.scrap'
            AND entity_id = $1""",
        str(cid),
    )
    assert audit["username"] == "t_inspector" and audit["details"]["reason"] == "other"
    assert await _gun_reasons(settings, pool, tag) == ["unknown_tag"]
    # the admin names the agency on whose behalf it acts
    cid2 = await fresh.cylinder("A")
    status, out = await call(
        client,
        "POST",
        f"/api/v1/cylinders/{cid2}/scrap",
        "t_admin",
        {"reason": "over_age", "agency_site_id": world.sites["INS-1"]},
    )
    assert status == 201 and out["inspection"]["agency_site_id"] == world.sites["INS-1"]


def _bad(world: World) -> list[tuple[str, str, dict[str, Any] | None, int, str, str | None]]:
    """(user, path under the cylinder, body, status, error code, field)."""
    today = world.today.isoformat()
    return [
        ("t_inspector", "scrap", {}, 400, "invalid_field", "reason"),  # missing reason
        ("t_inspector", "scrap", {"reason": "melted"}, 400, "invalid_field", "reason"),
        ("t_inspector", "scrap", {"reason": "other"}, 400, "invalid_field", "note"),
        ("t_inspector", "scrap", {"reason": "other", "note": "  "}, 400, "invalid_field", "note"),
        (
            "t_inspector",
            "scrap",
            {"reason": "damage", "scrapped_on": "2024-02-30"},
            400,
            "invalid_field",
            "scrapped_on",
        ),
        (
            "t_inspector",
            "scrap",
            {"reason": "damage", "scrapped_on": "2999-01-01"},
            400,
            "invalid_field",
            "scrapped_on",
        ),
        (
            "t_inspector",
            "scrap",
            {"reason": "damage", "scrapped_on": "1990-01-01"},  # before manufacture
            400,
            "invalid_field",
            "scrapped_on",
        ),
        ("t_inspector", "scrap", {"reason": "damage", "x": 1}, 400, "invalid_field", "x"),
        (
            "t_inspector",
            "scrap",
            {"reason": "damage", "agency_site_id": 1},
            403,
            "forbidden",
            "agency_site_id",
        ),
        (
            "t_admin",
            "scrap",
            {"reason": "damage", "agency_site_id": world.sites["STA-A1"]},  # not an agency
            400,
            "invalid_field",
            "agency_site_id",
        ),
        ("t_company_a", "scrap", {"reason": "damage"}, 403, "forbidden", None),
        ("t_regulator", "scrap", {"reason": "damage"}, 403, "forbidden", None),
        (
            "t_inspector",
            "inspections",
            {"inspected_on": today, "result": "pass", "scrap_reason": "damage"},
            400,
            "invalid_field",
            "scrap_reason",
        ),
        (
            "t_inspector",
            "inspections",
            {"inspected_on": today, "result": "fail", "scrap_reason": "melted"},
            400,
            "invalid_field",
            "scrap_reason",
        ),
        (
            "t_inspector",
            "inspections",
            {"inspected_on": "2025-13-01", "result": "pass"},
            400,
            "invalid_field",
            "inspected_on",
        ),
        (
            "t_inspector",
            "inspections?dry_run=maybe",
            {"inspected_on": today, "result": "pass"},
            400,
            "invalid_query",
            "dry_run",
        ),
    ]


async def test_bad_input_one_error_shape_nothing_written(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool
) -> None:
    cid = await fresh.cylinder("A")
    for user, where, body, want, code, field in _bad(world):
        before = await _footprint(pool, cid)
        status, err = await call(client, "POST", f"/api/v1/cylinders/{cid}/{where}", user, body)
        assert status == want, (user, where, body, err)
        assert set(err) == {"error"} and err["error"]["code"] == code, err
        assert isinstance(err["error"]["message"], str) and err["error"]["message"]
        if field is not None:
            assert err["error"]["details"]["field"] == field, err
        assert await _footprint(pool, cid) == before, (where, body)


async def test_unknown_or_out_of_scope_cylinder_is_404(client: Any, world: World) -> None:
    missing = 2**62
    for method, path, body in (
        ("POST", f"/api/v1/cylinders/{missing}/scrap", {"reason": "damage"}),
        ("GET", f"/api/v1/cylinders/{missing}/inspections", None),
        ("POST", "/api/v1/cylinders/not-a-number/scrap", {"reason": "damage"}),
    ):
        status, err = await call(client, method, path, "t_inspector", body)
        assert status == 404 and err["error"]["code"] == "not_found", (path, err)
    cyl_a = world.cylinders["TAG-A-OK"]
    status, err = await call(client, "GET", f"/api/v1/cylinders/{cyl_a}/inspections", "t_company_b")
    assert status == 404 and err["error"]["code"] == "not_found"


async def test_scrapped_once_never_again(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool
) -> None:
    cid = await fresh.cylinder("A")
    status, _ = await call(
        client, "POST", f"/api/v1/cylinders/{cid}/scrap", "t_inspector", {"reason": "damage"}
    )
    assert status == 201
    before = await _footprint(pool, cid)
    for path, body in (
        ("scrap", {"reason": "over_age"}),
        ("inspections", {"inspected_on": world.today.isoformat(), "result": "pass"}),
        ("inspections", {"inspected_on": world.today.isoformat(), "result": "fail"}),
    ):
        status, err = await call(
            client, "POST", f"/api/v1/cylinders/{cid}/{path}", "t_inspector", body
        )
        assert status == 409 and err["error"]["code"] == "invalid_transition", err
        assert err["error"]["details"]["field"] == "status"
        assert await _footprint(pool, cid) == before
    # un-scrapping through the archive is refused too, and the database refuses it for anyone
    status, err = await call(
        client, "PATCH", f"/api/v1/cylinders/{cid}", "t_admin", {"status": "in_service"}
    )
    assert status == 409
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await pool.execute("UPDATE cylinders SET status = 'in_service' WHERE id = $1", cid)
    assert exc.value.constraint_name == "cylinders_scrapped_final"


async def test_a_voided_tag_is_void_for_ever(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool
) -> None:
    """Migration 0110: scrapping voids the tag whoever writes it; never un-voided or moved."""
    cid = await fresh.cylinder("A")
    await pool.execute("UPDATE cylinders SET status = 'scrapped' WHERE id = $1", cid)
    assert await pool.fetchval("SELECT tag_voided FROM cylinders WHERE id = $1", cid) is True
    for sql in (
        "UPDATE cylinders SET tag_voided = false WHERE id = $1",
        "UPDATE cylinders SET tag = tag || '-X' WHERE id = $1",
    ):
        with pytest.raises(asyncpg.CheckViolationError) as exc:
            await pool.execute(sql, cid)
        assert exc.value.constraint_name == "cylinders_tag_voided_final"
    # the admin's PATCH of the tag reaches the same rule: a 400 naming the field, not a 500
    status, err = await call(
        client, "PATCH", f"/api/v1/cylinders/{cid}", "t_admin", {"tag": unique("NEWTAG")}
    )
    assert status == 400 and err["error"]["details"]["field"] == "tag", err
    # keeping it scrapped and correcting other fields still works
    await pool.execute("UPDATE cylinders SET stamp = 'FIXED', tag_voided = true WHERE id = $1", cid)


async def test_who_sees_which_records(
    client: Any, world: World, fresh: Fresh, pool: asyncpg.Pool
) -> None:
    other_agency = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, district_code)
           VALUES ($1, '另一检验机构', 'inspection_agency', '410103') RETURNING id""",
        unique("INS"),
    )
    cyl_a, cyl_b = await fresh.cylinder("A"), await fresh.cylinder("B")
    today = world.today.isoformat()
    ids: dict[str, int] = {}
    for key, user, cid, extra in (
        ("a_own", "t_inspector", cyl_a, {}),
        ("b_own", "t_inspector", cyl_b, {}),
        ("a_other", "t_admin", cyl_a, {"agency_site_id": other_agency}),
    ):
        status, out = await call(
            client,
            "POST",
            f"/api/v1/cylinders/{cid}/inspections",
            user,
            {"inspected_on": today, "result": "pass", **extra},
        )
        assert status == 201, out
        ids[key] = out["inspection"]["id"]

    async def seen(user: str) -> set[str]:
        status, out = await call(client, "GET", f"/api/v1/inspections?date={today}", user)
        assert status == 200, out
        got = {r["id"] for r in out["items"]}
        return {k for k, v in ids.items() if v in got}

    assert await seen("t_inspector") == {"a_own", "b_own"}  # its agency's work only
    assert await seen("t_admin") == {"a_own", "b_own", "a_other"}
    assert await seen("t_regulator") == {"a_own", "b_own", "a_other"}
    assert await seen("t_regulator_jinshui") == {"a_own", "a_other"}  # 410105's cylinders
    assert await seen("t_company_a") == {"a_own", "a_other"}
    assert await seen("t_company_b") == {"b_own"}
    # the history of a cylinder follows the cylinder: every agency's records
    status, hist = await call(
        client, "GET", f"/api/v1/cylinders/{cyl_a}/inspections", "t_inspector"
    )
    assert [r["id"] for r in hist["items"]] == [ids["a_other"], ids["a_own"]]  # newest first


async def test_day_filters_counts_and_csv(client: Any, world: World, fresh: Fresh) -> None:
    day = world.today - dt.timedelta(days=3)  # a day no other test writes
    results = ("pass", "pass", "fail", "scrap")
    for result in results:
        cid = await fresh.cylinder("A")
        status, out = await call(
            client,
            "POST",
            f"/api/v1/cylinders/{cid}/inspections",
            "t_inspector",
            {"inspected_on": day.isoformat(), "result": result},
        )
        assert status == 201, out
    status, out = await call(
        client, "GET", f"/api/v1/inspections?date={day}&result=pass", "t_inspector"
    )
    assert status == 200 and out["total"] == 2
    assert {r["result"] for r in out["items"]} == {"pass"}
    assert out["counts"] == {"pass": 2, "fail": 1, "scrap": 1}  # the counts ignore `result`
    status, out = await call(
        client, "GET", f"/api/v1/inspections?from={day}&to={day}", "t_inspector"
    )
    assert out["total"] == 4 and [r["inspected_on"] for r in out["items"]] == [day.isoformat()] * 4
    assert [r["result"] for r in out["items"]] == list(reversed(results))  # newest first
    status, raw = await call(
        client, "GET", f"/api/v1/inspections?date={day}&format=csv", "t_inspector"
    )
    assert status == 200
    lines = raw.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("id,inspected_on,result,scrap_reason,tag") and len(lines) == 5
    for query, field in (
        ("date=2024-02-30", "date"),
        ("date=2024-01-01&from=2024-01-01", "date"),
        ("from=2024-02-01&to=2024-01-01", "to"),
        ("result=maybe", "result"),
        ("agency=x", "agency"),
        ("colour=red", "colour"),
        ("format=pdf", "format"),
    ):
        status, err = await call(client, "GET", f"/api/v1/inspections?{query}", "t_inspector")
        assert status == 400 and err["error"]["code"] == "invalid_query", (query, err)
        assert err["error"]["details"]["field"] == field
