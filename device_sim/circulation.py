"""Circulation in the simulated city: which cylinders may lawfully go out, and the faults.

The platform raises circulation alerts at every scan (docs/ARCHITECTURE.md §4, DOMAIN.md
"Circulation checks"), so the simulator has to *circulate* lawfully by default — deliver
only a cylinder filled at a licensed station since its last return, scan only its own
company's cylinders, name only its own sites — or every delivery of the demo city would be
a 黑充装 alarm. :class:`Circulation` keeps that ledger, per company:

- *full*: filled since the last return (seeded so — ``Cylinder.deliverable`` — or filled by
  a simulated gun since): what a vehicle loads and a store sells;
- *out*: delivered, at a customer: what comes back as an empty;
- *on board*: loaded on a vehicle for its trip.

It learns from what the city actually says (:meth:`Circulation.observe`, every message as it
is published, replays included), so a fill stuck in an offline gun's buffer does not count
until it is sent. Walk-in sales and returns at stores and stations are made here.

At ``--circulation-rate`` (a share of fresh slots, the four in equal parts) it breaks the
rules on purpose, each with the fewest messages that make the platform raise one alert:

- ``circulation_violation``: an overdue or scrapped cylinder dispatched by its owner;
- ``suspected_illegal_fill``: an own cylinder taken back empty, then delivered a second later;
- ``foreign_cylinder``: a store taking back another company's cylinder (串瓶);
- ``cloned_tag``: one tag read at two places further apart than ``[circulation]
  cloned_tag_km``, half a minute apart.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from .payloads import Outgoing, scan_msg
from .routes import haversine_m
from .world import City, Cylinder, Device, Site

__all__ = ["CIRCULATION_FAULTS", "CLONE_GAP_MS", "Circulation"]

CIRCULATION_FAULTS: Final = (
    "circulation_violation",
    "suspected_illegal_fill",
    "foreign_cylinder",
    "cloned_tag",
)
"""The circulation alerts a sim provokes; each is also the alert kind the platform raises."""

CLONE_GAP_MS: Final = 30_000
"""Between the two reads of a cloned tag: well inside the rule's window (5 minutes)."""

RETURN_THEN_DELIVER_MS: Final = 1_000
"""An empty taken back, then delivered as if full a second later (``suspected_illegal_fill``)."""

CLONE_MARGIN: Final = 1.2
"""A synthesized far read lies 20 % beyond ``cloned_tag_km``: clearly a clone, not an edge case."""

PICK_TRIES: Final = 8
"""Random draws before giving up on finding a cylinder in a wanted state."""

KM_PER_DEGREE: Final = 111.32
"""Length of a degree of latitude (and of longitude at the equator), km."""


