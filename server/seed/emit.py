"""One planned month of history, unpacked into rows of events and fills (pass B).

The rows are exactly what ingest stores for the same messages (ingest/store/rows.py): a
fill is a ``fills`` row and a ``fill`` event with the same msg_id, judged by
`server.domain.filling.assess_fill` (memoised per model and centigram, since a city has
millions of fills and a few thousand distinct masses); a refused request is a
``fill_refused`` event with every reason, counted per station, day and reason
(``fill_denials_daily``) and raised as ``fill_denied``; scans carry their EPCIS business
step and disposition (DOMAIN.md "Trajectory events"). Alerts are collected as ingest would
raise them and written by `server.seed.incidents`.

Rows leave sorted by (kind, time) within each month, and msg_ids ascend in the same order,
so the events table's (kind, ts) and (msg_id, ts) indexes are built from presorted input
(`server.seed.cycles`, `server.seed.partitions`). jsonb values are JSON text, for
asyncpg's own jsonb codec (`server.seed.partitions.binary_jsonb`).
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import orjson

from server.domain.events import EventKind, epcis_for
from server.domain.filling import assess_fill
from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from server.kernel.settings import Settings
from server.seed.cycles import KINDS, MonthPlanner, Pack
from server.seed.history_shape import FILL_DURATION_S, HISTORY_CHUNK_ROWS
from server.seed.names import person_name, words
from server.seed.records import Site
from server.seed.timeline import Timeline

__all__ = ["EVENT_COLUMNS", "FILL_COLUMNS", "Emitter", "RawAlert"]

EVENT_COLUMNS: Final = words(
    "ts received_at msg_id cylinder_id tag kind biz_step disposition site_id company_id "
    "customer_id device_id operator lat lon district_code details"
)
FILL_COLUMNS: Final = words(
    "ts received_at msg_id ts_start gun_id station_id company_id district_code cylinder_id "
    "tag spec net_kg tare_kg gross_kg result assessment operator pre_check post_check"
)
STREAMS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "events": ("events", EVENT_COLUMNS),
    "events_same": ("events", EVENT_COLUMNS[:-1]),
    "fills": ("fills", FILL_COLUMNS[:-2]),
    "fills_checked": ("fills", FILL_COLUMNS),
}
"""Each stream's table and the columns its rows carry (see `Emitter.month`)."""
SAME_DETAILS: Final = (
    "dispatch",
    "inspection",
    "receive",
    "register",
    "return",
    "scrap",
    "transfer",
)
"""Kinds whose details are the same for every row (the writer's column default)."""
PASSED_CHECKS: Final = (
    orjson.dumps(dict.fromkeys(PRE_CHECK_ITEMS, True)).decode(),
    orjson.dumps(dict.fromkeys(POST_CHECK_ITEMS, True)).decode(),
)
"""pre_check and post_check of a fill whose every item passed (the columns' defaults)."""
OPERATORS: Final = 256
"""Names in the pool of station operators (each station uses three of them)."""

SCRAP_REASON: Final = "over_age"
"""The seeded scrappings happen at the end of the design life (DOMAIN.md "Dates")."""

RawAlert = tuple[
    str, str, str, int | None, int | None, str | None, int | None, datetime, Any, Any, str
]
"""(kind, subject type, subject id, company, site, district, cylinder, at, lat, lon, details)."""

SEQ_FROM: Final = 10**9
"""msg_id sequence numbers start here: ten digits, so they sort as they ascend."""
_LETTERS: Final = {kind: "abcdefghij"[i] for i, kind in enumerate(KINDS)}
"""msg_id letter of each kind: msg_ids ascend with the (kind, time) order of the rows."""


def numeric_cents(cents: int) -> bytes:
    """PostgreSQL's binary ``numeric`` of ``cents / 100`` (cents ≥ 0): ndigits, weight,
    sign, dscale, then base-10000 digits. Made once per distinct mass (`Emitter.cents`):
    asyncpg encodes a Decimal in a few microseconds, and a year of fills has 36M of them."""
    whole, frac = divmod(cents, 100)
    digits: list[int] = []
    while whole:
        whole, d = divmod(whole, 10000)
        digits.insert(0, d)
    weight = len(digits) - 1
    if frac:
        digits.append(frac * 100)
    while digits and digits[0] == 0:  # a mass below 1 kg: no integer digit
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
    return struct.pack(f">hhHh{len(digits)}H", len(digits), weight, 0, 2, *digits)


def _jsonb(value: Any) -> str:
    """A constant jsonb value's text, made once."""
    return orjson.dumps(value).decode()


