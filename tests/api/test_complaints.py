"""Complaints end to end through the REST API (docs/API.md "Complaints"): filing with a ticket
and a photo, following it in public, the workflow and its refusals, the complainant's contact
kept from the company, the answer's SMS queued once, the reminder round marking each overdue
complaint once even when two rounds run at the same moment."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import secrets
from typing import Any

import aiohttp
import msgspec
import pytest
from PIL import Image

from server.db.complaints import remind_overdue
from server.domain.complaints import add_working_days, format_ticket
from server.kernel.clock import city_today
from tests.api.conftest import call, unique
from tests.conftest import World

TICKET = re.compile(r"^[2-9A-HJ-NP-Z]{12}$")
PHONE = "138 0013 8000"


def png(size: tuple[int, int] = (120, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def form(
    photo: bytes | None = None, filename: str = "valve.png", **fields: str
) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        data.add_field(name, value)
    if photo is not None:
        data.add_field("photo", io.BytesIO(photo), filename=filename, content_type="image/png")
    return data


async def file_one(client: Any, pool: Any, **over: Any) -> tuple[int, str]:
    """A complaint about company A's cylinder from the public page: (id, ticket)."""
    body = {"code": "BC-TAG-A-OK", "text": "送气工短斤少两 " + unique(), "contact": PHONE}
    body.update(over)
    status, out = await call(client, "POST", "/api/v1/public/complaints", "anonymous", body)
    assert status == 201, out
    cid = await pool.fetchval("SELECT id FROM complaints WHERE ticket = $1", out["ticket"])
    return int(cid), str(out["ticket"])


async def act(client: Any, cid: int, user: str, **body: Any) -> tuple[int, Any]:
    return await call(client, "PATCH", f"/api/v1/complaints/{cid}", user, body)


def assert_error(out: Any, code: str) -> None:
    assert set(out) == {"error"} and set(out["error"]) == {"code", "message", "details"}, out
    assert out["error"]["code"] == code, out


# ---------------------------------------------------------------- filing and following


async def test_filing_gives_a_ticket_and_a_deadline_the_public_can_follow(
    client: Any, pool: Any, settings: Any
) -> None:
    status, out = await call(
        client,
        "POST",
        "/api/v1/public/complaints",
        "anonymous",
        {"code": "BC-TAG-A-OK", "text": "阀门漏气", "contact": PHONE, "kind": "fault"},
    )
    assert status == 201, out
    assert TICKET.match(out["ticket"]) and out["state"] == "new" and out["kind"] == "fault"
    assert out["ticket_display"] == format_ticket(out["ticket"])
    assert out["matched_cylinder"] is True and out["photo"] is False
    assert out["track_url"] == f"/complaints/track?ticket={out['ticket']}"
    due = add_working_days(city_today(settings), settings.complaints.answer_working_days)
    assert out["deadline"] == due.isoformat()
    assert dt.date.fromisoformat(out["deadline"]).weekday() < 5
    # typed as people type it: lower case, in groups
    t = out["ticket"].lower()
    status, seen = await call(
        client, "GET", f"/api/v1/public/complaints/{t[:4]}-{t[4:8]}-{t[8:]}", "anonymous"
    )
    assert status == 200 and seen["ticket"] == out["ticket"] and seen["state"] == "new"
    assert seen["answer"] is None and seen["overdue"] is False and seen["kind"] == "fault"
    assert "contact" not in seen and "text" not in seen and PHONE not in str(seen)
    row = await pool.fetchrow("SELECT * FROM complaints WHERE ticket = $1", out["ticket"])
    assert row["source"] == "qr" and row["contact"] == PHONE and row["district_code"] == "410105"
    events = await pool.fetch(
        "SELECT kind, to_state FROM complaint_events WHERE complaint_id = $1", row["id"]
    )
    assert [tuple(e) for e in events] == [("filed", "new")]


