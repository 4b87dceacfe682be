"""Payload schemas of the MQTT contract v1 (docs/ARCHITECTURE.md §5) and the validation of a message.

Devices are many, cheap and sometimes wrong; a bad payload must never reach a table or a
rule. Each topic has a strict msgspec ``Struct``: types are not coerced (``"12"`` is not a
number, ``true`` is not a number), unknown *fields* are ignored so that a newer device
firmware can add fields without being refused, and physically absurd values are rejected
at decode time by ``Meta`` bounds. What msgspec cannot know (the clock, text PostgreSQL
cannot store) is checked in :func:`parse`. Every refusal carries a reason that names the
field (msgspec's ``$.path``), which goes to ``dead_letters.reason``.

The device simulator imports these structs (docs/ARCHITECTURE.md §2) so both sides share one contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import msgspec

from server.domain.statuses import DEVICE_KINDS, FillResult, ScanAction

__all__ = [
    "DEVICE_KINDS",
    "MAX_NET_KG",
    "MAX_TAG_LEN",
    "MIN_TS_MS",
    "DeviceStatus",
    "GunAuth",
    "GunFill",
    "HandheldScan",
    "Ignored",
    "MessageKind",
    "Parsed",
    "Rejected",
    "ValveTelemetry",
    "VehiclePosition",
    "parse",
    "parse_topic",
    "ts_to_datetime",
]

# --- plausibility bounds: not business thresholds (those live in the settings) but the
# limits outside which a reading is not a measurement of an LPG cylinder at all.
MIN_TS_MS: Final = 946_684_800_000
"""2000-01-01T00:00:00Z: a device clock before this has never been set (RTC reset)."""
MAX_TS_MS: Final = 4_102_444_800_000
"""2100-01-01T00:00:00Z: beyond any device clock; keeps the datetime conversion in range
(the real future limit is ``[ingest] max_future_skew_h``, checked after decoding)."""
MAX_TAG_LEN: Final = 64
"""RFID EPCs (96/128 bit → 24/32 hex) and printed codes fit comfortably."""
MAX_ID_LEN: Final = 128
"""msg_id (UUID 36, ULID 26), device ids, operator and site codes."""
MAX_NET_KG: Final = 200.0
"""The largest LPG cylinder (YSP118) holds 49.5 kg; 200 kg is no cylinder's fill."""
MAX_WEIGHT_KG: Final = 500.0
"""Tare and gross of the largest cylinder are far below."""
MAX_LEAK_PPM: Final = 1_000_000.0
"""Parts per million cannot exceed a million."""
MAX_CARGO: Final = 5000
"""Tags a vehicle can carry; a longer list is a firmware fault."""
MAX_CHECK_ITEMS: Final = 64

Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TAG_LEN)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LEN)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_ID_LEN)]
TsMs = Annotated[int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
NetKg = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_NET_KG)]
Weight = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_WEIGHT_KG)]
Checks = Annotated[dict[Text, bool], msgspec.Meta(max_length=MAX_CHECK_ITEMS)]


class GunAuth(msgspec.Struct, kw_only=True):
    """``cyl/v1/gun/{gun_id}/auth``: may I fill the cylinder with this tag?"""

    msg_id: Id
    ts: TsMs
    tag: Tag
    operator: Text | None = None


class GunFill(msgspec.Struct, kw_only=True):
    """``cyl/v1/gun/{gun_id}/fill``: the record of a fill (completed or aborted)."""

    msg_id: Id
    ts: TsMs
    tag: Tag
    net_kg: NetKg
    ts_start: TsMs | None = None
    operator: Text | None = None
    tare_kg: Weight | None = None
    gross_kg: Weight | None = None
    result: FillResult = "completed"
    pre_check: Checks | None = None
    post_check: Checks | None = None


