"""What the history leaves for the regulator: alerts, refusal counts, inspections, complaints.

- **Alerts** are raised as ingest raises them (ingest/store: overfill, underfill,
  fill_denied, unknown_tag, out_of_region; overstock per site) and worked the way a bureau
  works them: those of the last ALERT_OPEN_DAYS still open or acknowledged (one per kind
  and subject, the ``alerts_open_dedupe`` rule), older ones acknowledged and resolved by a
  regulator. Overstock spells (重瓶超量) cover one to a few days each — the credit round
  counts their days (server/db/credit.py).
- **fill_denials_daily** holds the refused attempts per station, local day and reason, as
  ingest keeps it beside each refusal.
- **inspections** are the periodic inspections and scrappings the timeline placed on the
  cylinders' own dates (DOMAIN.md "Dates"; GB/T 8334-2022).
- **Complaints** (投诉举报) are filed month by month, more about the bad companies, and
  worked new → assigned → answered → closed with their history rows, as the API does
  (server/api/complaints.py); the answer deadline is the domain's.

Household safety inspections (入户安检) are `server.seed.safety`'s.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import asyncpg
import orjson

from server.db.bulk import reserve_ids
from server.domain.complaints import answer_deadline
from server.domain.statuses import ALERT_KINDS
from server.domain.supervision import is_overstock, permitted_storage
from server.kernel.settings import Settings
from server.seed.emit import RawAlert
from server.seed.history_shape import (
    ALERT_OPEN_DAYS,
    ALERT_RESOLVE_HOURS,
    COMPLAINT_BAD,
    COMPLAINT_KIND_SHARES,
    COMPLAINT_LEFT_OPEN,
    COMPLAINT_SOURCE_SHARES,
    COMPLAINT_STAGE_HOURS,
    COMPLAINT_UPHELD,
    COMPLAINTS_PER_THOUSAND,
    OVERSTOCK_CHECKS_PER_DAY,
    OVERSTOCK_DAYS,
    OVERSTOCK_EPISODES,
    OVERSTOCK_PEAK,
)
from server.seed.names import phone_number, words
from server.seed.timeline import Timeline

__all__ = ["Incidents"]

SAMPLE_SLOT_S: Final = 900
"""overstock_samples keeps one peak per site and quarter hour (migration 0220)."""
ALERT_COLUMNS: Final = words(
    "kind severity subject_type subject_id company_id site_id district_code cylinder_id state "
    "count first_at last_at lat lon details acknowledged_at acknowledged_by resolved_at "
    "resolved_by"
)
COMPLAINT_COLUMNS: Final = words(
    "id created_at code cylinder_id company_id district_code text contact state kind source "
    "created_by deadline assigned_company_id assigned_at assigned_by answer answered_at "
    "answered_by outcome closed_at closed_by updated_at"
)
COMPLAINT_EVENT_COLUMNS: Final = words("complaint_id at kind from_state to_state actor_id details")
INSPECTION_COLUMNS: Final = words(
    "cylinder_id agency_site_id inspected_on result next_inspection_date scrap_date report_no "
    "created_at scrap_reason"
)
COMPLAINT_TEXTS: Final[dict[str, tuple[str, ...]]] = {
    "complaint": (
        "送气重量不足，怀疑缺斤短两",
        "预约送气两天仍未送达",
        "送气工服务态度差，乱收上楼费",
        "收费高于公示价格",
    ),
    "report": (
        "小区附近有人私自倒灌液化气",
        "门店内存放大量满瓶，存在安全隐患",
        "有车辆销售无标签的气瓶",
    ),
    "fault": ("气瓶角阀漏气，有明显气味", "气瓶外观锈蚀严重", "瓶身二维码无法扫描"),
}
ANSWERS: Final = (
    "已核实，已对送气人员批评教育并向用户致歉。",
    "经现场核查，气瓶重量符合标准，已向用户解释。",
    "已安排专人上门处理，隐患已消除。",
)


class Incidents:
    """Collects the history's alerts and writes everything of this module's docstring."""

    def __init__(self, tl: Timeline, settings: Settings, rng: random.Random) -> None:
        self.tl = tl
        self.settings = settings
        self.rng = rng
        self.rand = rng.random
        self.alerts: list[tuple[Any, ...]] = []
        self.complaints = 0
        self.samples: dict[tuple[int, datetime], int] = {}
        """(site id, quarter hour) → peak full cylinders, for the overstock report's days."""

    # ---- alerts

    async def write_alerts(
        self, conn: asyncpg.Connection, raw: list[RawAlert], regulator: int | None
    ) -> int:
        """Merge, age and COPY the alerts; how many rows were written."""
        merged: dict[tuple[str, str, date], list[Any]] = {}
        rows: list[list[Any]] = []
        for kind, stype, subject, co, site, district, cyl, at, lat, lon, details in raw:
            if kind in ("fill_denied", "unknown_tag"):  # repeats of a day bump one alert
                key = (kind, subject, at.date())
                have = merged.get(key)
                if have is not None:
                    have[9] += 1
                    have[11] = max(have[11], at)
                    continue
            row = [kind, ALERT_KINDS[kind].severity, stype, subject, co, site, district, cyl,
                   "resolved", 1, at, at, lat, lon, details, None, None, None, None]  # fmt: skip
            if kind in ("fill_denied", "unknown_tag"):
                merged[(kind, subject, at.date())] = row
            rows.append(row)
        rows += self.alerts_overstock()
        self._age(rows, regulator)
        if self.samples and await conn.fetchval(
            "SELECT to_regclass('overstock_samples') IS NOT NULL"
        ):
            await conn.copy_records_to_table(
                "overstock_samples",
                records=[
                    (site, slot, peak, None) for (site, slot), peak in sorted(self.samples.items())
                ],
                columns=["site_id", "slot", "peak_full", "permitted"],
            )
        rows.sort(key=lambda r: r[11])
        await conn.copy_records_to_table(
            "alerts", records=[tuple(r) for r in rows], columns=ALERT_COLUMNS
        )
        return len(rows)

    def _age(self, rows: list[list[Any]], regulator: int | None) -> None:
        rand = self.rand
        clock = self.tl.clock
        cutoff = clock.midnight - timedelta(days=ALERT_OPEN_DAYS)
        latest: dict[tuple[str, str, str], list[Any]] = {}
        lo, hi = ALERT_RESOLVE_HOURS
        for row in sorted(rows, key=lambda r: r[11]):
            last: datetime = row[11]
            if last >= cutoff:
                key = (row[0], row[2], row[3])
                before = latest.get(key)
                if before is not None:  # one open alert per subject: the older one was resolved
                    before[8] = "resolved"
                    before[17] = before[15] = min(row[11], clock.midnight)
                    before[18] = before[16] = regulator
                latest[key] = row
                row[8] = "acknowledged" if rand() < 0.5 else "open"
                if row[8] == "acknowledged":
                    row[15] = min(last + timedelta(hours=lo), clock.midnight)
                    row[16] = regulator
                continue
            acked = last + timedelta(hours=lo + rand() * (hi - lo) / 2)
            row[15], row[16] = acked, regulator
            row[17] = acked + timedelta(hours=rand() * (hi - lo) / 2)
            row[18] = regulator

    def alerts_overstock(self) -> list[list[Any]]:
        """Spells of full cylinders above a site's permitted storage, by the site's profile."""
        tl = self.tl
        rand = self.rand
        clock = tl.clock
        out: list[list[Any]] = []
        lo_d, hi_d = OVERSTOCK_DAYS
        months = max(1, round((tl.today - tl.start) / 30.4))
        for i, site in enumerate(tl.sites):
            if site.company_id is None or site.kind == "inspection_agency":
                continue
            try:
                permitted = permitted_storage(site.kind, site.capacity, self.settings.alerts)
            except ValueError:
                continue
            if not is_overstock(permitted + 1, permitted):
                continue  # no limit at this site
            rate = OVERSTOCK_EPISODES[tl.bad_site[i]] * months
            n = int(rate) + (rand() < rate - int(rate))
            for _ in range(n):
                days = lo_d + int(rand() * (hi_d - lo_d + 1))
                # a spell that has ended: today's stock is the live rule's business
                room = tl.today - ALERT_OPEN_DAYS - 1 - days - tl.start
                if room < 1:
                    continue
                day = tl.start + int(rand() * room)
                first = clock.at(day, int(rand() * tl.span))
                last = first + timedelta(days=days - 1, seconds=rand() * 36_000)
                checks = days * (
                    OVERSTOCK_CHECKS_PER_DAY[0]
                    + int(rand() * (OVERSTOCK_CHECKS_PER_DAY[1] - OVERSTOCK_CHECKS_PER_DAY[0]))
                )
                peak = permitted * (
                    OVERSTOCK_PEAK[0] + rand() * (OVERSTOCK_PEAK[1] - OVERSTOCK_PEAK[0])
                )
                full = max(permitted + 1, int(peak))
                details = orjson.dumps({"full": full, "permitted": permitted}).decode()
                for d in range(days - 1):  # the earlier days' peaks (the last one is the alert's)
                    moment = (first + timedelta(days=d, hours=rand() * 8)).timestamp()
                    slot = datetime.fromtimestamp(moment // SAMPLE_SLOT_S * SAMPLE_SLOT_S, UTC)
                    day_peak = permitted + 1 + int(rand() * (full - permitted))
                    key = (site.id, slot)
                    self.samples[key] = max(self.samples.get(key, 0), day_peak)
                out.append(
                    ["overstock", "critical", "site", site.code, site.company_id, site.id,
                     site.district, None, "resolved", checks, first, last, site.lat, site.lon,
                     details, None, None, None, None]
                )  # fmt: skip
        return out

    # ---- counts and records

    async def write_denials(
        self, conn: asyncpg.Connection, denials: Counter[tuple[int, date, str]]
    ) -> None:
        rows = [(site, day, reason, n) for (site, day, reason), n in sorted(denials.items())]
        if rows:
            await conn.copy_records_to_table(
                "fill_denials_daily", records=rows, columns=["station_id", "day", "reason", "count"]
            )

    async def write_inspections(self, conn: asyncpg.Connection) -> int:
        tl = self.tl
        agencies = tl.city.agencies
        rows = []
        for n, (day, cid, _tag, _owner, agency_i, nxt, scrap, result) in enumerate(
            sorted(tl.inspections)
        ):
            agency = agencies[agency_i]
            inspected = date.fromordinal(day)
            rows.append(
                (
                    cid,
                    agency.id,
                    inspected,
                    result,
                    nxt,
                    scrap,
                    f"{agency.code[3:]}-{inspected:%Y%m}-{n + 1:07d}",
                    tl.clock.at(day, int(self.rand() * tl.span)),
                    "over_age" if result == "scrap" else None,
                )
            )
        if rows:
            await conn.copy_records_to_table(
                "inspections", records=rows, columns=INSPECTION_COLUMNS
            )
        return len(rows)

    # ---- complaints

    async def write_complaints(
        self, conn: asyncpg.Connection, regulator: int | None, responders: dict[int, int]
    ) -> int:
        """Complaints of every month of the history, worked as far as their age allows."""
        tl = self.tl
        rand = self.rand
        settings = self.settings
        clock = tl.clock
        cos = [c for c in tl.cos if c.cylinders]
        if not cos:
            return 0
        weights = [c.cylinders * (COMPLAINT_BAD if c.bad else 1.0) for c in cos]
        months = (tl.today - tl.start) / 30.4
        mean = sum(c.cylinders for c in cos) / 1000 * COMPLAINTS_PER_THOUSAND * months
        n = int(mean) + (rand() < mean - int(mean))
        if not n:
            return 0
        first_id = await reserve_ids(conn, "complaints", n)
        kinds, kind_w = list(COMPLAINT_KIND_SHARES), list(COMPLAINT_KIND_SHARES.values())
        sources, source_w = list(COMPLAINT_SOURCE_SHARES), list(COMPLAINT_SOURCE_SHARES.values())
        by_owner: dict[int, list[int]] = {}
        for h in range(len(tl.cid)):
            by_owner.setdefault(tl.owner[h], []).append(h)
        rows: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        today = date.fromordinal(tl.today)
        lo_h, hi_h = COMPLAINT_STAGE_HOURS
        end = clock.midnight - timedelta(seconds=1)

        def later(t: datetime) -> datetime:
            return min(t + timedelta(hours=lo_h + rand() * (hi_h - lo_h)), end)

        for i in range(n):
            co = self.rng.choices(cos, weights=weights)[0]
            ci = tl.co_index[co.id]
            kind = self.rng.choices(kinds, weights=kind_w)[0]
            source = self.rng.choices(sources, weights=source_w)[0]
            day = tl.start + int(rand() * (tl.today - tl.start))
            created = clock.at(day, int(rand() * tl.span))
            deadline = answer_deadline(created, settings.complaints, settings.alerts)
            mine = by_owner.get(ci)
            pick = mine[int(rand() * len(mine))] if mine and source != "phone" else None
            code, cylinder = (tl.tag[pick], tl.cid[pick]) if pick is not None else (None, None)
            text = self.rng.choice(COMPLAINT_TEXTS[kind])
            cid = first_id + i
            state = "new"
            assigned_at = answered_at = closed_at = None
            answer = outcome = None
            events.append(
                (
                    cid,
                    created,
                    "filed",
                    None,
                    "new",
                    None,
                    orjson.dumps(
                        {"kind": kind, "source": source, "deadline": deadline.isoformat()}
                    ).decode(),
                )
            )
            assigned_at = later(created)
            if assigned_at < end and (deadline < today or rand() < 0.6):
                state = "assigned"
                events.append(
                    (
                        cid,
                        assigned_at,
                        "assign",
                        "new",
                        "assigned",
                        regulator,
                        orjson.dumps(
                            {
                                "assigned_company_id": co.id,
                                "assigned_user_id": None,
                                "deadline": deadline.isoformat(),
                            }
                        ).decode(),
                    )
                )
            else:
                assigned_at = None
            if state == "assigned" and deadline < today and rand() >= COMPLAINT_LEFT_OPEN:
                answered_at = later(assigned_at or created)
                answer = self.rng.choice(ANSWERS)
                state = "answered"
                events.append(
                    (
                        cid,
                        answered_at,
                        "answer",
                        "assigned",
                        "answered",
                        responders.get(co.id),
                        orjson.dumps({"sms": False}).decode(),
                    )
                )
                closed_at = later(answered_at)
                if closed_at < end:
                    outcome = "upheld" if rand() < COMPLAINT_UPHELD[co.bad] else "not_upheld"
                    state = "closed"
                    events.append(
                        (
                            cid,
                            closed_at,
                            "close",
                            "answered",
                            "closed",
                            regulator,
                            orjson.dumps({"outcome": outcome}).decode(),
                        )
                    )
                else:
                    closed_at = None
            updated = closed_at or answered_at or assigned_at or created
            rows.append(
                (cid, created, code, cylinder, co.id, co.district or None, text,
                 phone_number(self.rng), state, kind, source, regulator if source == "phone" else None,
                 deadline, co.id if assigned_at else None, assigned_at,
                 regulator if assigned_at else None, answer, answered_at,
                 responders.get(co.id) if answered_at else None, outcome, closed_at,
                 regulator if closed_at else None, updated)
            )  # fmt: skip
        await conn.copy_records_to_table("complaints", records=rows, columns=COMPLAINT_COLUMNS)
        await conn.copy_records_to_table(
            "complaint_events", records=events, columns=COMPLAINT_EVENT_COLUMNS
        )
        self.complaints = n
        return n
