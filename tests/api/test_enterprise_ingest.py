"""The enterprise data interface (docs/API.md "Enterprise data interface"): batches by API key,
a result per record, idempotent by record_id, the import's rules for cylinders and a gun's
rules and alerts for fills.

Each test works in a company of its own (made here, with a company administrator and an API
key), so that ten thousand cylinders or a test's alerts never change the shared world.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from ingest.auth import FillAuthorizer
from ingest.schemas import Parsed, parse
from ingest.store.batch import BatchStore
from ingest.store.context import Item
from server.kernel.appkeys import BUS
from server.kernel.clock import city_today
from server.kernel.districts import District, DistrictIndex
from server.kernel.events import Event
from server.kernel.principal import API_KEY_PREFIX, hash_api_key
from tests.api.conftest import call, unique
from tests.api.fill_auth import station_with_gun
from tests.conftest import World

CYLINDERS = "/api/v1/ingest/cylinders"
FILLS = "/api/v1/ingest/fills"
JSON = "application/json"


@dataclass
class Company:
    id: int
    code: str
    user_id: int
    key: dict[str, str]
    station_id: int = 0
    station_code: str = ""
    gun: str = ""


async def key_for(pool: Any, user_id: int) -> dict[str, str]:
    key = API_KEY_PREFIX + secrets.token_urlsafe(24)
    await pool.execute(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, 'erp', $2, $3)",
        user_id,
        key[:10],
        hash_api_key(key),
    )
    return {"X-API-Key": key}


async def company(pool: Any, *, licence_status: str = "valid", station: bool = False) -> Company:
    """A company of this test with its administrator's API key (and a station with a gun)."""
    code = unique("EC")
    company_id = await pool.fetchval(
        """INSERT INTO companies (code, name, district_code, licence_no, licence_expiry,
                                  licence_status)
           VALUES ($1, $2, '410105', $3, current_date + 400, $4) RETURNING id""",
        code,
        f"对接测试{code}",
        f"LIC-{code}",
        licence_status,
    )
    user_id = await pool.fetchval(
        "INSERT INTO users (username, password_hash, role, company_id)"
        " VALUES ($1, 'x', 'company_admin', $2) RETURNING id",
        code.lower(),
        company_id,
    )
    out = Company(company_id, code, user_id, await key_for(pool, user_id))
    if station:
        out.station_id, out.gun = await station_with_gun(pool, company_id)
        out.station_code = await pool.fetchval(
            "SELECT code FROM sites WHERE id = $1", out.station_id
        )
    return out


async def cylinder(pool: Any, owner: int, **over: Any) -> tuple[int, str]:
    """A cylinder of *owner* in service (id, tag)."""
    today = dt.date.today()
    values: dict[str, Any] = {
        "tag": unique("ET"),
        "barcode": unique("EB"),
        "owner_company_id": owner,
        "spec": "YSP35.5",
        "manufacture_date": today - dt.timedelta(days=700),
        "next_inspection_date": today + dt.timedelta(days=600),
        "scrap_date": today + dt.timedelta(days=2000),
        "status": "in_service",
        "district_code": "410105",
    }
    values.update(over)
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    cid = await pool.fetchval(
        f"INSERT INTO cylinders ({cols}) VALUES ({marks}) RETURNING id", *values.values()
    )
    return int(cid), str(values["tag"])


def record(n: int, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "record_id": f"R-{n}",
        "tag": unique("EK"),
        "spec": "YSP35.5",
        "manufacture_date": (dt.date.today() - dt.timedelta(days=100)).isoformat(),
        "manufacturer": "郑州压力容器厂",
    }
    out.update(over)
    return out


def fill(co: Company, record_id: str, tag: str | None, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "record_id": record_id,
        "station_code": co.station_code,
        "gun_id": co.gun,
        "tag": tag,
        "ts": dt.datetime.now(dt.UTC).isoformat(),
        "net_kg": 14.5,
        "operator": "张师傅",
        "pre_check": {"valve": True},
    }
    out.update(over)
    return out


async def push(client: Any, path: str, co: Company | dict[str, str], body: Any) -> Any:
    """POST a batch with a key (a stream: a megabytes body as raw bytes warns in aiohttp)."""
    headers = co.key if isinstance(co, Company) else co
    return await send(client, path, headers, orjson.dumps(body))


