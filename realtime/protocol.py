"""The `/ws` wire protocol (docs/ARCHITECTURE.md §6): one envelope, a schema per command, constant codes.

Every client message is ``{"id": int, "type": str, ...}``. The envelope is decoded first
so that an unknown ``type`` is told apart from a known command with bad fields; each
command then has its own strict msgspec schema that names the offending field. Error codes
and message types live here and only here: docs/WEBSOCKET.md documents each of them and a
test checks that it does.

Frames the server sends are built as bytes. An event frame is
``PREFIX(id, channel) + data + b"}"`` where ``PREFIX`` is computed once per subscription
and ``data`` (a JSON list) once per event or batch, so fan-out to N subscribers costs N
byte concatenations, not N JSON encodings.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from server.domain import messages as inbox
from server.domain import statuses as vocabulary
from server.domain import wall as wall_vocab
from server.kernel.events import Event
from server.kernel.http import ID_MAX, field_from_msgspec
from server.kernel.http import dumps as dumps
from server.kernel.live_codes import CLOSE_CODES as PAGE_CLOSE_CODES
from server.kernel.live_codes import CLOSE_TRY_AGAIN_LATER as CLOSE_TRY_AGAIN_LATER
from server.kernel.live_codes import CLOSE_UNAUTHORIZED as CLOSE_UNAUTHORIZED

# ------------------------------------------------------------------ error codes

INVALID_JSON: Final = "invalid_json"
"""The message is not a JSON object."""
INVALID_FORMAT: Final = "invalid_format"
"""A known command with a missing, unknown or mistyped field (the message names it)."""
UNKNOWN_COMMAND: Final = "unknown_command"
"""``type`` is not a command this server knows."""
ID_REUSE: Final = "id_reuse"
"""``id`` is not greater than every id this connection sent before."""
UNKNOWN_CHANNEL: Final = "unknown_channel"
"""``subscribe`` names a channel that does not exist."""
INVALID_FILTER: Final = "invalid_filter"
"""A filter value is out of range, unknown (company code) or not valid for the channel."""
FORBIDDEN: Final = "forbidden"
"""The caller's role may not read this channel at all (e.g. an inspector and ``alerts``)."""
NOT_FOUND: Final = "not_found"
"""``unsubscribe`` names no live subscription of this connection."""
TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"
"""The connection already holds ``[realtime] subscriptions_max`` subscriptions."""
UNAUTHORIZED: Final = "unauthorized"
"""No valid session cookie or ``?token=``; sent once, then the socket closes with 4401."""
UNAVAILABLE: Final = "unavailable"
"""The snapshot could not be read (database down); the subscription was not made."""
INTERNAL_ERROR: Final = "internal_error"
"""A bug; logged with a reference. The connection stays open."""
RATE_LIMITED: Final = "rate_limited"
"""More messages than ``[realtime] ws_messages_per_s`` (burst ``ws_message_burst``): this
one was not read. Kept up without a pause, the connection is closed with 1008."""
TOO_MANY_CONNECTIONS: Final = "too_many_connections"
"""The user already holds ``ws_connections_per_user_max`` sockets here; then close 4429."""
INVALID_SCOPE: Final = "invalid_scope"
"""``wall_switch`` names a wall scope that is malformed or has an unknown district."""
SESSION_ENDED: Final = "session_ended"
"""The credential of this socket ended (logout, password change, deactivation, kiosk token
revoked); then close 4410."""

ERROR_CODES: Final = (
    INVALID_JSON,
    INVALID_FORMAT,
    UNKNOWN_COMMAND,
    ID_REUSE,
    UNKNOWN_CHANNEL,
    INVALID_FILTER,
    FORBIDDEN,
    NOT_FOUND,
    TOO_MANY_SUBSCRIPTIONS,
    UNAUTHORIZED,
    UNAVAILABLE,
    INTERNAL_ERROR,
    RATE_LIMITED,
    TOO_MANY_CONNECTIONS,
    SESSION_ENDED,
    INVALID_SCOPE,
)

# ------------------------------------------------------------------ close codes

# CLOSE_UNAUTHORIZED (4401) and CLOSE_TRY_AGAIN_LATER (1013) are defined in
# server.kernel.live_codes (the pages hand them to their scripts) and re-exported here.
# The pages need not tell the codes below apart: they reconnect, and a dead credential
# then meets 4401.
CLOSE_SESSION_ENDED: Final = 4410
"""The socket's session ended (logout, password change, deactivation, kiosk token revoked)."""
CLOSE_TOO_MANY_CONNECTIONS: Final = 4429
"""The user already holds ``[realtime] ws_connections_per_user_max`` sockets in this process."""
CLOSE_POLICY_VIOLATION: Final = 1008
"""RFC 6455 "policy violation": messages kept coming past the rate limit."""
CLOSE_CODES: Final = (
    *PAGE_CLOSE_CODES,
    CLOSE_SESSION_ENDED,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_POLICY_VIOLATION,
)

# ------------------------------------------------------------------ message types

# client → server
SUBSCRIBE: Final = "subscribe"
UNSUBSCRIBE: Final = "unsubscribe"
PING: Final = "ping"
# server → client
RESULT: Final = "result"
EVENT: Final = "event"
PONG: Final = "pong"
RESYNC: Final = "resync"
"""Rows of a subscription may have been lost on their way to this server process (not for
being slow: the client's own queue is whole); a fresh snapshot follows where the channel
has one (realtime.resync)."""