def _checks(failed: int) -> tuple[str, str]:
    pre = dict.fromkeys(PRE_CHECK_ITEMS, True)
    post = dict.fromkeys(POST_CHECK_ITEMS, True)
    if 1 <= failed < Pack.POST_NET:
        pre[PRE_CHECK_ITEMS[(failed - 1) % len(PRE_CHECK_ITEMS)]] = False
    elif failed >= Pack.POST_NET:
        post[POST_CHECK_ITEMS[(failed - Pack.POST_NET) % len(POST_CHECK_ITEMS)]] = False
    return _jsonb(pre), _jsonb(post)


def _failed_names(failed: int) -> str:
    if not failed:
        return ""
    if failed < Pack.POST_NET:
        return f"pre:{PRE_CHECK_ITEMS[(failed - 1) % len(PRE_CHECK_ITEMS)]}"
    return f"post:{POST_CHECK_ITEMS[(failed - Pack.POST_NET) % len(POST_CHECK_ITEMS)]}"


class Emitter:
    """Turns a planned month into rows, collecting alerts and refusal counts on the way."""

    def __init__(
        self,
        tl: Timeline,
        planner: MonthPlanner,
        settings: Settings,
        guns: list[list[str]],
        vehicle_ids: list[str],
        outside: list[tuple[float, float]],
        agencies: list[Site],
        rng: random.Random,
    ) -> None:
        self.tl = tl
        self.planner = planner
        self.settings = settings
        self.guns = guns
        self.vehicle_ids = vehicle_ids + [None] * (Pack.VEH_NONE + 1 - len(vehicle_ids))
        self.outside = outside
        self.operators = [person_name(rng) for _ in range(OPERATORS)]
        self.clock = tl.clock
        self.secs = tl.clock.seconds
        self.durations = [timedelta(seconds=s) for s in range(FILL_DURATION_S[1] + 1)]
        self.checks = [_checks(c) for c in range(11)]
        self.failed_names = [_failed_names(c) for c in range(11)]
        self._cents: dict[int, tuple[bytes, str]] = {}
        self._assess: list[dict[int, str]] = [{} for _ in tl.specs]
        self.epcis = {k: epcis_for(EventKind(k)) for k in KINDS}
        self.alerts: list[RawAlert] = []
        self.denials: Counter[tuple[int, date, str]] = Counter()
        self.events = 0
        self.fills = 0
        self.refusals = 0
        self.details = {
            k: _jsonb({"action": k})
            for k in ("deliver", "dispatch", "return", "transfer", "receive")
        }
        self.outside_details = _jsonb({"action": "deliver", "out_of_region": True})
        self.agencies = agencies
        self.places = [(s.id, s.lat, s.lon, s.district) for s in tl.sites]
        """(id, lat, lon, district) of each site, by site index."""
        cust = tl.customers
        self.customer_places = list(
            zip(cust.ids, cust.lats, cust.lons, cust.districts, strict=True)
        )
        self.company_ids = [c.id for c in tl.cos]
        self.record_details = {
            "inspection": _jsonb({"result": "pass"}),
            "scrap": _jsonb({"result": "scrap", "reason": SCRAP_REASON}),
            "register": _jsonb({"source": "seed"}),
        }
        self.same_details = {**self.details, **self.record_details}

    def cents(self, c: int) -> tuple[bytes, str]:
        """A mass in centigrams as the numeric column's binary value, and its text."""
        got = self._cents.get(c)
        if got is None:
            got = self._cents[c] = (numeric_cents(c), str(Decimal(c).scaleb(-2)))
        return got

    def assessment(self, spec_i: int, cents: int) -> str:
        """`assess_fill` of this mass, computed once per model and centigram."""
        memo = self._assess[spec_i]
        got = memo.get(cents)
        if got is None:
            spec = self.tl.specs[spec_i]
            got = memo[cents] = assess_fill(
                spec, cents / 100, self.settings.models, self.settings.filling
            ).value
        return got

    # ---- a month

    def month(self, ms: int, me: int, index: int) -> Iterator[tuple[str, Any]]:
        """(stream, rows) chunks of the month [ms, me), the month's *index* in the history.

        Streams (`STREAMS`): ``events`` rows with their details; ``events_same`` rows whose
        details are the constant of their kind, announced by a ``("details", json)`` item
        before them (the writer makes it the column's default: one jsonb parse, not one a
        row); ``fills`` whose check items all passed (the checks are the columns' defaults),
        ``fills_checked`` the aborted attempts with their failed item, after the month's
        other fills."""
        self.seq = SEQ_FROM
        self.prefix = f"seed-{index:03d}"
        chunk = HISTORY_CHUNK_ROWS
        checked: list[tuple[Any, ...]] = []
        for kind in KINDS:
            rows: list[tuple[Any, ...]] = []
            fills: list[tuple[Any, ...]] = []
            same = kind in SAME_DETAILS
            stream = "events_same" if same else "events"
            if same:
                yield "details", self.same_details[kind]
            for day in range(ms, me):
                if kind == "fill_refused":
                    self._refused(day, rows)
                elif kind in ("inspection", "scrap", "register"):
                    self._records(kind, day, rows)
                else:
                    items = self.planner.buckets.pop(kind, day)
                    if not items:
                        continue
                    items.sort()
                    if kind == "fill":
                        self._fills(day, items, rows, fills, checked)
                    else:
                        self._scans(kind, day, items, rows)
                if len(rows) >= chunk:
                    self.events += len(rows)
                    yield stream, rows
                    rows = []
                if len(fills) >= chunk:
                    self.fills += len(fills)
                    yield "fills", fills
                    fills = []
            if rows:
                self.events += len(rows)
                yield stream, rows
            if fills:
                self.fills += len(fills)
                yield "fills", fills
        if checked:
            self.fills += len(checked)
            yield "fills_checked", checked

    def msg_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.prefix}{_LETTERS[kind]}{self.seq}"

    def _fills(
        self,
        day: int,
        items: list[int],
        rows: list[tuple[Any, ...]],
        fills: list[tuple[Any, ...]],
        checked: list[tuple[Any, ...]],
    ) -> None:
        tl = self.tl
        base = self.clock.day_base(day)
        secs, durations = self.secs, self.durations
        sites, guns, operators = tl.sites, self.guns, self.operators
        cids, tags, spec_is, tares = tl.cid, tl.tag, tl.spec_i, tl.tare
        specs, max_cents = tl.specs, self.planner.max_cents
        cents, assessment = self.cents, self.assessment
        checks, failed_names = self.checks, self.failed_names
        biz, disp = self.epcis["fill"].biz_step, self.epcis["fill"].disposition
        dur_lo, dur_span = FILL_DURATION_S[0], FILL_DURATION_S[1] - FILL_DURATION_S[0] + 1
        prefix = f"{self.prefix}{_LETTERS['fill']}"
        seq = self.seq
        alerts = self.alerts
        for p in items:
            second = p >> Pack.SEC
            h = p & 0xFFFFFF
            site = sites[(p >> 24) & 0xFFF]
            gun = guns[(p >> 24) & 0xFFF][(p >> 36) & 0xF]
            spec_i = spec_is[h]
            net_c = max_cents[spec_i] + ((p >> 40) & 0xFFFF) - Pack.NET_BIAS
            failed = (p >> 56) & 0xF
            operator = operators[(p >> 60) & 0xFF]
            ts = base + secs[second]
            seq += 1
            msg_id = prefix + str(seq)
            tare_c = tares[h]
            net, net_s = cents(net_c)
            tare, tare_s = cents(tare_c)
            gross, gross_s = cents(net_c + tare_c)
            judged = assessment(spec_i, net_c)
            result = "aborted" if failed else "completed"
            cid, tag = cids[h], tags[h]
            fill = (ts, ts, msg_id, ts - durations[dur_lo + (h + second) % dur_span], gun,
                    site.id, site.company_id, site.district, cid, tag, specs[spec_i], net, tare,
                    gross, result, judged, operator)  # fmt: skip
            if failed:
                checked.append((*fill, *checks[failed]))
            else:
                fills.append(fill)
            extra = f', "failed_checks": ["{failed_names[failed]}"]' if failed else ""
            rows.append(
                (
                    ts,
                    ts,
                    msg_id,
                    cid,
                    tag,
                    "fill",
                    biz,
                    disp,
                    site.id,
                    site.company_id,
                    None,
                    gun,
                    operator,
                    None,
                    None,
                    site.district,
                    f'{{"net_kg": {net_s}, "tare_kg": {tare_s}, "gross_kg": {gross_s}, "result": '
                    f'"{result}", "assessment": "{judged}", "gun_id": "{gun}"{extra}}}',
                )
            )
            if judged == "overfill" or (judged == "underfill" and not failed):
                details = (
                    f'{{"net_kg": {net_s}, "spec": "{specs[spec_i]}", "gun_id": "{gun}", '
                    f'"msg_id": "{msg_id}", "result": "{result}"}}'
                )
                alerts.append(
                    (judged, "cylinder", tag, site.company_id, site.id, site.district, cid, ts,
                     None, None, details)
                )  # fmt: skip
        self.seq = seq

    def _scans(self, kind: str, day: int, items: list[int], rows: list[tuple[Any, ...]]) -> None:
        """Handheld and vehicle scans: dispatch, deliver, return, transfer, receive."""
        base = self.clock.day_base(day)
        secs = self.secs
        places, customers = self.places, self.customer_places
        tl = self.tl
        cids, tags, owner, companies = tl.cid, tl.tag, tl.owner, self.company_ids
        vehicles = self.vehicle_ids
        biz, disp = self.epcis[kind].biz_step, self.epcis[kind].disposition
        info = self.details[kind]
        prefix = f"{self.prefix}{_LETTERS[kind]}"
        seq = self.seq
        sec, veh_mask = Pack.SEC, Pack.VEH_NONE
        place_shift = 36 if kind == "receive" else 24
        veh_shift = {"deliver": 49, "transfer": 48, "receive": 48}.get(kind, 36)
        deliver = kind == "deliver"
        for p in items:
            h = p & 0xFFFFFF
            ts = base + secs[p >> sec]
            seq += 1
            veh = vehicles[(p >> veh_shift) & veh_mask]
            customer = None
            if not deliver:
                site_id, lat, lon, district = places[(p >> place_shift) & 0xFFF]
            else:
                flag = (p >> 62) & 3
                ref = (p >> 24) & 0x1FFFFFF
                info = self.details["deliver"]
                if flag == Pack.TO_CUSTOMER:
                    customer, lat, lon, district = customers[ref]
                    site_id = None
                elif flag == Pack.OVER_COUNTER:
                    site_id, lat, lon, district = places[ref]
                else:
                    lat, lon = self.outside[ref % len(self.outside)]
                    site_id, district, info = None, None, self.outside_details
                    self.alerts.append(
                        ("out_of_region", "cylinder", tags[h], companies[owner[h]], None, None,
                         cids[h], ts, lat, lon, f'{{"seen_by": "{veh}", "via": "scan"}}')
                    )  # fmt: skip
            row = (ts, ts, prefix + str(seq), cids[h], tags[h], kind, biz, disp, site_id,
                   companies[owner[h]], customer, veh, None, lat, lon, district)  # fmt: skip
            rows.append((*row, info) if deliver else row)  # others: the kind's default details
        self.seq = seq

    def _records(self, kind: str, day: int, rows: list[tuple[Any, ...]]) -> None:
        """Events at an inspection agency: periodic inspection, scrapping, registration."""
        records = self.planner.buckets.records[kind].pop(day, None)
        if not records:
            return
        records.sort(key=lambda r: r[0])
        ep = self.epcis[kind]
        agencies = self.agencies
        for moment, cid, tag, owner, agency_i, _result in records:
            agency = agencies[agency_i]
            rows.append(
                (
                    moment,
                    moment,
                    self.msg_id(kind),
                    cid,
                    tag,
                    kind,
                    ep.biz_step,
                    ep.disposition,
                    agency.id,
                    owner,
                    None,
                    None,
                    None,
                    agency.lat,
                    agency.lon,
                    agency.district,
                )
            )  # fmt: skip  (details: the kind's default)

    def _refused(self, day: int, rows: list[tuple[Any, ...]]) -> None:
        attempts = self.planner.buckets.refused.pop(day, None)
        if not attempts:
            return
        attempts.sort(key=lambda a: a[0])
        tl = self.tl
        base = self.clock.day_base(day)
        local_day = date.fromordinal(day)
        ep = self.epcis["fill_refused"]
        for second, site_i, gun_i, cid, maybe_tag, reasons, code, _owner in attempts:
            tag = maybe_tag or ""
            site = tl.sites[site_i]
            gun = self.guns[site_i][gun_i]
            ts = base + self.secs[second]
            msg_id = self.msg_id("fill_refused")
            latency = 8 + (second * 7919) % 40
            details = orjson.dumps(
                {
                    "decision": "deny",
                    "reasons": list(reasons),
                    "code": code,
                    "gun_id": gun,
                    "latency_ms": float(latency),
                }
            ).decode()
            rows.append(
                (ts, ts, msg_id, cid, tag, "fill_refused", ep.biz_step, ep.disposition, site.id,
                 site.company_id, None, gun, None, None, None, site.district, details)
            )  # fmt: skip
            for reason in reasons:
                self.denials[(site.id, local_day, reason)] += 1
            self.refusals += 1
            alert = orjson.dumps(
                {
                    "reasons": list(reasons),
                    "code": code,
                    "gun_id": gun,
                    "station": site.code,
                    "msg_id": msg_id,
                }
            ).decode()
            self.alerts.append(
                ("fill_denied", "cylinder", tag, site.company_id, site.id, site.district, cid, ts,
                 None, None, alert)
            )  # fmt: skip
            if "unknown_tag" in reasons:
                seen = orjson.dumps({"seen_by": gun, "station": site.code, "via": "auth"}).decode()
                self.alerts.append(
                    ("unknown_tag", "cylinder", tag, site.company_id, site.id, site.district,
                     cid, ts, None, None, seen)
                )  # fmt: skip
