"""Matrix rows of messages and notices (server/api/messages.py, server/api/notices.py).

Admins and regulators start messages and notices (a district regulator within its districts:
company A is in its 410105); everyone lists their own and reads their counts. A made message
or notice is the city-wide regulator's to company A, so only the regulator (its sender) and
company A's admin and station operator (its recipients) see it — everybody else, the admin
included, gets the 404 of a letter not theirs; only recipients mark read or sign, only the
sender reads the receipts. The attachment rows name a file the record does not carry: every
role gets 404 (who may download a real attachment is tested in tests/api/test_notices.py).
"""

from __future__ import annotations

from typing import Any

from server.db.messages import insert_message
from server.db.notices import insert_notice
from tests.api.roles import Case, Maker
from tests.conftest import World

NO_FILE = 999_999_999


def _to_company_a(w: World) -> dict[str, Any]:
    return {"subject": "矩阵", "body": "role walk", "to": {"companies": [w.companies["A"]]}}


def _notice_to_company_a(w: World) -> dict[str, Any]:
    return {"title": "矩阵通知", "to": {"companies": [w.companies["A"]]}}


def _company_a_users(w: World) -> list[int]:
    return [w.users["t_company_a"], w.users["t_operator_a"]]


async def _message(fresh: Any) -> int:
    w = fresh.world
    async with fresh.pool.acquire() as conn, conn.transaction():
        return await insert_message(
            conn,
            kind="message",
            sender_id=w.users["t_regulator"],
            subject="矩阵",
            body="role walk",
            recipients=_company_a_users(w),
            audience={"companies": [w.companies["A"]]},
            sender_name="t_regulator",
        )


async def _notice(fresh: Any) -> int:
    w = fresh.world
    async with fresh.pool.acquire() as conn, conn.transaction():
        return await insert_notice(
            conn,
            sender_id=w.users["t_regulator"],
            sender_name="t_regulator",
            title="矩阵通知",
            body="role walk",
            deadline=None,
            audience={"companies": [w.companies["A"]]},
            recipients=_company_a_users(w),
            attachment_ids=[],
        )


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "messages.list": Case("GET", "/api/v1/messages", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "messages.send": Case(
        "POST",
        "/api/v1/messages",
        (201, 201, 201, 403, 403, 403, 403, 403, 401),
        _to_company_a,
    ),
    "messages.unread_count": Case(
        "GET", "/api/v1/messages/unread-count", (200, 200, 200, 200, 200, 200, 200, 200, 401)
    ),
    "messages.targets": Case(
        "GET",
        "/api/v1/messages/targets?kind=companies",
        (200, 200, 200, 403, 403, 403, 403, 403, 401),
        route="/api/v1/messages/targets",
    ),
    "messages.get": Case(
        "GET",
        "/api/v1/messages/{fresh:message}",
        (404, 200, 404, 404, 200, 404, 200, 404, 401),
    ),
    "messages.read": Case(
        "POST",
        "/api/v1/messages/{fresh:message}/read",
        (404, 404, 404, 404, 200, 404, 200, 404, 401),
    ),
    "messages.recipients": Case(
        "GET",
        "/api/v1/messages/{fresh:message}/recipients",
        (404, 200, 404, 404, 404, 404, 404, 404, 401),
    ),
    "messages.attachment": Case(
        "GET",
        f"/api/v1/messages/{{fresh:message}}/attachments/{NO_FILE}",
        (404, 404, 404, 404, 404, 404, 404, 404, 401),
        route="/api/v1/messages/{id}/attachments/{file}",
    ),
    "notices.list": Case("GET", "/api/v1/notices", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "notices.create": Case(
        "POST",
        "/api/v1/notices",
        (201, 201, 201, 403, 403, 403, 403, 403, 401),
        _notice_to_company_a,
    ),
    "notices.get": Case(
        "GET",
        "/api/v1/notices/{fresh:notice}",
        (404, 200, 404, 404, 200, 404, 200, 404, 401),
    ),
    "notices.sign": Case(
        "POST",
        "/api/v1/notices/{fresh:notice}/sign",
        (404, 404, 404, 404, 200, 404, 200, 404, 401),
    ),
    "notices.recipients": Case(
        "GET",
        "/api/v1/notices/{fresh:notice}/recipients",
        (404, 200, 404, 404, 404, 404, 404, 404, 401),
    ),
    "notices.attachment": Case(
        "GET",
        f"/api/v1/notices/{{fresh:notice}}/attachments/{NO_FILE}",
        (404, 404, 404, 404, 404, 404, 404, 404, 401),
        route="/api/v1/notices/{id}/attachments/{file}",
    ),
}

FRESH: dict[str, Maker] = {"message": _message, "notice": _notice}