@pytest.mark.parametrize("ticket", ["ZZZZZZZZZZZZ", "22222222222", "not-a-ticket", "OOOO0000IIII"])
async def test_an_unknown_ticket_is_404(client: Any, ticket: str) -> None:
    status, out = await call(client, "GET", f"/api/v1/public/complaints/{ticket}", "anonymous")
    assert status == 404
    assert_error(out, "not_found")


async def test_a_photo_is_stored_and_shown_only_within_scope(
    client: Any, pool: Any, world: World
) -> None:
    data = form(png(), text="瓶身锈蚀 " + unique(), code="BC-TAG-A-OK", contact=PHONE)
    resp = await client.post("/api/v1/public/complaints", data=data)
    out = await resp.json()
    assert resp.status == 201 and out["photo"] is True, out
    cid = await pool.fetchval("SELECT id FROM complaints WHERE ticket = $1", out["ticket"])
    upload = await pool.fetchrow(
        "SELECT u.mime, u.purpose FROM complaints k JOIN uploads u ON u.id = k.photo_upload_id"
        " WHERE k.id = $1",
        cid,
    )
    assert dict(upload) == {"mime": "image/png", "purpose": "complaint"}
    for user, expected in (
        ("t_regulator", 200),
        ("t_company_a", 200),
        ("t_officer", 200),
        ("t_company_b", 404),
        ("t_operator_a", 403),
        ("anonymous", 401),
    ):
        status, raw = await call(client, "GET", f"/api/v1/complaints/{cid}/photo", user)
        assert status == expected, (user, raw)
        if status == 200:
            assert Image.open(io.BytesIO(raw)).size == (120, 80)
    _, detail = await call(client, "GET", f"/api/v1/complaints/{cid}", "t_company_a")
    assert detail["has_photo"] is True


async def _counts(pool: Any) -> tuple[int, int]:
    return (
        int(await pool.fetchval("SELECT count(*) FROM complaints")),
        int(await pool.fetchval("SELECT count(*) FROM uploads")),
    )


async def test_a_20_mb_photo_is_413_and_nothing_is_stored(client: Any, pool: Any) -> None:
    before = await _counts(pool)
    big = png() + b"\0" * (20 * 1024 * 1024)
    resp = await client.post("/api/v1/public/complaints", data=form(big, text="照片太大"))
    out = await resp.json()
    assert resp.status == 413, out
    assert_error(out, "payload_too_large")
    assert out["error"]["details"]["field"] == "photo"
    assert await _counts(pool) == before


async def test_a_photo_that_is_no_picture_is_415_and_nothing_is_stored(
    client: Any, pool: Any
) -> None:
    before = await _counts(pool)
    script = b"<script>alert(1)</script>"
    resp = await client.post(
        "/api/v1/public/complaints", data=form(script, "x.png", text="不是图片")
    )
    out = await resp.json()
    assert resp.status == 415, out
    assert_error(out, "unsupported_media_type")
    assert out["error"]["details"]["field"] == "photo"
    assert await _counts(pool) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x", "kind": "praise"}, "kind"),
        ({"text": "x", "colour": "red"}, "colour"),
        ({"text": "x", "contact": "c" * 101}, "contact"),
        ({"text": "a\x00b"}, "body"),
    ],
)
async def test_bad_multipart_fields_are_400(
    client: Any, pool: Any, fields: dict[str, str], field: str
) -> None:
    before = await _counts(pool)
    resp = await client.post("/api/v1/public/complaints", data=form(**fields))
    out = await resp.json()
    assert resp.status == 400, out
    assert out["error"]["details"]["field"] == field
    assert await _counts(pool) == before


