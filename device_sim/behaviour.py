"""The simulated city's behaviour: what every device says, and when. No I/O.

:class:`CitySim` is a deterministic state machine driven by the caller's clock. The runner
asks it for *n* messages at time *t* (``produce``) — the pacing of ``--rate`` is the
runner's, the content is this module's — and hands it the platform's replies
(``on_reply``). Same city, same config, same seed and the same clock readings give the
same messages byte for byte, which is what lets the tests check rates and fault shares
without a broker.

Within each call, follow-ups are served first (a fill after an ``allow``, scans of a
vehicle that reached a stop, a device's replay after it came back online, duplicates),
then fresh traffic is drawn from the configured mix. So ``--rate`` bounds *everything*
the simulator publishes; under a rate too low for the follow-ups they queue, they are
never dropped.

Behaviours:

- Guns follow GB/T 38059-2019: ask (``auth``), wait for the reply, fill only on
  ``allow``. A gun does one fill at a time. A share of requests is deliberately illegal
  (another company's cylinder with no entrustment, an overdue one, a scrapped one, a tag
  nobody registered); the expected answer is kept and compared with the reply.
- Fills: net mass just under the model's maximum (from the settings' model table) within
  the underfill tolerance; at configured rates above the maximum (overfill) or below
  the tolerance (underfill); rarely a failed check item, which aborts the fill.
- Valves report position, valve state, leak, temperature, battery and signal; rarely a
  leak above the configured threshold.
- Vehicles drive trips (station → customers → station, or station → store → station for
  a transfer) along straight legs; their handheld scans ``dispatch`` at the station,
  ``deliver`` at each customer (``customer`` = account number), ``return`` of the
  collected empties at the station, ``transfer``/``receive`` between sites. Walk-in sales
  at stores make the rest of the scans.
- Circulation is lawful by default and broken on purpose at ``--circulation-rate``
  (:mod:`device_sim.circulation`: what is full, what is out, walk-in sales, the faults).
- Devices drop offline (their retained status says so, as their last will would),
  buffer what they produce, then come back, say so, and replay the buffer with the
  original ``ts`` and ``msg_id``.
- Duplicates (same bytes, same ``msg_id``, a little later) and bad payloads.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass, field

import msgspec

from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS

from .circulation import Circulation
from .config import KINDS, Rules, SimConfig
from .fleet import Fleet
from .payloads import (
    BAD_KINDS,
    Outgoing,
    auth_msg,
    bad_msg,
    fill_msg,
    new_msg_id,
    scan_msg,
    status_msg,
    telemetry_msg,
)
from .stats import SimStats, percentile
from .world import City, Cylinder, Device, Site

__all__ = ["ILLEGAL_KINDS", "CitySim", "Rules", "SimStats", "percentile"]

ILLEGAL_KINDS = ("not_owner", "overdue_inspection", "scrapped", "unknown_tag")
"""The refusals a sim provokes; each is also the reason code the reply must carry."""

UNKNOWN_PREFIX = "SIM-UNKNOWN-"
"""Device ids and tags the simulator invents to be unknown: no seeded id looks like this."""

VALVE_OPEN_SHARE = 0.3
"""Share of valve readings with the valve open (cylinder in use at a customer)."""


@dataclass(slots=True)
class _Auth:
    msg_id: str
    gun: Device
    tag: str
    cylinder: Cylinder | None
    expected: str
    """``allow`` or the reason code the reply must contain."""
    operator: str
    sent_ms: float


@dataclass(slots=True)
class _Offline:
    until_ms: int
    kind: str
    device_id: str
    buffer: list[Outgoing] = field(default_factory=list)


class CitySim:
    """See the module docstring. *now_ms* arguments are epoch milliseconds."""

    def __init__(
        self, city: City, cfg: SimConfig, rules: Rules, *, start_ms: int, seed: int | None = None
    ) -> None:
        self.city = city
        self.cfg = cfg
        self.rules = rules
        self.rng = random.Random(cfg.seed if seed is None else seed)
        self.stats = SimStats()
        self._kinds = [k for k in KINDS if cfg.mix.get(k, 0.0) > 0 and self._possible(k)]
        self._weights = [cfg.mix[k] for k in self._kinds]
        self._delayed: list[tuple[int, int, Outgoing]] = []
        self._seq = itertools.count()
        self._ready: deque[Outgoing] = deque()
        self._pending: dict[str, _Auth] = {}
        self._busy: set[str] = set()
        self._offline: dict[str, _Offline] = {}
        self._valves = [c for c in city.legal if c.smart_valve] or list(city.legal)
        self._stations = {s.code: s for s in city.stations}
        self._unknown_seq = itertools.count(1)
        self.circ = Circulation(
            city,
            self.rng,
            rate=cfg.circulation_rate,
            cloned_tag_km=rules.cloned_tag_km,
            quiet_ms=rules.cloned_tag_window_s * 1000,
            msg_id=self._msg_id,
            scans=self.stats.scans,
        )
        self.fleet = Fleet(
            city,
            cfg,
            self.rng,
            self.circ,
            self.stats,
            self._stations,
            scan=self._scan,
            ready=self._ready,
            msg_id=self._msg_id,
            start_ms=start_ms,
        )

    # ------------------------------------------------------------------ public

    @property
    def pending_auths(self) -> int:
        return len(self._pending)

    def devices_online(self, now_ms: int) -> list[Outgoing]:
        """Retained ``online: true`` for every gun, handheld and vehicle at start-up.
        (Valves announce themselves only when they come back from offline: a city has
        hundreds of thousands.)"""
        out = [
            status_msg(d.kind, d.device_id, True, now_ms)
            for d in (*self.city.guns, *self.city.handhelds, *self.city.vehicles)
        ]
        for m in out:
            self._count(m)
        return out

    def produce(self, now_ms: int, n: int) -> list[Outgoing]:
        """Up to *n* messages due at *now_ms* (fewer only if the city has nothing to say)."""
        self._expire_auths(now_ms)
        self._back_online(now_ms)
        self.fleet.advance(now_ms)
        while self._delayed and self._delayed[0][0] <= now_ms:
            self._ready.append(heapq.heappop(self._delayed)[2])
        out: list[Outgoing] = []
        attempts = 0
        while len(out) < n and attempts < 4 * n + 16:
            attempts += 1
            if self._ready:
                m: Outgoing | None = self._ready.popleft()
            else:
                m = self._fresh(now_ms)
            if m is None:
                continue
            self._route(m, now_ms, out)
        for m in out:
            self._count(m)
            self.circ.observe(m)
            if m.kind == "fill" and m.label in ("", "replay"):
                self._busy.discard(m.device.partition("/")[2])  # the gun is free again
        return out

    def mark_sent(self, msg_id: str | None, now_ms: float) -> None:
        """The moment an auth request was actually handed to the client (latency start)."""
        auth = self._pending.get(msg_id) if msg_id is not None else None
        if auth is not None:
            auth.sent_ms = now_ms

    def on_reply(self, now_ms: float, payload: bytes) -> None:
        """A reply on ``cyl/v1/gun/{gun}/auth/reply``; *now_ms* from the same clock as
        the *now_ms* the request was produced with."""
        try:
            body = msgspec.json.decode(payload)
            msg_id = body["msg_id"]
            decision = body["decision"]
            reasons = list(body.get("reasons") or [])
        except (msgspec.DecodeError, KeyError, TypeError):
            self.stats.unmatched_replies += 1
            return
        auth = self._pending.pop(msg_id, None) if isinstance(msg_id, str) else None
        if auth is None:
            self.stats.unmatched_replies += 1
            return
        self.stats.latencies_ms.append(now_ms - auth.sent_ms)
        self.stats.decisions[str(decision)] += 1
        for r in reasons:
            self.stats.reasons[str(r)] += 1
        ok = (
            (decision == "allow")
            if auth.expected == "allow"
            else (decision == "deny" and auth.expected in reasons)
        )
        if not ok:
            self.stats.unexpected += 1
            if len(self.stats.unexpected_examples) < 5:
                self.stats.unexpected_examples.append(
                    f"{auth.tag}: expected {auth.expected}, got {decision} {reasons}"
                )
        if decision == "allow" and auth.cylinder is not None:
            self._schedule(int(now_ms + self.cfg.fill_seconds * 1000), self._fill(auth, now_ms))
        else:
            self._busy.discard(auth.gun.device_id)

    # ------------------------------------------------------------------ plumbing

    def _possible(self, kind: str) -> bool:
        c = self.city
        if kind == "telemetry":
            return bool(c.legal)
        if kind == "position":
            return bool(c.vehicles) and bool(c.stations)
        if kind == "scan":
            return bool(c.handhelds) and bool(c.legal) and bool(c.customers)
        if kind == "gun":
            return bool(c.guns) and bool(c.legal)
        return False  # pragma: no cover

    def _count(self, m: Outgoing) -> None:
        self.stats.sent[m.kind] += 1
        if m.label:
            self.stats.labels[m.label] += 1

    def _schedule(self, due_ms: int, m: Outgoing) -> None:
        heapq.heappush(self._delayed, (due_ms, next(self._seq), m))

    def _msg_id(self) -> str:
        return new_msg_id(self.rng)

    def _route(self, m: Outgoing, now_ms: int, out: list[Outgoing]) -> None:
        """Publish *m* now, or buffer it if its device is (or just went) offline."""
        off = self._offline.get(m.device)
        if (
            off is None
            and m.kind != "status"
            and m.label in ("", "dup")
            and (self.rng.random() < self.cfg.offline_rate)
        ):
            kind, _, dev_id = m.device.partition("/")
            off = _Offline(now_ms + int(self.cfg.offline_seconds * 1000), kind, dev_id)
            self._offline[m.device] = off
            self.stats.offline_events += 1
            out.append(status_msg(kind, dev_id, False, now_ms))
        if off is not None and m.kind != "status":
            off.buffer.append(m)
            self.stats.buffered += 1
            return
        out.append(m)
        if (
            m.msg_id is not None
            and m.label in ("", "replay")
            and (self.rng.random() < self.cfg.dup_rate)
        ):
            delay = int(self.rng.uniform(0, self.cfg.dup_delay_max_s) * 1000)
            self._schedule(now_ms + delay, m.relabel("dup"))

    def _back_online(self, now_ms: int) -> None:
        for key in [k for k, o in self._offline.items() if o.until_ms <= now_ms]:
            off = self._offline.pop(key)
            self._ready.append(status_msg(off.kind, off.device_id, True, now_ms))
            self._ready.extend(m.relabel("replay") for m in off.buffer)

    def _expire_auths(self, now_ms: int) -> None:
        limit = now_ms - self.cfg.auth_timeout * 1000
        for msg_id in [k for k, a in self._pending.items() if a.sent_ms < limit]:
            auth = self._pending.pop(msg_id)
            self._busy.discard(auth.gun.device_id)
            self.stats.auth_lost += 1

    def _fresh(self, now_ms: int) -> Outgoing | None:
        if not self._kinds:
            return None
        if self.cfg.bad_rate > 0 and self.rng.random() < self.cfg.bad_rate:
            return self._bad(now_ms)
        if self.circ.due() and (m := self.circ.fault(now_ms, self._schedule)) is not None:
            return m
        kind = self.rng.choices(self._kinds, self._weights)[0]
        if kind == "gun":
            m = self._auth(now_ms)
            if m is not None:
                return m
            self.stats.skipped["gun_all_busy"] += 1
            kind = "telemetry"
        if kind == "telemetry":
            return self._telemetry(now_ms)
        if kind == "position":
            return self.fleet.position(now_ms) or self._telemetry(now_ms)
        return self._walk_in_scan(now_ms)

    # ------------------------------------------------------------------ guns

    def _operator(self, station: Site | None, gun: Device) -> str:
        base = station.code if station else gun.device_id
        return f"{base}-OP{self.rng.randint(1, 6):02d}"

    def _auth(self, now_ms: int) -> Outgoing | None:
        idle = [
            g
            for g in self.city.guns
            if g.device_id not in self._busy and f"gun/{g.device_id}" not in self._offline
        ]
        if not idle:
            return None
        gun = self.rng.choice(idle)
        station = self._stations.get(gun.site_code or "")
        company = station.company_id if station else (gun.company_id or 0)
        expected = "allow"
        cyl: Cylinder | None = None
        if self.rng.random() < self.cfg.illegal_rate:
            expected, cyl = self._illegal(company)
        if expected == "allow":
            cyl = self.circ.to_fill(company, now_ms)  # quiet, not on a vehicle, empty if any
            if cyl is None:
                expected, cyl = "unknown_tag", None
        tag = cyl.tag if cyl is not None else f"{UNKNOWN_PREFIX}{next(self._unknown_seq):08d}"
        if expected != "allow":
            self.stats.labels[f"illegal:{expected}"] += 1
        msg_id = self._msg_id()
        operator = self._operator(station, gun)
        self._pending[msg_id] = _Auth(msg_id, gun, tag, cyl, expected, operator, now_ms)
        self._busy.add(gun.device_id)
        return auth_msg(gun.device_id, msg_id, now_ms, tag, operator)

    def _illegal(self, company: int) -> tuple[str, Cylinder | None]:
        """Pick a refusal to provoke, falling back to ``unknown_tag`` where the city has no
        cylinder of the wanted kind."""
        kind = self.rng.choice(ILLEGAL_KINDS)
        if kind == "not_owner":
            others = [
                c
                for c in self.rng.sample(self.city.legal, min(50, len(self.city.legal)))
                if not self.city.may_fill(c.company_id, company)
            ]
            if others:
                return kind, others[0]
        elif kind == "overdue_inspection" and self.city.overdue:
            return kind, self.rng.choice(self.city.overdue)
        elif kind == "scrapped" and self.city.scrapped:
            return kind, self.rng.choice(self.city.scrapped)
        return "unknown_tag", None

    def _fill(self, auth: _Auth, allow_ms: float) -> Outgoing:
        cyl = auth.cylinder
        assert cyl is not None
        max_kg = self.rules.max_fill_kg.get(cyl.spec)
        if max_kg is None:
            max_kg = max(self.rules.max_fill_kg.values(), default=14.9)
        tol = self.rules.underfill_tolerance_kg
        r = self.rng.random()
        if r < self.cfg.overfill_rate:
            net = max_kg + self.rules.overfill_tolerance_kg + self.rng.uniform(0.1, 1.5)
            self.stats.labels["overfill"] += 1
        elif r < self.cfg.overfill_rate + self.cfg.underfill_rate:
            net = max(0.0, max_kg - tol - self.rng.uniform(0.1, 2.0))
            self.stats.labels["underfill"] += 1
        else:
            net = max_kg - self.rng.uniform(0.0, tol * 0.8)
        pre = dict.fromkeys(PRE_CHECK_ITEMS, True)
        post = dict.fromkeys(POST_CHECK_ITEMS, True)
        if self.rng.random() < self.cfg.check_fail_rate:
            items = self.rng.choice((pre, post))
            items[self.rng.choice(list(items))] = False
            self.stats.labels["check_failed"] += 1
        ts_start = int(allow_ms)
        ts = ts_start + int(self.cfg.fill_seconds * 1000)
        return fill_msg(
            auth.gun.device_id,
            self._msg_id(),
            ts,
            cyl.tag,
            net,
            ts_start=ts_start,
            operator=auth.operator,
            tare_kg=cyl.tare_kg,
            pre_check=pre,
            post_check=post,
        )

    # ------------------------------------------------------------------ valves

    def _telemetry(self, now_ms: int) -> Outgoing:
        cyl = self.rng.choice(self._valves)
        thr = self.rules.leak_ppm_threshold
        if self.rng.random() < self.cfg.leak_rate:
            leak = thr * self.rng.uniform(1.2, 3.0)
            self.stats.labels["leak"] += 1
        else:
            leak = thr * self.rng.uniform(0.0, 0.05)
        lat, lon = self.circ.position(cyl, now_ms)  # where it was last read
        if lat is not None and lon is not None:  # GPS jitter of a few metres
            lat += self.rng.gauss(0, 0.00003)
            lon += self.rng.gauss(0, 0.00003)
        return telemetry_msg(
            cyl.tag,
            self._msg_id(),
            now_ms,
            lat=lat if lon is not None else None,
            lon=lon if lat is not None else None,
            valve="open" if self.rng.random() < VALVE_OPEN_SHARE else "closed",
            leak_ppm=leak,
            temp_c=self.rng.uniform(-5.0, 38.0),
            battery_pct=self.rng.uniform(15.0, 100.0),
            rssi=self.rng.uniform(-115.0, -55.0),
        )

    # ------------------------------------------------------------------ scans

    def _walk_in_scan(self, now_ms: int, *, count: bool = True) -> Outgoing:
        """A store or station handheld sells a full cylinder or takes an empty back."""
        return self.circ.walk_in(now_ms, count=count)

    def _scan(
        self,
        hh: Device,
        now_ms: int,
        tag: str,
        action: str,
        *,
        count: bool = True,
        site: str | None = None,
        customer: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> Outgoing:
        if count:
            self.stats.scans[action] += 1
        return scan_msg(
            hh.device_id,
            self._msg_id(),
            now_ms,
            tag,
            action,
            operator=f"{hh.device_id}-STAFF",
            site=site,
            customer=customer,
            lat=lat,
            lon=lon,
        )

    # ------------------------------------------------------------------ faults

    def _bad(self, now_ms: int) -> Outgoing:
        kind = self.rng.choice(BAD_KINDS)
        if self._possible("scan") and self.rng.random() < 0.3:
            base = self._walk_in_scan(now_ms, count=False)
        else:
            base = self._telemetry(now_ms)
        unknown = f"{UNKNOWN_PREFIX}{next(self._unknown_seq):08d}"
        return bad_msg(kind, base, self.rng, unknown)