async def send(
    client: Any, path: str, headers: dict[str, str], raw: bytes, ctype: str = JSON
) -> Any:
    return await call(
        client,
        "POST",
        path,
        "anonymous",
        data=io.BytesIO(raw),
        headers={**headers, "Content-Type": ctype},
    )


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["record_id"]: r for r in body["results"]}


async def alerts_of(pool: Any, tag: str) -> dict[str, Any]:
    rows = await pool.fetch(
        "SELECT kind, details, count FROM alerts WHERE subject_id = $1 ORDER BY kind", tag
    )
    return {r["kind"]: r for r in rows}


# ------------------------------------------------------------------ cylinders


async def test_ten_thousand_cylinders_then_the_same_batch_again(client: Any, pool: Any) -> None:
    co = await company(pool)
    batch = {"records": [record(n) for n in range(10_000)]}
    started = time.perf_counter()
    status, body = await push(client, CYLINDERS, co, batch)
    took = time.perf_counter() - started
    print(f"\n10,000 cylinder records stored in {took:.2f} s")
    assert status == 200, body
    assert (body["total"], body["stored"], body["duplicate"], body["rejected"]) == (
        10_000,
        10_000,
        0,
        0,
    )
    assert [r["index"] for r in body["results"]] == list(range(10_000))
    assert {r["action"] for r in body["results"]} == {"created"}
    owned = await pool.fetchval("SELECT count(*) FROM cylinders WHERE owner_company_id = $1", co.id)
    assert owned == 10_000
    ids = {r["record_id"]: r["cylinder_id"] for r in body["results"]}
    # a registration event each, as the import records
    events = await pool.fetchval(
        "SELECT count(*) FROM events WHERE kind = 'register' AND cylinder_id = ANY($1::bigint[])",
        list(ids.values()),
    )
    assert events == 10_000

    started = time.perf_counter()
    status, again = await push(client, CYLINDERS, co, batch)
    print(f"the same 10,000 again (all duplicates) in {time.perf_counter() - started:.2f} s")
    assert status == 200, again
    assert (again["stored"], again["duplicate"], again["rejected"]) == (0, 10_000, 0)
    assert {r["record_id"]: r["cylinder_id"] for r in again["results"]} == ids
    assert all(r["action"] == "created" and r["first_at"] for r in again["results"])
    assert (
        await pool.fetchval("SELECT count(*) FROM cylinders WHERE owner_company_id = $1", co.id)
        == 10_000
    )
    ledger = await pool.fetchval(
        "SELECT count(*) FROM enterprise_records WHERE company_id = $1", co.id
    )
    assert ledger == 10_000

    # pulled back with the same key, oldest first
    status, page = await call(
        client, "GET", f"{CYLINDERS}?page_size=5", "anonymous", headers=co.key
    )
    assert status == 200, page
    assert page["total"] == 10_000
    first = page["items"][0]
    assert first["record_id"] == "R-0" and first["result"]["cylinder_id"] == ids["R-0"]
    assert first["cylinder"]["tag"] == batch["records"][0]["tag"]
    assert first["cylinder"]["owner_code"] == co.code
    assert first["cylinder"]["next_inspection_date"]  # derived by the rules


