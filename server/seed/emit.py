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
(`server.seed.cycles`, `server.seed.partitions`). They leave as binary COPY data
(`server.seed.pgcopy`): each cylinder's, site's, customer's and kind's values are encoded
once, and a row is the join of a few ready pieces.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from server.domain.events import EventKind, epcis_for
from server.domain.filling import assess_fill
from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from server.kernel.settings import Settings
from server.seed import pgcopy as pg
from server.seed.cycles import KINDS, MonthPlanner, Pack
from server.seed.history_shape import FILL_DURATION_S, HISTORY_CHUNK_ROWS
from server.seed.names import person_name, words
from server.seed.records import Site
from server.seed.timeline import Timeline

__all__ = ["EVENT_COLUMNS", "FILL_COLUMNS", "PASSED_CHECKS", "STREAMS", "Emitter", "RawAlert"]

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
    "deliver",
    "dispatch",
    "inspection",
    "receive",
    "register",
    "return",
    "scrap",
    "transfer",
)
"""Kinds whose details are the same for every row (the writer's column default) — but a
delivery outside the city, which says so and is written after its kind's block."""
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


class Out:
    """Rows of one COPY being made: their pieces in order (joined once) and their count."""

    __slots__ = ("n", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.n = 0


class Emitter:
    """Turns a planned month into binary COPY chunks, collecting alerts and refusal counts."""

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
        self.vehicle_ids: list[str | None] = [*vehicle_ids]
        self.vehicle_ids += [None] * (Pack.VEH_NONE + 1 - len(vehicle_ids))
        self.outside = outside
        self.operators = [person_name(rng) for _ in range(OPERATORS)]
        self.clock = tl.clock
        self.checks = [tuple(pg.jsonb(c) for c in _checks(f)) for f in range(11)]
        self.failed_names = [_failed_names(c) for c in range(11)]
        self._cents: dict[int, tuple[bytes, str]] = {}
        self._assess: list[dict[int, tuple[str, bytes]]] = [{} for _ in tl.specs]
        self.epcis = {k: epcis_for(EventKind(k)) for k in KINDS}
        self.alerts: list[RawAlert] = []
        self.denials: Counter[tuple[int, date, str]] = Counter()
        self.events = 0
        self.fills = 0
        self.refusals = 0
        self.agencies = agencies
        self.outside_rows = Out()
        """Deliveries outside the city of the current kind block (with their own details)."""
        self.outside_details = pg.jsonb(_jsonb({"action": "deliver", "out_of_region": True}))
        self.same_details = {
            **{
                k: _jsonb({"action": k})
                for k in ("deliver", "dispatch", "return", "transfer", "receive")
            },
            "inspection": _jsonb({"result": "pass"}),
            "scrap": _jsonb({"result": "scrap", "reason": SCRAP_REASON}),
            "register": _jsonb({"source": "seed"}),
        }
        # every repeated value encoded once (server.seed.pgcopy)
        self.b_cyl = [pg.int8(c) + pg.text(t) for c, t in zip(tl.cid, tl.tag, strict=True)]
        """cylinder_id and tag of each cylinder with a history."""
        self.b_owner = [pg.int8(c.id) for c in tl.cos]
        self.b_site = [
            (pg.int8(s.id), pg.int8(s.company_id), pg.text(s.district),
             pg.float8(s.lat) + pg.float8(s.lon) + pg.text(s.district))
            for s in tl.sites
        ]  # fmt: skip
        """(id, company, district, lat + lon + district) of each site."""
        cust = tl.customers
        self.b_customer = [
            (pg.int8(i), pg.float8(la) + pg.float8(lo) + pg.text(d))
            for i, la, lo, d in zip(cust.ids, cust.lats, cust.lons, cust.districts, strict=True)
        ]
        self.b_vehicle = [pg.text(v) for v in self.vehicle_ids]
        self.b_guns = [[pg.text(g) for g in site_guns] for site_guns in guns]
        self.b_operators = [pg.text(o) for o in self.operators]
        self.b_kind = {
            k: pg.text(k) + pg.text(self.epcis[k].biz_step) + pg.text(self.epcis[k].disposition)
            for k in KINDS
        }
        self.b_specs = [pg.text(s) for s in tl.specs]
        self.b_result = {False: pg.text("completed"), True: pg.text("aborted")}

    def cents(self, c: int) -> tuple[bytes, str]:
        """A mass in centigrams as a numeric field, and its text."""
        got = self._cents.get(c)
        if got is None:
            got = self._cents[c] = (
                pg.numeric(pg.numeric_cents(c)),
                str(Decimal(c).scaleb(-2)),
            )
        return got

    def assessment(self, spec_i: int, cents: int) -> tuple[str, bytes]:
        """`assess_fill` of this mass (and as a text field), once per model and centigram."""
        memo = self._assess[spec_i]
        got = memo.get(cents)
        if got is None:
            spec = self.tl.specs[spec_i]
            judged = assess_fill(spec, cents / 100, self.settings.models, self.settings.filling)
            got = memo[cents] = (judged.value, pg.text(judged.value))
        return got

    # ---- a month

    def month(self, ms: int, me: int, index: int) -> Iterator[tuple[str, Any]]:
        """(stream, binary COPY data) chunks of the month [ms, me), its *index*-th.

        Streams (`STREAMS`): ``events`` rows with their details; ``events_same`` rows whose
        details are the constant of their kind, announced by a ``("details", json)`` item
        before them (the writer makes it the column's default: one jsonb parse, not one a
        row); ``fills`` whose check items all passed (the checks are the columns' defaults),
        ``fills_checked`` the aborted attempts with their failed item, after the month's
        other fills."""
        self.seq = SEQ_FROM
        self.prefix = f"seed-{index:03d}"
        chunk = HISTORY_CHUNK_ROWS
        checked = Out()
        for kind in KINDS:
            rows, fills = Out(), Out()
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
                if rows.n >= chunk:
                    yield stream, self._data(rows, "events")
                    rows = Out()
                if fills.n >= chunk:
                    yield "fills", self._data(fills, "fills")
                    fills = Out()
            if rows.n:
                yield stream, self._data(rows, "events")
            if self.outside_rows.n:
                yield "events", self._data(self.outside_rows, "events")
                self.outside_rows = Out()
            if fills.n:
                yield "fills", self._data(fills, "fills")
        if checked.n:
            yield "fills_checked", self._data(checked, "fills")

    def _data(self, out: Out, table: str) -> bytes:
        if table == "events":
            self.events += out.n
        else:
            self.fills += out.n
        return b"".join((pg.HEADER, *out.parts, pg.TRAILER))

    def _msg(self, kind: str) -> tuple[bytes, str]:
        """(length-prefixed text of the msg_ids of *kind* without their number, its str)."""
        prefix = f"{self.prefix}{_LETTERS[kind]}"
        width = len(prefix) + len(str(SEQ_FROM))
        return struct.pack(">i", width) + prefix.encode(), prefix

    def msg_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.prefix}{_LETTERS[kind]}{self.seq}"

    def _fills(
        self,
        day: int,
        items: list[int],
        rows: Out,
        fills: Out,
        checked: Out,
    ) -> None:
        tl = self.tl
        base_us = pg.micros(self.clock.day_base(day))
        stamp = pg.timestamp
        sites, guns = tl.sites, self.guns
        b_site, b_guns, b_ops, b_cyl = self.b_site, self.b_guns, self.b_operators, self.b_cyl
        b_specs, b_result, checks = self.b_specs, self.b_result, self.checks
        tags, cids, spec_is, tares = tl.tag, tl.cid, tl.spec_i, tl.tare
        specs, max_cents = tl.specs, self.planner.max_cents
        cents, assessment, failed_names = self.cents, self.assessment, self.failed_names
        kind_b = self.b_kind["fill"]
        msg_b, prefix = self._msg("fill")
        n17, n19, null = pg.fields(17), pg.fields(19), pg.NULL
        dur_lo, dur_span = FILL_DURATION_S[0], FILL_DURATION_S[1] - FILL_DURATION_S[0] + 1
        seq = self.seq
        alerts = self.alerts
        rows_parts, fills_parts = rows.parts, fills.parts
        rows.n += len(items)
        for p in items:
            second = p >> Pack.SEC
            h = p & 0xFFFFFF
            s_i = (p >> 24) & 0xFFF
            g_i = (p >> 36) & 0xF
            spec_i = spec_is[h]
            net_c = max_cents[spec_i] + ((p >> 40) & 0xFFFF) - Pack.NET_BIAS
            failed = (p >> 56) & 0xF
            op_i = (p >> 60) & 0xFF
            us = base_us + second * 1_000_000
            ts = stamp(us)
            seq += 1
            num = str(seq)
            site_id, company, district, _geo = b_site[s_i]
            gun_b, op_b = b_guns[s_i][g_i], b_ops[op_i]
            tare_c = tares[h]
            net, net_s = cents(net_c)
            tare, tare_s = cents(tare_c)
            gross, gross_s = cents(net_c + tare_c)
            judged, judged_b = assessment(spec_i, net_c)
            result = "aborted" if failed else "completed"
            msg = msg_b + num.encode()
            fill = (
                ts, ts, msg, stamp(us - (dur_lo + (h + second) % dur_span) * 1_000_000),
                gun_b, site_id, company, district, b_cyl[h], b_specs[spec_i], net, tare, gross,
                b_result[bool(failed)], judged_b, op_b,
            )  # fmt: skip
            if failed:
                checked.parts += (n19, *fill, *checks[failed])
                checked.n += 1
            else:
                fills_parts.append(n17)
                fills_parts += fill
                fills.n += 1
            gun = guns[s_i][g_i]
            extra = f', "failed_checks": ["{failed_names[failed]}"]' if failed else ""
            details = (
                f'{{"net_kg": {net_s}, "tare_kg": {tare_s}, "gross_kg": {gross_s}, "result": '
                f'"{result}", "assessment": "{judged}", "gun_id": "{gun}"{extra}}}'
            )
            rows_parts += (n17, ts, ts, msg, b_cyl[h], kind_b, site_id, company, null, gun_b,
                           op_b, null, null, district, pg.jsonb(details))  # fmt: skip
            if judged == "overfill" or (judged == "underfill" and not failed):
                site = sites[s_i]
                alert = (
                    f'{{"net_kg": {net_s}, "spec": "{specs[spec_i]}", "gun_id": "{gun}", '
                    f'"msg_id": "{prefix}{num}", "result": "{result}"}}'
                )
                alerts.append(
                    (judged, "cylinder", tags[h], site.company_id, site.id, site.district,
                     cids[h], self.clock.at(day, second), None, None, alert)
                )  # fmt: skip
        self.seq = seq

    def _scans(self, kind: str, day: int, items: list[int], rows: Out) -> None:
        """Handheld and vehicle scans: dispatch, deliver, return, transfer, receive."""
        tl = self.tl
        base_us = pg.micros(self.clock.day_base(day))
        stamp = pg.timestamp
        b_site, b_customer, b_cyl, b_owner = self.b_site, self.b_customer, self.b_cyl, self.b_owner
        b_vehicle, owner = self.b_vehicle, tl.owner
        kind_b = self.b_kind[kind]
        msg_b, _ = self._msg(kind)
        n16, null = pg.fields(16), pg.NULL
        seq = self.seq
        sec, veh_mask = Pack.SEC, Pack.VEH_NONE
        place_shift = 36 if kind == "receive" else 24
        veh_shift = {"deliver": 49, "transfer": 48, "receive": 48}.get(kind, 36)
        deliver = kind == "deliver"
        parts = rows.parts
        rows.n += len(items)
        for p in items:
            h = p & 0xFFFFFF
            ts = stamp(base_us + (p >> sec) * 1_000_000)
            seq += 1
            veh = b_vehicle[(p >> veh_shift) & veh_mask]
            num = str(seq).encode()
            if not deliver:
                site_id, _, _, geo = b_site[(p >> place_shift) & 0xFFF]
                parts += (n16, ts, ts, msg_b, num, b_cyl[h], kind_b, site_id, b_owner[owner[h]],
                          null, veh, null, geo)  # fmt: skip
                continue
            flag = (p >> 62) & 3
            ref = (p >> 24) & 0x1FFFFFF
            if flag == Pack.TO_CUSTOMER:
                customer, geo = b_customer[ref]
                parts += (n16, ts, ts, msg_b, num, b_cyl[h], kind_b, null, b_owner[owner[h]],
                          customer, veh, null, geo)  # fmt: skip
            elif flag == Pack.OVER_COUNTER:
                site_id, _, _, geo = b_site[ref]
                parts += (n16, ts, ts, msg_b, num, b_cyl[h], kind_b, site_id, b_owner[owner[h]],
                          null, veh, null, geo)  # fmt: skip
            else:
                rows.n -= 1
                lat, lon = self.outside[ref % len(self.outside)]
                geo = pg.float8(lat) + pg.float8(lon) + null
                self.outside_rows.parts += (
                    pg.fields(17), ts, ts, msg_b, num, b_cyl[h], kind_b, null, b_owner[owner[h]],
                    null, veh, null, geo, self.outside_details,
                )  # fmt: skip
                self.outside_rows.n += 1
                vehicle = self.vehicle_ids[(p >> veh_shift) & veh_mask]
                self.alerts.append(
                    ("out_of_region", "cylinder", tl.tag[h], tl.cos[owner[h]].id, None, None,
                     tl.cid[h], self.clock.at(day, p >> sec), lat, lon,
                     f'{{"seen_by": "{vehicle}", "via": "scan"}}')
                )  # fmt: skip
        self.seq = seq

    def _records(self, kind: str, day: int, rows: Out) -> None:
        """Events at an inspection agency: periodic inspection, scrapping, registration."""
        records = self.planner.buckets.records[kind].pop(day, None)
        if not records:
            return
        records.sort(key=lambda r: r[0])
        kind_b, null = self.b_kind[kind], pg.NULL
        for moment, cid, tag, owner, agency_i, _result in records:
            agency = self.agencies[agency_i]
            ts = pg.timestamp(pg.micros(moment))
            geo = pg.float8(agency.lat) + pg.float8(agency.lon) + pg.text(agency.district)
            rows.parts += (
                pg.fields(16),
                ts,
                ts,
                pg.text(self.msg_id(kind)),
                pg.int8(cid),
                pg.text(tag),
                kind_b,
                pg.int8(agency.id),
                pg.int8(owner),
                null,
                null,
                null,
                geo,
            )  # fmt: skip  (details: the kind's default)
            rows.n += 1

    def _refused(self, day: int, rows: Out) -> None:
        attempts = self.planner.buckets.refused.pop(day, None)
        if not attempts:
            return
        attempts.sort(key=lambda a: a[0])
        tl = self.tl
        base_us = pg.micros(self.clock.day_base(day))
        local_day = date.fromordinal(day)
        kind_b, null = self.b_kind["fill_refused"], pg.NULL
        for second, site_i, gun_i, cid, maybe_tag, reasons, code, _owner in attempts:
            tag = maybe_tag or ""
            site = tl.sites[site_i]
            site_id, company, district, _geo = self.b_site[site_i]
            gun = self.guns[site_i][gun_i]
            ts = pg.timestamp(base_us + second * 1_000_000)
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
            rows.parts += (
                pg.fields(17), ts, ts, pg.text(msg_id), pg.int8(cid), pg.text(tag), kind_b,
                site_id, company, null, self.b_guns[site_i][gun_i], null, null, null, district,
                pg.jsonb(details),
            )  # fmt: skip
            rows.n += 1
            for reason in reasons:
                self.denials[(site.id, local_day, reason)] += 1
            self.refusals += 1
            at = self.clock.at(day, second)
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
                ("fill_denied", "cylinder", tag, site.company_id, site.id, site.district, cid, at,
                 None, None, alert)
            )  # fmt: skip
            if "unknown_tag" in reasons:
                seen = orjson.dumps({"seen_by": gun, "station": site.code, "via": "auth"}).decode()
                self.alerts.append(
                    ("unknown_tag", "cylinder", tag, site.company_id, site.id, site.district,
                     cid, at, None, None, seen)
                )  # fmt: skip
