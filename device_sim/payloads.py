"""Pure builders of the MQTT contract's messages (docs/ARCHITECTURE.md §5), and of broken ones.

Each builder fills ingest's own payload ``Struct`` (the one shared contract, docs/ARCHITECTURE.md §2)
and encodes it, so a message the simulator sends is by construction one the platform
accepts; the tests decode every kind back through ingest's validator. Optional fields
left ``None`` are dropped from the JSON, as a device with nothing to say would.

The fault builders start from a valid message and break exactly one thing, so each bad
message exercises exactly one dead-letter reason.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ingest.schemas import (
    DeviceStatus,
    GunAuth,
    GunFill,
    HandheldScan,
    ValveTelemetry,
    VehiclePosition,
)

__all__ = [
    "BAD_KINDS",
    "FUTURE_SKEW_MS",
    "Outgoing",
    "auth_msg",
    "bad_msg",
    "fill_msg",
    "new_msg_id",
    "position_msg",
    "scan_msg",
    "status_msg",
    "telemetry_msg",
    "topic_for",
]

BAD_KINDS: Final = ("not_json", "missing_field", "wrong_type", "future_ts", "unknown_device")

FUTURE_SKEW_MS: Final = 48 * 3600 * 1000
"""How far ahead a ``future_ts`` fault puts its clock: twice the platform's default
tolerance, so it is refused whatever a city configures within reason."""

_enc = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT publish, with what the simulator needs to count and replay it."""

    topic: str
    payload: bytes
    qos: int
    kind: str
    """Contract kind: auth, fill, telemetry, scan, position, status."""
    device: str
    """``{device kind}/{id}``: which device sends it (offline buffering is per device)."""
    msg_id: str | None = None
    ts: int = 0
    retain: bool = False
    label: str = ""
    """How it came about, for reports: "" (fresh), dup, replay, bad:<kind>."""

    def relabel(self, label: str) -> Outgoing:
        return Outgoing(
            self.topic,
            self.payload,
            self.qos,
            self.kind,
            self.device,
            self.msg_id,
            self.ts,
            self.retain,
            label,
        )