async def test_bad_records_are_rejected_and_the_good_ones_stored(
    client: Any, pool: Any, world: World
) -> None:
    co = await company(pool)
    status, body = await push(client, CYLINDERS, co, {"records": [record(1, record_id="first")]})
    assert status == 200 and body["stored"] == 1, body
    tag = body["results"][0]["cylinder_id"]
    existing = await pool.fetchrow("SELECT * FROM cylinders WHERE id = $1", tag)
    b_tag = await pool.fetchval(
        "SELECT tag FROM cylinders WHERE id = $1", world.cylinders["TAG-B-OK"]
    )
    moved = existing["next_inspection_date"] + dt.timedelta(days=365)
    records = [
        record(1, record_id="good"),
        {
            "record_id": "malformed",
            "tag": 12345,
            "spec": "YSP35.5",
            "manufacture_date": "2024-01-01",
        },
        {"record_id": "no-date", "tag": unique("EK"), "spec": "YSP35.5"},
        record(2, record_id="bad-spec", spec="YSP99"),
        record(3, record_id="bad-date", manufacture_date="2024-02-30"),
        record(4, record_id="extra", colour="blue"),
        record(5, record_id="other-owner", owner_code="TEST-B"),
        record(6, record_id="b-tag", tag=b_tag),
        # the company may not move the date the gun trusts (PATCH's rule for company_admin)
        record(
            7,
            record_id="moves-date",
            tag=existing["tag"],
            manufacture_date=existing["manufacture_date"].isoformat(),
            manufacturer=existing["manufacturer"],
            next_inspection_date=moved.isoformat(),
        ),
        # nor state it when registering a cylinder (POST's rule)
        record(8, record_id="states-date", next_inspection_date=moved.isoformat()),
        record(9, record_id="good"),  # the same record_id again in this batch
        {"tag": unique("EK"), "spec": "YSP35.5", "manufacture_date": "2024-01-01"},
        record(10, record_id="x" * 101),
    ]
    status, body = await push(client, CYLINDERS, co, {"records": records})
    assert status == 200, body
    good = body["results"][0]
    assert good["status"] == "stored" and good["action"] == "created"
    reasons = {
        r["record_id"] or f"#{r['index']}": (r["field"], r["message"])
        for r in body["results"]
        if r["status"] == "rejected"
    }
    assert reasons["malformed"][0] == "tag" and "Expected `str`" in reasons["malformed"][1]
    assert reasons["no-date"][0] == "manufacture_date"
    assert reasons["bad-spec"][0] == "spec" and "YSP99" in reasons["bad-spec"][1]
    assert reasons["bad-date"][0] == "manufacture_date"
    assert reasons["extra"][0] == "colour"
    assert reasons["other-owner"][0] == "owner_code"
    assert reasons["b-tag"] == ("tag", "tag belongs to another company")
    assert reasons["moves-date"][0] == "next_inspection_date"
    assert "may not change next_inspection_date" in reasons["moves-date"][1]
    assert reasons["states-date"][0] == "next_inspection_date"
    assert reasons["#11"][0] == "record_id"
    assert reasons["#12"][0] == "record_id"
    repeat = body["results"][10]
    assert repeat["status"] == "duplicate" and repeat["first_index"] == 0
    assert repeat["cylinder_id"] == good["cylinder_id"]
    assert (body["stored"], body["duplicate"], body["rejected"]) == (1, 1, 11)
    # the good record is stored, the refused change is not
    assert (
        await pool.fetchval("SELECT next_inspection_date FROM cylinders WHERE id = $1", tag)
        == existing["next_inspection_date"]
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM cylinders WHERE owner_company_id = $1", co.id)
        == 2
    )
    # a rejected record is not remembered: corrected, it is stored under the same id
    status, body = await push(client, CYLINDERS, co, {"records": [record(2, record_id="bad-spec")]})
    assert status == 200 and body["results"][0]["status"] == "stored", body
    # a record that changes what the company may change (the barcode) updates the cylinder
    same = record(
        11,
        record_id="new-barcode",
        tag=existing["tag"],
        manufacture_date=existing["manufacture_date"].isoformat(),
        manufacturer=existing["manufacturer"],
        barcode=unique("QR"),
    )
    status, body = await push(client, CYLINDERS, co, {"records": [same]})
    assert body["results"][0]["action"] == "updated", body
    status, body = await push(client, CYLINDERS, co, {"records": [{**same, "record_id": "again"}]})
    assert body["results"][0]["action"] == "unchanged", body


async def test_an_admin_key_names_the_owner(client: Any, pool: Any, world: World) -> None:
    key = await key_for(pool, world.users["t_admin"])
    status, body = await push(client, CYLINDERS, key, {"records": [record(1, record_id=unique())]})
    assert body["results"][0]["field"] == "owner_code", body
    rid = unique()
    status, body = await push(
        client, CYLINDERS, key, {"records": [record(1, record_id=rid, owner_code="TEST-A")]}
    )
    assert status == 200 and body["results"][0]["status"] == "stored", body


# ------------------------------------------------------------------ fills


