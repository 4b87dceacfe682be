"""Entrustments (委托充装): a company admin entrusts a filler company, the filler's stations may
then fill its cylinders at once (not_owner disappears), either party ends it and the gun
refuses again; scope; bad input answered with the one error shape and nothing written."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.kernel.clock import city_today
from tests.api.conftest import Fresh, call, unique
from tests.api.fill_auth import reasons
from tests.conftest import World

URL = "/api/v1/entrustments"


def _error(body: Any, code: str, field: str | None = None) -> None:
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"} and err["code"] == code, err
    if field is not None:
        assert err["details"]["field"] == field, err


async def _company(pool: Any, district: str = "410105") -> int:
    return int(
        await pool.fetchval(
            "INSERT INTO companies (code, name, district_code) VALUES ($1, '受托测试公司', $2)"
            " RETURNING id",
            unique("ENCO"),
            district,
        )
    )


@pytest.fixture
def today(settings: Any) -> dt.date:
    """The city's day, the one the API judges entrustments by."""
    return city_today(settings)


@pytest.fixture
async def cleanup(pool: Any, world: World) -> AsyncIterator[list[int]]:
    """Entrustments a test makes between the world's companies are removed afterwards: the
    session database is shared (tests/sim reads which pairs may fill)."""
    made: list[int] = []
    yield made
    await pool.execute("DELETE FROM entrustments WHERE id = ANY($1)", made)


async def _count(pool: Any) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM entrustments"))


async def test_entrusting_lets_the_filler_fill_at_once_and_ending_stops_it(
    client: Any,
    pool: Any,
    settings: Any,
    world: World,
    fresh: Fresh,
    cleanup: list[int],
    today: dt.date,
) -> None:
    tag = await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", await fresh.cylinder("A"))
    assert await reasons(settings, pool, "GUN-STA-B1", tag) == ["not_owner"]
    # a month: the role walk's A→B entrustments (years ahead) must not overlap this one
    month = (today + dt.timedelta(days=30)).isoformat()
    status, body = await call(
        client,
        "POST",
        URL,
        "t_company_a",
        {"filler_company_id": world.companies["B"], "note": "委托协议 2026-01", "valid_to": month},
    )
    assert status == 201, body
    cleanup.append(body["id"])
    assert body["owner_company_id"] == world.companies["A"] and body["owner_code"] == "TEST-A"
    assert body["filler_code"] == "TEST-B" and body["state"] == "active"
    assert body["valid_from"] == today.isoformat() and body["valid_to"] == month
    assert await reasons(settings, pool, "GUN-STA-B1", tag) == []
    # A's own cylinders only: B's station still may not fill a third company's
    audit = await pool.fetchrow(
        "SELECT username, details FROM audit_log WHERE action = 'entrustment.create'"
        " AND entity_id = $1",
        str(body["id"]),
    )
    assert audit["username"] == "t_company_a"
    assert audit["details"]["filler_company_id"] == world.companies["B"]
    # the filler ends it (either party may)
    status, ended = await call(
        client, "POST", f"{URL}/{body['id']}/end", "t_company_b", {"reason": "协议终止"}
    )
    assert status == 200, ended
    assert ended["state"] == "ended" and ended["end_reason"] == "协议终止"
    assert ended["valid_to"] == (today - dt.timedelta(days=1)).isoformat()
    assert await reasons(settings, pool, "GUN-STA-B1", tag) == ["not_owner"]
    status, again = await call(client, "POST", f"{URL}/{body['id']}/end", "t_company_a")
    assert status == 409, again
    _error(again, "invalid_transition", "state")
    # ended by mistake on its first day: it can be made again from the same day
    status, body = await call(
        client,
        "POST",
        URL,
        "t_company_a",
        {"filler_company_id": world.companies["B"], "valid_to": month},
    )
    assert status == 201, body
    cleanup.append(body["id"])
    status, _ = await call(client, "POST", f"{URL}/{body['id']}/end", "t_admin", {})
    assert status == 200


