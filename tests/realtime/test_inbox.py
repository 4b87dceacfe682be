"""The live inbox (docs/WEBSOCKET.md "Channels", "The inbox across processes"): a recipient's
open socket hears a new message the moment its transaction commits — whoever wrote it, an API
handler or the platform — another user's socket hears nothing, the list of recipients is never
sent, and the subscription starts with the user's counts."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from realtime.keys import INBOX, PUSH
from server.db.messages import deliver_system_message
from tests.conftest import World
from tests.realtime.conftest import WS, token_for
from tests.realtime.test_push import Browser
from tests.realtime.test_push import push_service as push_service  # the local push service fixture

LISTEN_WAIT_S = 5.0


async def listening(client: Any) -> None:
    await asyncio.wait_for(client.server.app[INBOX].listening.wait(), LISTEN_WAIT_S)


async def inbox_rows(ws: WS) -> list[dict[str, Any]]:
    frame = await ws.recv()
    assert frame["type"] == "event" and frame["channel"] == "inbox", frame
    assert "snapshot" not in frame
    rows: list[dict[str, Any]] = frame["data"]
    return rows


async def test_a_recipients_socket_hears_the_message(
    rt_client: Any, connect: Any, world: World, pool: Any
) -> None:
    await listening(rt_client)
    company_a = await connect("t_company_a")
    sub = await company_a.send(type="subscribe", channel="inbox")
    assert (await company_a.recv())["success"] is True
    snapshot = await company_a.recv()
    assert snapshot["id"] == sub and snapshot["snapshot"] is True
    counts = snapshot["data"][0]
    assert counts["kind"] == "counts" and {"messages", "notices"} <= set(counts)
    company_b = await connect("t_company_b")
    await company_b.subscribe("inbox")

    # a regulator writes to company A through the API
    bearer = await token_for(rt_client, "t_regulator")
    resp = await rt_client.post(
        "/api/v1/messages",
        json={"subject": "实时送达", "to": {"companies": [world.companies["A"]]}},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert resp.status == 201, await resp.text()
    message_id = (await resp.json())["id"]
    rows = await inbox_rows(company_a)
    assert rows == [
        {
            "kind": "message",
            "id": message_id,
            "subject": "实时送达",
            "from": "t_regulator",
            "system": False,
        }
    ]
    await company_b.silent()

    # reading it tells the reader's own screens (counts change) — and the writer a receipt
    writer = await connect("t_regulator")
    await writer.subscribe("inbox")
    bearer_a = await token_for(rt_client, "t_company_a")
    resp = await rt_client.post(
        f"/api/v1/messages/{message_id}/read", headers={"Authorization": f"Bearer {bearer_a}"}
    )
    assert resp.status == 200
    assert await inbox_rows(company_a) == [{"kind": "read", "message": message_id}]
    assert await inbox_rows(writer) == [
        {"kind": "receipt", "message": message_id, "user": world.users["t_company_a"]}
    ]
    await company_b.silent()


async def test_the_platforms_message_is_heard_on_commit_only(
    rt_client: Any, connect: Any, world: World, pool: Any
) -> None:
    await listening(rt_client)
    officer = await connect("t_officer")
    await officer.subscribe("inbox")
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        mid = await deliver_system_message(conn, [world.users["t_officer"]], "日报", "附件见后")
        await officer.silent(0.5)  # written, not committed: not announced
        await tr.commit()
    rows = await inbox_rows(officer)
    assert rows == [{"kind": "message", "id": mid, "subject": "日报", "from": None, "system": True}]
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        await deliver_system_message(conn, [world.users["t_officer"]], "作废", "")
        await tr.rollback()
    await officer.silent(0.5)


async def test_the_inbox_takes_no_filter(rt_client: Any, connect: Any) -> None:
    ws = await connect("t_inspector")
    sub = await ws.send(type="subscribe", channel="inbox", filter={"district": "410105"})
    reply = await ws.recv()
    assert reply["id"] == sub and reply["success"] is False
    assert reply["error"]["code"] == "invalid_filter"
    await ws.subscribe("inbox", {})  # every role has an inbox, the inspector included


async def test_a_new_message_is_pushed_to_the_recipients_phone(
    rt_client: Any, push_service: Any, pool: Any, world: World, monkeypatch: Any
) -> None:
    """Web Push of a new message (realtime.inbox.push_inbox): encrypted to the recipient's own
    subscription, once; reading it pushes nothing.

    "Once" is per platform (its processes share a Redis channel, hence the dedupe key). The
    session database may be listened to by another platform too — the browser tests' live
    server has a channel of its own and pushes the same message — so the once is counted on
    this app's sender; every push that reaches the phone must still be this message's."""
    await listening(rt_client)
    server, received = push_service
    sender = rt_client.app[PUSH]
    ours: list[str] = []
    send = sender._send

    async def counted(target: Any, payload: bytes, urgency: str) -> None:
        ours.append(target.endpoint)
        await send(target, payload, urgency)

    monkeypatch.setattr(sender, "_send", counted)
    phone = Browser()
    endpoint = str(server.make_url(f"/push/ok/{secrets.token_hex(4)}"))
    officer = {"Authorization": f"Bearer {await token_for(rt_client, 't_officer')}"}
    resp = await rt_client.post(
        "/api/v1/push/subscriptions", json=phone.subscription(endpoint), headers=officer
    )
    assert resp.status == 201, await resp.text()
    try:
        async with pool.acquire() as conn, conn.transaction():
            mid = await deliver_system_message(conn, [world.users["t_officer"]], "周报已送达", "")
        path = endpoint.split(str(server.make_url("")).rstrip("/"))[-1]
        for _ in range(50):  # the notification arrives after the commit, the push after it
            if endpoint in ours and any(p == path for p, _h, _b in received):
                break
            await asyncio.sleep(0.1)
        await sender.wait_idle()
        assert ours.count(endpoint) == 1
        assert any(p == path for p, _h, _b in received)
        resp = await rt_client.post(f"/api/v1/messages/{mid}/read", headers=officer)
        assert resp.status == 200
        await asyncio.sleep(0.5)
        await sender.wait_idle()
        assert ours.count(endpoint) == 1  # reading pushed nothing
        for body in [body for p, _h, body in received if p == path]:
            note = phone.decrypt(body)
            assert note["title"] == "周报已送达" and note["tag"] == f"message-{mid}"
            assert note["url"] == f"/messages?open={mid}"
    finally:
        await pool.execute("DELETE FROM push_subscriptions WHERE endpoint = $1", endpoint)
