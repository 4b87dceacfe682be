"""Licences: the list (scope, state, days left), the regulator's suspend / revoke / reinstate
with a reason (audited, one error shape for bad input), and the gun seeing a station's new
status at its next request (docs/API.md "Licences")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.kernel.clock import city_today
from tests.api.conftest import call, unique
from tests.api.fill_auth import reasons, station_with_gun
from tests.conftest import World

URL = "/api/v1/licences"


def _status_url(kind: str, holder: int) -> str:
    return f"{URL}/{kind}/{holder}/status"


def _error(body: Any, code: str, field: str | None = None) -> None:
    """The one error shape (docs/API.md "Errors")."""
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    if field is not None:
        assert err["details"]["field"] == field, err


async def _company(pool: Any, district: str = "410105", **licence: Any) -> tuple[int, str]:
    code = unique("LICO")
    values = {
        "licence_no": unique("LIC"),
        "licence_expiry": dt.date.today() + dt.timedelta(days=200),
        "licence_status": "valid",
    }
    values.update(licence)
    cid = await pool.fetchval(
        """INSERT INTO companies (code, name, district_code, licence_no, licence_expiry,
                                  licence_status)
           VALUES ($1, '许可测试燃气公司', $2, $3, $4, $5) RETURNING id""",
        code,
        district,
        values["licence_no"],
        values["licence_expiry"],
        values["licence_status"],
    )
    return int(cid), code


async def test_list_shows_expiry_days_left_and_state(
    client: Any, world: World, settings: Any
) -> None:
    # the world's dates are the machine's day; the API counts from the city's
    shift = (world.today - city_today(settings)).days
    status, body = await call(client, "GET", f"{URL}?q=TEST-A&kind=company", "t_regulator")
    assert status == 200, body
    [row] = body["items"]
    assert row["kind"] == "company" and row["code"] == "TEST-A"
    assert row["licence_no"] == "LIC-A" and row["licence_status"] == "valid"
    assert row["days_left"] == 400 + shift and row["state"] == "valid"
    status, body = await call(client, "GET", f"{URL}?q=STA-A1&kind=site", "t_regulator")
    [row] = body["items"]
    assert row["site_kind"] == "filling_station" and row["company_id"] == world.companies["A"]
    assert row["days_left"] == 300 + shift and row["company_name"] == "测试燃气A公司"


@pytest.mark.parametrize(
    ("user", "sees", "hidden"),
    [
        ("t_company_a", {"TEST-A", "STA-A1"}, {"TEST-B", "STA-B1", "INS-1"}),
        ("t_company_b", {"TEST-B", "STA-B1"}, {"TEST-A", "STA-A1"}),
        ("t_regulator_jinshui", {"TEST-A", "STA-A1", "INS-1"}, {"TEST-B", "STA-B1"}),
        ("t_officer", {"TEST-A", "STA-A1"}, {"TEST-B", "STA-B1"}),
        ("t_regulator", {"TEST-A", "TEST-B", "STA-A1", "STA-B1", "INS-1"}, set()),
    ],
)
async def test_list_is_scoped(client: Any, user: str, sees: set[str], hidden: set[str]) -> None:
    status, body = await call(client, "GET", f"{URL}?page_size=500", user)
    assert status == 200, body
    codes = {r["code"] for r in body["items"]}
    assert sees <= codes and not hidden & codes, codes
    for code in hidden:
        status, body = await call(client, "GET", f"{URL}?q={code}", user)
        assert status == 200 and body["items"] == [], (code, body)


@pytest.mark.parametrize("user", ["t_operator_a", "t_inspector"])
async def test_list_refused_to_roles_without_the_page(client: Any, user: str) -> None:
    status, body = await call(client, "GET", URL, user)
    assert status == 403
    _error(body, "forbidden")


async def test_state_filter_agrees_with_the_state_shown(
    client: Any, pool: Any, settings: Any
) -> None:
    """Each state of server.domain.licences, made once; the SQL filter finds exactly it."""
    today = city_today(settings)
    made: dict[str, str] = {}
    kinds: dict[str, dict[str, Any]] = {
        "valid": {},
        "expiring": {"licence_expiry": today + dt.timedelta(days=10)},
        "expired": {"licence_expiry": today - dt.timedelta(days=1)},
        "missing": {"licence_no": None},
        "suspended": {"licence_status": "suspended"},
        "revoked": {"licence_status": "revoked", "licence_no": None},
    }
    for state, licence in kinds.items():
        made[state] = (await _company(pool, **licence))[1]
    prefix = "LICO-"
    for state, code in made.items():
        status, body = await call(
            client, "GET", f"{URL}?kind=company&state={state}&q={code}", "t_regulator"
        )
        assert status == 200, body
        assert [r["code"] for r in body["items"]] == [code], (state, body)
        assert body["items"][0]["state"] == state
        others = [c for s, c in made.items() if s != state]
        status, body = await call(
            client, "GET", f"{URL}?state={state}&q={prefix}&page_size=500", "t_regulator"
        )
        got = {r["code"] for r in body["items"]}
        assert code in got and not got & set(others), (state, got)
        assert {r["state"] for r in body["items"]} == {state}


async def test_suspending_a_station_refuses_its_gun_at_once(
    client: Any, pool: Any, settings: Any, world: World
) -> None:
    site, gun = await station_with_gun(pool, world.companies["A"])
    assert await reasons(settings, pool, gun, "TAG-A-OK") == []
    status, body = await call(
        client,
        "POST",
        _status_url("site", site),
        "t_regulator_jinshui",
        {"status": "suspended", "reason": "安全检查不合格，停业整顿"},
    )
    assert status == 200, body
    assert body["licence_status"] == "suspended" and body["state"] == "suspended"
    assert body["licence_status_reason"] == "安全检查不合格，停业整顿"
    assert await reasons(settings, pool, gun, "TAG-A-OK") == ["station_not_licensed"]
    audit = await pool.fetchrow(
        """SELECT username, details FROM audit_log
            WHERE action = 'licence.suspend' AND entity = 'site' AND entity_id = $1""",
        str(site),
    )
    assert audit["username"] == "t_regulator_jinshui"
    assert audit["details"]["reason"] == "安全检查不合格，停业整顿"
    assert audit["details"]["from"] == "valid" and audit["details"]["to"] == "suspended"
    # reinstated: the gun may fill again, as fast
    status, body = await call(
        client,
        "POST",
        _status_url("site", site),
        "t_regulator",
        {"status": "valid", "reason": "整改完成"},
    )
    assert status == 200 and body["state"] == "valid", body
    assert await reasons(settings, pool, gun, "TAG-A-OK") == []
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'licence.reinstate' AND entity_id = $1",
            str(site),
        )
        == 1
    )


async def test_company_licence_moves_and_a_revoked_one_stays_revoked(
    client: Any, pool: Any
) -> None:
    cid, _ = await _company(pool)
    url = _status_url("company", cid)
    for new, user in (("suspended", "t_admin"), ("revoked", "t_regulator")):
        status, body = await call(client, "POST", url, user, {"status": new, "reason": "x"})
        assert status == 200 and body["licence_status"] == new, body
    before = await pool.fetchval("SELECT count(*) FROM audit_log WHERE entity_id = $1", str(cid))
    for new in ("valid", "suspended", "revoked"):
        status, body = await call(
            client, "POST", url, "t_regulator", {"status": new, "reason": "x"}
        )
        assert status == 409, body
        _error(body, "invalid_transition", "status")
    row = await pool.fetchrow("SELECT licence_status FROM companies WHERE id = $1", cid)
    assert row["licence_status"] == "revoked"
    after = await pool.fetchval("SELECT count(*) FROM audit_log WHERE entity_id = $1", str(cid))
    assert after == before  # refused moves write nothing


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "closed", "reason": "x"}, "status"),
        ({"status": "suspended"}, "reason"),
        ({"status": "suspended", "reason": ""}, "reason"),
        ({"status": "suspended", "reason": "   "}, "reason"),
        ({"status": "suspended", "reason": "x" * 501}, "reason"),
        ({"status": "suspended", "reason": "x", "licence_no": "L"}, "licence_no"),
        ({"status": 3, "reason": "x"}, "status"),
    ],
)
async def test_bad_bodies_are_refused_whole(
    client: Any, pool: Any, world: World, body: dict[str, Any], field: str
) -> None:
    site, _ = await station_with_gun(pool, world.companies["A"])
    status, got = await call(client, "POST", _status_url("site", site), "t_regulator", body)
    assert status == 400, got
    _error(got, "invalid_field", field)
    row = await pool.fetchrow(
        "SELECT licence_status, licence_status_reason FROM sites WHERE id = $1", site
    )
    assert row["licence_status"] == "valid" and row["licence_status_reason"] is None


async def test_out_of_scope_or_unknown_holders_are_404(client: Any, world: World) -> None:
    cases = [
        ("t_regulator_jinshui", "site", world.sites["STA-B1"]),  # 二七区: not theirs
        ("t_regulator_jinshui", "company", world.companies["B"]),
        ("t_regulator", "site", 999_999_999),
        ("t_regulator", "company", 999_999_999),
    ]
    for user, kind, holder in cases:
        status, body = await call(
            client, "POST", _status_url(kind, holder), user, {"status": "suspended", "reason": "x"}
        )
        assert status == 404, (user, kind, body)
        _error(body, "not_found")
    status, body = await call(
        client, "POST", f"{URL}/customer/1/status", "t_admin", {"status": "valid", "reason": "x"}
    )
    assert status == 404


@pytest.mark.parametrize("user", ["t_officer", "t_company_a", "t_operator_a", "t_inspector"])
async def test_only_the_bureau_changes_a_licence(client: Any, world: World, user: str) -> None:
    status, body = await call(
        client,
        "POST",
        _status_url("site", world.sites["STA-A1"]),
        user,
        {"status": "suspended", "reason": "x"},
    )
    assert status == 403, body
    _error(body, "forbidden")


@pytest.mark.parametrize(
    "query",
    ["kind=person", "state=late", "status=open", "district=41", "company=" + "x" * 65, "x=1"],
)
async def test_bad_filters_are_400(client: Any, query: str) -> None:
    status, body = await call(client, "GET", f"{URL}?{query}", "t_regulator")
    assert status == 400, body
    _error(body, "invalid_query")