async def test_scope_each_company_sees_what_it_gives_or_receives(
    client: Any, pool: Any, world: World
) -> None:
    other = await _company(pool, "410105")
    far = await _company(pool, "410103")
    status, a_to_c = await call(client, "POST", URL, "t_company_a", {"filler_company_id": other})
    assert status == 201, a_to_c
    status, far_row = await call(
        client,
        "POST",
        URL,
        "t_admin",
        {"owner_company_id": far, "filler_company_id": other},
    )
    assert status == 201, far_row
    seen = {}
    for user in (
        "t_admin",
        "t_regulator",
        "t_regulator_jinshui",
        "t_officer",
        "t_company_a",
        "t_company_b",
        "t_operator_a",
    ):
        status, body = await call(client, "GET", f"{URL}?company={other}", user)
        assert status == 200, (user, body)
        seen[user] = {r["id"] for r in body["items"]}
    both = {a_to_c["id"], far_row["id"]}
    assert seen["t_admin"] == both and seen["t_regulator"] == both
    # 金水区 (410105): the filler is registered there, so both are theirs to supervise
    assert seen["t_regulator_jinshui"] == both and seen["t_officer"] == both
    assert seen["t_company_a"] == {a_to_c["id"]} and seen["t_operator_a"] == {a_to_c["id"]}
    assert seen["t_company_b"] == set()
    status, body = await call(client, "GET", URL, "t_inspector")
    assert status == 403
    # B cannot end what it does not see
    status, body = await call(client, "POST", f"{URL}/{a_to_c['id']}/end", "t_company_b")
    assert status == 404, body
    _error(body, "not_found")
    for user in ("t_regulator", "t_officer", "t_operator_a"):
        status, body = await call(client, "POST", f"{URL}/{a_to_c['id']}/end", user)
        assert status == 403, (user, body)


