"""One month of the seeded history, planned: every fill, delivery and return as a packed int.

A month of a 1M-cylinder city is ~5M trajectory events. They are written sorted by (kind,
time) — the order of the events table's indexes, which PostgreSQL then builds in one pass
instead of sorting (`server.seed.partitions`) — so each event is first planned as one Python
int in a bucket per kind and day: the second of the day in the high bits (sorting a bucket
sorts by time), the cylinder, site, vehicle, customer, net mass and check result below.
`server.seed.emit` unpacks them into rows. Ints keep a month's plan to a few hundred MB.

What happens at each fill follows the rates of `server.seed.history_shape` by the station's
profile (a few bad ones carry most of it): over- and underfills, failed check items that
abort an attempt, refused attempts at other companies' cylinders and unknown tags — each
refusal decided by `server.domain.authorization.authorize_fill`, like a gun's request
(docs/ARCHITECTURE.md §4). Deliveries go to a real-name customer of the owner whose account
was open that day, some over the counter to nobody, a few outside the city.
"""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Final

from server.domain.authorization import (
    CylinderFacts,
    StationFacts,
    authorize_fill,
    gun_code,
)
from server.kernel.settings import Settings
from server.seed.history_shape import (
    ABORTED_BEFORE_S,
    ANONYMOUS_SALE_RATE,
    CADENCE_JITTER_DAYS,
    CHECK_FAIL_RATE,
    DELIVERY_DAYS,
    FAIR_SHORT_CENTS,
    INSPECTION_GAP_DAYS,
    LICENCE_ATTEMPTS,
    NOT_OWNER_RATE,
    OTHER_STATION_SHARE,
    OUT_OF_REGION_RATE,
    OVERFILL_CENTS,
    OVERFILL_RATE,
    RETURN_DAYS,
    UNDERFILL_CENTS,
    UNDERFILL_MAX_SHARE,
    UNDERFILL_RATE,
    UNKNOWN_TAG_RATE,
)
from server.seed.timeline import M64, MIX_1, MIX_2, MIX_H, MIX_K, NONE, End, Timeline

__all__ = ["KINDS", "Attempt", "Buckets", "MonthPlanner", "Pack"]

KINDS: Final = (
    "deliver",
    "dispatch",
    "fill",
    "fill_refused",
    "inspection",
    "receive",
    "register",
    "return",
    "scrap",
    "transfer",
)
"""Event kinds in the order the events table's (kind, ts) index sorts them."""

Attempt = tuple[int, int, int, int | None, str | None, tuple[str, ...], str, int | None]
"""(second, station site index, gun, cylinder id, tag, reasons, gun code, owner id)."""
Record = tuple[datetime, int, str, int, int, str]
"""(moment, cylinder id, tag, owner id, agency index, result) of an event at an agency."""


class Pack:
    """Bit layout of a planned event (see the module docstring)."""

    SEC: Final = 72
    """The second of the day sits above every payload field."""
    H_BITS: Final = 24
    SITE_BITS: Final = 12
    VEH_BITS: Final = 13
    REF_BITS: Final = 25
    NET_BIAS: Final = 1 << 15
    """Net mass is packed as cents above or below the model's maximum, plus this bias."""
    VEH_NONE: Final = (1 << 13) - 1
    # deliver flags
    TO_CUSTOMER: Final = 0
    OVER_COUNTER: Final = 1
    OUTSIDE: Final = 2
    # check results: 0 all passed; 1..6 a pre-fill item failed; 7..10 a post-fill item
    POST_NET: Final = 7
    """The post-fill item "net weight in range" (an overfill caught at the station)."""


class Buckets:
    """Planned events per kind and day; a day's list is sorted when it is written."""

    def __init__(self) -> None:
        self.by_kind: dict[str, defaultdict[int, list[int]]] = {k: defaultdict(list) for k in KINDS}
        self.refused: dict[int, list[Attempt]] = {}
        self.records: dict[str, dict[int, list[Record]]] = {
            "inspection": {},
            "register": {},
            "scrap": {},
        }
        """Inspections, registrations and scrappings by day: few, kept as tuples."""

    def pop(self, kind: str, day: int) -> list[int]:
        return self.by_kind[kind].pop(day, [])


