"""`GET /ws`: authenticate, then read commands one by one and answer each (docs/ARCHITECTURE.md §6).

Bad input never ends the connection: a message that is not JSON, lacks an envelope, names
an unknown command, reuses an id or carries a bad field gets an error result (codes in
`realtime.protocol`) and the next message is read as usual. Commands run in arrival order,
so replies come in id order. Only a client that cannot keep up (1013), an anonymous one
(4401), one sending a message larger than ``ws_max_message_bytes`` (1009), one flooding
past the rate limit (1008), a user's socket beyond ``ws_connections_per_user_max`` (4429)
and the socket of an ended session (4410) are closed.

Before the upgrade, a browser's ``Origin`` must be the site's own (docs/WEBSOCKET.md
"Connecting"): the session cookie is sent with a websocket handshake from any page, so
without this check any site a logged-in supervisor visits could read the live city
(cross-site websocket hijacking). A client that sends no ``Origin`` is not a browser
page; it authenticates with a token, which no other site holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import socket
import struct
import time
from urllib.parse import urlsplit

import asyncpg
import msgspec
from aiohttp import WSMsgType, web

from realtime import protocol as proto
from realtime import wall
from realtime.connection import Connection
from realtime.hub import GroupKey, Hub
from realtime.keys import HUB, KPIS
from realtime.scope import CHANNEL_ENTITY, RECIPIENTS, LiveFilter, rule_for
from server.domain.messages import CHANNEL_INBOX
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import ApiError
from server.kernel.http import ID_MAX
from server.kernel.principal import principal_of
from server.kernel.scope import can_read
from server.kernel.settings import Realtime

log = logging.getLogger(__name__)

_LIVE_NEEDS: dict[str, tuple[str, ...]] = {
    channel: (entity, "positions") if channel == "events" else (entity,)
    for channel, entity in CHANNEL_ENTITY.items()
}
"""What a role must be allowed to read to subscribe to a live channel. Live trajectory events
carry where they happened (coordinates, the delivery's customer), so the ``events`` channel
also needs ``positions``: an inspection agency reads trajectories through the REST API,
where coordinates are left out for it, and not live (docs/SECURITY.md "Privacy")."""

_LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: closing the socket resets the connection and discards unsent data."""

_DISTRICT_MAX_CHARS = 32  # administrative division codes are 6-12 characters


class FilterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


async def live_filter(pool: asyncpg.Pool, channel: str, flt: proto.Filter | None) -> LiveFilter:
    """Validate a client filter and resolve a company code to its id."""
    if flt is None:
        return LiveFilter()
    bbox: tuple[float, float, float, float] | None = None
    if flt.bbox is not None:
        if channel == proto.KPIS:
            raise FilterError("filter.bbox", "kpis are counted by district and company, not bbox")
        if len(flt.bbox) != 4 or not all(math.isfinite(v) for v in flt.bbox):
            raise FilterError("filter.bbox", "expected [west, south, east, north]")
        w, s, e, n = flt.bbox
        if not (-180 <= w < e <= 180):
            raise FilterError("filter.bbox", "need -180 ≤ west < east ≤ 180")
        if not (-90 <= s < n <= 90):
            raise FilterError("filter.bbox", "need -90 ≤ south < north ≤ 90")
        bbox = (w, s, e, n)
    district = flt.district
    if district is not None and not (0 < len(district) <= _DISTRICT_MAX_CHARS):
        raise FilterError("filter.district", f"1 to {_DISTRICT_MAX_CHARS} characters")
    if district is not None and "\x00" in district:
        raise FilterError("filter.district", "an administrative code has no NUL character")
    company_id: int | None = None
    if isinstance(flt.company, int):
        if not 0 < flt.company <= ID_MAX:
            raise FilterError("filter.company", "a company id is a positive integer")
        company_id = flt.company
    elif isinstance(flt.company, str):
        if "\x00" in flt.company:  # PostgreSQL text cannot hold it: no company has it
            raise FilterError("filter.company", f"no company has the code {flt.company!r}")
        company_id = await pool.fetchval("SELECT id FROM companies WHERE code = $1", flt.company)
        if company_id is None:
            raise FilterError("filter.company", f"no company has the code {flt.company!r}")
    return LiveFilter(bbox, district, company_id)


async def _subscribe(
    request: web.Request, hub: Hub, conn: Connection, cmd: proto.Subscribe
) -> None:
    channel = cmd.channel
    if channel not in proto.CHANNELS:
        known = ", ".join(proto.CHANNELS)
        conn.send(
            proto.error_frame(
                cmd.id,
                proto.UNKNOWN_CHANNEL,
                f"no channel {channel!r}; channels: {known}",
                "channel",
            )
        )
        return
    p = conn.principal
    if channel == CHANNEL_INBOX:
        await _subscribe_inbox(hub, conn, cmd)
        return
    if channel == wall.CHANNEL_WALL:
        await wall.subscribe(hub, conn, cmd)
        return
    if channel != proto.KPIS and not all(can_read(p, e) for e in _LIVE_NEEDS[channel]):
        conn.send(
            proto.error_frame(
                cmd.id, proto.FORBIDDEN, f"role {p.role} may not read {channel}", "channel"
            )
        )
        return
    if len(conn.subscriptions) >= hub.settings.subscriptions_max:
        conn.send(
            proto.error_frame(
                cmd.id,
                proto.TOO_MANY_SUBSCRIPTIONS,
                f"at most {hub.settings.subscriptions_max} subscriptions per connection",
            )
        )
        return
    try:
        flt = await live_filter(request.app[POOL], channel, cmd.filter)
    except FilterError as exc:
        conn.send(proto.error_frame(cmd.id, proto.INVALID_FILTER, f"{exc.field}: {exc}", exc.field))
        return
    if channel == proto.KPIS:
        key = request.app[KPIS].group_key(p, flt)
    else:
        key = GroupKey(channel, rule_for(p, CHANNEL_ENTITY[channel]), flt)
    if not await hub.subscribe(conn, cmd.id, key):
        conn.send(
            proto.error_frame(
                cmd.id, proto.UNAVAILABLE, "the current state cannot be read; try again"
            )
        )


async def _subscribe_inbox(hub: Hub, conn: Connection, cmd: proto.Subscribe) -> None:
    """Every role has an inbox, its own only: no filter (there is nothing to narrow)."""
    flt = cmd.filter
    if flt is not None and (flt.bbox is not None or flt.district is not None or flt.company):
        conn.send(
            proto.error_frame(
                cmd.id, proto.INVALID_FILTER, "filter: the inbox takes no filter", "filter"
            )
        )
        return
    if len(conn.subscriptions) >= hub.settings.subscriptions_max:
        conn.send(
            proto.error_frame(
                cmd.id,
                proto.TOO_MANY_SUBSCRIPTIONS,
                f"at most {hub.settings.subscriptions_max} subscriptions per connection",
            )
        )
        return
    if not await hub.subscribe(conn, cmd.id, GroupKey(CHANNEL_INBOX, RECIPIENTS, LiveFilter())):
        conn.send(
            proto.error_frame(
                cmd.id, proto.UNAVAILABLE, "the current state cannot be read; try again"
            )
        )


async def dispatch(request: web.Request, hub: Hub, conn: Connection, raw: str | bytes) -> None:
    """Decode, check and run one client message. Every outcome is a reply."""
    try:
        envelope = proto.ENVELOPE_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        field = proto.field_of(exc)
        conn.send(
            proto.error_frame(
                None, proto.INVALID_FORMAT, f"{field}: {str(exc).split(' - at ')[0]}", field
            )
        )
        return
    except msgspec.DecodeError as exc:
        conn.send(proto.error_frame(None, proto.INVALID_JSON, f"not valid JSON: {exc}"))
        return
    except RecursionError:
        # msgspec walks nesting by recursion, even in a field it skips: JSON nested
        # thousands deep is bad input, not a bug (docs/WEBSOCKET.md "Error codes")
        conn.send(proto.error_frame(None, proto.INVALID_JSON, "not valid JSON: nested too deeply"))
        return
    msg_id = envelope.id
    if msg_id <= conn.last_id:
        conn.send(
            proto.error_frame(
                msg_id, proto.ID_REUSE, f"ids must increase: {msg_id} follows {conn.last_id}", "id"
            )
        )
        return
    conn.last_id = msg_id
    decoder = proto.COMMAND_DECODERS.get(envelope.type)
    if decoder is None:
        known = ", ".join(proto.COMMAND_TYPES)
        conn.send(
            proto.error_frame(
                msg_id,
                proto.UNKNOWN_COMMAND,
                f"unknown command {envelope.type!r}; commands: {known}",
                "type",
            )
        )
        return
    try:
        cmd = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        field = proto.field_of(exc)
        conn.send(
            proto.error_frame(
                msg_id, proto.INVALID_FORMAT, f"{field}: {str(exc).split(' - at ')[0]}", field
            )
        )
        return
    except RecursionError:
        conn.send(
            proto.error_frame(msg_id, proto.INVALID_JSON, "not valid JSON: nested too deeply")
        )
        return
    if isinstance(cmd, proto.Ping):
        conn.send(proto.pong_frame(msg_id))
    elif isinstance(cmd, proto.Unsubscribe):
        if hub.unsubscribe(conn, cmd.subscription):
            conn.send(proto.result_frame(msg_id))
        else:
            conn.send(
                proto.error_frame(
                    msg_id, proto.NOT_FOUND, f"no subscription {cmd.subscription}", "subscription"
                )
            )
    elif isinstance(cmd, proto.Subscribe):
        await _subscribe(request, hub, conn, cmd)
    elif isinstance(cmd, proto.WallSwitch):
        await wall.switch(request, conn, cmd)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(request: web.Request, origin: str) -> bool:
    """The site's own origins: ``[http] base_url``'s, ``[realtime] ws_allowed_origins``,
    and the origin this very request was addressed to (a page served by this host)."""
    settings = request.app[SETTINGS]
    origin = origin.strip().lower()
    allowed = {_origin_of(settings.http.base_url), f"{request.scheme}://{request.host}".lower()}
    allowed.update(o.lower().rstrip("/") for o in settings.realtime.ws_allowed_origins)
    return origin in allowed


class MessageRate:
    """A token bucket of ``ws_messages_per_s``, ``ws_message_burst`` deep, per connection.

    ``strikes`` counts messages refused since the bucket was last full: a client that
    pauses long enough to refill it starts afresh, one that keeps flooding reaches
    ``ws_rate_limit_close_after`` and is closed.
    """

    def __init__(self, rt: Realtime) -> None:
        self.rate = float(rt.ws_messages_per_s)
        self.burst = float(rt.ws_message_burst)
        self.tokens = self.burst
        self.at = time.monotonic()
        self.strikes = 0

    def admit(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= self.burst:
            self.strikes = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.strikes += 1
        return False


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    rt = request.app[SETTINGS].realtime
    hub = request.app[HUB]
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(request, origin):
        raise ApiError(403, errors.FORBIDDEN, f"a page of {origin} may not open this websocket")
    ws = web.WebSocketResponse(
        compress=False,  # deflate per client would undo "encode once, send many"
        heartbeat=rt.ws_heartbeat_s,
        max_msg_size=rt.ws_max_message_bytes,
        timeout=rt.ws_close_timeout_s,
    )
    await ws.prepare(request)
    principal = principal_of(request)
    if principal is None:
        await ws.send_frame(
            proto.error_frame(
                None, proto.UNAUTHORIZED, "log in first: session cookie or ?token=<login token>"
            ),
            WSMsgType.TEXT,
        )
        await ws.close(code=proto.CLOSE_UNAUTHORIZED, message=b"unauthorized")
        return ws
    conn = Connection(ws, principal, rt)
    if not hub.register(conn):
        await ws.send_frame(
            proto.error_frame(
                None,
                proto.TOO_MANY_CONNECTIONS,
                f"at most {rt.ws_connections_per_user_max} open websockets per user",
            ),
            WSMsgType.TEXT,
        )
        await ws.close(code=proto.CLOSE_TOO_MANY_CONNECTIONS, message=b"too many connections")
        return ws
    rate = MessageRate(rt)
    conn.start_writer()
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            if conn.close_code is not None:
                continue  # closing: read nothing more
            if not rate.admit():
                _refuse(conn, rate, rt)
                continue
            try:
                await dispatch(request, hub, conn, msg.data)
            except Exception:
                ref = secrets.token_hex(6)
                log.exception("websocket %r: command failed [%s]", conn, ref)
                conn.send(
                    proto.error_frame(
                        None, proto.INTERNAL_ERROR, f"internal error (reference {ref})"
                    )
                )
    finally:
        hub.release(conn)
        await conn.stop_writer()
        if conn.close_code is not None:
            _let_go_later(request, rt.ws_close_timeout_s)
    return ws


def _let_go_later(request: web.Request, within_s: float) -> None:
    """Reset the connection of a client the server closed (1013, 1008, 4410) if it has not
    read what was sent to it within *within_s* (``ws_close_timeout_s``).

    aiohttp closes such a socket gracefully: the transport waits until the client has read
    the frames still queued and the close frame behind them. A client that never reads
    again kept its socket, its transport and up to the kernel's send buffer (4 MB on Linux)
    on the server for as long as it stayed connected (50 s and counting in
    tests/chaos/test_serving_faults.py). SO_LINGER 0 makes the close a reset: the kernel
    frees the buffer at once. A client that reads has emptied the buffer by then.
    """
    transport = request.transport
    if transport is not None:
        asyncio.get_running_loop().call_later(within_s, _reset_if_stuck, transport)


def _reset_if_stuck(transport: asyncio.Transport) -> None:
    if transport.get_write_buffer_size() == 0:
        return  # delivered (or already gone): the graceful close ends on its own
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    log.info("websocket: a closed client did not read what it was sent; connection reset")
    transport.abort()


def _refuse(conn: Connection, rate: MessageRate, rt: Realtime) -> None:
    """A message over the rate limit: an error result, or the close when it goes on."""
    if rate.strikes >= rt.ws_rate_limit_close_after:
        log.warning("websocket %r: %d messages over the rate limit; closing it", conn, rate.strikes)
        conn.end(
            proto.CLOSE_POLICY_VIOLATION,
            b"rate limit",
            proto.error_frame(None, proto.RATE_LIMITED, "too many messages: closing"),
        )
        return
    conn.send(
        proto.error_frame(
            None,
            proto.RATE_LIMITED,
            f"at most {rt.ws_messages_per_s} messages per second"
            f" (bursts of {rt.ws_message_burst}); this one was not read",
        )
    )