async def test_state_filter_and_the_owner_filler_filters(
    client: Any, pool: Any, world: World, today: dt.date
) -> None:
    filler = await _company(pool)
    rows = {}
    for name, extra in {
        "active": {"valid_to": (today + dt.timedelta(days=30)).isoformat()},
        "pending": {
            "valid_from": (today + dt.timedelta(days=31)).isoformat(),
            "valid_to": (today + dt.timedelta(days=60)).isoformat(),
        },
    }.items():
        status, body = await call(
            client, "POST", URL, "t_company_a", {"filler_company_id": filler, **extra}
        )
        assert status == 201 and body["state"] == name, body
        rows[name] = body["id"]
    expired = await pool.fetchval(
        """INSERT INTO entrustments (owner_company_id, filler_company_id, valid_from, valid_to)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        world.companies["A"],
        filler,
        today - dt.timedelta(days=90),
        today - dt.timedelta(days=61),
    )
    rows["expired"] = expired
    status, _ = await call(client, "POST", f"{URL}/{rows['pending']}/end", "t_company_a")
    assert status == 200
    rows["ended"] = rows.pop("pending")
    for state, eid in rows.items():
        status, body = await call(
            client, "GET", f"{URL}?filler={filler}&state={state}", "t_company_a"
        )
        assert status == 200 and [r["id"] for r in body["items"]] == [eid], (state, body)
        assert body["items"][0]["state"] == state
    status, body = await call(
        client, "GET", f"{URL}?owner={world.companies['A']}&filler={filler}", "t_company_a"
    )
    assert {r["id"] for r in body["items"]} == set(rows.values())
    status, body = await call(client, "GET", f"{URL}?owner={filler}", "t_company_a")
    assert body["items"] == []


@pytest.mark.parametrize(
    ("user", "body", "status", "code", "field"),
    [
        ("t_company_a", {"filler_company_id": 999_999_999}, 400, "invalid_field", "filler_company_id"),
        ("t_admin", {"owner_company_id": 999_999_999, "filler_company_id": "{B}"}, 400, "invalid_field", "owner_company_id"),
        ("t_company_a", {"filler_company_id": "{A}"}, 400, "invalid_field", "filler_company_id"),
        ("t_company_a", {"filler_company_id": "{B}", "valid_from": "{+10}", "valid_to": "{+5}"}, 400, "invalid_field", "valid_to"),
        ("t_company_a", {"filler_company_id": "{B}", "valid_from": "{-30}", "valid_to": "{-1}"}, 400, "invalid_field", "valid_to"),
        ("t_company_a", {"filler_company_id": "{B}", "valid_from": "2026-02-30"}, 400, "invalid_field", "valid_from"),
        ("t_company_a", {"filler_company_id": "{B}", "color": "red"}, 400, "invalid_field", "color"),
        ("t_company_a", {"filler_company_id": 0}, 400, "invalid_field", "filler_company_id"),
        ("t_company_a", {}, 400, "invalid_field", "filler_company_id"),
        ("t_company_a", {"filler_company_id": "{B}", "note": "x" * 501}, 400, "invalid_field", "note"),
        ("t_admin", {"filler_company_id": "{B}"}, 400, "invalid_field", "owner_company_id"),
        ("t_company_a", {"owner_company_id": "{B}", "filler_company_id": "{A}"}, 403, "forbidden", "owner_company_id"),
        ("t_regulator", {"owner_company_id": "{A}", "filler_company_id": "{B}"}, 403, "forbidden", None),
    ],
)  # fmt: skip
async def test_bad_input_is_one_error_shape_and_writes_nothing(
    client: Any,
    pool: Any,
    world: World,
    user: str,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
    today: dt.date,
) -> None:

    def fill(v: Any) -> Any:
        if v == "{A}" or v == "{B}":
            return world.companies[v[1]]
        if isinstance(v, str) and v.startswith("{") and v.endswith("}"):
            return (today + dt.timedelta(days=int(v[1:-1]))).isoformat()
        return v

    before = await _count(pool)
    got_status, got = await call(client, "POST", URL, user, {k: fill(v) for k, v in body.items()})
    assert got_status == status, got
    _error(got, code, field)
    assert await _count(pool) == before


async def test_an_overlapping_duplicate_is_a_conflict(
    client: Any, pool: Any, world: World, today: dt.date
) -> None:
    filler = await _company(pool)
    first = {
        "filler_company_id": filler,
        "valid_from": (today + dt.timedelta(days=10)).isoformat(),
        "valid_to": (today + dt.timedelta(days=20)).isoformat(),
    }
    status, made = await call(client, "POST", URL, "t_company_a", first)
    assert status == 201, made
    before = await _count(pool)
    for period in (
        (10, 20),  # the same
        (0, 10),  # touches its first day
        (20, None),  # touches its last day, then open-ended
        (12, 15),  # inside
    ):
        body = {
            "filler_company_id": filler,
            "valid_from": (today + dt.timedelta(days=period[0])).isoformat(),
        }
        if period[1] is not None:
            body["valid_to"] = (today + dt.timedelta(days=period[1])).isoformat()
        status, got = await call(client, "POST", URL, "t_company_a", body)
        assert status == 409, (period, got)
        _error(got, "conflict", "filler_company_id")
        assert got["error"]["details"]["entrustment"] == made["id"]
    assert await _count(pool) == before
    # the day after: no overlap
    status, body = await call(
        client,
        "POST",
        URL,
        "t_company_a",
        {"filler_company_id": filler, "valid_from": (today + dt.timedelta(days=21)).isoformat()},
    )
    assert status == 201, body


@pytest.mark.parametrize("query", ["state=over", "owner=x", "filler=0", "company=-1", "who=me"])
async def test_bad_filters_are_400(client: Any, query: str) -> None:
    status, body = await call(client, "GET", f"{URL}?{query}", "t_regulator")
    assert status == 400, body
    _error(body, "invalid_query")


async def test_ending_unknown_is_404(client: Any) -> None:
    status, body = await call(client, "POST", f"{URL}/999999999/end", "t_admin")
    assert status == 404
    _error(body, "not_found")