async def test_a_body_neither_json_nor_multipart_is_415(client: Any) -> None:
    resp = await client.post(
        "/api/v1/public/complaints", data=b"text=hi", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert_error(await resp.json(), "unsupported_media_type")


# ---------------------------------------------------------------- the workflow


async def test_assign_answer_close_with_history_audit_and_public_view(
    client: Any, pool: Any, world: World
) -> None:
    cid, ticket = await file_one(client, pool)
    status, out = await act(
        client, cid, "t_regulator", action="assign", company_id=world.companies["A"], note="请核查"
    )
    assert status == 200 and out["state"] == "assigned", out
    assert out["assigned_company_name"] == "测试燃气A公司"
    _, company_view = await call(client, "GET", f"/api/v1/complaints/{cid}", "t_company_a")
    assert company_view["may"] == {"assign": False, "answer": True, "close": False}
    status, out = await act(client, cid, "t_company_a", action="answer", answer="已上门复秤并补足")
    assert status == 200 and out["state"] == "answered", out
    status, out = await act(client, cid, "t_regulator", action="close", outcome="upheld")
    assert status == 200 and out["state"] == "closed" and out["outcome"] == "upheld", out
    history = out["history"]
    assert [(h["kind"], h["from_state"], h["to_state"]) for h in history] == [
        ("filed", None, "new"),
        ("assign", "new", "assigned"),
        ("answer", "assigned", "answered"),
        ("close", "answered", "closed"),
    ]
    assert [h["actor_name"] for h in history] == [None, "t_regulator", "t_company_a", "t_regulator"]
    assert history[1]["note"] == "请核查" and history[1]["assigned_company_name"] == "测试燃气A公司"
    # credit evaluation reads outcome and closed_at by the company concerned
    row = await pool.fetchrow(
        "SELECT company_id, outcome, closed_at, closed_by FROM complaints WHERE id = $1", cid
    )
    assert row["company_id"] == world.companies["A"] and row["outcome"] == "upheld"
    assert row["closed_at"] is not None and row["closed_by"] == world.users["t_regulator"]
    actions = await pool.fetch(
        "SELECT action, username FROM audit_log WHERE entity = 'complaint' AND entity_id = $1"
        " ORDER BY id",
        str(cid),
    )
    assert [tuple(a) for a in actions] == [
        ("complaint.create", None),
        ("complaint.assign", "t_regulator"),
        ("complaint.answer", "t_company_a"),
        ("complaint.close", "t_regulator"),
    ]
    status, seen = await call(client, "GET", f"/api/v1/public/complaints/{ticket}", "anonymous")
    assert seen["state"] == "closed" and seen["outcome"] == "upheld"
    assert seen["answer"] == "已上门复秤并补足" and seen["answered_at"] and seen["closed_at"]
    assert "请核查" not in str(seen) and "t_company_a" not in str(seen)


async def test_an_officer_assignee_answers_and_a_call_closes_with_an_answer(
    client: Any, pool: Any, world: World
) -> None:
    cid, _ = await file_one(client, pool)
    officer = world.users["t_officer"]
    status, out = await act(client, cid, "t_regulator_jinshui", action="assign", user_id=officer)
    assert status == 200 and out["assigned_user_name"] == "t_officer"
    status, out = await act(client, cid, "t_company_a", action="answer", answer="我们来答")
    assert status == 403, out  # assigned to the officer, not the company
    status, out = await act(client, cid, "t_officer", action="answer", answer="已现场检查")
    assert status == 200 and out["state"] == "answered"
    # a duplicate settled on the phone: closed at once, with the answer the caller reads
    cid2, ticket2 = await file_one(client, pool)
    status, out = await act(
        client, cid2, "t_regulator", action="close", outcome="not_upheld", answer="与上一投诉重复"
    )
    assert status == 200 and out["state"] == "closed" and out["answer"] == "与上一投诉重复"
    _, seen = await call(client, "GET", f"/api/v1/public/complaints/{ticket2}", "anonymous")
    assert seen["answer"] == "与上一投诉重复" and seen["outcome"] == "not_upheld"


async def test_bad_moves_are_refused_with_the_one_shape_and_change_nothing(
    client: Any, pool: Any, world: World
) -> None:
    cid, _ = await file_one(client, pool)
    a = world.companies["A"]
    refusals: list[tuple[str, dict[str, Any], int, str, str | None]] = [
        # (user, body, status, code, field)
        ("t_admin", {"action": "answer", "answer": "x"}, 409, "invalid_transition", "state"),
        (
            "t_regulator",
            {"action": "close", "outcome": "upheld"},
            409,
            "invalid_transition",
            "state",
        ),
        ("t_company_a", {"action": "assign", "company_id": a}, 403, "forbidden", "action"),
        (
            "t_officer",
            {"action": "close", "outcome": "upheld", "answer": "x"},
            403,
            "forbidden",
            "action",
        ),
        ("t_company_b", {"action": "assign", "company_id": a}, 404, "not_found", None),
        ("t_regulator", {"action": "assign"}, 400, "invalid_field", "company_id"),
        (
            "t_regulator",
            {"action": "assign", "company_id": a, "user_id": 1},
            400,
            "invalid_field",
            "company_id",
        ),
        (
            "t_regulator",
            {"action": "assign", "company_id": 987654321},
            400,
            "invalid_field",
            "company_id",
        ),
        (
            "t_regulator",
            {"action": "assign", "user_id": world.users["t_company_a"]},
            400,
            "invalid_field",
            "user_id",
        ),
        (
            "t_regulator",
            {"action": "assign", "company_id": a, "outcome": "upheld"},
            400,
            "invalid_field",
            "outcome",
        ),
        (
            "t_regulator",
            {"action": "assign", "company_id": a, "deadline": "2001-01-01"},
            400,
            "invalid_field",
            "deadline",
        ),
        ("t_regulator", {"action": "close", "answer": "x"}, 400, "invalid_field", "outcome"),
        ("t_regulator", {"action": "reopen"}, 400, "invalid_field", "action"),
        (
            "t_regulator",
            {"action": "close", "outcome": "maybe", "answer": "x"},
            400,
            "invalid_field",
            "outcome",
        ),
    ]
    for user, body, status, code, field in refusals:
        got, out = await call(client, "PATCH", f"/api/v1/complaints/{cid}", user, body)
        assert got == status, (user, body, out)
        assert_error(out, code)
        if field:
            assert out["error"]["details"]["field"] == field, (body, out)
    assert await pool.fetchval("SELECT state FROM complaints WHERE id = $1", cid) == "new"
    assert (
        await pool.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = $1", cid)
        == 1
    )
    # further along: answered cannot be answered or assigned again; closed stays closed
    assert (await act(client, cid, "t_regulator", action="assign", company_id=a))[0] == 200
    assert (await act(client, cid, "t_company_a", action="answer", answer="好"))[0] == 200
    for user, body in (
        ("t_company_a", {"action": "answer", "answer": "again"}),
        ("t_regulator", {"action": "assign", "company_id": a}),
    ):
        got, out = await call(client, "PATCH", f"/api/v1/complaints/{cid}", user, body)
        assert got == 409 and out["error"]["details"]["state"] == "answered", out
    got, out = await act(
        client, cid, "t_regulator", action="close", outcome="upheld", answer="再答"
    )
    assert got == 400 and out["error"]["details"]["field"] == "answer"
    assert (await act(client, cid, "t_regulator", action="close", outcome="upheld"))[0] == 200
    got, out = await act(client, cid, "t_regulator", action="close", outcome="not_upheld")
    assert got == 409
    assert_error(out, "invalid_transition")
    assert await pool.fetchval("SELECT outcome FROM complaints WHERE id = $1", cid) == "upheld"
    got, out = await call(
        client,
        "PATCH",
        "/api/v1/complaints/999999999",
        "t_admin",
        {"action": "assign", "company_id": a},
    )
    assert got == 404


# ---------------------------------------------------------------- who sees what


async def test_the_contact_is_never_sent_to_a_company(client: Any, pool: Any, world: World) -> None:
    contact = f"王女士 139-{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}"
    cid, ticket = await file_one(client, pool, contact=contact)
    await act(client, cid, "t_regulator", action="assign", company_id=world.companies["A"])
    for user, sees in (
        ("t_admin", True),
        ("t_regulator", True),
        ("t_regulator_jinshui", True),
        ("t_officer", False),
        ("t_company_a", False),
    ):
        for path in (f"/api/v1/complaints?ticket={ticket}", f"/api/v1/complaints/{cid}"):
            status, out = await call(client, "GET", path, user)
            assert status == 200, (user, out)
            one = out["items"][0] if "items" in out else out
            assert one["ticket"] == ticket
            assert ("contact" in one) is sees, (user, path)
            assert (contact in str(out)) is sees, (user, path)
    status, out = await call(client, "GET", f"/api/v1/complaints/{cid}", "t_company_b")
    assert status == 404


async def test_a_report_reaches_the_company_only_when_assigned(
    client: Any, pool: Any, world: World
) -> None:
    cid, ticket = await file_one(client, pool, kind="report", text="举报非法充装 " + unique())
    path = f"/api/v1/complaints?ticket={ticket}"
    assert (await call(client, "GET", path, "t_company_a"))[1]["items"] == []
    assert (await call(client, "GET", f"/api/v1/complaints/{cid}", "t_company_a"))[0] == 404
    assert (await call(client, "GET", path, "t_officer"))[1]["total"] == 1
    await act(client, cid, "t_regulator", action="assign", company_id=world.companies["A"])
    assert (await call(client, "GET", path, "t_company_a"))[1]["total"] == 1


async def test_a_regulator_enters_a_phone_call(client: Any, pool: Any, world: World) -> None:
    body = {"text": "来电：气瓶过期仍在使用", "code": "BC-TAG-A-OK", "contact": "13700000000"}
    status, out = await call(client, "POST", "/api/v1/complaints", "t_regulator_jinshui", body)
    assert status == 201, out
    assert out["source"] == "phone" and out["state"] == "new" and TICKET.match(out["ticket"])
    assert out["company_id"] == world.companies["A"] and out["contact"] == "13700000000"
    assert out["history"][0]["actor_name"] == "t_regulator_jinshui"
    # company B is in 二七区: outside a 金水区 regulator's districts, nothing stored
    before = await pool.fetchval("SELECT count(*) FROM complaints")
    status, out = await call(
        client,
        "POST",
        "/api/v1/complaints",
        "t_regulator_jinshui",
        {"text": "来电", "company_id": world.companies["B"]},
    )
    assert status == 403 and out["error"]["details"]["field"] == "district_code", out
    for bad, field in (
        ({"text": "来电", "code": "NO-SUCH-CODE"}, "code"),
        ({"text": "  "}, "text"),
        ({"text": "来电", "district_code": "999999"}, "district_code"),
        ({"text": "来电", "kind": "praise"}, "kind"),
    ):
        status, out = await call(client, "POST", "/api/v1/complaints", "t_regulator", bad)
        assert status == 400 and out["error"]["details"]["field"] == field, (bad, out)
    assert await pool.fetchval("SELECT count(*) FROM complaints") == before


async def test_list_filters(client: Any, pool: Any, world: World, settings: Any) -> None:
    cid, ticket = await file_one(client, pool, kind="fault")
    await pool.execute(
        "UPDATE complaints SET deadline = $2 WHERE id = $1", cid, world.today - dt.timedelta(days=1)
    )
    queries = {
        "state=new&kind=fault&overdue=true": True,
        "state=assigned": False,
        "kind=complaint": False,
        "overdue=false": False,
        f"company={world.companies['A']}": True,
        "company=TEST-A": True,
        f"company={world.companies['B']}": False,
        "district=410103": False,
        "source=phone": False,
    }
    for query, found in queries.items():
        status, out = await call(
            client, "GET", f"/api/v1/complaints?{query}&ticket={ticket}", "t_regulator"
        )
        assert status == 200, (query, out)
        assert (len(out["items"]) == 1) is found, query
        if found:
            assert out["items"][0]["overdue"] is True
    for bad in ("state=handled", "overdue=maybe", "kind=x", "colour=red", "company=0"):
        status, out = await call(client, "GET", f"/api/v1/complaints?{bad}", "t_regulator")
        assert status == 400, (bad, out)
    # gone: no later reminder round (another test's server) messages anyone about it
    await pool.execute("DELETE FROM complaints WHERE id = $1", cid)


# ---------------------------------------------------------------- SMS and reminders


@pytest.fixture
async def sms_client(aiohttp_client: Any, settings: Any, world: World) -> Any:
    """The app with SMS on (a gateway nobody listens at: messages stay queued)."""
    from server.app import create_app

    sms = msgspec.structs.replace(
        settings.sms, enabled=True, gateway_url="http://127.0.0.1:9/sms", poll_interval_s=3600.0
    )
    return await aiohttp_client(create_app(msgspec.structs.replace(settings, sms=sms)))


async def test_the_answer_is_texted_once(sms_client: Any, pool: Any, world: World) -> None:
    client = sms_client
    cid, ticket = await file_one(client, pool)
    key = f"complaint:{cid}:answer"
    await act(client, cid, "t_regulator", action="assign", company_id=world.companies["A"])
    assert await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE idem_key = $1", key) == 0
    status, out = await act(client, cid, "t_company_a", action="answer", answer="已处理，欢迎监督")
    assert status == 200, out
    assert out["history"][-1]["details"]["sms"] is True
    got, _ = await act(client, cid, "t_company_a", action="answer", answer="再答一次")
    assert got == 409
    await act(client, cid, "t_regulator", action="close", outcome="upheld")
    rows = await pool.fetch("SELECT phone, kind, body FROM sms_outbox WHERE idem_key = $1", key)
    assert len(rows) == 1
    assert rows[0]["phone"] == "13800138000" and rows[0]["kind"] == "complaint_answer"
    assert ticket in rows[0]["body"] and "已处理，欢迎监督" in rows[0]["body"]
    # a contact that is no phone number gets no text, and the answer still stands
    cid2, _ = await file_one(client, pool, contact="wang@example.org")
    status, out = await act(
        client, cid2, "t_regulator", action="close", outcome="not_upheld", answer="无法核实"
    )
    assert status == 200 and out["history"][-1]["details"]["sms"] is False
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE idem_key = $1", f"complaint:{cid2}:answer"
        )
        == 0
    )