class ValveTelemetry(msgspec.Struct, kw_only=True):
    """``cyl/v1/valve/{tag}/telemetry``: the smart valve's state."""

    msg_id: Id
    ts: TsMs
    lat: Lat | None = None
    lon: Lon | None = None
    valve: Literal["open", "closed"] | None = None
    leak_ppm: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_LEAK_PPM)] | None = None
    temp_c: Annotated[float, msgspec.Meta(ge=-60.0, le=150.0)] | None = None
    battery_pct: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] | None = None
    rssi: Annotated[float, msgspec.Meta(ge=-200.0, le=50.0)] | None = None


class HandheldScan(msgspec.Struct, kw_only=True):
    """``cyl/v1/handheld/{device_id}/scan``: a delivery person scanned a cylinder."""

    msg_id: Id
    ts: TsMs
    tag: Tag
    action: ScanAction
    operator: Text | None = None
    site: Id | None = None
    customer: Id | None = None
    lat: Lat | None = None
    lon: Lon | None = None


class VehiclePosition(msgspec.Struct, kw_only=True):
    """``cyl/v1/vehicle/{vehicle_id}/position``: GPS fix of a delivery vehicle."""

    msg_id: Id
    ts: TsMs
    lat: Lat
    lon: Lon
    speed_kmh: Annotated[float, msgspec.Meta(ge=0.0, le=400.0)] | None = None
    heading: Annotated[float, msgspec.Meta(ge=0.0, le=360.0)] | None = None
    cargo: Annotated[list[Tag], msgspec.Meta(max_length=MAX_CARGO)] | None = None


class DeviceStatus(msgspec.Struct, kw_only=True):
    """``cyl/v1/{kind}/{id}/status``: retained presence, also the device's last will."""

    online: bool
    ts: TsMs


class MessageKind(enum.StrEnum):
    AUTH = "auth"
    FILL = "fill"
    TELEMETRY = "telemetry"
    SCAN = "scan"
    POSITION = "position"
    STATUS = "status"


_ROUTES: Final[dict[tuple[str, str], MessageKind]] = {
    ("gun", "auth"): MessageKind.AUTH,
    ("gun", "fill"): MessageKind.FILL,
    ("valve", "telemetry"): MessageKind.TELEMETRY,
    ("handheld", "scan"): MessageKind.SCAN,
    ("vehicle", "position"): MessageKind.POSITION,
    **{(kind, "status"): MessageKind.STATUS for kind in DEVICE_KINDS},
}

Payload = GunAuth | GunFill | ValveTelemetry | HandheldScan | VehiclePosition | DeviceStatus

_DECODERS: Final[dict[MessageKind, msgspec.json.Decoder[Any]]] = {
    MessageKind.AUTH: msgspec.json.Decoder(GunAuth),
    MessageKind.FILL: msgspec.json.Decoder(GunFill),
    MessageKind.TELEMETRY: msgspec.json.Decoder(ValveTelemetry),
    MessageKind.SCAN: msgspec.json.Decoder(HandheldScan),
    MessageKind.POSITION: msgspec.json.Decoder(VehiclePosition),
    MessageKind.STATUS: msgspec.json.Decoder(DeviceStatus),
}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid message: what it is, from which device, and its device time."""

    kind: MessageKind
    device_kind: str
    device_id: str
    body: Payload
    ts: datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message for the dead-letter table; *reason* names the field where it can."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """The platform's own fill-authorization replies (they match ``cyl/v1/#`` too)."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts_to_datetime(ms: int) -> datetime:
    """Exact (no float rounding): the same ``ts`` always gives the same dedupe key."""
    return _EPOCH + timedelta(milliseconds=ms)


