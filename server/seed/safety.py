"""Household safety inspections of the city's past (入户安检; DOMAIN.md "Safety inspection at
the customer"; docs/API.md "Safety inspections"), so the ``safety-inspections`` report, the
records' pages and the credit's ``rectification_overdue`` have a year to show.

- **Who inspects whom.** A company's delivery workers (送气工) inspect its own real-name
  households. Each worker is a ``station_operator`` account of the company bound to one of its
  sites (one per CUSTOMERS_PER_DELIVERY_WORKER households; the password hash is one nobody
  knows, ``server.kernel.passwords.decoy_hash``; the demo ``station`` login is the first
  company's first worker), and a household keeps its worker. A company without a site of its
  own has nobody to inspect.
- **How often.** About once a year per household from the day its account opened
  (SAFETY_YEARLY_COVERAGE, less at the bad companies of the history): a share at one of the
  history's deliveries to it, minutes after the delivery, the rest on a day of their own.
- **What is found.** Every item of the newest catalogue version of the customer's kind
  (migrations 0200/0211) is answered pass, fail or n/a with the shares of SAFETY_ITEM_RATES
  (aged hoses and missing gas alarms most often; several times as often at the bad
  companies); a failed item that needs a photo has one.
- **Rectifications.** One per failed item with the domain's deadline
  (``server.domain.safety.deadline_for``); most are closed by a re-check, some late, some are
  still open. ``overdue_at`` is set where the overdue round would have set it (the first
  round after the deadline's day, if the rectification was open then), so a server started
  on the seeded city marks nothing again and the credit round counts each lapse once
  (``server.db.safety``).
- **Signed like the API's.** Records are sealed as ``server.api.safety_inspections`` seals
  one: canonical JSON hashed into the chain in id order after the chain's head, and the HMAC
  with the install's key (``server.db.install.load_id_hash_key``: the key file is read, or
  created for the demo database as ``cylwatch serve`` would), so every record's seal check
  passes. The customers' signatures, the photos of an item and the re-check photos are one
  upload row each, shared, with no file: a demo has no pictures (they answer 404).
- **Fast.** ~12 answers a record: at a year of a 1M-cylinder city some 200,000 records and
  2.5M answers. The answers go as binary COPY data (``server.seed.pgcopy``) and every table
  loads with its per-row checks lifted for the load (``server.db.bulk.loading_unchecked``):
  the foreign keys and the "answers only with their record" trigger cost several times the
  COPY per row, while checking them once afterwards is a join. A worker thread makes the
  next RECORD_CHUNK records while the last are COPYed.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import asyncpg

from server.db.bulk import loading_unchecked, reserve_ids
from server.db.install import load_id_hash_key
from server.db.safety import chain_head
from server.domain.safety import GENESIS, canonical, deadline_for, record_hash, seal, seal_key
from server.kernel.passwords import decoy_hash
from server.kernel.settings import Settings
from server.seed import pgcopy as pg
from server.seed.cycles import Pack
from server.seed.history_shape import (
    CUSTOMERS_PER_DELIVERY_WORKER,
    SAFETY_AT_DELIVERY_SHARE,
    SAFETY_ITEM_RATES,
    SAFETY_LATE_DAYS,
    SAFETY_ON_TIME,
    SAFETY_OTHER_ITEM_RATE,
    SAFETY_RECEIVED_S,
    SAFETY_RECTIFIED,
    SAFETY_YEARLY_COVERAGE,
)
from server.seed.names import person_name, words
from server.seed.timeline import Timeline

__all__ = ["SafetyInspections"]

INSPECTION_COLUMNS: Final = words(
    "id client_id customer_id company_id district_code catalogue_id inspector_id "
    "inspector_role inspected_at received_at result failed_count notes lat lon "
    "signature_upload_id prev_hash record_hash seal"
)
ANSWER_COLUMNS: Final = ("inspection_id", "item_id", "answer", "note")
RECTIFICATION_COLUMNS: Final = words(
    "id inspection_id item_id company_id district_code deadline state overdue_at closed_at "
    "closed_by recheck_upload_id recheck_note"
)
USER_COLUMNS: Final = words(
    "id username password_hash display_name role company_id site_id created_at updated_at"
)
WORKER_SITES: Final = ("store", "filling_station", "warehouse")
"""Where a company's delivery workers are based, in this order of preference."""
ROLE: Final = "station_operator"
DELIVERY_GAP_S: Final = (120, 1800)
"""An inspection at a delivery is signed this long after the cylinder was scanned in."""
RECORD_CHUNK: Final = 10_000
"""Records made and COPYed at a time (with ~120,000 answers: ~5 MB of binary COPY data)."""
Chunk = tuple[list[tuple[Any, ...]], list[bytes], list[tuple[int, int, int]], list[Any]]
"""A part's records, answers (binary COPY pieces), photos and failed items."""
RECHECK_NOTES: Final[dict[str, str]] = {
    "hose_condition": "已更换燃气专用软管并加装卡箍，复查合格",
    "hose_type": "已更换为2米以内燃气专用软管，复查合格",
    "regulator_ok": "已更换合格减压阀，复查合格",
    "gas_alarm": "用户已安装燃气泄漏报警器，复查合格",
    "gas_alarm_shutoff": "已安装报警器并联动切断阀，复查合格",
    "valve_no_leak": "已更换角阀，肥皂水检测无泄漏",
    "cooker_ok": "已更换带熄火保护的灶具",
    "cylinder_distance": "气瓶已移至距灶具0.5米以外",
    "storage_limit": "多余气瓶已退回供应站",
}
RECHECK_NOTE: Final = "隐患已整改，复查合格"
PLACEHOLDER: Final = b"cylwatch seed: no picture (demo data) "
"""The bytes whose SHA-256 a placeholder upload row records (no file is written)."""