class MonthPlanner:
    """Plans the fills falling in one month, and everything they lead to (pass A)."""

    def __init__(
        self, tl: Timeline, settings: Settings, guns: list[int], rng: random.Random
    ) -> None:
        self.tl = tl
        self.settings = settings
        self.rng = rng
        self.rand: Callable[[], float] = rng.random
        self.buckets = Buckets()
        self.guns = guns
        """Number of guns of each site (by site index)."""
        self.max_cents = [round(settings.models[s].max_fill_kg * 100) for s in tl.specs]
        lo, hi = UNDERFILL_CENTS
        self.under_span = [
            max(1, min(hi, int(m * UNDERFILL_MAX_SHARE)) - lo + 1) for m in self.max_cents
        ]
        """How far below UNDERFILL_CENTS[0] an underfill of each model may go (a small
        cylinder is never short by most of its gas)."""
        self.station_company = [s.company_id or 0 for s in tl.sites]
        self.entrusting: dict[int, frozenset[int]] = {}
        for co in tl.cos:
            for s in co.entrusted:
                filler = self.station_company[s]
                self.entrusting[filler] = self.entrusting.get(filler, frozenset()) | {co.id}
        cos = tl.cos
        self.fallback_vehicles = [
            cos[tl.co_index[cid]].vehicles if cid in tl.co_index else []
            for cid in self.station_company
        ]
        self.inspections = sorted(tl.inspections, key=lambda r: r[0])
        self.registrations = sorted(tl.registrations, key=lambda r: r[0])

    # ---- a gun's refusal

    def station_facts(self, site: int, day: int) -> StationFacts:
        s = self.tl.sites[site]
        susp = s.suspended_on
        status = "suspended" if susp and day >= susp else "valid"
        # the licence is otherwise valid on every past day (the expiring ones expire later)
        return StationFacts(
            s.id, s.company_id or 0, "seeded", date.fromordinal(self.tl.today), status
        )

    def cylinder_facts(self, h: int) -> CylinderFacts:
        tl = self.tl
        return CylinderFacts(
            tl.cid[h],
            tl.tag[h],
            tl.cos[tl.owner[h]].id,
            "in_service",
            date.fromordinal(tl.next_due[h]),
            date.fromordinal(tl.scrap[h]),
        )

    def refuse(self, site: int, day: int, second: int, h: int, tag: str | None = None) -> None:
        """A gun at *site* asks for cylinder *h* (or an unknown *tag*): record a refusal."""
        tl = self.tl
        facts = None if h == NONE else self.cylinder_facts(h)
        company = self.station_company[site]
        decision = authorize_fill(
            facts,
            self.station_facts(site, day),
            date.fromordinal(day),
            self.entrusting.get(company, frozenset()),
        )
        if decision.allowed:
            return
        gun = int(self.rand() * self.guns[site])
        attempt: Attempt = (
            second,
            site,
            gun,
            None if facts is None else facts.cylinder_id,
            tag if facts is None else facts.tag,
            decision.reason_codes,
            gun_code(decision, self.settings.gun_codes),
            None if facts is None else tl.cos[tl.owner[h]].id,
        )
        self.buckets.refused.setdefault(day, []).append(attempt)

    def refuse_foreign(self, site: int, day: int, second: int) -> None:
        """A station tries another company's cylinder (串瓶)."""
        tl = self.tl
        n = len(tl.cid)
        company = self.station_company[site]
        for _ in range(8):
            h = int(self.rand() * n)
            co = tl.cos[tl.owner[h]]
            if co.id != company and site not in co.allowed and tl.final[h] != End.SCRAPPED:
                self.refuse(site, day, second, h)
                return

    def refuse_unknown(self, site: int, day: int, second: int) -> None:
        """A station tries a tag no cylinder carries (a black-market cylinder, 黑瓶)."""
        tag = f"E2A{self.rng.getrandbits(40):010X}"
        self.refuse(site, day, second, NONE, tag)

    # ---- the month

    def plan(self, ms: int, me: int) -> None:
        """Plan every cycle whose fill falls on a day in [ms, me).

        The hot loop of the history (a million cylinders a month): locals bound once, the
        timeline's hash (`Timeline.mix`, splitmix64) and the fill day inlined."""
        tl = self.tl
        rand = self.rand
        by = self.buckets.by_kind
        fills, dispatches, deliveries, returns = (
            by["fill"],
            by["dispatch"],
            by["deliver"],
            by["return"],
        )
        last, cadence, first, insp, last_sec = tl.last, tl.cadence, tl.first, tl.insp, tl.last_sec
        owner, spec_i, home, suspended = tl.owner, tl.spec_i, tl.home, tl.suspended_on
        cos, bad_site, guns, max_cents = tl.cos, tl.bad_site, self.guns, self.max_cents
        eligible, fallback = tl.eligible_customer, self.fallback_vehicles
        span = tl.span
        half = span // 2
        salt = tl.salt
        jit, jw, gap, slack = (
            CADENCE_JITTER_DAYS,
            2 * CADENCE_JITTER_DAYS + 1,
            INSPECTION_GAP_DAYS,
            8,
        )
        other_cut = int(OTHER_STATION_SHARE * 1024)
        days_d, days_r = DELIVERY_DAYS, RETURN_DAYS
        bias, post_net, sec = Pack.NET_BIAS, Pack.POST_NET, Pack.SEC
        fair_max = FAIR_SHORT_CENTS + 1
        over_lo, over_n = OVERFILL_CENTS[0], OVERFILL_CENTS[1] - OVERFILL_CENTS[0] + 1
        under_lo, under_span = UNDERFILL_CENTS[0], self.under_span
        ab_lo, ab_hi = ABORTED_BEFORE_S
        veh_none, to_customer, over_counter = Pack.VEH_NONE, Pack.TO_CUSTOMER, Pack.OVER_COUNTER
        outside = Pack.OUTSIDE
        m64 = M64
        for h in range(len(last)):
            lh = last[h]
            if lh < ms:
                continue
            p = cadence[h]
            hs = h * MIX_H + salt
            for k in range(
                (lh - me - slack) // p if lh - me - slack > 0 else 0, (lh - ms + slack) // p + 1
            ):
                y = (hs + k * MIX_K) & m64
                y = ((y ^ (y >> 30)) * MIX_1) & m64
                y = ((y ^ (y >> 27)) * MIX_2) & m64
                x = y ^ (y >> 31)
                co = cos[owner[h]]
                s = home[h]
                if k:
                    f = lh - k * p + (x & 0xFF) % jw - jit
                    i = insp[h]
                    if i and i < lh and i - gap <= f <= i:
                        f = i + 1
                    if f < ms or f >= me or f < first[h]:
                        continue
                    pool = co.allowed
                    if len(pool) > 1 and ((x >> 8) & 0x3FF) < other_cut:
                        s = pool[(x >> 18) % len(pool)]
                    su = suspended[s]
                    if su and f >= su:
                        s = tl.licensed(pool, f)
                        if s == NONE:
                            continue  # no station allowed to fill it held a licence that day
                else:
                    f = lh
                    if f < ms or f >= me or f < first[h]:
                        continue
                # ---- the fill, judged later by assess_fill
                bad = bad_site[s]
                maxc = max_cents[spec_i[h]]
                base = (
                    h
                    | s << 24
                    | int(rand() * guns[s]) << 36
                    | ((s * 3 + int(rand() * 3)) & 0xFF) << 60
                )
                second = int(rand() * span) if k else last_sec[h]  # the row's last_fill_at
                fair = bias - int(rand() * fair_max)
                day_fills = fills[f]
                r = rand()
                over, under = OVERFILL_RATE[bad], UNDERFILL_RATE[bad]
                if r < over:
                    net = bias + over_lo + int(rand() * over_n)
                    if bad:  # let it leave
                        day_fills.append(second << sec | base | net << 40)
                    else:  # caught by the post-fill check, decanted and refilled
                        before = max(0, second - ab_lo - int(rand() * (ab_hi - ab_lo)))
                        day_fills.append(before << sec | base | net << 40 | post_net << 56)
                        day_fills.append(second << sec | base | fair << 40)
                elif r < over + under:
                    net = bias - under_lo - int(rand() * under_span[spec_i[h]])
                    day_fills.append(second << sec | base | net << 40)
                elif rand() < CHECK_FAIL_RATE[bad]:
                    before = max(0, second - ab_lo - int(rand() * (ab_hi - ab_lo)))
                    check = 1 + int(rand() * 10)
                    aborted = bias - maxc if check < post_net else fair
                    day_fills.append(before << sec | base | aborted << 40 | check << 56)
                    day_fills.append(second << sec | base | fair << 40)
                else:
                    day_fills.append(second << sec | base | fair << 40)
                if rand() < NOT_OWNER_RATE[bad]:
                    self.refuse_foreign(s, f, int(rand() * span))
                if rand() < UNKNOWN_TAG_RATE[bad]:
                    self.refuse_unknown(s, f, int(rand() * span))
                if not k:
                    self._last_cycle(h, f, s)
                    continue
                # ---- dispatch and delivery a few days later, return before the next fill
                vehicles = co.vehicles or fallback[s]
                veh = vehicles[int(rand() * len(vehicles))] if vehicles else veh_none
                d = f + 1 + (x >> 30) % days_d
                dispatches[d].append(int(rand() * half) << sec | h | s << 24 | veh << 36)
                r = rand()
                flag = to_customer
                cbad = co.bad
                if r < OUT_OF_REGION_RATE[cbad]:
                    flag, ref = outside, int(rand() * 1024)
                elif r < OUT_OF_REGION_RATE[cbad] + ANONYMOUS_SALE_RATE[cbad]:
                    flag, ref = over_counter, s
                else:
                    ref = eligible(co, d, rand())
                    if ref == NONE:
                        flag, ref = over_counter, s
                second = half + int(rand() * (span - half))
                deliveries[d].append(second << sec | h | ref << 24 | veh << 49 | flag << 62)
                kn = k - 1
                y = (hs + kn * MIX_K) & m64
                y = ((y ^ (y >> 30)) * MIX_1) & m64
                y = ((y ^ (y >> 27)) * MIX_2) & m64
                xn = y ^ (y >> 31)
                if kn:
                    fn = lh - kn * p + (xn & 0xFF) % jw - jit
                    i = insp[h]
                    if i and i < lh and i - gap <= fn <= i:
                        fn = i + 1
                    to = home[h]
                    pool = co.allowed
                    if len(pool) > 1 and ((xn >> 8) & 0x3FF) < other_cut:
                        to = pool[(xn >> 18) % len(pool)]
                    su = suspended[to]
                    if su and fn >= su:
                        to = tl.licensed(pool, fn)
                        if to == NONE:
                            to = s
                else:
                    fn, to = lh, home[h]
                back = fn - 1 - (x >> 34) % days_r
                i = insp[h]
                if i and d < i <= back:
                    back = i - 1  # back in time for its inspection
                if to != s:
                    vehicles = co.vehicles or fallback[to]
                    veh = vehicles[int(rand() * len(vehicles))] if vehicles else veh_none
                returns[back].append(((x >> 38) % span) << sec | h | to << 24 | veh << 36)
        for day, h in tl.overdue_attempts:
            if ms <= day < me:
                site = tl.station_for(h, 1, day, tl.mix(h, -1))
                if site != NONE:
                    self.refuse(site, day, int(self.rand() * tl.span), h)
        self._licence_attempts(ms, me)
        self._records(ms, me)

    def _records(self, ms: int, me: int) -> None:
        """The month's inspections, scrappings and registrations, by day."""
        tl = self.tl
        at = tl.clock.at
        records = self.buckets.records
        lo = bisect.bisect_left(self.inspections, ms, key=lambda r: r[0])
        hi = bisect.bisect_left(self.inspections, me, key=lambda r: r[0])
        for day, cid, tag, owner, agency, _next, _scrap, result in self.inspections[lo:hi]:
            kind = "scrap" if result == "scrap" else "inspection"
            moment = at(day, int(self.rand() * tl.span))
            records[kind].setdefault(day, []).append((moment, cid, tag, owner, agency, result))
        local_day = tl.clock.local_day
        for moment, cid, tag, agency, owner in self.registrations:
            day = local_day(moment)
            if ms <= day < me:
                records["register"].setdefault(day, []).append(
                    (moment, cid, tag, owner, agency, "")
                )

    def _licence_attempts(self, ms: int, me: int) -> None:
        """Right after a station lost its licence, its guns were still tried a few times."""
        tl = self.tl
        rand = self.rand
        for site, s in enumerate(tl.sites):
            susp = s.suspended_on
            if not susp or not (ms <= susp < me) or susp < tl.start:
                continue
            mine = [h for h in range(len(tl.home)) if tl.home[h] == site]
            if not mine:
                continue
            lo, hi = LICENCE_ATTEMPTS
            for _ in range(lo + int(rand() * (hi - lo + 1))):
                day = min(susp + int(rand() * 5), tl.today - 1)
                self.refuse(site, day, int(rand() * tl.span), mine[int(rand() * len(mine))])

    def _vehicle(self, co_vehicles: list[int], site: int) -> int:
        pool = co_vehicles or self.fallback_vehicles[site]
        return pool[int(self.rand() * len(pool))] if pool else Pack.VEH_NONE

    def _deliver(self, h: int, day: int, site: int, veh: int, customer: int) -> None:
        """Dispatch in the morning, delivery to *customer* (or over the counter) in the
        afternoon of *day*: the last cycle, which ends where the cylinder's row says."""
        tl = self.tl
        rand = self.rand
        half = tl.span // 2
        by = self.buckets.by_kind
        by["dispatch"][day].append(int(rand() * half) << Pack.SEC | h | site << 24 | veh << 36)
        flag, ref = Pack.TO_CUSTOMER, customer
        if ref == NONE:
            ref = tl.eligible_customer(tl.cos[tl.owner[h]], day, rand())
            if ref == NONE:
                flag, ref = Pack.OVER_COUNTER, site
        second = half + int(rand() * (tl.span - half))
        by["deliver"][day].append(second << Pack.SEC | h | ref << 24 | veh << 49 | flag << 62)

    def _last_cycle(self, h: int, fill: int, site: int) -> None:
        """After the last fill: to where the cylinder's row says it is now."""
        tl = self.tl
        by = self.buckets.by_kind
        co_vehicles = tl.cos[tl.owner[h]].vehicles
        end = tl.final[h]
        if end == End.NONE:
            return
        d0 = tl.d0[h]
        half = tl.span // 2
        if end == End.VEHICLE:
            veh = tl.final_ref[h]
            second = int(self.rand() * half)
            by["dispatch"][d0].append(second << Pack.SEC | h | site << 24 | veh << 36)
        elif end == End.STORE:
            veh = self._vehicle(co_vehicles, site)
            moved = h | site << 24 | tl.final_ref[h] << 36 | veh << 48
            by["transfer"][d0].append(int(self.rand() * half) << Pack.SEC | moved)
            second = half + int(self.rand() * (tl.span - half))
            by["receive"][d0].append(second << Pack.SEC | moved)
        else:
            veh = self._vehicle(co_vehicles, site)
            customer = tl.final_ref[h] if end == End.CUSTOMER else NONE
            self._deliver(h, d0, site, veh, customer)
            if end in (End.RETURNED, End.SCRAPPED):
                to = tl.final_ref[h] if end == End.RETURNED else site
                veh = self._vehicle(co_vehicles, to)
                back = tl.r0_sec[h] << Pack.SEC | h | to << 24 | veh << 36
                by["return"][tl.r0[h]].append(back)