def new_msg_id(rng: random.Random) -> str:
    """A UUID4 drawn from the simulator's seeded RNG (same seed, same ids)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def topic_for(device_kind: str, device_id: str, leaf: str) -> str:
    return f"cyl/v1/{device_kind}/{device_id}/{leaf}"


def _encode(struct: msgspec.Struct) -> bytes:
    body = {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not None}
    return _enc.encode(body)


def auth_msg(gun_id: str, msg_id: str, ts: int, tag: str, operator: str | None) -> Outgoing:
    body = GunAuth(msg_id=msg_id, ts=ts, tag=tag, operator=operator)
    return Outgoing(
        topic_for("gun", gun_id, "auth"), _encode(body), 1, "auth", f"gun/{gun_id}", msg_id, ts
    )


def fill_msg(
    gun_id: str,
    msg_id: str,
    ts: int,
    tag: str,
    net_kg: float,
    *,
    ts_start: int | None,
    operator: str | None,
    tare_kg: float | None,
    pre_check: dict[str, bool],
    post_check: dict[str, bool],
) -> Outgoing:
    gross = round(tare_kg + net_kg, 2) if tare_kg is not None else None
    aborted = not all(pre_check.values()) or not all(post_check.values())
    body = GunFill(
        msg_id=msg_id,
        ts=ts,
        tag=tag,
        net_kg=round(net_kg, 2),
        ts_start=ts_start,
        operator=operator,
        tare_kg=tare_kg,
        gross_kg=gross,
        result="aborted" if aborted else "completed",
        pre_check=pre_check,
        post_check=post_check,
    )
    return Outgoing(
        topic_for("gun", gun_id, "fill"), _encode(body), 1, "fill", f"gun/{gun_id}", msg_id, ts
    )


def telemetry_msg(
    tag: str,
    msg_id: str,
    ts: int,
    *,
    lat: float | None,
    lon: float | None,
    valve: str,
    leak_ppm: float,
    temp_c: float,
    battery_pct: float,
    rssi: float,
) -> Outgoing:
    body = ValveTelemetry(
        msg_id=msg_id,
        ts=ts,
        lat=lat,
        lon=lon,
        valve=valve,  # type: ignore[arg-type]
        leak_ppm=round(leak_ppm, 1),
        temp_c=round(temp_c, 1),
        battery_pct=round(battery_pct, 1),
        rssi=round(rssi, 1),
    )
    return Outgoing(
        topic_for("valve", tag, "telemetry"),
        _encode(body),
        1,
        "telemetry",
        f"valve/{tag}",
        msg_id,
        ts,
    )


def scan_msg(
    device_id: str,
    msg_id: str,
    ts: int,
    tag: str,
    action: str,
    *,
    operator: str | None = None,
    site: str | None = None,
    customer: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> Outgoing:
    body = HandheldScan(
        msg_id=msg_id,
        ts=ts,
        tag=tag,
        action=action,  # type: ignore[arg-type]
        operator=operator,
        site=site,
        customer=customer,
        lat=lat,
        lon=lon,
    )
    return Outgoing(
        topic_for("handheld", device_id, "scan"),
        _encode(body),
        1,
        "scan",
        f"handheld/{device_id}",
        msg_id,
        ts,
    )


def position_msg(
    vehicle_id: str,
    msg_id: str,
    ts: int,
    lat: float,
    lon: float,
    *,
    speed_kmh: float,
    heading: float,
    cargo: list[str],
    qos: int = 0,
) -> Outgoing:
    body = VehiclePosition(
        msg_id=msg_id,
        ts=ts,
        lat=round(lat, 6),
        lon=round(lon, 6),
        speed_kmh=round(speed_kmh, 1),
        heading=round(heading, 1),
        cargo=list(cargo),
    )
    return Outgoing(
        topic_for("vehicle", vehicle_id, "position"),
        _encode(body),
        qos,
        "position",
        f"vehicle/{vehicle_id}",
        msg_id,
        ts,
    )


def status_msg(device_kind: str, device_id: str, online: bool, ts: int) -> Outgoing:
    """Retained presence; the same payload is a connection's last will."""
    body = DeviceStatus(online=online, ts=ts)
    return Outgoing(
        topic_for(device_kind, device_id, "status"),
        _encode(body),
        1,
        "status",
        f"{device_kind}/{device_id}",
        None,
        ts,
        retain=True,
    )


def bad_msg(kind: str, valid: Outgoing, rng: random.Random, unknown_id: str) -> Outgoing:
    """Break *valid* in one way (*kind* from :data:`BAD_KINDS`).

    - ``not_json``: truncated bytes;
    - ``missing_field``: ``ts`` removed;
    - ``wrong_type``: ``ts`` as a string;
    - ``future_ts``: ``ts`` :data:`FUTURE_SKEW_MS` ahead;
    - ``unknown_device``: a well-formed message from a device id nobody registered
      (only the device registry can refuse it, not the schema).
    """
    body: dict[str, Any] = msgspec.json.decode(valid.payload)
    topic = valid.topic
    if kind == "not_json":
        cut = max(1, len(valid.payload) // 2)
        payload = valid.payload[:cut] + b"\xff{"
    elif kind == "missing_field":
        body.pop("ts", None)
        payload = _enc.encode(body)
    elif kind == "wrong_type":
        body["ts"] = str(body.get("ts", 0))
        payload = _enc.encode(body)
    elif kind == "future_ts":
        body["ts"] = int(body.get("ts", 0)) + FUTURE_SKEW_MS
        payload = _enc.encode(body)
    elif kind == "unknown_device":
        parts = topic.split("/")
        parts[3] = unknown_id
        topic = "/".join(parts)
        body["msg_id"] = new_msg_id(rng)
        payload = _enc.encode(body)
    else:
        raise ValueError(f"unknown bad-payload kind {kind!r}")
    return Outgoing(
        topic, payload, valid.qos, valid.kind, valid.device, None, valid.ts, False, f"bad:{kind}"
    )
