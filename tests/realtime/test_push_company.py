"""Web Push to a company's phones (issue 8 item 4; realtime.push ``SUBSCRIBE_ROLES``): a
station operator — the delivery staff who inspect customers — may subscribe, and its phone
gets its inbox (an overdue rectification's reminder is a system message to whoever
inspected) but never an alert push, which keeps going to the bureau's roles only: an alert
in the operator's own company and district reaches the officer's phone, not the operator's."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from realtime.keys import PUSH
from server.db.messages import deliver_system_message
from server.kernel.appkeys import BUS
from tests.conftest import World
from tests.realtime.conftest import token_for
from tests.realtime.test_fanout import alert_event
from tests.realtime.test_inbox import listening
from tests.realtime.test_push import Browser
from tests.realtime.test_push import push_service as push_service  # the local push service fixture

ARRIVAL_TRIES = 50
ARRIVAL_STEP_S = 0.1  # the notification arrives after the commit, the push after it


async def test_a_station_operator_gets_its_inbox_pushed_but_no_alert(
    rt_client: Any, push_service: Any, pool: Any, world: World, monkeypatch: Any
) -> None:
    """The inbox push is counted on this app's sender: the session database may be listened
    to by another platform too (the browser tests' live server, with a Redis channel of its
    own), which pushes the same message; every push the phone gets must still be this one."""
    await listening(rt_client)
    server, received = push_service
    ours: list[str] = []
    send = rt_client.app[PUSH]._send

    async def counted(target: Any, payload: bytes, urgency: str) -> None:
        ours.append(target.endpoint)
        await send(target, payload, urgency)

    monkeypatch.setattr(rt_client.app[PUSH], "_send", counted)
    base = str(server.make_url("")).rstrip("/")
    operator_phone, officer_phone = Browser(), Browser()
    operator_url = str(server.make_url(f"/push/ok/{secrets.token_hex(4)}"))
    officer_url = str(server.make_url(f"/push/ok/{secrets.token_hex(4)}"))
    operator_path, officer_path = operator_url[len(base) :], officer_url[len(base) :]
    try:
        for user, phone, url in (
            ("t_operator_a", operator_phone, operator_url),
            ("t_officer", officer_phone, officer_url),
        ):
            headers = {"Authorization": f"Bearer {await token_for(rt_client, user)}"}
            resp = await rt_client.post(
                "/api/v1/push/subscriptions", json=phone.subscription(url), headers=headers
            )
            assert resp.status == 201, (user, await resp.text())

        # an alert of company A at the operator's own station: the officer's phone only
        sender = rt_client.app[PUSH]
        alert_id = 10**9 + secrets.randbelow(10**9)  # dedupe keys live in Redis: a fresh id
        rt_client.app[BUS].publish(alert_event(world, "A", alert_id, kind="leak"))
        await sender.wait_idle()
        paths = [p for p, _h, _b in received]
        assert officer_path in paths and operator_path not in paths, paths

        # a rectification reminder in the operator's inbox: pushed to the operator's phone
        async with pool.acquire() as conn, conn.transaction():
            mid = await deliver_system_message(
                conn, [world.users["t_operator_a"]], "整改逾期提醒", "张三家 燃气报警器未安装"
            )
        for _ in range(ARRIVAL_TRIES):
            if operator_url in ours and any(p == operator_path for p, _h, _b in received):
                break
            await asyncio.sleep(ARRIVAL_STEP_S)
        await sender.wait_idle()
        assert ours.count(operator_url) == 1, ours
        pushed = [body for p, _h, body in received if p == operator_path]
        assert pushed, received
        for body in pushed:
            note = operator_phone.decrypt(body)
            assert note["title"] == "整改逾期提醒" and note["tag"] == f"message-{mid}"
        assert [p for p, _h, _b in received].count(officer_path) == 1  # not the officer's inbox
    finally:
        await pool.execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ANY($1::text[])",
            [operator_url, officer_url],
        )
