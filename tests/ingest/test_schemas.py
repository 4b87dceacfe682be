"""Payload validation: what a device may send, and why a bad message is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.schemas import (
    GunAuth,
    GunFill,
    HandheldScan,
    Ignored,
    MessageKind,
    Parsed,
    Rejected,
    parse,
)
from server.domain.events import SCAN_ACTIONS

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SKEW = timedelta(hours=24)
TS = int(NOW.timestamp() * 1000)


def p(topic: str, payload: object) -> Parsed | Rejected | Ignored:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse(topic, raw, NOW, SKEW)


GOOD = {
    "cyl/v1/gun/G1/auth": {"msg_id": "m1", "ts": TS, "tag": "T1", "operator": "op"},
    "cyl/v1/gun/G1/fill": {
        "msg_id": "m2",
        "ts": TS,
        "tag": "T1",
        "net_kg": 14.7,
        "ts_start": TS - 60_000,
        "tare_kg": 15.5,
        "gross_kg": 30.2,
        "result": "completed",
        "pre_check": {"valve": True},
        "post_check": {"leak": True},
    },
    "cyl/v1/valve/T1/telemetry": {
        "msg_id": "m3",
        "ts": TS,
        "lat": 34.8,
        "lon": 113.6,
        "valve": "closed",
        "leak_ppm": 0,
        "temp_c": 21.5,
        "battery_pct": 88,
        "rssi": -71,
    },
    "cyl/v1/handheld/H1/scan": {
        "msg_id": "m4",
        "ts": TS,
        "tag": "T1",
        "action": "deliver",
        "customer": "C1",
        "lat": 34.8,
        "lon": 113.6,
    },
    "cyl/v1/vehicle/V1/position": {
        "msg_id": "m5",
        "ts": TS,
        "lat": 34.8,
        "lon": 113.6,
        "speed_kmh": 42.0,
        "heading": 90,
        "cargo": ["T1", "T2"],
    },
    "cyl/v1/gun/G1/status": {"online": False, "ts": TS},
    "cyl/v1/valve/T1/status": {"online": True, "ts": TS},
}


@pytest.mark.parametrize("topic", sorted(GOOD))
def test_every_topic_of_the_contract_is_accepted(topic: str) -> None:
    result = p(topic, GOOD[topic])
    assert isinstance(result, Parsed), result
    assert result.ts == NOW
    assert result.device_id == topic.split("/")[3]


def test_extra_fields_from_newer_firmware_are_ignored() -> None:
    result = p("cyl/v1/gun/G1/auth", {**GOOD["cyl/v1/gun/G1/auth"], "firmware": "2.1", "x": [1]})
    assert isinstance(result, Parsed) and isinstance(result.body, GunAuth)


def test_the_platforms_own_replies_are_ignored_not_dead_lettered() -> None:
    assert isinstance(p("cyl/v1/gun/G1/auth/reply", {"decision": "allow"}), Ignored)
    assert isinstance(p("cyl/v1/gun/G1/auth/reply/corr-7", b"anything"), Ignored)


@pytest.mark.parametrize(
    ("topic", "payload", "field"),
    [
        ("cyl/v1/gun/G1/fill", {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": 250}, "$.net_kg"),
        ("cyl/v1/gun/G1/fill", {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": -1}, "$.net_kg"),
        ("cyl/v1/gun/G1/fill", {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": "14"}, "$.net_kg"),
        ("cyl/v1/gun/G1/fill", {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": True}, "$.net_kg"),
        (
            "cyl/v1/gun/G1/fill",
            {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": 14, "tare_kg": -3},
            "$.tare_kg",
        ),
        (
            "cyl/v1/gun/G1/fill",
            {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": 14, "result": "exploded"},
            "$.result",
        ),
        (
            "cyl/v1/gun/G1/fill",
            {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": 14, "pre_check": {"valve": None}},
            "$.pre_check",
        ),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": TS, "tag": ""}, "$.tag"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": TS, "tag": "   "}, "$.tag"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": TS, "tag": "T" * 65}, "$.tag"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": TS, "tag": "T\u0000"}, "$.tag"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": 5, "tag": "T"}, "$.ts"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": TS + 25 * 3600_000, "tag": "T"}, "$.ts"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": 1.5e12, "tag": "T"}, "$.ts"),
        ("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": 10**15, "tag": "T"}, "$.ts"),
        (
            "cyl/v1/gun/G1/auth",
            b'{"msg_id": "m", "ts": 1000000000000000000000000000000, "tag": "T"}',
            "$.ts",
        ),
        ("cyl/v1/gun/G1/auth", {"msg_id": "", "ts": TS, "tag": "T"}, "$.msg_id"),
        ("cyl/v1/valve/T/telemetry", {"msg_id": "m", "ts": TS, "leak_ppm": -1}, "$.leak_ppm"),
        ("cyl/v1/valve/T/telemetry", {"msg_id": "m", "ts": TS, "lat": 91, "lon": 1}, "$.lat"),
        ("cyl/v1/valve/T/telemetry", {"msg_id": "m", "ts": TS, "lat": 34.0}, "$.lat"),
        ("cyl/v1/vehicle/V/position", {"msg_id": "m", "ts": TS, "lat": 34, "lon": 181}, "$.lon"),
        ("cyl/v1/vehicle/V/position", {"msg_id": "m", "ts": TS, "lat": 34}, "lon"),
        (
            "cyl/v1/handheld/H/scan",
            {"msg_id": "m", "ts": TS, "tag": "T", "action": "steal"},
            "$.action",
        ),
        ("cyl/v1/handheld/H/scan", {"msg_id": "m", "ts": TS, "action": "deliver"}, "tag"),
        ("cyl/v1/gun/G1/status", {"online": "yes", "ts": TS}, "$.online"),
    ],
)
def test_absurd_or_wrong_values_are_refused_naming_the_field(
    topic: str, payload: dict[str, object], field: str
) -> None:
    result = p(topic, payload)
    assert isinstance(result, Rejected), result
    assert field in result.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "Expected `object`"),
        (b'{"msg_id": "m", "ts": 1700000000000, "tag": "\\ud800"}', "not JSON"),
        (b'"a string"', "Expected `object`"),
        (b"null", "Expected `object`"),
        (b'{"msg_id": "m", "ts": 1700000000000}', "missing required field `tag`"),
    ],
)
def test_payloads_that_are_not_a_json_object_are_refused(payload: bytes, reason: str) -> None:
    result = p("cyl/v1/gun/G1/auth", payload)
    assert isinstance(result, Rejected)
    assert reason in result.reason


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", "气瓶".encode("gbk")],
)
@pytest.mark.parametrize("topic", ["cyl/v1/gun/G1/status", "cyl/v1/gun/G1/auth"])
def test_bytes_that_are_not_utf8_are_refused_even_in_an_ignored_field(
    topic: str, bad: bytes
) -> None:
    """DESIGN §5: payloads are UTF-8 JSON. A decoder skips an unknown field without reading
    its text; the message must still be refused, not stored with the junk unread."""
    raw = orjson.dumps(GOOD[topic])[:-1] + b',"note":"' + bad + b'"}'
    result = p(topic, raw)
    assert isinstance(result, Rejected), result
    assert "not UTF-8" in result.reason


def test_utf8_text_in_an_ignored_field_is_accepted() -> None:
    raw = orjson.dumps({**GOOD["cyl/v1/gun/G1/status"], "note": "在线 ✓"})
    assert isinstance(p("cyl/v1/gun/G1/status", raw), Parsed)


@pytest.mark.parametrize(
    "topic",
    [
        "cyl/v1/gun/G1/explode",
        "cyl/v1/toaster/X/status",
        "cyl/v1/gun",
        "cyl/v1/gun/G1/fill/extra",
        "cyl/v2/gun/G1/fill",
        "cyl/v1/gun//fill",
    ],
)
def test_unknown_topics_are_refused(topic: str) -> None:
    result = p(topic, GOOD["cyl/v1/gun/G1/fill"])
    assert isinstance(result, Rejected)


def test_scan_actions_match_the_domain_vocabulary() -> None:
    assert set(HandheldScan.__annotations__) >= {"action"}
    for action in SCAN_ACTIONS:
        result = p("cyl/v1/handheld/H1/scan", {**GOOD["cyl/v1/handheld/H1/scan"], "action": action})
        assert isinstance(result, Parsed) and result.kind is MessageKind.SCAN


def test_fill_start_after_end_is_refused() -> None:
    body = {**GOOD["cyl/v1/gun/G1/fill"], "ts_start": TS + 1}
    result = p("cyl/v1/gun/G1/fill", body)
    assert isinstance(result, Rejected) and "$.ts_start" in result.reason


def test_a_small_clock_drift_into_the_future_is_accepted() -> None:
    result = p("cyl/v1/gun/G1/auth", {"msg_id": "m", "ts": TS + 3600_000, "tag": "T"})
    assert isinstance(result, Parsed)
    assert isinstance(
        p("cyl/v1/gun/G1/fill", {"msg_id": "m", "ts": TS, "tag": "T", "net_kg": 0}), Parsed
    )
    assert GunFill.__struct_fields__[0] == "msg_id"
