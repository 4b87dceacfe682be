"""Every message the simulator builds is one ingest's schemas accept; every bad one is not."""

from __future__ import annotations

import datetime as dt
import random

import msgspec
import pytest

from device_sim.behaviour import CitySim, Rules
from device_sim.config import SimConfig
from device_sim.payloads import (
    BAD_KINDS,
    auth_msg,
    bad_msg,
    fill_msg,
    position_msg,
    scan_msg,
    status_msg,
    telemetry_msg,
)
from device_sim.world import City
from ingest.schemas import MessageKind, Parsed, Rejected, parse

SKEW = dt.timedelta(hours=24)
NOW_MS = 1_780_000_000_000


def _now() -> dt.datetime:
    return dt.datetime.fromtimestamp(NOW_MS / 1000, dt.UTC)


def _parse(topic: str, payload: bytes) -> object:
    return parse(topic, payload, _now(), SKEW)


def test_each_builder_validates() -> None:
    msgs = [
        auth_msg("G1", "m1", NOW_MS, "T1", "op"),
        auth_msg("G1", "m1b", NOW_MS, "T1", None),
        fill_msg(
            "G1",
            "m2",
            NOW_MS,
            "T1",
            14.6,
            ts_start=NOW_MS - 60_000,
            operator="op",
            tare_kg=15.5,
            pre_check={"a": True},
            post_check={"b": False},
        ),
        fill_msg(
            "G1",
            "m2b",
            NOW_MS,
            "T1",
            14.6,
            ts_start=None,
            operator=None,
            tare_kg=None,
            pre_check={},
            post_check={},
        ),
        telemetry_msg(
            "T1",
            "m3",
            NOW_MS,
            lat=34.7,
            lon=113.6,
            valve="open",
            leak_ppm=3.0,
            temp_c=20.0,
            battery_pct=88.0,
            rssi=-80.0,
        ),
        telemetry_msg(
            "T1",
            "m3b",
            NOW_MS,
            lat=None,
            lon=None,
            valve="closed",
            leak_ppm=0.0,
            temp_c=-5.0,
            battery_pct=15.0,
            rssi=-115.0,
        ),
        scan_msg("H1", "m4", NOW_MS, "T1", "deliver", customer="C1", lat=34.7, lon=113.6),
        position_msg(
            "V1", "m5", NOW_MS, 34.7, 113.6, speed_kmh=30.0, heading=359.9, cargo=["T1", "T2"]
        ),
        status_msg("gun", "G1", False, NOW_MS),
    ]
    for action in ("dispatch", "deliver", "return", "transfer", "receive"):
        msgs.append(scan_msg("H1", f"s-{action}", NOW_MS, "T1", action, site="S1"))
    for m in msgs:
        out = _parse(m.topic, m.payload)
        assert isinstance(out, Parsed), (m.topic, m.payload, out)
        assert out.kind == MessageKind(m.kind)
    fill = msgspec.json.decode(msgs[2].payload)
    assert fill["result"] == "aborted"  # a failed check aborts the fill
    assert fill["gross_kg"] == pytest.approx(15.5 + 14.6)
    assert msgs[-6].qos == 1 and msgs[-6].retain  # status: retained QoS 1
    assert msgs[7].qos == 0  # vehicle positions may be QoS 0


def test_everything_a_sim_produces_validates(city: City, rules: Rules) -> None:
    cfg = SimConfig(
        seed=3,
        illegal_rate=0.3,
        overfill_rate=0.2,
        underfill_rate=0.2,
        check_fail_rate=0.2,
        leak_rate=0.2,
        dup_rate=0.1,
        bad_rate=0.0,
        offline_rate=0.0,
        fill_seconds=0.5,
    )
    sim = CitySim(city, cfg, rules, start_ms=NOW_MS)
    seen: set[str] = set()
    t = NOW_MS
    for _ in range(200):
        for m in [*sim.devices_online(t), *sim.produce(t, 10)]:
            out = _parse(m.topic, m.payload)
            assert isinstance(out, Parsed), (m.topic, m.payload, out)
            seen.add(m.kind)
            if m.kind == "auth":
                sim.on_reply(
                    t + 5,
                    msgspec.json.encode(
                        {"msg_id": m.msg_id, "decision": "allow", "reasons": [], "ts": t}
                    ),
                )
        t += 100
    assert seen >= {"auth", "fill", "telemetry", "scan", "position", "status"}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_payloads_are_refused(kind: str, city: City) -> None:
    rng = random.Random(1)
    valids = [
        telemetry_msg(
            "T1",
            "m3",
            NOW_MS,
            lat=34.7,
            lon=113.6,
            valve="open",
            leak_ppm=3.0,
            temp_c=20.0,
            battery_pct=88.0,
            rssi=-80.0,
        ),
        scan_msg("H1", "m4", NOW_MS, "T1", "deliver", customer="C1"),
        fill_msg(
            "G1",
            "m2",
            NOW_MS,
            "T1",
            14.6,
            ts_start=None,
            operator="op",
            tare_kg=15.5,
            pre_check={},
            post_check={},
        ),
        auth_msg("G1", "m1", NOW_MS, "T1", "op"),
    ]
    for valid in valids:
        bad = bad_msg(kind, valid, rng, "SIM-UNKNOWN-1")
        assert bad.label == f"bad:{kind}"
        out = _parse(bad.topic, bad.payload)
        if kind == "unknown_device":
            # well-formed: only the device registry can refuse it
            assert isinstance(out, Parsed)
            assert out.device_id == "SIM-UNKNOWN-1"
            assert out.device_id not in city.device_ids()
        else:
            assert isinstance(out, Rejected), (kind, bad.payload)


def test_sim_bad_share_all_refused_or_unknown(city: City, rules: Rules) -> None:
    cfg = SimConfig(seed=5, bad_rate=1.0, dup_rate=0, offline_rate=0)
    sim = CitySim(city, cfg, rules, start_ms=NOW_MS)
    msgs = sim.produce(NOW_MS, 300)
    bad = [m for m in msgs if m.label.startswith("bad:")]
    assert len(bad) >= 250  # the rest are vehicle follow-ups (scans at stops)
    known = city.device_ids() | {c.tag for c in city.legal}
    for m in bad:
        out = _parse(m.topic, m.payload)
        if isinstance(out, Parsed):
            assert m.label == "bad:unknown_device" and out.device_id not in known
        else:
            assert isinstance(out, Rejected)
    assert {m.label for m in bad} == {f"bad:{k}" for k in BAD_KINDS}