COMMAND_TYPES: Final = (SUBSCRIBE, UNSUBSCRIBE, PING, wall_vocab.SWITCH_COMMAND)
SERVER_TYPES: Final = (RESULT, EVENT, PONG, RESYNC)

# why a resync notice was sent (its ``reason``)
RESYNC_GAP: Final = "gap"
"""Rows another process published never arrived (a gap in its sequence numbers)."""
RESYNC_RECONNECTED: Final = "reconnected"
"""This process lost its Redis subscription and has it again; rows meanwhile are lost."""
RESYNC_REASONS: Final = (RESYNC_GAP, RESYNC_RECONNECTED)

# ------------------------------------------------------------------ channels

# The domain's live channels (server.domain.statuses), under the protocol's short names.
POSITIONS: Final = vocabulary.CHANNEL_POSITIONS
ALERTS: Final = vocabulary.CHANNEL_ALERTS
FILLS: Final = vocabulary.CHANNEL_FILLS
KPIS: Final = vocabulary.CHANNEL_KPIS
EVENTS: Final = vocabulary.CHANNEL_EVENTS
DEVICES: Final = vocabulary.CHANNEL_DEVICES
CHANNELS: Final = (*vocabulary.LIVE_CHANNELS, inbox.CHANNEL_INBOX, wall_vocab.CHANNEL_WALL)
"""The domain's channels of live rows, each user's own ``inbox`` (messages and notices:
server.domain.messages), whose rows go only to the users they name (realtime.hub.InboxGroup),
and the ``wall``: the layout a command-centre wall shows, then each switch (realtime.wall)."""

DROPPABLE_CHANNELS: Final = frozenset({POSITIONS, KPIS})
"""Frames a slow client may lose: a newer frame supersedes them. Anything else backing up
closes the client (1013) rather than silently losing an alert or a fill. The Redis
bridge's publisher drops these first too (realtime.bridge)."""
NOT_RESYNCED: Final = frozenset({KPIS, inbox.CHANNEL_INBOX})
"""Channels that never cross Redis: each process computes its KPIs, and inbox rows come
from PostgreSQL's notifications (realtime.inbox), so no Redis loss can touch them."""

# ------------------------------------------------------------------ command schemas


MAX_ID: Final = 2**53 - 1
"""The largest message id: the largest integer a page's ``JSON.parse`` reads exactly (a
larger one would come back in the reply as another number, and one past 64 bits could not
be written back at all)."""
MessageId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class Envelope(msgspec.Struct):
    """What every message has; read first to choose the command's own schema."""

    id: MessageId
    type: str


class Filter(msgspec.Struct, forbid_unknown_fields=True):
    bbox: list[float] | None = None
    """[west, south, east, north] in WGS-84 degrees."""
    district: str | None = None
    company: int | str | None = None
    """A company id, or its code (resolved once at subscribe time)."""


class Subscribe(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    type: str
    channel: str
    filter: Filter | None = None


class Unsubscribe(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    type: str
    subscription: MessageId


class Ping(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    type: str


class WallSwitch(msgspec.Struct, forbid_unknown_fields=True):
    """Switch a wall's layout (server.domain.wall; realtime.wall runs it)."""

    id: int
    type: str
    layout: Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
    scope: str | None = None
    """``city`` or district codes; None: the caller's own wall."""


COMMANDS: Final[dict[str, type[msgspec.Struct]]] = {
    SUBSCRIBE: Subscribe,
    UNSUBSCRIBE: Unsubscribe,
    PING: Ping,
    wall_vocab.SWITCH_COMMAND: WallSwitch,
}

ENVELOPE_DECODER: Final = msgspec.json.Decoder(Envelope)
COMMAND_DECODERS: Final = {name: msgspec.json.Decoder(cls) for name, cls in COMMANDS.items()}


def field_of(exc: msgspec.ValidationError) -> str:
    """The field a msgspec error is about: ``filter.bbox[1]``, ``channel``, ..."""
    return field_from_msgspec(str(exc), whole="message")


# ------------------------------------------------------------------ frames


_last_event: Event | None = None
_last_row: bytes = b""


def row_bytes(event: Event) -> bytes:
    """`event.data` as JSON, encoded at most once per event in this process.

    The bus hands one event to every listener in turn (groups of the websocket hub, the
    Redis bridge), so a one-slot cache keyed by the event's identity makes them share one
    encoding. An event that crossed Redis carries its row already encoded (`Event.raw`).
    """
    global _last_event, _last_row
    if event is _last_event:
        return _last_row
    _last_row = event.raw if event.raw is not None else dumps(event.data)
    _last_event = event
    return _last_row


def result_frame(msg_id: int, result: Any = None) -> bytes:
    return dumps({"id": msg_id, "type": RESULT, "success": True, "result": result})


def error_frame(msg_id: int | None, code: str, message: str, field: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return dumps({"id": msg_id, "type": RESULT, "success": False, "error": error})


def pong_frame(msg_id: int) -> bytes:
    return dumps({"id": msg_id, "type": PONG})


def resync_frame(sub_id: int, channel: str, reason: str) -> bytes:
    return dumps({"id": sub_id, "type": RESYNC, "channel": channel, "reason": reason})


def event_prefix(sub_id: int, channel: str, *, snapshot: bool = False) -> bytes:
    """Everything of an event frame before its ``data`` list; close it with ``b"}"``."""
    extra = ',"snapshot":true' if snapshot else ""
    return f'{{"id":{sub_id},"type":"{EVENT}","channel":"{channel}"{extra},"data":'.encode()
