"""Bad input on /ws at volume (docs/WEBSOCKET.md "Envelope", "Error codes", "Close codes").

What a user would notice: a socket that a malformed message closes, a reply that is an
``internal_error`` (a bug) instead of the documented code for the mistake, or a server that
stops answering. Thousands of seeded random frames — random bytes as binary frames, text
that is not JSON, truncated and mutated commands, wrong types in every field, JSON nested
thousands deep, ids past what a browser reads exactly, huge frames just under the limit —
on one connection with the rate limit lifted: each gets exactly one documented reply and
the connection stays open. Then the protocol-level ones: a text frame that is not UTF-8 is
closed with 1007, a flood at the shipped rate limits is refused then closed with 1008, and
the server still answers a new connection after each.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from aiohttp import WSMsgType

from realtime import protocol as proto
from tests.realtime.conftest import WS, realtime_settings, token_for

SEED = 20261207
FRAMES = 2_000
DEEP = 5_000
"""Nesting far past any recursive decoder's limit (Python's default is 1,000 frames)."""
LIFTED = {"ws_messages_per_s": 1_000_000, "ws_message_burst": 1_000_000}
"""No rate limit: each of the fuzzer's frames must be read, not refused for the rate."""
REPLY_TYPES = {proto.RESULT, proto.PONG}

VALID: list[dict[str, Any]] = [
    {"type": "ping"},
    {"type": "subscribe", "channel": "alerts"},
    {"type": "subscribe", "channel": "positions", "filter": {"bbox": [113.6, 34.7, 113.8, 34.9]}},
    {"type": "subscribe", "channel": "fills", "filter": {"district": "410105", "company": 1}},
    {"type": "unsubscribe", "subscription": 1},
    {"type": "wall_switch", "layout": 1, "scope": "city"},
]
ODD: list[Any] = [
    None,
    True,
    -1,
    0,
    2**53,
    2**64,
    -(2**63),
    1.5,
    1e308,
    "",
    "\u0000",
    "\ud800x",
    "气瓶" * 50,
    [],
    [1, "x", None],
    {},
    {"bbox": "x"},
    "x" * 5_000,
]


def _deep(rng: random.Random) -> bytes:
    where = rng.randrange(3)
    nest = b"[" * DEEP + b"]" * DEEP
    if where == 0:
        return nest
    if where == 1:  # in an unknown field of the envelope
        return b'{"id": 1, "type": "ping", "x": ' + nest + b"}"
    return b'{"id": 1, "type": "subscribe", "channel": "alerts", "filter": {"bbox": ' + nest + b"}}"


def frame(i: int, rng: random.Random) -> tuple[str | bytes, bool]:
    """One frame to send, and whether to send it binary."""
    base = {"id": i, **rng.choice(VALID)}
    how = rng.randrange(10)
    if how == 0:
        return rng.randbytes(rng.randrange(0, 512)), True
    if how == 1:  # text that is not JSON
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(1, 80))), False
    if how == 2:  # a truncated command
        raw = orjson.dumps(base).decode()
        return raw[: rng.randrange(0, len(raw))], rng.random() < 0.5
    if how == 3:  # a field of the wrong type (the id too)
        key = rng.choice(list(base))
        base[key] = rng.choice(ODD)
    elif how == 4:  # an unknown field
        base[rng.choice(["x", "Id", "filter_", "订阅"])] = rng.choice(ODD)
    elif how == 5:  # a filter that is not one
        base["type"], base["channel"] = "subscribe", rng.choice(["alerts", "kpis", "inbox", "x"])
        base["filter"] = {rng.choice(["bbox", "district", "company", "x"]): rng.choice(ODD)}
    elif how == 6:
        return _deep(rng), rng.random() < 0.5
    elif how == 7:  # big, under the limit
        base["pad"] = "x" * rng.randrange(10_000, 60_000)
    elif how == 8:  # not an object
        return orjson.dumps(rng.choice([[base], base["id"], str(base), None])), False
    # 9: a valid command
    try:
        return orjson.dumps(base).decode(), rng.random() < 0.3
    except (TypeError, orjson.JSONEncodeError):  # an int past 64 bits: written by hand
        return repr(base).replace("'", '"').replace("None", "null").replace("True", "true"), False


async def reply_to(ws: WS) -> dict[str, Any]:
    """The next result or pong (live frames of subscriptions the fuzzer made are skipped)."""
    while True:
        msg = await ws.ws.receive(timeout=10)
        assert msg.type == WSMsgType.TEXT, (msg.type, msg.data)
        body: dict[str, Any] = orjson.loads(msg.data)
        if body.get("type") in REPLY_TYPES:
            return body
        assert body.get("type") == proto.EVENT, body


async def test_thousands_of_malformed_frames_get_documented_errors_and_keep_it_open(
    make_client: Any, settings: Any
) -> None:
    client = await make_client(realtime_settings(settings, **LIFTED))
    token = await token_for(client, "t_admin")
    ws = WS(await client.ws_connect(f"/ws?token={token}"))
    rng = random.Random(SEED)
    codes: dict[str, int] = {}
    for i in range(1, FRAMES + 1):
        data, binary = frame(i, rng)
        if binary:
            await ws.ws.send_bytes(data if isinstance(data, bytes) else data.encode())
        else:
            await ws.ws.send_str(data if isinstance(data, str) else data.decode("latin-1"))
        body = await reply_to(ws)
        if body.get("success") is False:
            code = body["error"]["code"]
            assert code in proto.ERROR_CODES and code != proto.INTERNAL_ERROR, (data[:300], body)
            codes[code] = codes.get(code, 0) + 1
    assert {proto.INVALID_JSON, proto.INVALID_FORMAT} <= codes.keys(), codes
    ws._next = 10**9  # past every id the fuzzer used
    pong = await ws.send(type="ping")
    assert await reply_to(ws) == {"id": pong, "type": "pong"}
    await ws.close()