def parse_topic(topic: str) -> tuple[MessageKind, str, str] | Ignored | Rejected:
    """``cyl/v1/{kind}/{id}/{leaf}`` → (message kind, device kind, device id)."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "cyl" or parts[1] != "v1":
        return Rejected(f"unknown topic: {topic[:200]}")
    device_kind, device_id, leaf = parts[2], parts[3], parts[4:]
    if device_kind == "gun" and leaf[:2] == ["auth", "reply"]:
        return Ignored()
    kind = _ROUTES.get((device_kind, leaf[0])) if len(leaf) == 1 else None
    if kind is None:
        return Rejected(f"unknown topic: {topic[:200]}")
    limit = MAX_TAG_LEN if device_kind == "valve" else MAX_ID_LEN
    if not device_id or len(device_id) > limit or _bad_text(device_id):
        return Rejected(f"invalid device id in topic: {device_id[:limit]!r}")
    return kind, device_kind, device_id


def _bad_text(s: str) -> bool:
    """PostgreSQL text and jsonb cannot hold NUL, and lone surrogates are not UTF-8."""
    if "\x00" in s:
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text_problem(value: Any, path: str) -> str | None:
    """The path of the first string PostgreSQL could not store, if any."""
    if isinstance(value, str):
        return path if _bad_text(value) else None
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _text_problem(getattr(value, name), f"{path}.{name}")
            if found:
                return found
    elif isinstance(value, dict):
        for k, v in value.items():
            found = _text_problem(k, f"{path}[key]") or _text_problem(v, f"{path}[...]")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _text_problem(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _not_utf8(payload: bytes) -> int | None:
    """The offset of the first byte that is not UTF-8, if any.

    DESIGN §5 (docs/ARCHITECTURE.md §5): payloads are UTF-8 JSON. msgspec checks the text it
    reads, but skips an unknown field (a newer firmware's) without reading it, so junk there
    would pass. ASCII, most messages, is answered without decoding."""
    if payload.isascii():
        return None
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def parse(
    topic: str, payload: bytes, now: datetime, max_future_skew: timedelta
) -> Parsed | Rejected | Ignored:
    """Validate one message. Never raises: anything wrong becomes a :class:`Rejected`."""
    route = parse_topic(topic)
    if isinstance(route, Ignored | Rejected):
        return route
    kind, device_kind, device_id = route
    bad_byte = _not_utf8(payload)
    if bad_byte is not None:
        return Rejected(f"not JSON: not UTF-8 (byte {bad_byte})")
    try:
        body = _DECODERS[kind].decode(payload)
    except msgspec.ValidationError as exc:
        return Rejected(f"invalid payload: {exc}")
    except msgspec.DecodeError as exc:
        return Rejected(f"not JSON: {exc}")
    except Exception as exc:
        return Rejected(f"undecodable: {type(exc).__name__}")
    # JSON can carry NUL or a lone surrogate only as a \u escape: skip the walk otherwise
    bad = _text_problem(body, "$") if b"\\u" in payload else None
    if bad:
        return Rejected(f"invalid payload: text not storable (NUL or bad unicode) - at `{bad}`")
    ts = ts_to_datetime(body.ts)
    if ts - now > max_future_skew:
        return Rejected(f"invalid payload: ts is in the future ({ts.isoformat()}) - at `$.ts`")
    problem = _semantic_problem(body, ts, now, max_future_skew)
    if problem:
        return Rejected(f"invalid payload: {problem}")
    return Parsed(kind, device_kind, device_id, body, ts)


def _semantic_problem(
    body: Payload, ts: datetime, now: datetime, max_future_skew: timedelta
) -> str | None:
    """Cross-field checks msgspec's per-field bounds cannot express."""
    if isinstance(body, GunAuth | GunFill | HandheldScan) and not body.tag.strip():
        return "tag is blank - at `$.tag`"
    if not isinstance(body, DeviceStatus) and not body.msg_id.strip():
        return "msg_id is blank - at `$.msg_id`"
    if isinstance(body, ValveTelemetry | HandheldScan) and (body.lat is None) != (body.lon is None):
        return "lat and lon must come together - at `$.lat`"
    if isinstance(body, GunFill):
        if body.ts_start is not None and body.ts_start > body.ts:
            return "ts_start is after ts - at `$.ts_start`"
        if body.gross_kg is not None and body.tare_kg is not None and body.gross_kg < body.tare_kg:
            return "gross_kg is below tare_kg - at `$.gross_kg`"
    if isinstance(body, VehiclePosition) and body.cargo and any(not t.strip() for t in body.cargo):
        return "blank tag in cargo - at `$.cargo`"
    return None