async def reminded(pool: Any, ticket: str) -> dict[int, int]:
    """Users who got the platform's reminder about *ticket*, and how many times."""
    rows = await pool.fetch(
        """SELECT r.user_id, count(*) AS n FROM messages m
             JOIN message_recipients r ON r.message_id = m.id
            WHERE m.kind = 'system' AND m.subject LIKE '%' || $1 || '%'
            GROUP BY r.user_id""",
        format_ticket(ticket),
    )
    return {r["user_id"]: r["n"] for r in rows}


async def test_two_reminder_rounds_at_once_mark_a_complaint_once(
    pool: Any, settings: Any, world: World
) -> None:
    from server.db.complaints import file_complaint

    async with pool.acquire() as conn, conn.transaction():
        filed = await file_complaint(
            conn, settings, text="逾期测试 " + unique(), code="BC-TAG-A-OK"
        )
    cid = filed.id
    await pool.execute(
        "UPDATE complaints SET deadline = $2 WHERE id = $1", cid, world.today - dt.timedelta(days=2)
    )
    rounds = await asyncio.gather(*(remind_overdue(pool, settings) for _ in range(2)))
    assert sum(1 for marked in rounds for o in marked if o.id == cid) == 1
    again = await remind_overdue(pool, settings)
    assert cid not in {o.id for o in again}
    # nobody was given it yet: the regulators of 金水区 and the city-wide ones are told, once
    told = await reminded(pool, filed.ticket)
    assert told == {world.users["t_regulator"]: 1, world.users["t_regulator_jinshui"]: 1}

    async def overdue_events() -> int:
        return int(
            await pool.fetchval(
                "SELECT count(*) FROM complaint_events WHERE complaint_id = $1 AND kind = 'overdue'",
                cid,
            )
        )

    assert await overdue_events() == 1
    assert await pool.fetchval("SELECT reminded_at FROM complaints WHERE id = $1", cid) is not None
    # a new deadline arms the reminder again; when it passes too, a second mark
    new_deadline = world.today + dt.timedelta(days=3)
    await pool.execute(
        "UPDATE complaints SET deadline = $2, reminded_at = NULL WHERE id = $1", cid, new_deadline
    )
    assert cid not in {o.id for o in await remind_overdue(pool, settings)}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    assert cid in {o.id for o in await remind_overdue(pool, settings, later)}
    assert await overdue_events() == 2


