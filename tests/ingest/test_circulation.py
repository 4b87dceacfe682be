"""Circulation checks end to end (DOMAIN.md "Circulation checks"): handhelds and guns publish
on the real broker, the worker stores and judges, and the alerts are what a regulator sees —
one test per rule, and the handheld's ``site`` checked against its company."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from ingest.schemas import Parsed, parse
from ingest.store.batch import BatchStore
from ingest.store.context import Item
from realtime.bus import EventBus
from server.kernel.districts import District, DistrictIndex
from server.kernel.events import Event
from tests.ingest.conftest import (
    INSIDE,
    INSIDE_2,
    Env,
    count,
    eventually,
    mid,
    now_ms,
    publish,
    running_worker,
)

FAR = (34.80, 114.30)
"""About 59 km east of INSIDE (STA-A1 and STORE-A1 are within 2 km of it)."""


@pytest.fixture(scope="module")
async def live(env: Env) -> AsyncIterator[list[Event]]:
    """One worker for the module, its live events collected; and what the rules need
    beyond the shared little city: a handheld of company B, a store of company C (which
    entrusted company A)."""
    w = env.world
    async with env.pool.acquire() as conn:
        w.devices["HH-B1"] = await conn.fetchval(
            """INSERT INTO devices (device_id, kind, company_id, site_id)
               VALUES ('HH-B1', 'handheld', $1, $2) RETURNING id""",
            w.companies["B"],
            w.sites["STA-B1"],
        )
        w.sites["STORE-C1"] = await conn.fetchval(
            """INSERT INTO sites (code, name, kind, company_id, district_code, lat, lon)
               VALUES ('STORE-C1', '站点STORE-C1', 'store', $1, '410105', 34.78, 113.66)
               RETURNING id""",
            w.companies["C"],
        )
    bus = EventBus()
    seen: list[Event] = []
    bus.listen(None, seen.append)
    async with running_worker(env.settings, env.pool, bus):
        yield seen


async def cylinder(
    env: Env,
    tag: str,
    owner: str = "A",
    *,
    status: str = "in_service",
    next_days: int = 500,
    voided: bool = False,
) -> int:
    """A cylinder of its own for one test (the module's city is shared by the tests)."""
    today = env.world.today
    cid: int = await env.pool.fetchval(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
                                  next_inspection_date, scrap_date, status, tag_voided,
                                  district_code, registered_at)
           VALUES ($1, $2, 'YSP35.5', $3, $4, $5, $6, $7, '410105', now() - interval '1 day')
           RETURNING id""",
        tag,
        env.world.companies[owner],
        today - dt.timedelta(days=3 * 365),
        today + dt.timedelta(days=next_days),
        today + dt.timedelta(days=5 * 365),
        status,
        voided,
    )
    env.world.cylinders[tag] = cid
    return cid


def scan(
    device: str,
    tag: str,
    action: str,
    ts: int,
    *,
    site: str | None = None,
    customer: str | None = None,
    at: tuple[float, float] | None = None,
) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"msg_id": mid(), "ts": ts, "tag": tag, "action": action}
    if site:
        body["site"] = site
    if customer:
        body["customer"] = customer
    if at:
        body["lat"], body["lon"] = at
    return f"cyl/v1/handheld/{device}/scan", body


def fill(gun: str, tag: str, ts: int) -> tuple[str, dict[str, Any]]:
    return f"cyl/v1/gun/{gun}/fill", {"msg_id": mid(), "ts": ts, "tag": tag, "net_kg": 14.6}


async def stored(env: Env, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish and wait until every message's trajectory event is stored: its batch, alerts
    included, has committed."""
    await publish(env.mqtt_url, messages)
    ids = [m[1]["msg_id"] for m in messages]
    await eventually(lambda: _all_stored(env, ids))


async def _all_stored(env: Env, ids: list[str]) -> bool:
    return await count(env.pool, "SELECT count(*) FROM events WHERE msg_id = ANY($1)", ids) == len(
        ids
    )


async def alerts(env: Env, kind: str, tag: str) -> list[Any]:
    return list(
        await env.pool.fetch("SELECT * FROM alerts WHERE kind = $1 AND subject_id = $2", kind, tag)
    )


# --------------------------------------------------------------------------- the rules


async def test_an_overdue_scrapped_or_voided_cylinder_moving_on_raises_circulation_violation(
    env: Env, live: list[Event]
) -> None:
    w = env.world
    await cylinder(env, "CV-OVERDUE", next_days=-1)
    await cylinder(env, "CV-SCRAPPED", status="scrapped")
    await cylinder(env, "CV-VOIDED", voided=True)
    await cylinder(env, "CV-BACK", next_days=-1)
    await cylinder(env, "CV-FINE", next_days=10)  # inspection due soon: still lawful
    t = now_ms()
    await stored(
        env,
        [
            scan("HH-A1", "CV-OVERDUE", "dispatch", t, site="STORE-A1"),
            scan("HH-A1", "CV-SCRAPPED", "deliver", t, customer="CUST-A1", at=INSIDE_2),
            scan("HH-A1", "CV-VOIDED", "transfer", t),
            scan("HH-A1", "CV-BACK", "return", t, site="STORE-A1"),  # taken back: as it should
            scan("HH-A1", "CV-FINE", "receive", t, site="STORE-A1"),
        ],
    )
    (overdue,) = await alerts(env, "circulation_violation", "CV-OVERDUE")
    assert overdue["severity"] == "critical" and overdue["count"] == 1
    assert overdue["details"]["reason"] == "overdue"
    assert overdue["details"]["action"] == "dispatch"
    assert overdue["company_id"] == w.companies["A"]
    assert overdue["site_id"] == w.sites["STORE-A1"]
    assert (overdue["lat"], overdue["lon"]) == (34.79, 113.65)  # the site's: it is on the map
    assert overdue["cylinder_id"] == w.cylinders["CV-OVERDUE"]
    (scrapped,) = await alerts(env, "circulation_violation", "CV-SCRAPPED")
    assert scrapped["details"]["reason"] == "scrapped"
    assert (scrapped["lat"], scrapped["lon"]) == INSIDE_2
    assert scrapped["district_code"] == "410103"  # the customer's district
    (voided,) = await alerts(env, "circulation_violation", "CV-VOIDED")
    assert voided["details"]["reasons"] == ["tag_voided"]
    assert await alerts(env, "circulation_violation", "CV-BACK") == []
    assert await alerts(env, "circulation_violation", "CV-FINE") == []
    # the same cylinder moved on again while the alert is open: one alert, counted
    await stored(env, [scan("HH-A1", "CV-OVERDUE", "deliver", t + 1000, customer="CUST-A1")])
    (again,) = await alerts(env, "circulation_violation", "CV-OVERDUE")
    assert again["id"] == overdue["id"] and again["count"] == 2
    # live, like every alert: the map, the wall and the officers' phones get it
    await eventually(
        lambda: _any(
            live,
            lambda e: (
                e.channel == "alerts"
                and e.data["kind"] == "circulation_violation"
                and e.data["subject_id"] == "CV-SCRAPPED"
            ),
        )
    )


async def test_a_delivery_without_a_licensed_fill_since_the_return_raises_suspected_illegal_fill(
    env: Env, live: list[Event]
) -> None:
    for tag in ("IF-NOFILL", "IF-OK", "IF-UNLICENSED", "IF-NEVER", "IF-NO-RETURN"):
        await cylinder(env, tag)
    t = now_ms()
    # step by step, each stored before the next: the order is the point
    await stored(
        env,
        [
            fill("GUN-A1", "IF-NOFILL", t),
            scan("HH-A1", "IF-OK", "return", t, site="STORE-A1"),
            scan("HH-A1", "IF-UNLICENSED", "return", t, site="STORE-A1"),
            fill("GUN-A1", "IF-NO-RETURN", t),
        ],
    )
    await stored(
        env,
        [
            scan("HH-A1", "IF-NOFILL", "return", t + 1000, site="STORE-A1"),
            fill("GUN-A1", "IF-OK", t + 1000),
            fill("GUN-AX", "IF-UNLICENSED", t + 1000),  # STA-AX's licence expired yesterday
        ],
    )
    await stored(
        env,
        [
            scan("HH-A1", tag, "deliver", t + 2000, customer="CUST-A1", at=INSIDE_2)
            for tag in ("IF-NOFILL", "IF-OK", "IF-UNLICENSED", "IF-NEVER", "IF-NO-RETURN")
        ],
    )
    (nofill,) = await alerts(env, "suspected_illegal_fill", "IF-NOFILL")
    assert nofill["severity"] == "critical"
    assert nofill["details"]["customer"] == "CUST-A1"
    assert nofill["details"]["last_return_at"] is not None
    assert nofill["company_id"] == env.world.companies["A"]
    assert len(await alerts(env, "suspected_illegal_fill", "IF-UNLICENSED")) == 1
    assert len(await alerts(env, "suspected_illegal_fill", "IF-NEVER")) == 1
    assert await alerts(env, "suspected_illegal_fill", "IF-OK") == []
    assert await alerts(env, "suspected_illegal_fill", "IF-NO-RETURN") == []
    # a fill and the delivery in one batch: the fill counts (the batch applies in ts order)
    await cylinder(env, "IF-SAME-BATCH")
    await stored(env, [scan("HH-A1", "IF-SAME-BATCH", "return", t, site="STORE-A1")])
    await stored(
        env,
        [
            fill("GUN-A1", "IF-SAME-BATCH", t + 1000),
            scan("HH-A1", "IF-SAME-BATCH", "deliver", t + 2000, customer="CUST-A1"),
        ],
    )
    assert await alerts(env, "suspected_illegal_fill", "IF-SAME-BATCH") == []


async def test_a_handheld_of_a_company_neither_owner_nor_entrusted_raises_foreign_cylinder(
    env: Env, live: list[Event]
) -> None:
    w = env.world
    await cylinder(env, "FC-A", owner="A")
    await cylinder(env, "FC-B", owner="B")
    await cylinder(env, "FC-C", owner="C")  # C entrusted A (the shared city's entrustment)
    await cylinder(env, "FC-OWN", owner="A")
    t = now_ms()
    await stored(
        env,
        [
            scan("HH-B1", "FC-A", "return", t),
            scan("HH-A1", "FC-B", "deliver", t, customer="CUST-A1"),
            scan("HH-A1", "FC-C", "dispatch", t),
            scan("HH-A1", "FC-OWN", "dispatch", t),
        ],
    )
    (a,) = await alerts(env, "foreign_cylinder", "FC-A")
    assert a["severity"] == "warning"
    assert a["company_id"] == w.companies["A"]  # the owner's: its cylinder is astray
    assert a["details"]["scanner_company_id"] == w.companies["B"]
    assert a["details"]["seen_by"] == "HH-B1"
    assert a["site_id"] == w.sites["STA-B1"]  # where it was: the handheld's own site
    (b,) = await alerts(env, "foreign_cylinder", "FC-B")
    assert b["details"]["scanner_company_id"] == w.companies["A"]
    assert await alerts(env, "foreign_cylinder", "FC-C") == []
    assert await alerts(env, "foreign_cylinder", "FC-OWN") == []


async def test_one_tag_read_further_apart_than_a_vehicle_could_go_raises_cloned_tag(
    env: Env, live: list[Event]
) -> None:
    for tag in ("CT-FAR", "CT-NEAR", "CT-SLOW", "CT-VALVE"):
        await cylinder(env, tag)
    t = now_ms()
    await stored(
        env,
        [
            scan("HH-A1", "CT-SLOW", "dispatch", t - 20 * 60_000, at=INSIDE),
            # the valve of CT-VALVE reports from far away ...
        ],
    )
    valve = {"msg_id": mid(), "ts": t, "lat": FAR[0], "lon": FAR[1]}
    await publish(env.mqtt_url, [("cyl/v1/valve/CT-VALVE/telemetry", valve)])
    await eventually(
        lambda: count(env.pool, "SELECT count(*) FROM telemetry WHERE msg_id = $1", valve["msg_id"])
    )
    await stored(
        env,
        [
            # two handhelds' reads one minute and 59 km apart (in one batch or two)
            scan("HH-A1", "CT-FAR", "dispatch", t, at=INSIDE),
            scan("HH-A1", "CT-FAR", "deliver", t + 60_000, customer="CUST-A1", at=FAR),
            # 11 km in a minute: a fast car, not a clone
            scan("HH-A1", "CT-NEAR", "dispatch", t, at=INSIDE),
            scan("HH-A1", "CT-NEAR", "deliver", t + 60_000, customer="CUST-A1", at=INSIDE_2),
            # 59 km, but 20 minutes after: a vehicle can do that
            scan("HH-A1", "CT-SLOW", "deliver", t, customer="CUST-A1", at=FAR),
            # ... while a gun at STA-A1 reads its tag half a minute later
            fill("GUN-A1", "CT-VALVE", t + 30_000),
        ],
    )
    (far,) = await alerts(env, "cloned_tag", "CT-FAR")
    assert far["severity"] == "warning"
    d = far["details"]
    assert 55 < d["km"] < 62 and d["seconds"] == 60.0
    assert d["first"]["via"] == "dispatch" and d["second"]["via"] == "deliver"
    assert d["speed_kmh"] > 3000
    assert far["company_id"] == env.world.companies["A"]
    assert await alerts(env, "cloned_tag", "CT-NEAR") == []
    assert await alerts(env, "cloned_tag", "CT-SLOW") == []
    (by_valve,) = await alerts(env, "cloned_tag", "CT-VALVE")
    v = by_valve["details"]
    assert v["first"]["via"] == "valve" and v["second"]["via"] == "fill"
    assert by_valve["site_id"] == env.world.sites["STA-A1"]
    assert (by_valve["lat"], by_valve["lon"]) == (34.80, 113.65)  # the station, on the map


# --------------------------------------------------------------------------- the site check


async def test_a_scan_naming_another_companys_site_is_dead_lettered_and_the_rest_kept(
    env: Env, live: list[Event]
) -> None:
    w = env.world
    await cylinder(env, "SITE-1")
    await cylinder(env, "SITE-2")
    await cylinder(env, "SITE-3")
    t = now_ms()
    bad = scan("HH-A1", "SITE-1", "receive", t, site="STA-B1")  # company B's station
    entrusted = scan("HH-A1", "SITE-2", "receive", t, site="STORE-C1")  # C entrusted A
    own = scan("HH-A1", "SITE-3", "receive", t, site="STORE-A1")
    await publish(env.mqtt_url, [bad, entrusted, own])
    await eventually(lambda: _all_stored(env, [entrusted[1]["msg_id"], own[1]["msg_id"]]))
    letter = await eventually(
        lambda: env.pool.fetchrow(
            "SELECT * FROM dead_letters WHERE convert_from(payload, 'UTF8') LIKE $1",
            f"%{bad[1]['msg_id']}%",
        )
    )
    assert letter["reason"].startswith("foreign site: site STA-B1")
    assert "HH-A1" in letter["reason"]
    assert await count(
        env.pool, "SELECT count(*) FROM events WHERE msg_id = $1", bad[1]["msg_id"]
    ) == (0)
    moved = await env.pool.fetchrow("SELECT location_site_id FROM cylinders WHERE tag = 'SITE-1'")
    assert moved["location_site_id"] is None  # it was not put in B's stock
    here = await env.pool.fetchval("SELECT location_site_id FROM cylinders WHERE tag = 'SITE-2'")
    assert here == w.sites["STORE-C1"]


async def test_in_one_batch_the_good_message_is_kept_beside_the_refused_one(
    env: Env, live: list[Event]
) -> None:
    """The same, with both messages certainly in one batch: the batch store called directly."""
    await cylinder(env, "ONE-BATCH-1")
    await cylinder(env, "ONE-BATCH-2")
    rows = await env.pool.fetch("SELECT code, name, boundary FROM districts ORDER BY code")
    districts = [District(r["code"], r["name"], r["name"], r["boundary"]) for r in rows]
    store = BatchStore(
        env.settings, DistrictIndex(districts), [r["code"] for r in rows], "test-batch"
    )
    now = dt.datetime.now(dt.UTC)
    t = now_ms()
    items = []
    for n, (topic, body) in enumerate(
        [
            scan("HH-A1", "ONE-BATCH-1", "return", t, site="STA-B1"),
            scan("HH-A1", "ONE-BATCH-2", "return", t, site="STORE-A1"),
        ]
    ):
        payload = orjson.dumps(body)
        parsed = parse(topic, payload, now, dt.timedelta(hours=24))
        assert isinstance(parsed, Parsed)
        items.append(Item(topic, payload, now, parsed=parsed, seq=n))
    async with env.pool.acquire() as conn, conn.transaction():
        result = await store.store(conn, items)
    assert result.stored == 1
    assert len(result.dead_letters) == 1 and result.dead_letters[0].startswith("foreign site")
    assert (
        await env.pool.fetchval("SELECT location_site_id FROM cylinders WHERE tag = 'ONE-BATCH-2'")
        == (env.world.sites["STORE-A1"])
    )


def _any(seen: list[Event], match: Any) -> Any:
    async def check() -> bool:
        return any(match(e) for e in seen)

    return check()