def _sha(label: str) -> str:
    return hashlib.sha256(PLACEHOLDER + label.encode()).hexdigest()


class SafetyInspections:
    """Samples the history's deliveries while it is written, then writes the inspections."""

    def __init__(self, tl: Timeline, settings: Settings, rng: random.Random) -> None:
        self.tl = tl
        self.settings = settings
        self.rng = rng
        self.rand = rng.random
        self.sampled: list[tuple[int, int]] = []
        """(day, packed delivery) of the deliveries kept for an inspection at the door."""
        self._seen = 0
        days = tl.today - tl.start
        wanted = (
            len(tl.customers.ids)
            * SAFETY_YEARLY_COVERAGE[0]
            * SAFETY_AT_DELIVERY_SHARE
            * days
            / 365
        )
        deliveries = len(tl.cid) * days / 30.4  # about one a cylinder a month (CADENCE_DAYS)
        self.every = max(1, round(deliveries / wanted)) if wanted >= 1 else 0
        """Every this many planned deliveries one is kept (0: none)."""
        self.rectifications = 0
        self._prev = GENESIS
        """The newest record's hash: the chain goes on from it."""

    def sample(self, deliveries: Mapping[int, list[int]], first: int, end: int) -> None:
        """Keep every `every`-th delivery planned on days [first, end) — called between a
        month's planning and its rows, so the history's own random stream is not touched."""
        k = self.every
        if not k:
            return
        for day in range(first, end):
            items = deliveries.get(day)
            if not items:
                continue
            start = (k - 1 - self._seen) % k
            self.sampled.extend((day, p) for p in items[start::k])
            self._seen += len(items)

    # ---- writing

    async def write(self, conn: asyncpg.Connection, users: Sequence[Any]) -> int:
        """Write the inspections, answers, photos and rectifications; how many records."""
        catalogues = await self._catalogues(conn)
        if not catalogues or not self.tl.customers.ids:
            return 0
        workers = await self._workers(conn, users)
        plan = self._plan(workers)
        if not plan:
            return 0
        codes = sorted({it[1] for items in catalogues.values() for it in items[1]})
        uploads = await self._uploads(conn, codes)
        key = seal_key(await load_id_hash_key(self.settings.privacy, conn, os.environ))
        self._prev = await chain_head(conn) or GENESIS  # takes the chain's lock
        first_id = await reserve_ids(conn, "safety_inspections", len(plan))
        loop = asyncio.get_running_loop()
        failed: list[Any] = []
        async with AsyncExitStack() as stack:
            for table, trigger in (
                ("safety_inspections", None),
                ("safety_answers", "safety_answers_with_record"),
                ("safety_photos", "safety_photos_with_record"),
                ("safety_rectifications", None),
            ):
                await stack.enter_async_context(
                    loading_unchecked(conn, table, (trigger,) if trigger else ())
                )
            # one thread makes the next records (in the chain's order) while these are COPYed
            worker = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="seed-safety"))

            def make(start: int) -> asyncio.Future[Chunk]:
                part = plan[start : start + RECORD_CHUNK]
                return loop.run_in_executor(
                    worker, self._records, part, first_id + start, catalogues, workers, uploads, key
                )

            pending = make(0)
            for start in range(0, len(plan), RECORD_CHUNK):
                records, answers, photos, more = await pending
                if start + RECORD_CHUNK < len(plan):
                    pending = make(start + RECORD_CHUNK)
                failed += more
                await conn.copy_records_to_table(
                    "safety_inspections", records=records, columns=INSPECTION_COLUMNS
                )
                data = b"".join((pg.HEADER, *answers, pg.TRAILER))
                await conn.copy_to_table(
                    "safety_answers", source=_once(data), columns=ANSWER_COLUMNS, format="binary"
                )
                if photos:
                    await conn.copy_records_to_table(
                        "safety_photos",
                        records=photos,
                        columns=["inspection_id", "item_id", "upload_id"],
                    )
            rects = await self._rectifications(conn, failed, workers, uploads["recheck"])
            if rects:
                await conn.copy_records_to_table(
                    "safety_rectifications", records=rects, columns=RECTIFICATION_COLUMNS
                )
        self.rectifications = len(rects)
        return len(plan)

    async def _catalogues(
        self, conn: asyncpg.Connection
    ) -> dict[str, tuple[int, list[tuple[int, str, bool, int | None]]]]:
        """The newest version of each customer kind's catalogue: (id, its items as (id, code,
        photo required on fail, rectification days), in order)."""
        rows = await conn.fetch(
            """SELECT c.customer_kind, c.id AS catalogue_id, i.id, i.code,
                      i.photo_required_on_fail, i.rectification_days
                 FROM (SELECT DISTINCT ON (customer_kind) id, customer_kind
                         FROM safety_catalogues ORDER BY customer_kind, version DESC) c
                 JOIN safety_items i ON i.catalogue_id = c.id
                ORDER BY c.customer_kind, i.position"""
        )
        out: dict[str, tuple[int, list[tuple[int, str, bool, int | None]]]] = {}
        for r in rows:
            entry = out.setdefault(r["customer_kind"], (r["catalogue_id"], []))
            entry[1].append(
                (r["id"], r["code"], r["photo_required_on_fail"], r["rectification_days"])
            )
        return out

    async def _workers(self, conn: asyncpg.Connection, users: Sequence[Any]) -> list[list[int]]:
        """Each company's delivery workers (user ids; by company index), created here."""
        tl = self.tl
        demo = {u["company_id"]: u["id"] for u in reversed(users) if u["role"] == ROLE}
        by_company: dict[int, list[int]] = {}
        for i, s in enumerate(tl.sites):
            if s.company_id is not None and s.kind in WORKER_SITES:
                by_company.setdefault(s.company_id, []).append(i)
        since = tl.clock.midnight - timedelta(days=tl.today - tl.start + 30)
        password = decoy_hash(self.settings.auth)
        out: list[list[int]] = []
        rows: list[tuple[Any, ...]] = []
        for co in tl.cos:
            sites = sorted(
                by_company.get(co.id, []), key=lambda i: WORKER_SITES.index(tl.sites[i].kind)
            )
            if not sites or not co.customers:
                out.append([])
                continue
            n = math.ceil(len(co.customers) / CUSTOMERS_PER_DELIVERY_WORKER)
            mine = [demo[co.id]] if co.id in demo else []
            for j in range(len(mine), n):
                site = tl.sites[sites[j % len(sites)]]
                rows.append(
                    (f"{co.code.lower()}-sq{j + 1:03d}", password, f"{person_name(self.rng)}（送气工）",
                     ROLE, co.id, site.id, since, since)
                )  # fmt: skip
                mine.append(-len(rows))  # a placeholder: the id is known once reserved
            out.append(mine)
        if rows:
            first = await reserve_ids(conn, "users", len(rows))
            await conn.copy_records_to_table(
                "users",
                records=[(first + i, *r) for i, r in enumerate(rows)],
                columns=USER_COLUMNS,
            )
            out = [[first - w - 1 if w < 0 else w for w in mine] for mine in out]
        return out

    def _plan(self, workers: list[list[int]]) -> list[tuple[int, int, int]]:
        """(day, second after opening, customer index) of every inspection, in time order."""
        tl = self.tl
        rand = self.rand
        cust = tl.customers
        co_of = [tl.co_index[c] for c in cust.company_ids]
        bad = [c.bad for c in tl.cos]
        span = tl.span
        keep_bad = SAFETY_YEARLY_COVERAGE[1] / SAFETY_YEARLY_COVERAGE[0]
        lo, hi = DELIVERY_GAP_S
        done: set[int] = set()
        plan: list[tuple[int, int, int]] = []
        for day, p in self.sampled:
            if (p >> 62) & 3 != Pack.TO_CUSTOMER:
                continue
            k = (p >> 24) & 0x1FFFFFF
            ci = co_of[k]
            if k in done or not workers[ci] or (bad[ci] and rand() >= keep_bad):
                continue
            done.add(k)
            plan.append((day, min((p >> Pack.SEC) + lo + int(rand() * (hi - lo)), span - 1), k))
        rate = [
            SAFETY_YEARLY_COVERAGE[b] * (1 - SAFETY_AT_DELIVERY_SHARE) / 365 for b in (False, True)
        ]
        for k, opened in enumerate(cust.opened):
            ci = co_of[k]
            first = max(tl.start, opened)
            days = tl.today - first
            if days <= 0 or k in done or not workers[ci] or rand() >= rate[bad[ci]] * days:
                continue
            plan.append((first + int(rand() * days), int(rand() * span), k))
        plan.sort()
        return plan

    async def _uploads(self, conn: asyncpg.Connection, codes: list[str]) -> dict[str, int]:
        """The placeholder upload rows: the signature, a photo per item code, the re-check."""
        labels = [("signature", "image/png", "safety_signature"),
                  ("recheck", "image/jpeg", "safety_recheck")]  # fmt: skip
        labels += [(code, "image/jpeg", "safety_photo") for code in codes]
        first = await reserve_ids(conn, "uploads", len(labels))
        at = self.tl.clock.midnight - timedelta(days=self.tl.today - self.tl.start)
        rows = [
            (first + i, _sha(label), mime, len(PLACEHOLDER) + len(label),
             f"seed-{label}.{mime[6:]}", purpose, at)
            for i, (label, mime, purpose) in enumerate(labels)
        ]  # fmt: skip
        await conn.copy_records_to_table(
            "uploads",
            records=rows,
            columns=["id", "sha256", "mime", "size", "filename", "purpose", "uploaded_at"],
        )
        return {label: first + i for i, (label, _, _) in enumerate(labels)}

    def _records(
        self,
        plan: list[tuple[int, int, int]],
        first_id: int,
        catalogues: dict[str, tuple[int, list[tuple[int, str, bool, int | None]]]],
        workers: list[list[int]],
        uploads: dict[str, int],
        key: bytes,
    ) -> Chunk:
        """The records of *plan* (a part of the whole, its first id *first_id*), sealed in the
        chain's order after the previous part's; their answers as binary COPY pieces, photos,
        and failed items (inspection id, item, code, days, day, second, customer, inspector)."""
        prev = self._prev
        tl = self.tl
        rand = self.rand
        getbits = self.rng.getrandbits
        cust = tl.customers
        clock = tl.clock
        signature = _sha("signature")
        photo_sha = {code: _sha(code) for code in uploads}
        rates: dict[tuple[str, bool], list[tuple[int, str, bool, int | None, float, float]]] = {}
        for kind, (_, items) in catalogues.items():
            for b in (False, True):
                rates[kind, b] = []
                for item_id, code, photo, days in items:
                    normal, bad, na = SAFETY_ITEM_RATES.get(code, SAFETY_OTHER_ITEM_RATE)
                    fail = bad if b else normal
                    rates[kind, b].append((item_id, code, photo, days, fail, fail + na))
        b_answer = {a: pg.text(a) for a in ("pass", "fail", "na")}
        b_item = {it[0]: pg.int8(it[0]) for _, items in catalogues.values() for it in items}
        row4, null = pg.fields(4), pg.NULL
        received_lo, received_hi = SAFETY_RECEIVED_S
        records: list[tuple[Any, ...]] = []
        answers: list[bytes] = []
        photos: list[tuple[int, int, int]] = []
        failed: list[Any] = []
        for n, (day, second, k) in enumerate(plan):
            rid = first_id + n
            ci = tl.co_index[cust.company_ids[k]]
            co = tl.cos[ci]
            kind = cust.kinds[k]
            if kind not in catalogues:  # a kind an admin left without a catalogue
                kind = "resident" if "resident" in catalogues else next(iter(catalogues))
            catalogue_id = catalogues[kind][0]
            mine = workers[ci]
            inspector = mine[k % len(mine)]
            at = clock.at(day, second)
            b_rid = pg.int8(rid)
            record_answers = []
            record_photos = []
            failures = 0
            for item_id, code, photo, days, fail, not_applicable in rates[kind, co.bad]:
                r = rand()
                answer = "fail" if r < fail else "na" if r < not_applicable else "pass"
                record_answers.append({"item_id": item_id, "answer": answer, "note": None})
                answers += (row4, b_rid, b_item[item_id], b_answer[answer], null)
                if answer == "fail":
                    failures += 1
                    failed.append((rid, item_id, code, days, day, second, k, inspector))
                    if photo:
                        photos.append((rid, item_id, uploads[code]))
                        record_photos.append({"item_id": item_id, "sha256": photo_sha[code]})
            result = "fail" if failures else "pass"
            client_id = uuid.UUID(int=getbits(128), version=4)
            lat, lon = cust.lats[k], cust.lons[k]
            body = canonical(
                {
                    "client_id": str(client_id),
                    "customer_id": cust.ids[k],
                    "company_id": co.id,
                    "district_code": cust.districts[k],
                    "catalogue_id": catalogue_id,
                    "inspector_id": inspector,
                    "inspector_role": ROLE,
                    "inspected_at": at,
                    "result": result,
                    "notes": None,
                    "lat": lat,
                    "lon": lon,
                    "corrects": None,
                    "signature_sha256": signature,
                    "answers": record_answers,
                    "photos": record_photos,
                }
            )
            link = record_hash(prev, body)
            received = at + timedelta(
                seconds=received_lo + int(rand() * (received_hi - received_lo))
            )
            records.append(
                (rid, client_id, cust.ids[k], co.id, cust.districts[k], catalogue_id, inspector,
                 ROLE, at, received, result, failures, None, lat, lon, uploads["signature"],
                 prev, link, seal(key, link))
            )  # fmt: skip
            prev = link
        self._prev = prev
        return records, answers, photos, failed

    async def _rectifications(
        self,
        conn: asyncpg.Connection,
        failed: list[Any],
        workers: list[list[int]],
        recheck: int,
    ) -> list[tuple[Any, ...]]:
        """One per failed item: deadline, re-check and the overdue round's mark."""
        if not failed:
            return []
        tl = self.tl
        rand = self.rand
        clock = tl.clock
        cust = tl.customers
        span = tl.span
        default_days = self.settings.safety.rectification_days
        round_s = self.settings.safety.round_interval_s
        first = await reserve_ids(conn, "safety_rectifications", len(failed))
        out: list[tuple[Any, ...]] = []
        for n, (rid, item_id, code, days, day, second, k, inspector) in enumerate(failed):
            ci = tl.co_index[cust.company_ids[k]]
            bad = tl.cos[ci].bad
            deadline = deadline_for(date.fromordinal(day), days, default_days)
            due = deadline.toordinal()
            closed_at: datetime | None = None
            if rand() < SAFETY_RECTIFIED[bad]:
                if rand() < SAFETY_ON_TIME[bad]:
                    c = day + int(rand() * (due - day + 1))
                else:
                    c = due + 1 + int(rand() * SAFETY_LATE_DAYS)
                if c == day:  # the same day: after the inspection, else the next morning
                    if second < span - 1:
                        closed_at = clock.at(c, second + 1 + int(rand() * (span - 1 - second)))
                    else:
                        c += 1
                if closed_at is None and c < tl.today:
                    closed_at = clock.at(c, int(rand() * span))
                if closed_at is not None and c >= tl.today:
                    closed_at = None
            overdue_at = None
            if due + 1 < tl.today:  # the first round of the day after the deadline
                mark = _midnight(clock.midnight, tl.today - due - 1) + timedelta(
                    seconds=rand() * round_s
                )
                if closed_at is None or closed_at > mark:
                    overdue_at = mark
            out.append(
                (first + n, rid, item_id, cust.company_ids[k], cust.districts[k], deadline,
                 "open" if closed_at is None else "closed", overdue_at, closed_at,
                 inspector if closed_at else None, recheck if closed_at else None,
                 RECHECK_NOTES.get(code, RECHECK_NOTE) if closed_at else None)
            )  # fmt: skip
        return out


def _midnight(today_midnight: datetime, days_ago: int) -> datetime:
    """The city's midnight *days_ago* days before today's (``Clock.midnight``)."""
    return (today_midnight - timedelta(days=days_ago)).astimezone(UTC)


async def _once(data: bytes) -> Any:
    yield data
