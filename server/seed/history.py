"""The seeded history: registration and fill events, and fills, so trajectories are not empty.

A sample of the generated cylinders (at most REGISTER_EVENTS_MAX registrations and
FILL_HISTORY_MAX filled cylinders, shape.py) gets a trajectory: the registration (建档) at
its agency and one or two fills in the last HISTORY_DAYS at a station allowed to fill it.
Each fill is judged by the domain's `assess_fill`, like a fill reported by a gun, and fills
of one cylinder lie FILL_SPACING_DAYS apart so the demo never shows a repeat fill that did
not happen (DOMAIN.md).

The rows go in through COPY into staging tables (`server.db.bulk.Staging`): events and
fills carry jsonb, which binary COPY cannot encode directly.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import asyncpg
import orjson

from server.db.bulk import Staging, chunks
from server.domain.events import EventKind, epcis_for
from server.domain.filling import assess_fill
from server.domain.statuses import POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from server.kernel.settings import Settings
from server.seed.names import person_name
from server.seed.records import Clock, Site
from server.seed.shape import (
    CHUNK_ROWS,
    FAIR_FILL_SHORT_KG,
    FILL_DURATION_S,
    FILL_HISTORY_MAX,
    FILL_HISTORY_SHARE,
    FILL_SPACING_DAYS,
    HISTORY_DAYS,
    OVERFILL_BY_KG,
    OVERFILL_SHARE,
    REGISTER_EVENT_SHARE,
    REGISTER_EVENTS_MAX,
    SECOND_FILL_SHARE,
    UNDERFILL_BY_KG,
    UNDERFILL_SHARE,
)

PRE_CHECK_JSON: Final = orjson.dumps(dict.fromkeys(PRE_CHECK_ITEMS, True)).decode()
POST_CHECK_JSON: Final = orjson.dumps(dict.fromkeys(POST_CHECK_ITEMS, True)).decode()

EVENTS_STAGE: Final = Staging(
    "seed_stage_events",
    (
        ("ts", "timestamptz"),
        ("msg_id", "text"),
        ("cylinder_id", "bigint"),
        ("tag", "text"),
        ("kind", "text"),
        ("biz_step", "text"),
        ("disposition", "text"),
        ("site_id", "bigint"),
        ("company_id", "bigint"),
        ("device_id", "text"),
        ("operator", "text"),
        ("lat", "double precision"),
        ("lon", "double precision"),
        ("district_code", "text"),
        ("details", "jsonb"),
    ),
)
FILLS_STAGE: Final = Staging(
    "seed_stage_fills",
    (
        ("ts", "timestamptz"),
        ("msg_id", "text"),
        ("ts_start", "timestamptz"),
        ("gun_id", "text"),
        ("station_id", "bigint"),
        ("company_id", "bigint"),
        ("district_code", "text"),
        ("cylinder_id", "bigint"),
        ("tag", "text"),
        ("spec", "text"),
        ("net_kg", "numeric"),
        ("tare_kg", "numeric"),
        ("gross_kg", "numeric"),
        ("result", "text"),
        ("assessment", "text"),
        ("operator", "text"),
        ("pre_check", "jsonb"),
        ("post_check", "jsonb"),
    ),
)


class History:
    """Collects the sampled history while cylinders are generated; `store` writes it."""

    def __init__(
        self,
        rng: random.Random,
        settings: Settings,
        clock: Clock,
        guns: dict[int, list[str]],
        n_cylinders: int,
        n_stations: int,
    ) -> None:
        self.rng = rng
        self.settings = settings
        self.clock = clock
        self.today = clock.today
        self.guns = guns
        self.events: list[tuple[Any, ...]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.fill_seq = 0
        self.register_budget = min(
            REGISTER_EVENTS_MAX, round(n_cylinders * REGISTER_EVENT_SHARE) or 1
        )
        self.fill_budget = min(FILL_HISTORY_MAX, round(n_cylinders * FILL_HISTORY_SHARE) or 1)
        self.operators = [person_name(rng) for _ in range(max(8, n_stations * 2))]
        self.register_kind = epcis_for(EventKind.register)
        self.fill_kind = epcis_for(EventKind.fill)

    def register(self, cid: int, tag: str, ts: datetime, agency: Site, owner_id: int) -> None:
        """The registration (建档) event of one cylinder at its inspection agency."""
        self.register_budget -= 1
        self.events.append(
            (
                ts,
                f"seed-reg-{cid}",
                cid,
                tag,
                EventKind.register.value,
                self.register_kind.biz_step,
                self.register_kind.disposition,
                agency.id,
                owner_id,
                None,
                None,
                agency.lat,
                agency.lon,
                agency.district,
                '{"source": "seed"}',
            )
        )

    def fills_until(
        self,
        cid: int,
        tag: str,
        spec: str,
        owner_id: int,
        station: Site,
        fill_day: date,
        tare_kg: Decimal,
    ) -> datetime:
        """One or two fills within HISTORY_DAYS, the last on *fill_day*; returns its time."""
        self.fill_budget -= 1
        rng = self.rng
        settings = self.settings
        clock = self.clock
        days_back = (self.today - fill_day).days
        days = [min(days_back, HISTORY_DAYS)]
        if rng.random() < SECOND_FILL_SHARE and days[0] + FILL_SPACING_DAYS <= HISTORY_DAYS:
            days.append(rng.randint(days[0] + FILL_SPACING_DAYS, HISTORY_DAYS))
        guns = self.guns.get(station.id) or [f"GUN-{station.code}-1"]
        latest: datetime | None = None
        max_fill = settings.models[spec].max_fill_kg
        for back in days:
            ts = clock.on_day(self.today - timedelta(days=back), rng.random)
            latest = ts if latest is None or ts > latest else latest
            r = rng.random()
            if r < OVERFILL_SHARE:
                net = max_fill + rng.uniform(*OVERFILL_BY_KG)
            elif r < OVERFILL_SHARE + UNDERFILL_SHARE:
                net = max_fill - rng.uniform(*UNDERFILL_BY_KG)
            else:
                net = max_fill - rng.uniform(*FAIR_FILL_SHORT_KG)
            net = round(net, 2)
            assessment = assess_fill(spec, net, settings.models, settings.filling).value
            self.fill_seq += 1
            msg_id = f"seed-fill-{self.fill_seq}"
            gun = guns[int(rng.random() * len(guns))]
            operator = self.operators[int(rng.random() * len(self.operators))]
            details = orjson.dumps(
                {"source": "seed", "net_kg": net, "result": "completed", "assessment": assessment}
            ).decode()
            self.fills.append(
                (
                    ts,
                    msg_id,
                    ts - timedelta(seconds=rng.randint(*FILL_DURATION_S)),
                    gun,
                    station.id,
                    station.company_id,
                    station.district,
                    cid,
                    tag,
                    spec,
                    Decimal(f"{net:.2f}"),
                    tare_kg,
                    tare_kg + Decimal(f"{net:.2f}"),
                    "completed",
                    assessment,
                    operator,
                    PRE_CHECK_JSON,
                    POST_CHECK_JSON,
                )
            )
            self.events.append(
                (
                    ts,
                    msg_id,
                    cid,
                    tag,
                    EventKind.fill.value,
                    self.fill_kind.biz_step,
                    self.fill_kind.disposition,
                    station.id,
                    owner_id,
                    gun,
                    operator,
                    station.lat,
                    station.lon,
                    station.district,
                    details,
                )
            )
        assert latest is not None
        return latest

    async def store(self, conn: asyncpg.Connection) -> None:
        """Write the collected events and fills (inside the seed's transaction)."""
        for chunk in chunks(self.events, CHUNK_ROWS):
            await EVENTS_STAGE.insert_into(conn, "events", chunk)
        for chunk in chunks(self.fills, CHUNK_ROWS):
            await FILLS_STAGE.insert_into(conn, "fills", chunk)