async def test_deep_nesting_is_invalid_json_not_a_bug(connect: Any) -> None:
    ws = await connect("t_admin")
    for raw in (
        b'{"id": 1, "type": "ping", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"id": 2, "type": "subscribe", "channel": "alerts", "filter": {"bbox": '
        + b"[" * DEEP
        + b"]" * DEEP
        + b"}}",
    ):
        await ws.ws.send_bytes(raw)
        err = await ws.recv()
        assert err["id"] is None and err["error"]["code"] == proto.INVALID_JSON, err
    assert await ws.send(id=3, type="ping") == 3
    assert await ws.recv() == {"id": 3, "type": "pong"}


async def test_ids_past_what_a_browser_reads_exactly_are_invalid(connect: Any) -> None:
    """Ids are positive integers a page can echo: JSON numbers past 2**53 - 1 lose digits in
    JavaScript, and one past 64 bits could not even be written back."""
    ws = await connect("t_admin")
    for bad in (2**53, 2**64, 10**30, 0, -5):
        await ws.ws.send_str(f'{{"id": {bad}, "type": "ping"}}')
        err = await ws.recv()
        assert err["id"] is None, err
        assert err["error"]["code"] == proto.INVALID_FORMAT and err["error"]["field"] == "id", err
    await ws.send(id=2**53 - 1, type="ping")
    assert await ws.recv() == {"id": 2**53 - 1, "type": "pong"}


async def test_a_text_frame_that_is_not_utf8_closes_1007(make_client: Any, settings: Any) -> None:
    client = await make_client(realtime_settings(settings))
    token = await token_for(client, "t_admin")
    raw = await client.ws_connect(f"/ws?token={token}")
    await raw._writer.send_frame(b'{"id": 1, "type": "\xff\xfe"}', WSMsgType.TEXT)
    msg = await raw.receive(timeout=5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 1007, msg
    again = WS(await client.ws_connect(f"/ws?token={token}"))
    assert await again.send(type="ping") == 1
    assert await again.recv() == {"id": 1, "type": "pong"}
    await again.close()


async def test_a_flood_at_the_shipped_limits_is_refused_then_closed_1008(
    make_client: Any, settings: Any
) -> None:
    client = await make_client(realtime_settings(settings))
    rt = settings.realtime
    token = await token_for(client, "t_admin")
    ws = WS(await client.ws_connect(f"/ws?token={token}"))
    flood = rt.ws_message_burst + rt.ws_rate_limit_close_after + 500
    for i in range(1, flood + 1):  # as fast as the socket takes them, nothing read meanwhile
        if ws.ws.closed:
            break
        kind = i % 3
        if kind == 0:
            await ws.ws.send_str(f'{{"id": {i}, "type": "ping"}}')
        elif kind == 1:
            await ws.ws.send_str(f'{{"id": {i}, "type": "subscribe", "channel": "alerts"}}')
        else:
            await ws.ws.send_str("{not json")
    kinds: dict[str, int] = {}
    last = ""
    while True:
        msg = await ws.ws.receive(timeout=10)
        if msg.type != WSMsgType.TEXT:
            break
        body = orjson.loads(msg.data)
        last = body["error"]["code"] if body.get("success") is False else body["type"]
        kinds[last] = kinds.get(last, 0) + 1
    # the refusals still queued when the close comes are not sent (docs/WEBSOCKET.md
    # "Connecting"): the last frame is the refusal that closes it
    assert msg.type == WSMsgType.CLOSE and msg.data == proto.CLOSE_POLICY_VIOLATION, (msg, kinds)
    assert last == proto.RATE_LIMITED, kinds
    assert proto.INTERNAL_ERROR not in kinds, kinds
    assert sum(kinds.values()) < flood  # not read to the end: closed
    await asyncio.sleep(0)
    fresh = WS(await client.ws_connect(f"/ws?token={token}"))
    assert await fresh.send(type="ping") == 1
    assert await fresh.recv() == {"id": 1, "type": "pong"}
    await fresh.close()


async def test_filter_values_no_row_can_hold_are_invalid_filters(connect: Any) -> None:
    """A NUL in a code or an id past bigint names no company and no district: the documented
    ``invalid_filter``, not a database error."""
    ws = await connect("t_admin")
    for i, flt in enumerate(
        [{"company": "\u0000"}, {"company": "A\u0000B"}, {"district": "41\u00000105"}],
        start=1,
    ):
        await ws.send(id=i, type="subscribe", channel="alerts", filter=flt)
        err = await ws.recv()
        assert err["id"] == i and err["error"]["code"] == proto.INVALID_FILTER, (flt, err)
    past_bigint = 2**63
    await ws.ws.send_str(
        f'{{"id": 9, "type": "subscribe", "channel": "alerts", "filter": {{"company": {past_bigint}}}}}'
    )
    err = await ws.recv()
    assert err["error"]["code"] in (proto.INVALID_FILTER, proto.INVALID_FORMAT), err
    await ws.send(id=10, type="wall_switch", layout=1, scope="\u0000")
    err = await ws.recv()
    assert err["id"] == 10 and err["error"]["code"] != proto.INTERNAL_ERROR, err