class _Pool:
    """Tags in insertion order with O(1) add, remove and random pick (deterministic)."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._at: dict[str, int] = {}

    def __contains__(self, tag: object) -> bool:
        return tag in self._at

    def __len__(self) -> int:
        return len(self._items)

    def add(self, tag: str) -> None:
        if tag not in self._at:
            self._at[tag] = len(self._items)
            self._items.append(tag)

    def discard(self, tag: str) -> None:
        i = self._at.pop(tag, None)
        if i is None:
            return
        last = self._items.pop()
        if i < len(self._items):
            self._items[i] = last
            self._at[last] = i

    def pick(self, rng: random.Random, ok: Callable[[str], bool] = bool) -> str | None:
        """A random tag that is *ok*, or None after :data:`PICK_TRIES` draws."""
        for _ in range(PICK_TRIES if self._items else 0):
            tag = self._items[rng.randrange(len(self._items))]
            if ok(tag):
                return tag
        return None


@dataclass(slots=True)
class _Ledger:
    full: _Pool = field(default_factory=_Pool)
    out: _Pool = field(default_factory=_Pool)


class Circulation:
    """See the module docstring. *msg_id* and *scans* (a count per action) are the simulator's."""

    def __init__(
        self,
        city: City,
        rng: random.Random,
        *,
        rate: float,
        cloned_tag_km: float,
        quiet_ms: int,
        msg_id: Callable[[], str],
        scans: Counter[str],
    ) -> None:
        self.city = city
        self.rng = rng
        self.rate = rate
        self._msg_id = msg_id
        self._scans = scans
        self._quiet_ms = quiet_ms
        self._cylinder: dict[str, Cylinder] = {c.tag: c for c in city.legal}
        self._company: dict[str, int] = {c.tag: c.company_id for c in city.legal}
        self._seen: dict[str, tuple[int, float, float]] = {
            c.tag: (c.seen_ms, c.lat, c.lon)
            for c in city.legal
            if c.seen_ms is not None and c.lat is not None and c.lon is not None
        }
        """Last read of a tag with a place, as sent: (ts, lat, lon); the record's at start."""
        self._guns = {g.device_id: city.site(g.site_code) for g in city.guns}
        self._ledgers: dict[int, _Ledger] = {}
        self._on_board: set[str] = set()
        for c in city.legal:
            if c.deliverable:
                self._ledger(c.company_id).full.add(c.tag)
        self._hh: dict[int, list[Device]] = {}
        for h in city.handhelds:
            company = self._company_of_handheld(h)
            if company is not None:
                self._hh.setdefault(company, []).append(h)
        self._walk_in = [h for h in city.handhelds if city.cylinders_of(self._hh_co(h))]
        self._far = _far_apart([*city.stations, *city.stores], cloned_tag_km)

    # ------------------------------------------------------------------ the ledger

    def _ledger(self, company: int) -> _Ledger:
        ledger = self._ledgers.get(company)
        if ledger is None:
            ledger = self._ledgers[company] = _Ledger()
        return ledger

    def _company_of_handheld(self, h: Device) -> int | None:
        site = self.city.site(h.site_code)
        return site.company_id if site is not None else h.company_id

    def _hh_co(self, h: Device) -> int:
        return self._company_of_handheld(h) or 0

    def _quiet(self, now_ms: int) -> Callable[[str], bool]:
        """Tags not read anywhere within the platform's ``cloned_tag_window_s``: a lawful
        read of one of them now, wherever, cannot look like a clone of the last one."""

        def ok(tag: str) -> bool:
            seen = self._seen.get(tag)
            return seen is None or now_ms - seen[0] >= self._quiet_ms

        return ok

    def position(self, cyl: Cylinder, now_ms: int) -> tuple[float | None, float | None]:
        """The fix its valve reports now: where the cylinder was last read, else its record's
        place; none on a vehicle (a valve under the truck's roof; the sim does not say which
        vehicle). A fix is a read too: the cylinder is then left alone for the window."""
        if cyl.tag in self._on_board:
            return None, None
        seen = self._seen.get(cyl.tag)
        lat, lon = (seen[1], seen[2]) if seen is not None else (cyl.lat, cyl.lon)
        if lat is not None and lon is not None:
            self._seen[cyl.tag] = (now_ms, lat, lon)
        return lat, lon

    def to_fill(self, company: int, now_ms: int) -> Cylinder | None:
        """A cylinder of *company* for a gun: quiet, not on a vehicle, empty if one is."""
        own = self.city.cylinders_of(company)
        quiet = self._quiet(now_ms)
        ledger = self._ledger(company)
        best: Cylinder | None = None
        for _ in range(PICK_TRIES if own else 0):
            cyl = self.rng.choice(own)
            if cyl.tag in self._on_board or not quiet(cyl.tag):
                continue
            best = cyl
            if cyl.tag not in ledger.full:
                break
        return best if best is not None or not own else self.rng.choice(own)

    def load(self, company: int, n: int, now_ms: int) -> list[str]:
        """Up to *n* full cylinders of *company* for a vehicle's trip (taken from the pool)."""
        full = self._ledger(company).full
        quiet = self._quiet(now_ms)
        out: list[str] = []
        while len(out) < n:
            tag = full.pick(self.rng, quiet)
            if tag is None:
                break
            full.discard(tag)
            self._on_board.add(tag)
            out.append(tag)
        return out

    def empty_one(self, company: int, now_ms: int, *, collect: bool = False) -> str | None:
        """A quiet cylinder of *company* to take back empty: one delivered, else any not
        full nor on a vehicle. *collect*: a vehicle picks it up now and returns it at the end
        of its trip, so it is on board till then (nobody else takes it back or loads it)."""
        ledger = self._ledger(company)
        quiet = self._quiet(now_ms)
        tag = ledger.out.pick(self.rng, quiet)
        own = self.city.cylinders_of(company)
        for _ in range(0 if tag is not None or not own else PICK_TRIES):
            pick = self.rng.choice(own).tag
            if pick not in ledger.full and pick not in self._on_board and quiet(pick):
                tag = pick
                break
        if tag is not None and collect:
            ledger.out.discard(tag)
            self._on_board.add(tag)
        return tag

    def _not_on_board(self, company: int, now_ms: int) -> str | None:
        own = self.city.cylinders_of(company)
        quiet = self._quiet(now_ms)
        for _ in range(PICK_TRIES if own else 0):
            tag = self.rng.choice(own).tag
            if tag not in self._on_board and quiet(tag):
                return tag
        return None

    def observe(self, m: Outgoing) -> None:
        """Learn from a message as it is published (fills and scans move the ledger)."""
        if m.kind not in ("fill", "scan") or m.label.startswith("bad") or m.label == "dup":
            return
        body: dict[str, Any] = msgspec.json.decode(m.payload)
        tag = body.get("tag")
        company = self._company.get(tag) if isinstance(tag, str) else None
        if tag is None or company is None:
            return
        station = self._guns.get(m.device.partition("/")[2]) if m.kind == "fill" else None
        if station is not None:
            self._seen[tag] = (m.ts, station.lat, station.lon)
        elif body.get("lat") is not None and body.get("lon") is not None:
            self._seen[tag] = (m.ts, body["lat"], body["lon"])
        ledger = self._ledger(company)
        action = body.get("action") if m.kind == "scan" else "fill"
        if action == "fill" and body.get("result", "completed") == "completed":
            ledger.out.discard(tag)
            if tag not in self._on_board:
                ledger.full.add(tag)
        elif action == "deliver":
            ledger.full.discard(tag)
            self._on_board.discard(tag)
            ledger.out.add(tag)
        elif action == "return":
            ledger.full.discard(tag)
            ledger.out.discard(tag)
            self._on_board.discard(tag)
        elif action == "receive" and tag in self._on_board:
            self._on_board.discard(tag)
            ledger.full.add(tag)

    # ------------------------------------------------------------------ walk-in traffic

    def walk_in(self, now_ms: int, *, count: bool = True) -> Outgoing:
        """A store or station handheld sells a full cylinder or takes an empty back."""
        hh = self.rng.choice(self._walk_in or self.city.handhelds)
        site = self.city.site(hh.site_code)
        company = self._hh_co(hh)
        customers = self.city.customers_of(company) or self.city.customers
        cust = self.rng.choice(customers)
        sell = self.rng.random() < 0.5
        full = self._ledger(company).full.pick(self.rng, self._quiet(now_ms))
        empty = None if sell and full is not None else self.empty_one(company, now_ms)
        action = "deliver" if full is not None and (sell or empty is None) else "return"
        tag = full if action == "deliver" else empty
        if tag is None:  # nothing full, nothing empty: a dispatch changes nobody's ledger
            action = "dispatch"
            tag = self._not_on_board(company, now_ms)
        if tag is None:
            tag = self.rng.choice(self.city.cylinders_of(company) or self.city.legal).tag
        lat, lon = (site.lat, site.lon) if site else (cust.lat, cust.lon)
        return self._scan(
            hh,
            now_ms,
            tag,
            action,
            site=site.code if site else None,
            customer=cust.account_no,
            at=(lat, lon),
            count=count,
        )

    def _scan(
        self,
        hh: Device,
        ts: int,
        tag: str,
        action: str,
        *,
        site: str | None = None,
        customer: str | None = None,
        at: tuple[float, float] | None = None,
        count: bool = True,
        label: str = "",
    ) -> Outgoing:
        if count:
            self._scans[action] += 1
        m = scan_msg(
            hh.device_id,
            self._msg_id(),
            ts,
            tag,
            action,
            operator=f"{hh.device_id}-STAFF",
            site=site,
            customer=customer,
            lat=at[0] if at else None,
            lon=at[1] if at else None,
        )
        return m.relabel(label) if label else m

    # ------------------------------------------------------------------ faults

    def due(self) -> bool:
        """Should this fresh slot carry a circulation fault?"""
        return self.rate > 0 and self.rng.random() < self.rate

    def fault(self, now_ms: int, schedule: Callable[[int, Outgoing], None]) -> Outgoing | None:
        """One circulation fault: its first message, the others handed to *schedule* (due
        ms, message); None where the city has no cylinder or handheld to stage it with."""
        kind = self.rng.choice(CIRCULATION_FAULTS)
        make = {
            "circulation_violation": self._violation,
            "suspected_illegal_fill": self._illegal_fill,
            "foreign_cylinder": self._foreign,
            "cloned_tag": self._clone,
        }[kind]
        staged = [(ts, m.relabel(f"circulation:{kind}")) for ts, m in make(now_ms)]
        for due, later in staged[1:]:
            schedule(due, later)
        return staged[0][1] if staged else None

    def _own_handheld(self, company: int) -> Device | None:
        hhs = self._hh.get(company)
        return self.rng.choice(hhs) if hhs else None

    def _place(self, hh: Device) -> tuple[Site | None, tuple[float, float] | None]:
        site = self.city.site(hh.site_code)
        return site, ((site.lat, site.lon) if site else None)

    def _violation(self, now_ms: int) -> list[tuple[int, Outgoing]]:
        unsafe = [*self.city.overdue, *self.city.scrapped]
        if not unsafe:
            return []
        cyl = self.rng.choice(unsafe)
        hh = self._own_handheld(cyl.company_id)
        if hh is None:
            return []
        site, at = self._place(hh)
        code = site.code if site else None
        return [(now_ms, self._scan(hh, now_ms, cyl.tag, "dispatch", site=code, at=at))]

    def _illegal_fill(self, now_ms: int) -> list[tuple[int, Outgoing]]:
        if not self._walk_in:
            return []
        hh = self.rng.choice(self._walk_in)
        company = self._hh_co(hh)
        tag = self.empty_one(company, now_ms) or self._not_on_board(company, now_ms)
        customers = self.city.customers_of(company)
        if tag is None or not customers:
            return []
        cust = self.rng.choice(customers)
        site, at = self._place(hh)
        later = now_ms + RETURN_THEN_DELIVER_MS
        back = self._scan(hh, now_ms, tag, "return", site=site.code if site else None, at=at)
        out = self._scan(
            hh, later, tag, "deliver", customer=cust.account_no, at=(cust.lat, cust.lon)
        )
        return [(now_ms, back), (later, out)]

    def _foreign(self, now_ms: int) -> list[tuple[int, Outgoing]]:
        if not self._walk_in:
            return []
        hh = self.rng.choice(self._walk_in)
        company = self._hh_co(hh)
        for _ in range(PICK_TRIES):  # a return takes it out of its owner's full pool
            cyl: Cylinder = self.rng.choice(self.city.legal)
            if cyl.tag not in self._on_board and not self.city.may_fill(cyl.company_id, company):
                site, at = self._place(hh)
                code = site.code if site else None
                return [(now_ms, self._scan(hh, now_ms, cyl.tag, "return", site=code, at=at))]
        return []

    def _clone(self, now_ms: int) -> list[tuple[int, Outgoing]]:
        if self._far is None or not self._walk_in:
            return []
        company = self._hh_co(self.rng.choice(self._walk_in))
        hhs = self._hh.get(company) or []
        own = self.city.cylinders_of(company)
        if not hhs or not own:
            return []
        tag = self.rng.choice(own).tag
        a, b = self._far
        first, second = self.rng.choice(hhs), self.rng.choice(hhs)
        later = now_ms + CLONE_GAP_MS
        return [
            (now_ms, self._scan(first, now_ms, tag, "dispatch", at=a)),
            (later, self._scan(second, later, tag, "dispatch", at=b)),
        ]


Place = tuple[float, float]


def _far_apart(sites: list[Site], km: float) -> tuple[Place, Place] | None:
    """Two places more than *km* apart: the city's two farthest sites if they are, else the
    first site and a point :data:`CLONE_MARGIN` × *km* east of it; None for no site."""
    if not sites:
        return None
    best, pair = 0.0, (sites[0], sites[0])
    for i, s in enumerate(sites):
        for t in sites[i + 1 :]:
            d = haversine_m(s.lat, s.lon, t.lat, t.lon)
            if d > best:
                best, pair = d, (s, t)
    a, b = pair
    if best / 1000 > km:
        return (a.lat, a.lon), (b.lat, b.lon)
    east = CLONE_MARGIN * km / (KM_PER_DEGREE * math.cos(math.radians(a.lat)))
    return (a.lat, a.lon), (a.lat, a.lon + east)