async def test_a_new_deadline_when_assigning_clears_the_reminder(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    cid, ticket = await file_one(client, pool)
    await pool.execute(
        "UPDATE complaints SET deadline = $2 WHERE id = $1", cid, world.today - dt.timedelta(days=1)
    )
    assert cid in {o.id for o in await remind_overdue(pool, settings)}
    _, out = await call(client, "GET", f"/api/v1/complaints/{cid}", "t_regulator")
    assert out["overdue"] is True and out["history"][-1]["kind"] == "overdue"
    deadline = (world.today + dt.timedelta(days=7)).isoformat()
    status, out = await act(
        client,
        cid,
        "t_regulator",
        action="assign",
        company_id=world.companies["A"],
        deadline=deadline,
    )
    assert status == 200 and out["deadline"] == deadline and out["overdue"] is False
    assert out["reminded_at"] is None
    # past the new deadline too: now the company it was given to is told, in its language
    await pool.execute("UPDATE users SET language = 'en' WHERE id = $1", world.users["t_company_a"])
    try:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
        assert cid in {o.id for o in await remind_overdue(pool, settings, later)}
    finally:
        await pool.execute(
            "UPDATE users SET language = 'zh-CN' WHERE id = $1", world.users["t_company_a"]
        )
    assert await reminded(pool, ticket) == {  # when new, the regulators; then the company
        world.users["t_regulator"]: 1,
        world.users["t_regulator_jinshui"]: 1,
        world.users["t_company_a"]: 1,
    }
    subject = await pool.fetchval(
        """SELECT m.subject FROM messages m JOIN message_recipients r ON r.message_id = m.id
            WHERE r.user_id = $1 AND m.subject LIKE '%' || $2 || '%'""",
        world.users["t_company_a"],
        format_ticket(ticket),
    )
    assert subject == f"Complaint {format_ticket(ticket)} is past its deadline"


async def test_every_server_process_runs_the_round(
    aiohttp_client: Any, pool: Any, settings: Any, world: World
) -> None:
    """The app runs the round by itself, every [complaints] reminder_interval_s."""
    from server.app import create_app
    from server.db.complaints import file_complaint

    async with pool.acquire() as conn, conn.transaction():
        filed = await file_complaint(
            conn, settings, text="无人答复 " + unique(), code="BC-TAG-A-OK"
        )
    await pool.execute(
        "UPDATE complaints SET deadline = $2 WHERE id = $1",
        filed.id,
        world.today - dt.timedelta(days=1),
    )
    quick = msgspec.structs.replace(settings.complaints, reminder_interval_s=10.0)
    await aiohttp_client(create_app(msgspec.structs.replace(settings, complaints=quick)))
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 10.0 * 4
    while await pool.fetchval("SELECT reminded_at FROM complaints WHERE id = $1", filed.id) is None:
        assert loop.time() < give_up, "no reminder round ran"
        await asyncio.sleep(0.2)
    assert await reminded(pool, filed.ticket) == {
        world.users["t_regulator"]: 1,
        world.users["t_regulator_jinshui"]: 1,
    }