async def _gun_path(pool: Any, settings: Any, gun: str, tag: str) -> None:
    """What the ingest worker does with a gun's request and the fill it then reports: the
    authorizer decides (ingest.auth), and both messages are stored by the batch writer."""
    rows = await pool.fetch("SELECT code, name, boundary FROM districts ORDER BY code")
    districts = [District(r["code"], r["name"], r["name"], r["boundary"]) for r in rows]
    store = BatchStore(settings, DistrictIndex(districts), [r["code"] for r in rows], "test-gun")
    now = dt.datetime.now(dt.UTC)
    ms = int(now.timestamp() * 1000)
    auth = FillAuthorizer(settings, pool)
    try:
        outcome = await auth.decide(gun, tag, city_today(settings), now, time.perf_counter())
    finally:
        await auth.close()
    items = []
    for n, (leaf, body) in enumerate(
        [
            ("auth", {"msg_id": unique("m"), "ts": ms, "tag": tag}),
            ("fill", {"msg_id": unique("m"), "ts": ms + 60_000, "tag": tag, "net_kg": 14.5}),
        ]
    ):
        topic, payload = f"cyl/v1/gun/{gun}/{leaf}", orjson.dumps(body)
        parsed = parse(topic, payload, now, dt.timedelta(hours=24))
        assert isinstance(parsed, Parsed)
        items.append(
            Item(
                topic, payload, now, parsed=parsed, auth=outcome if leaf == "auth" else None, seq=n
            )
        )
    async with pool.acquire() as conn, conn.transaction():
        await store.store(conn, items)


async def test_a_scrapped_cylinders_fill_raises_what_a_gun_raises(
    client: Any, pool: Any, settings: Any
) -> None:
    co = await company(pool, station=True)
    _, by_gun = await cylinder(pool, co.id, status="scrapped")
    cyl_id, reported = await cylinder(pool, co.id, status="scrapped")
    await _gun_path(pool, settings, co.gun, by_gun)
    status, body = await push(client, FILLS, co, {"records": [fill(co, "F-1", reported)]})
    assert status == 200, body
    row = body["results"][0]
    assert row["status"] == "stored" and row["cylinder_id"] == cyl_id
    assert row["decision"] == "deny" and row["reasons"] == ["scrapped"]
    gun_alerts = await alerts_of(pool, by_gun)
    ours = await alerts_of(pool, reported)
    assert "fill_denied" in gun_alerts
    assert set(ours) == set(gun_alerts)
    assert (
        ours["fill_denied"]["details"]["reasons"] == gun_alerts["fill_denied"]["details"]["reasons"]
    )
    assert ours["fill_denied"]["details"]["station"] == co.station_code
    assert {a["kind"] for a in body["alerts"]} == set(gun_alerts)
    # recorded like the gun's refused request, beside the fill itself
    kinds = await pool.fetch("SELECT kind FROM events WHERE cylinder_id = $1 ORDER BY kind", cyl_id)
    assert [k["kind"] for k in kinds] == ["fill", "fill_refused"]
    stored = await pool.fetchrow("SELECT * FROM fills WHERE cylinder_id = $1", cyl_id)
    assert stored["station_id"] == co.station_id and stored["gun_id"] == co.gun
    assert float(stored["net_kg"]) == 14.5 and stored["operator"] == "张师傅"


async def test_an_overfill_raises_overfill_live(client: Any, app: Any, pool: Any) -> None:
    co = await company(pool, station=True)
    cyl_id, tag = await cylinder(pool, co.id)
    seen: list[Event] = []
    app[BUS].listen(None, seen.append)
    status, body = await push(client, FILLS, co, {"records": [fill(co, "O-1", tag, net_kg=17.5)]})
    assert status == 200, body
    row = body["results"][0]
    assert (row["decision"], row["assessment"], row["result"]) == ("allow", "overfill", "completed")
    assert set(await alerts_of(pool, tag)) == {"overfill"}
    assert [a["kind"] for a in body["alerts"]] == ["overfill"]
    channels = {
        e.channel for e in seen if e.data.get("tag") == tag or e.data.get("subject_id") == tag
    }
    assert {"fills", "alerts"} <= channels
    state = await pool.fetchrow(
        "SELECT fill_state, location_site_id FROM cylinders WHERE id = $1", cyl_id
    )
    assert (state["fill_state"], state["location_site_id"]) == ("full", co.station_id)


