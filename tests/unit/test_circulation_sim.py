"""The simulated city circulates lawfully by default and breaks each circulation rule at
``--circulation-rate`` (device_sim.circulation): checked by replaying the platform's rules
(server.domain.circulation) over everything the simulator sends, without a broker."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from device_sim.behaviour import UNKNOWN_PREFIX, CitySim, Rules
from device_sim.circulation import CIRCULATION_FAULTS, CLONE_GAP_MS
from device_sim.config import SimConfig, parse_mix
from device_sim.payloads import Outgoing
from device_sim.world import City
from ingest.store.circulation import distance_km
from ingest.store.context import Read
from server.kernel.settings import load_settings
from tests.sim.conftest import make_city

T0 = 1_780_000_000_000
SETTINGS = load_settings(environ={})


@pytest.fixture
def city() -> City:
    return make_city("CIRC")


@pytest.fixture
def rules() -> Rules:
    """The platform's rules, but a cloned tag's window of one second: the simulator leaves a
    cylinder alone for the window after each read (a lawful read elsewhere could look like
    a clone), which would starve a 120-cylinder city of cylinders to move."""
    return dataclasses.replace(Rules.from_settings(SETTINGS), cloned_tag_window_s=1)


def run(sim: CitySim, rate: float, seconds: float, tick_ms: int = 100) -> list[Outgoing]:
    """Drive *sim* like the runner does, allowing every fill request of a known tag."""
    out: list[Outgoing] = []
    sent = 0
    for step in range(1, int(seconds * 1000 / tick_ms) + 1):
        now = T0 + step * tick_ms
        batch = sim.produce(now, int(rate * step * tick_ms / 1000) - sent)
        sent += len(batch)
        out += batch
        for m in batch:
            if m.kind == "auth" and m.label == "":
                tag = body(m)["tag"]
                allow = not str(tag).startswith(UNKNOWN_PREFIX)
                reply = {
                    "msg_id": m.msg_id,
                    "decision": "allow" if allow else "deny",
                    "reasons": [] if allow else ["unknown_tag"],
                    "ts": now,
                }
                sim.on_reply(now + 3, msgspec.json.encode(reply))
    return out


def body(m: Outgoing) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(m.payload)
    return decoded


class Platform:
    """What the platform's circulation rules would say of the city's traffic, in the order
    the simulator sends it (a completed fill makes a cylinder deliverable, a return empties
    it; a synthetic city's cylinders start deliverable)."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.owner = {c.tag: c.company_id for c in (*city.legal, *city.overdue, *city.scrapped)}
        self.unsafe = {c.tag for c in (*city.overdue, *city.scrapped)}
        self.full = {c.tag for c in city.legal if c.deliverable}
        self.devices = {f"handheld/{h.device_id}": h for h in city.handhelds}
        self.findings: Counter[str] = Counter()
        self.examples: dict[str, Outgoing] = {}

    def company_of(self, m: Outgoing) -> int:
        h = self.devices[m.device]
        site = self.city.site(h.site_code)
        return site.company_id if site is not None else (h.company_id or 0)

    def see(self, m: Outgoing) -> None:
        # a duplicate is stored once (msg_id): the platform judges the first sending only
        if m.label.startswith("bad") or m.label == "dup" or m.kind not in ("fill", "scan"):
            return
        b = body(m)
        tag = b["tag"]
        if m.kind == "fill":
            if b["result"] == "completed":
                self.full.add(tag)
            return
        action, company = b["action"], self.company_of(m)
        found = []
        if tag in self.unsafe and action != "return":
            found.append("circulation_violation")
        if action == "deliver" and tag not in self.full:
            found.append("suspected_illegal_fill")
        owner = self.owner.get(tag)
        if owner is not None and not self.city.may_fill(owner, company):
            found.append("foreign_cylinder")
        site = self.city.site(b.get("site"))
        if site is not None and site.company_id != company:
            found.append("foreign_site")
        if action == "return":
            self.full.discard(tag)
        for f in found:
            self.findings[f] += 1
            self.examples.setdefault(f, m)


def test_the_city_circulates_lawfully_by_default(city: City, rules: Rules) -> None:
    cfg = SimConfig(
        seed=5,
        circulation_rate=0.0,
        mix=parse_mix("gun=0.6,scan=0.04,position=0.36"),
        illegal_rate=0.0,
        dup_rate=0.02,
        bad_rate=0.0,
        offline_rate=0.0,
        fill_seconds=1.0,
        dwell_s=5,
        vehicle_speed_kmh=60,
        transfer_share=0.5,
    )
    sim = CitySim(city, cfg, rules, start_ms=T0)
    platform = Platform(city)
    msgs = run(sim, rate=50, seconds=1800, tick_ms=200)
    for m in msgs:
        platform.see(m)
    actions = Counter(body(m)["action"] for m in msgs if m.kind == "scan")
    assert actions["deliver"] > 300 and actions["return"] > 300  # real circulation happened
    assert {"dispatch", "deliver", "return", "transfer"} <= set(actions)
    assert not platform.findings, {k: body(m) for k, m in platform.examples.items()}
    assert not [k for k in sim.stats.labels if k.startswith("circulation:")]


def test_each_circulation_fault_at_its_rate(city: City, rules: Rules) -> None:
    cfg = SimConfig(
        seed=9,
        circulation_rate=0.2,
        mix=parse_mix("telemetry=1"),  # nothing else touches the cylinders' state
        illegal_rate=0.0,
        dup_rate=0.0,
        bad_rate=0.0,
        offline_rate=0.0,
    )
    sim = CitySim(city, cfg, rules, start_ms=T0)
    msgs = run(sim, rate=100, seconds=60)
    faults = [m for m in msgs if m.label.startswith("circulation:")]
    per_kind = Counter(m.label.split(":")[1] for m in faults)
    assert set(per_kind) == set(CIRCULATION_FAULTS)
    # a share of the fresh slots, the four in equal parts (two messages for two of them)
    starts: float = per_kind["circulation_violation"] + per_kind["foreign_cylinder"]
    starts += (per_kind["suspected_illegal_fill"] + per_kind["cloned_tag"]) / 2
    assert starts / len(msgs) == pytest.approx(0.2, abs=0.04)
    platform = Platform(city)
    for m in msgs:
        platform.see(m)
    assert platform.findings["circulation_violation"] == per_kind["circulation_violation"] > 0
    assert platform.findings["foreign_cylinder"] == per_kind["foreign_cylinder"] > 0
    # a return, then the delivery a second later: each delivery is a finding
    deliveries = [m for m in faults if body(m)["action"] == "deliver"]
    assert platform.findings["suspected_illegal_fill"] == len(deliveries) > 0
    for kind in ("circulation_violation", "suspected_illegal_fill", "foreign_cylinder"):
        assert platform.examples[kind].label == f"circulation:{kind}"
    assert "foreign_site" not in platform.findings
    clones = [body(m) for m in faults if m.label == "circulation:cloned_tag"]
    by_read = {(b["tag"], b["ts"]): b for b in clones}
    seconds = [b for b in clones if (b["tag"], b["ts"] - CLONE_GAP_MS) in by_read]
    assert seconds  # (the second read of the latest ones is still due when the run ends)
    for b in seconds:
        a = by_read[(b["tag"], b["ts"] - CLONE_GAP_MS)]
        assert distance_km(read(a), read(b)) > SETTINGS.circulation.cloned_tag_km


def read(b: dict[str, Any]) -> Read:
    return Read(datetime.fromtimestamp(b["ts"] / 1000, UTC), b["lat"], b["lon"], b["action"])
