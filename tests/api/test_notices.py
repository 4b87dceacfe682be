"""Notices to sign (docs/API.md "Messages and notices"): sent with a PDF and a picture,
attachments served only to the notice's sender and recipients, a non-PDF/non-picture refused
(415) and an oversized file refused (413) with nothing written, signing idempotent, the
sender's lists of who signed and who has not, and the reminder round — once per notice even
when two rounds run at the same moment."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from typing import Any

import aiohttp
import msgspec
import pytest
from PIL import Image

from server.api.notice_reminders import remind_round
from tests.api.conftest import call, headers_for, unique
from tests.conftest import World

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def form(
    title: str, to: dict[str, Any], files: list[tuple[str, bytes, str]], **fields: str
) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("title", title)
    data.add_field("to", json.dumps(to))
    for k, v in fields.items():
        data.add_field(k, v)
    for name, content, ctype in files:
        data.add_field("file", io.BytesIO(content), filename=name, content_type=ctype)
    return data


async def post_form(client: Any, user: str, data: aiohttp.FormData) -> tuple[int, Any]:
    headers = await headers_for(client, user)
    resp = await client.post("/api/v1/notices", data=data, headers=headers)
    return resp.status, await resp.json()


async def counts(pool: Any) -> tuple[int, int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM notices"),
        await pool.fetchval("SELECT count(*) FROM notice_recipients"),
        await pool.fetchval("SELECT count(*) FROM uploads WHERE purpose = 'notice'"),
    )


def in_a_week() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()


async def test_a_notice_with_a_pdf_and_a_picture(client: Any, pool: Any, world: World) -> None:
    status, out = await post_form(
        client,
        "t_regulator",
        form(
            "关于开展液化气安全检查的通知",
            {"companies": [world.companies["A"]]},
            [("通知.pdf", PDF, "application/pdf"), ("现场.png", png(), "image/png")],
            body="请各单位按附件要求执行。",
            deadline=in_a_week(),
        ),
    )
    assert status == 201, out
    nid = out["id"]
    assert [a["mime"] for a in out["attachments"]] == ["application/pdf", "image/png"]
    assert out["attachments"][0]["filename"] == "通知.pdf"
    # company A's users have it to sign; company B does not see it
    _, inbox = await call(
        client, "GET", "/api/v1/notices?signed=false&page_size=1000", "t_company_a"
    )
    row = next(r for r in inbox["items"] if r["id"] == nid)
    assert row["signed_at"] is None and row["attachments"] == 2 and row["deadline"]
    _, detail = await call(client, "GET", f"/api/v1/notices/{nid}", "t_operator_a")
    assert [a["filename"] for a in detail["attachments"]] == ["通知.pdf", "现场.png"]
    pdf_id = detail["attachments"][0]["id"]
    for user, expected in (
        ("t_company_a", 200),
        ("t_operator_a", 200),
        ("t_regulator", 200),
        ("t_company_b", 404),
        ("t_regulator_jinshui", 404),
        ("t_admin", 404),
    ):
        status, raw = await call(client, "GET", f"/api/v1/notices/{nid}/attachments/{pdf_id}", user)
        assert status == expected, user
        if expected == 200:
            assert raw == PDF
    headers = await headers_for(client, "t_company_a")
    resp = await client.get(f"/api/v1/notices/{nid}/attachments/{pdf_id}", headers=headers)
    assert resp.content_type == "application/pdf"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in resp.headers["Content-Disposition"]
    # a file of another notice is not served through this one
    status, out_b = await post_form(
        client,
        "t_regulator",
        form(
            "给B的通知",
            {"companies": [world.companies["B"]]},
            [("b.pdf", PDF + b"B", "application/pdf")],
        ),
    )
    assert status == 201
    other = out_b["attachments"][0]["id"]
    status, _ = await call(
        client, "GET", f"/api/v1/notices/{nid}/attachments/{other}", "t_company_a"
    )
    assert status == 404


async def test_a_file_that_is_neither_pdf_nor_picture_is_refused(
    client: Any, pool: Any, world: World
) -> None:
    before = await counts(pool)
    mp4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64  # an MP4: an article's, not a notice's
    for name, content in (("a.txt", b"just text"), ("clip.mp4", mp4), ("x.exe", b"MZ\x90\x00")):
        status, out = await post_form(
            client,
            "t_regulator",
            form(
                "通知",
                {"companies": [world.companies["A"]]},
                [("ok.pdf", PDF, "application/pdf"), (name, content, "application/pdf")],
            ),
        )
        assert status == 415, (name, out)
        assert out["error"]["code"] == "unsupported_media_type"
        assert out["error"]["details"]["field"] == "file"
    assert await counts(pool) == before


async def test_a_60_mb_file_is_refused(client: Any, pool: Any, world: World) -> None:
    before = await counts(pool)
    big = PDF + b"0" * (60 * 1024 * 1024)
    status, out = await post_form(
        client,
        "t_regulator",
        form(
            "大文件", {"companies": [world.companies["A"]]}, [("big.pdf", big, "application/pdf")]
        ),
    )
    assert status == 413, out
    assert out["error"]["code"] == "payload_too_large"
    assert await counts(pool) == before


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"title": "", "to": '{"companies": [1]}'}, 400, "title"),
        ({"title": "x" * 201, "to": '{"companies": [1]}'}, 400, "title"),
        ({"title": "x"}, 400, "to"),
        ({"title": "x", "to": "not json"}, 400, "to"),
        ({"title": "x", "to": '{"districts": ["999999"]}'}, 400, "to.districts"),
        ({"title": "x", "to": '{"companies": [1]}', "deadline": "tomorrow"}, 400, "deadline"),
        (
            {"title": "x", "to": '{"companies": [1]}', "deadline": "2001-01-01T00:00"},
            400,
            "deadline",
        ),
        ({"title": "x", "to": '{"companies": [1]}', "colour": "red"}, 400, "colour"),
    ],
)
async def test_bad_forms_are_one_error_shape(
    client: Any, pool: Any, world: World, fields: dict[str, str], status: int, field: str
) -> None:
    fields = {
        k: v.replace('"companies": [1]', f'"companies": [{world.companies["A"]}]')
        for k, v in fields.items()
    }
    data = aiohttp.FormData()
    for k, v in fields.items():
        data.add_field(k, v)
    data.add_field("file", PDF, filename="a.pdf", content_type="application/pdf")
    before = await counts(pool)
    got, out = await post_form(client, "t_regulator", data)
    assert got == status, out
    assert set(out) == {"error"} and out["error"]["code"] == "invalid_field"
    assert out["error"]["details"]["field"].startswith(field), out
    assert await counts(pool) == before


async def test_only_senders_send_and_json_works_without_files(client: Any, world: World) -> None:
    body = {"title": "无附件通知", "to": {"companies": [world.companies["A"]]}}
    for user, expected in (("t_company_a", 403), ("t_officer", 403), ("t_admin", 201)):
        status, out = await call(client, "POST", "/api/v1/notices", user, body)
        assert status == expected, (user, out)
    status, out = await call(
        client,
        "POST",
        "/api/v1/notices",
        "t_regulator_jinshui",
        {"title": "越界", "to": {"companies": [world.companies["B"]]}},
    )
    assert status == 400 and out["error"]["details"]["field"] == "to.companies"


async def test_signing_is_idempotent_and_the_sender_sees_both_lists(
    client: Any, pool: Any, world: World
) -> None:
    status, out = await call(
        client,
        "POST",
        "/api/v1/notices",
        "t_regulator",
        {"title": unique("签收"), "to": {"companies": [world.companies["A"]]}},
    )
    assert status == 201
    nid = out["id"]
    _, before = await call(client, "GET", "/api/v1/messages/unread-count", "t_company_a")
    status, first = await call(client, "POST", f"/api/v1/notices/{nid}/sign", "t_company_a")
    assert status == 200 and first["changed"] is True
    status, again = await call(client, "POST", f"/api/v1/notices/{nid}/sign", "t_company_a")
    assert status == 200 and again == {**first, "changed": False}
    _, after = await call(client, "GET", "/api/v1/messages/unread-count", "t_company_a")
    assert after["notices"] == before["notices"] - 1
    # the sender is not a recipient; another company is nobody here
    for user in ("t_regulator", "t_company_b"):
        status, _ = await call(client, "POST", f"/api/v1/notices/{nid}/sign", user)
        assert status == 404, user
    _, signed = await call(
        client, "GET", f"/api/v1/notices/{nid}/recipients?signed=true", "t_regulator"
    )
    assert [(r["username"], r["signed_at"]) for r in signed["items"]] == [
        ("t_company_a", first["signed_at"])
    ]
    _, unsigned = await call(
        client, "GET", f"/api/v1/notices/{nid}/recipients?signed=false", "t_regulator"
    )
    assert "t_operator_a" in {r["username"] for r in unsigned["items"]}
    assert signed["total"] + unsigned["total"] == out["recipient_count"]
    _, outbox = await call(client, "GET", "/api/v1/notices?box=outbox", "t_regulator")
    assert next(r for r in outbox["items"] if r["id"] == nid)["signed_count"] == 1
    status, _ = await call(client, "GET", f"/api/v1/notices/{nid}/recipients", "t_company_a")
    assert status == 404
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'notice.sign' AND entity_id = $1", str(nid)
    )
    assert audited == 1


async def test_two_rounds_at_once_remind_each_unsigned_user_once(
    client: Any, pool: Any, settings: Any, world: World
) -> None:
    # a company of its own, with a contact phone, an admin and a station operator
    company = await pool.fetchval(
        "INSERT INTO companies (code, name, district_code, contact_phone) VALUES ($1, '提醒测试公司', '410105', '138-0013-8000') RETURNING id",
        unique("RC"),
    )
    site = await pool.fetchval(
        "INSERT INTO sites (code, name, kind, company_id, district_code) VALUES ($1, '提醒站', 'filling_station', $2, '410105') RETURNING id",
        unique("RS"),
        company,
    )
    users: dict[str, list[int]] = {}
    for role, site_id in (
        ("company_admin", None),
        ("station_operator", site),
        ("company_admin", None),
    ):
        users.setdefault(role, []).append(
            await pool.fetchval(
                "INSERT INTO users (username, password_hash, role, company_id, site_id) VALUES ($1, 'x', $2, $3, $4) RETURNING id",
                unique("ru").lower(),
                role,
                company,
                site_id,
            )
        )
    status, out = await call(
        client,
        "POST",
        "/api/v1/notices",
        "t_regulator",
        {
            "title": "年度安全承诺书",
            "to": {"companies": [company], "users": [world.users["t_officer"]]},
            "deadline": in_a_week(),
        },
    )
    assert status == 201, out
    nid = out["id"]
    signer = users["company_admin"][0]
    await pool.execute(
        "UPDATE notice_recipients SET signed_at = now() WHERE notice_id = $1 AND user_id = $2",
        nid,
        signer,
    )
    await pool.execute(
        "UPDATE notices SET deadline = now() - interval '1 minute' WHERE id = $1", nid
    )
    sms_on = msgspec.structs.replace(
        settings,
        sms=msgspec.structs.replace(
            settings.sms, enabled=True, gateway_url="http://127.0.0.1:9/send"
        ),
    )
    rounds = await asyncio.gather(remind_round(pool, sms_on), remind_round(pool, sms_on))
    assert sum(nid in r.notices for r in rounds) == 1
    messages = await pool.fetch(
        "SELECT id, kind, sender_id, subject FROM messages WHERE notice_id = $1", nid
    )
    assert len(messages) == 1 and messages[0]["kind"] == "system"
    assert "年度安全承诺书" in messages[0]["subject"]
    reminded = {
        r["user_id"]
        for r in await pool.fetch(
            "SELECT user_id FROM message_recipients WHERE message_id = $1", messages[0]["id"]
        )
    }
    unsigned = {users["company_admin"][1], users["station_operator"][0], world.users["t_officer"]}
    assert reminded == unsigned
    sms = await pool.fetch(
        "SELECT phone, kind, body FROM sms_outbox WHERE idem_key LIKE $1", f"notice:{nid}:%"
    )
    assert [(s["phone"], s["kind"]) for s in sms] == [
        ("13800138000", "notice_reminder")
    ]  # one per company
    assert "年度安全承诺书" in sms[0]["body"]
    # a third round, and a restart's, find nothing left to do
    again = await remind_round(pool, sms_on)
    assert nid not in again.notices
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE notice_id = $1", nid) == 1
    rows = await pool.fetch(
        "SELECT user_id, reminded_at FROM notice_recipients WHERE notice_id = $1", nid
    )
    assert {r["user_id"] for r in rows if r["reminded_at"]} == unsigned
    # the reminded users see it in their inbox, as the platform's
    _, inbox = await call(client, "GET", "/api/v1/messages?unread=true&page_size=1000", "t_officer")
    row = next(r for r in inbox["items"] if r["id"] == messages[0]["id"])
    assert row["notice_id"] == nid and row["kind"] == "system"