async def test_fills_are_idempotent_and_checked_record_by_record(
    client: Any, pool: Any, world: World
) -> None:
    co = await company(pool, station=True)
    _, tag = await cylinder(pool, co.id)
    _, other = await cylinder(pool, co.id)
    barcode = await pool.fetchval("SELECT barcode FROM cylinders WHERE tag = $1", other)
    _, second_gun = await station_with_gun(pool, co.id)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    batch = {
        "records": [
            fill(co, "ok", tag, ts=int(time.time() * 1000) - 3_600_000),
            fill(co, "by-barcode", None, barcode=barcode),
            fill(co, "b-station", tag, station_code="STA-B1", gun_id="GUN-STA-B1"),
            fill(co, "other-gun", tag, gun_id=second_gun),
            fill(co, "no-tag", None),
            fill(co, "unknown-barcode", None, barcode=unique("NOPE")),
            fill(co, "future", tag, ts=soon.isoformat()),
            fill(co, "naive", tag, ts="2024-06-01T09:30:00"),
            fill(co, "heavy", tag, net_kg=250),
            fill(co, "gross", tag, tare_kg=15.0, gross_kg=10.0),
            fill(co, "slash", tag, gun_id="a/b"),
            fill(co, "unknown-tag", unique("NOTAG")),
        ]
    }
    status, body = await push(client, FILLS, co, batch)
    assert status == 200, body
    got = by_id(body)
    assert got["ok"]["status"] == "stored" and got["ok"]["decision"] == "allow"
    assert got["by-barcode"]["status"] == "stored"
    assert got["by-barcode"]["cylinder_id"] == await pool.fetchval(
        "SELECT id FROM cylinders WHERE tag = $1", other
    )
    fields = {
        k: (v.get("field"), v.get("message")) for k, v in got.items() if v["status"] == "rejected"
    }
    assert fields["b-station"][0] == "station_code"
    assert fields["other-gun"][0] == "gun_id"
    assert fields["no-tag"][0] == "tag"
    assert fields["unknown-barcode"][0] == "barcode"
    assert fields["future"][0] == "ts" and "future" in str(fields["future"][1])
    assert fields["naive"][0] == "ts"
    assert fields["heavy"][0] == "net_kg"
    assert fields["gross"][0] == "gross_kg"
    assert fields["slash"][0] == "gun_id"
    # a tag nobody registered: stored, unknown_tag, as from a gun
    assert got["unknown-tag"]["status"] == "stored" and got["unknown-tag"]["cylinder_id"] is None
    assert got["unknown-tag"]["reasons"] == ["unknown_tag"]
    assert {"unknown_tag", "fill_denied"} <= set(await alerts_of(pool, batch["records"][-1]["tag"]))
    fills = await pool.fetchval("SELECT count(*) FROM fills WHERE station_id = $1", co.station_id)
    assert fills == 3
    counts = {
        k: v["count"] for k, v in (await alerts_of(pool, batch["records"][-1]["tag"])).items()
    }

    status, again = await push(client, FILLS, co, batch)
    assert status == 200, again
    assert again["stored"] == 0 and again["duplicate"] == 3 and again["rejected"] == 9
    assert by_id(again)["ok"]["msg_id"] == got["ok"]["msg_id"]
    assert (
        await pool.fetchval("SELECT count(*) FROM fills WHERE station_id = $1", co.station_id) == 3
    )
    after = {k: v["count"] for k, v in (await alerts_of(pool, batch["records"][-1]["tag"])).items()}
    assert after == counts  # a replay bumps no alert

    # pulled back: the records, and the company's every fill through the ordinary list
    status, page = await call(client, "GET", FILLS, "anonymous", headers=co.key)
    assert status == 200 and page["total"] == 3, page
    assert {i["record_id"] for i in page["items"]} == {"ok", "by-barcode", "unknown-tag"}
    assert all(i["fill"]["station_code"] == co.station_code for i in page["items"])
    since = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
    status, page = await call(
        client, "GET", f"{FILLS}?since={since.replace('+', '%2B')}", "anonymous", headers=co.key
    )
    assert status == 200 and page["total"] == 0, page
    status, listed = await call(client, "GET", "/api/v1/fills", "anonymous", headers=co.key)
    assert status == 200 and listed["total"] == 3


