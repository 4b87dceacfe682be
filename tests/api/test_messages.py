"""Messages (docs/API.md "Messages and notices"): the fan-out to a company and to a district,
inbox and outbox, read receipts, the unread count, scope, replies, the platform's own
messages, and bad input answered with the one error shape with nothing written.

The session's `world` is shared with other suites (which add users to company A, for
instance), so the recipients of a company are compared with the company's active users read
at the time, and district tests make users of their own.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from server.db.messages import deliver_system_message
from tests.api.conftest import call, unique
from tests.conftest import World


async def send(client: Any, user: str, body: dict[str, Any], status: int = 201) -> Any:
    got, out = await call(client, "POST", "/api/v1/messages", user, body)
    assert got == status, out
    return out


async def company_users(pool: Any, company_id: int) -> set[int]:
    rows = await pool.fetch("SELECT id FROM users WHERE company_id = $1 AND active", company_id)
    return {r["id"] for r in rows}


async def recipients(pool: Any, message_id: int) -> set[int]:
    rows = await pool.fetch(
        "SELECT user_id FROM message_recipients WHERE message_id = $1", message_id
    )
    return {r["user_id"] for r in rows}


async def new_user(pool: Any, role: str, **cols: Any) -> tuple[int, str]:
    """A user of one's own (the password is never used: the hash is a placeholder)."""
    name = unique("u").lower()
    uid = await pool.fetchval(
        """INSERT INTO users (username, password_hash, role, company_id, site_id, districts)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        name,
        "$argon2id$v=19$m=1024,t=1,p=1$placeholder$placeholder",
        role,
        cols.get("company_id"),
        cols.get("site_id"),
        cols.get("districts", []),
    )
    return int(uid), name


def error_shape(body: Any, status_code: str) -> None:
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == status_code and isinstance(err["message"], str) and err["message"]


# ------------------------------------------------------------------ fan-out


async def test_a_message_to_a_company_reaches_all_its_users(
    client: Any, pool: Any, world: World
) -> None:
    expected = await company_users(pool, world.companies["A"])
    assert {world.users["t_company_a"], world.users["t_operator_a"]} <= expected
    out = await send(
        client,
        "t_regulator",
        {
            "subject": "安全检查通知",
            "body": "请于本周完成自查。",
            "to": {"companies": [world.companies["A"]]},
        },
    )
    assert out["recipient_count"] == len(expected)
    assert await recipients(pool, out["id"]) == expected
    assert world.users["t_company_b"] not in expected


async def test_a_message_to_a_district_reaches_the_users_placed_there(
    client: Any, pool: Any, world: World
) -> None:
    officer, _ = await new_user(pool, "officer", districts=["410103"])
    district_reg, _ = await new_user(pool, "regulator", districts=["410103", "410105"])
    operator_b, _ = await new_user(
        pool, "station_operator", company_id=world.companies["B"], site_id=world.sites["STA-B1"]
    )
    out = await send(client, "t_admin", {"subject": "二七区通知", "to": {"districts": ["410103"]}})
    got = await recipients(pool, out["id"])
    # placed in 410103: its officer and regulator, company B (registered there) and its station
    assert {officer, district_reg, operator_b, world.users["t_company_b"]} <= got
    # not placed there: 410105's people, company A, the inspection agency (INS-1 is in
    # 410105), a city-wide regulator (no district), the sender
    for name in (
        "t_officer",
        "t_company_a",
        "t_operator_a",
        "t_inspector",
        "t_regulator",
        "t_admin",
    ):
        assert world.users[name] not in got, name


async def test_users_companies_and_districts_combine_once_each(
    client: Any, pool: Any, world: World
) -> None:
    out = await send(
        client,
        "t_regulator",
        {
            "subject": "合并",
            "to": {
                "users": [world.users["t_company_a"], world.users["t_company_a"]],
                "companies": [world.companies["A"]],
                "districts": ["410105"],
            },
        },
    )
    got = await recipients(pool, out["id"])
    assert out["recipient_count"] == len(got)  # one row per user, however often named
    assert world.users["t_officer"] in got and world.users["t_regulator"] not in got


# ------------------------------------------------------------------ inbox, outbox, receipts


async def test_inbox_outbox_read_receipts_and_unread_count(
    client: Any, pool: Any, world: World
) -> None:
    _, before = await call(client, "GET", "/api/v1/messages/unread-count", "t_company_a")
    out = await send(
        client,
        "t_regulator",
        {"subject": unique("回执"), "body": "正文", "to": {"companies": [world.companies["A"]]}},
    )
    mid = out["id"]
    _, counts = await call(client, "GET", "/api/v1/messages/unread-count", "t_company_a")
    assert counts["messages"] == before["messages"] + 1
    # the inbox: unread first, this one among them, with its sender
    _, inbox = await call(
        client, "GET", "/api/v1/messages?unread=true&page_size=1000", "t_company_a"
    )
    row = next(r for r in inbox["items"] if r["id"] == mid)
    assert row["read_at"] is None and row["sender_username"] == "t_regulator"
    assert row["preview"] == "正文"
    # the sender's outbox: nobody has read it yet
    _, outbox = await call(client, "GET", "/api/v1/messages?box=outbox", "t_regulator")
    sent = next(r for r in outbox["items"] if r["id"] == mid)
    assert sent["read_count"] == 0 and sent["recipient_count"] == out["recipient_count"]
    assert sent["audience"]["companies"] == [world.companies["A"]]
    # company A's admin reads it; again is the same time, counted once
    status, first = await call(client, "POST", f"/api/v1/messages/{mid}/read", "t_company_a")
    assert status == 200 and first["changed"] is True and first["read_at"]
    status, again = await call(client, "POST", f"/api/v1/messages/{mid}/read", "t_company_a")
    assert status == 200 and again == {**first, "changed": False}
    _, counts = await call(client, "GET", "/api/v1/messages/unread-count", "t_company_a")
    assert counts["messages"] == before["messages"]
    _, outbox = await call(client, "GET", "/api/v1/messages?box=outbox", "t_regulator")
    assert next(r for r in outbox["items"] if r["id"] == mid)["read_count"] == 1
    # the receipts: who read it, who has not
    _, read = await call(
        client, "GET", f"/api/v1/messages/{mid}/recipients?read=true", "t_regulator"
    )
    assert [r["username"] for r in read["items"]] == ["t_company_a"]
    assert read["items"][0]["read_at"] == first["read_at"]
    _, unread = await call(
        client, "GET", f"/api/v1/messages/{mid}/recipients?read=false", "t_regulator"
    )
    assert "t_operator_a" in {r["username"] for r in unread["items"]}
    assert "t_company_a" not in {r["username"] for r in unread["items"]}
    # read messages sort after unread ones in the inbox
    _, inbox = await call(client, "GET", "/api/v1/messages?page_size=1000", "t_company_a")
    flags = [r["read_at"] is None for r in inbox["items"]]
    assert flags == sorted(flags, reverse=True)
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'message.read' AND entity_id = $1", str(mid)
    )
    assert audited == 1


async def test_a_reply_goes_to_the_writer_only_in_the_thread(
    client: Any, pool: Any, world: World
) -> None:
    first = await send(
        client,
        "t_regulator_jinshui",
        {"subject": "请报告", "to": {"companies": [world.companies["A"]]}},
    )
    reply = await send(
        client,
        "t_company_a",
        {"subject": "回复：请报告", "body": "已完成", "reply_to": first["id"]},
    )
    assert await recipients(pool, reply["id"]) == {world.users["t_regulator_jinshui"]}
    _, detail = await call(client, "GET", f"/api/v1/messages/{reply['id']}", "t_regulator_jinshui")
    assert detail["thread_id"] == first["id"] and detail["can_reply"] is True
    assert [m["id"] for m in detail["thread"]] == [first["id"], reply["id"]]
    # the station operator, who also received the first message, sees it but not the reply
    status, _ = await call(client, "GET", f"/api/v1/messages/{reply['id']}", "t_operator_a")
    assert status == 404
    _, op_view = await call(client, "GET", f"/api/v1/messages/{first['id']}", "t_operator_a")
    assert [m["id"] for m in op_view["thread"]] == [first["id"]]
    # the writer answers back: the thread goes on
    back = await send(client, "t_regulator_jinshui", {"subject": "收到", "reply_to": reply["id"]})
    assert await recipients(pool, back["id"]) == {world.users["t_company_a"]}
    _, detail = await call(client, "GET", f"/api/v1/messages/{back['id']}", "t_company_a")
    assert [m["id"] for m in detail["thread"]] == [first["id"], reply["id"], back["id"]]


# ------------------------------------------------------------------ scope


async def test_scope_of_senders_and_readers(client: Any, pool: Any, world: World) -> None:
    # a company answers, it does not start a message
    status, body = await call(
        client,
        "POST",
        "/api/v1/messages",
        "t_company_a",
        {"subject": "x", "to": {"companies": [world.companies["B"]]}},
    )
    assert status == 403, body
    # a district regulator writes within its districts only (out of scope looks unknown)
    for to, field in (
        ({"companies": [world.companies["B"]]}, "to.companies"),
        ({"districts": ["410103"]}, "to.districts"),
        ({"users": [world.users["t_company_b"]]}, "to.users"),
    ):
        status, body = await call(
            client, "POST", "/api/v1/messages", "t_regulator_jinshui", {"subject": "x", "to": to}
        )
        assert status == 400 and body["error"]["details"]["field"] == field, body
    out = await send(
        client,
        "t_regulator_jinshui",
        {"subject": "金水区", "to": {"companies": [world.companies["A"]]}},
    )
    # only its sender and recipients read it
    for user, expected in (
        ("t_regulator_jinshui", 200),
        ("t_company_a", 200),
        ("t_operator_a", 200),
        ("t_company_b", 404),
        ("t_admin", 404),
        ("t_regulator", 404),
    ):
        status, _ = await call(client, "GET", f"/api/v1/messages/{out['id']}", user)
        assert status == expected, user
    # receipts are the sender's; marking read is a recipient's
    status, _ = await call(client, "GET", f"/api/v1/messages/{out['id']}/recipients", "t_company_a")
    assert status == 404
    status, _ = await call(client, "POST", f"/api/v1/messages/{out['id']}/read", "t_company_b")
    assert status == 404
    # the pickers show what the sender may address
    _, companies = await call(
        client, "GET", "/api/v1/messages/targets?kind=companies", "t_regulator_jinshui"
    )
    ids = {c["id"] for c in companies["items"]}
    assert world.companies["A"] in ids and world.companies["B"] not in ids
    _, districts = await call(
        client, "GET", "/api/v1/messages/targets?kind=districts", "t_regulator_jinshui"
    )
    assert [d["code"] for d in districts["items"]] == ["410105"]
    _, users = await call(
        client, "GET", "/api/v1/messages/targets?kind=users&q=t_company", "t_regulator"
    )
    assert {"t_company_a", "t_company_b"} <= {u["username"] for u in users["items"]}


# ------------------------------------------------------------------ the platform's messages


async def test_a_system_message_lands_in_the_inbox_and_takes_no_answer(
    client: Any, pool: Any, world: World
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        mid = await deliver_system_message(
            conn, [world.users["t_officer"], world.users["t_officer"]], "月报已生成", "见附件"
        )
    assert mid is not None
    _, inbox = await call(client, "GET", "/api/v1/messages?unread=true&page_size=1000", "t_officer")
    row = next(r for r in inbox["items"] if r["id"] == mid)
    assert row["kind"] == "system" and row["sender_id"] is None
    status, body = await call(
        client, "POST", "/api/v1/messages", "t_officer", {"subject": "回复", "reply_to": mid}
    )
    assert status == 409, body
    # rolled back with its transaction: nothing, and nobody is told
    before = await pool.fetchval("SELECT count(*) FROM messages")
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await deliver_system_message(conn, [world.users["t_officer"]], "x", "y")
            raise RuntimeError("the business change failed")
    assert await pool.fetchval("SELECT count(*) FROM messages") == before
    async with pool.acquire() as conn, conn.transaction():
        assert await deliver_system_message(conn, [], "x", "y") is None


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"to": {"companies": [1]}}, 400, "invalid_field"),  # no subject
        ({"subject": "", "to": {"companies": [1]}}, 400, "invalid_field"),
        ({"subject": "   ", "to": {"companies": [1]}}, 400, "invalid_field"),
        ({"subject": "x" * 201, "to": {"companies": [1]}}, 400, "invalid_field"),
        ({"subject": "x", "body": "y" * 10_001, "to": {"companies": [1]}}, 400, "invalid_field"),
        ({"subject": "x"}, 400, "invalid_field"),  # no audience
        ({"subject": "x", "to": {}}, 400, "invalid_field"),
        ({"subject": "x", "to": {"districts": ["41010"]}}, 400, "invalid_field"),
        ({"subject": "x", "to": {"districts": ["999999"]}}, 400, "invalid_field"),
        ({"subject": "x", "to": {"users": [0]}}, 400, "invalid_field"),
        ({"subject": "x", "to": {"users": [2**63]}}, 400, "invalid_field"),
        ({"subject": "x", "to": {"users": [9_000_000_000]}}, 400, "invalid_field"),
        ({"subject": "x", "to": {"groups": [1]}}, 400, "invalid_field"),
        ({"subject": "x", "cc": []}, 400, "invalid_field"),
        ({"subject": "x", "reply_to": 9_000_000_000}, 404, "not_found"),
        ({"subject": 5, "to": {"companies": [1]}}, 400, "invalid_field"),
    ],
)
async def test_bad_input_is_one_error_shape_and_writes_nothing(
    client: Any, pool: Any, body: dict[str, Any], status: int, code: str
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM messages")
    got, out = await call(client, "POST", "/api/v1/messages", "t_regulator", body)
    assert got == status, out
    error_shape(out, code)
    assert await pool.fetchval("SELECT count(*) FROM messages") == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages?box=sent",
        "/api/v1/messages?unread=maybe",
        "/api/v1/messages?folder=inbox",
        "/api/v1/messages?page=0",
        "/api/v1/messages/targets",
        "/api/v1/messages/targets?kind=groups",
        "/api/v1/messages/unread-count?x=1",
        "/api/v1/messages/9000000000",
        "/api/v1/messages/99999999999999999999",
    ],
)
async def test_bad_queries_are_one_error_shape(client: Any, path: str) -> None:
    status, out = await call(client, "GET", path, "t_regulator")
    assert status in (400, 404), (path, out)
    error_shape(out, "invalid_query" if status == 400 else "not_found")


async def test_not_json_is_refused(client: Any) -> None:
    status, out = await call(
        client,
        "POST",
        "/api/v1/messages",
        "t_regulator",
        data=b"subject=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415
    error_shape(out, "unsupported_media_type")


async def test_the_fan_out_is_bounded(
    aiohttp_client: Any, settings: Any, pool: Any, world: World
) -> None:
    from server.app import create_app

    bounded = msgspec.structs.replace(
        settings, messages=msgspec.structs.replace(settings.messages, recipients_max=1)
    )
    client = await aiohttp_client(create_app(bounded, with_pages=False))
    before = await pool.fetchval("SELECT count(*) FROM messages")
    status, out = await call(
        client,
        "POST",
        "/api/v1/messages",
        "t_regulator",
        {"subject": "太多", "to": {"companies": [world.companies["A"]]}},
    )
    assert status == 400, out
    error_shape(out, "invalid_field")
    assert out["error"]["details"]["limit"] == 1
    assert await pool.fetchval("SELECT count(*) FROM messages") == before
    await send(
        client, "t_regulator", {"subject": "一人", "to": {"users": [world.users["t_company_b"]]}}
    )