# ------------------------------------------------------------------ who, and whole-batch refusals


async def test_who_may_push(client: Any, pool: Any, world: World) -> None:
    body = {"records": [record(1)]}
    assert (await push(client, CYLINDERS, {}, body))[0] == 401
    # a session's bearer token is not an API key
    status, err = await call(client, "POST", CYLINDERS, "t_company_a", body)
    assert status == 401 and err["error"]["code"] == "unauthorized"
    for user in ("t_inspector", "t_regulator", "t_operator_a"):
        key = await key_for(pool, world.users[user])
        status, err = await push(client, CYLINDERS, key, body)
        assert status == 403 and err["error"]["code"] == "forbidden", (user, err)
    # a deactivated user's key
    co = await company(pool)
    await pool.execute("UPDATE users SET active = false WHERE id = $1", co.user_id)
    status, err = await push(client, CYLINDERS, co, body)
    assert status == 401 and err["error"]["code"] == "unauthorized"
    status, err = await call(client, "GET", FILLS, "anonymous", headers=co.key)
    assert status == 401
    # a revoked company's key: nothing stored
    revoked = await company(pool, licence_status="revoked")
    status, err = await push(client, CYLINDERS, revoked, body)
    assert status == 403 and "revoked" in err["error"]["message"]
    status, err = await call(client, "GET", CYLINDERS, "anonymous", headers=revoked.key)
    assert status == 403
    assert not await pool.fetchval(
        "SELECT count(*) FROM cylinders WHERE owner_company_id = $1", revoked.id
    )


async def test_a_batch_that_is_not_one_is_refused_whole(client: Any, pool: Any) -> None:
    co = await company(pool)
    too_many = {"records": [record(n) for n in range(10_001)]}
    status, err = await push(client, CYLINDERS, co, too_many)
    assert status == 413 and err["error"]["code"] == "payload_too_large", err
    assert err["error"]["details"]["limit_rows"] == 10_000
    assert not await pool.fetchval(
        "SELECT count(*) FROM cylinders WHERE owner_company_id = $1", co.id
    )
    status, err = await push(client, FILLS, co, {"records": [{"record_id": "x"}] * 10_001})
    assert status == 413 and err["error"]["code"] == "payload_too_large"
    huge = b'{"records": ["' + b"x" * (16 * 1024 * 1024) + b'"]}'
    status, err = await send(client, CYLINDERS, co.key, huge)
    assert status == 413 and err["error"]["code"] == "payload_too_large"
    for raw, code in (
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"records": []}', "invalid_field"),
        (b'{"records": {}}', "invalid_field"),
        (b'{"rows": []}', "invalid_field"),
    ):
        status, err = await send(client, FILLS, co.key, raw)
        assert status == 400 and err["error"]["code"] == code, (raw, err)
    status, err = await send(client, FILLS, co.key, b"tag\n", "text/csv")
    assert status == 415


async def test_openapi_shows_the_examples(client: Any) -> None:
    status, doc = await call(client, "GET", "/api/v1/openapi.json", "anonymous")
    assert status == 200
    for path in (CYLINDERS, FILLS):
        op = doc["paths"][path]["post"]
        example = op["requestBody"]["content"]["application/json"]["example"]
        assert example["records"][0]["record_id"]
        assert op["responses"]["200"]["content"]["application/json"]["example"]["results"]
        assert "413" in op["responses"]
    fill_record = doc["components"]["schemas"]["FillRecord"]
    assert {"record_id", "station_code", "gun_id", "ts", "net_kg"} <= set(fill_record["required"])


@pytest.mark.parametrize("path", [CYLINDERS, FILLS])
async def test_pulling_back_checks_its_query(client: Any, pool: Any, path: str) -> None:
    co = await company(pool)
    status, err = await call(client, "GET", f"{path}?since=yesterday", "anonymous", headers=co.key)
    assert status == 400 and err["error"]["code"] == "invalid_query"
    status, err = await call(client, "GET", f"{path}?tag=x", "anonymous", headers=co.key)
    assert status == 400
    status, page = await call(client, "GET", path, "anonymous", headers=co.key)
    assert status == 200 and page["items"] == [] and page["total"] == 0
