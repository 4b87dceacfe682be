"""Safety inspections end to end through the REST API (docs/API.md "Safety inspections"): the
versioned catalogue, a signed submission stored once however often it is replayed, the seal
detecting a tampered record, every refusal leaving nothing behind, scope per role, re-checks,
and the overdue round marking each rectification once (with one credit event) even when two
rounds run at the same moment."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import uuid
from typing import Any

import aiohttp
import msgspec
import orjson
import pytest
from PIL import Image

from server.api.safety_rectifications import run_round
from server.domain.localtime import city_date
from tests.api.conftest import call, headers_for
from tests.conftest import World

SAFETY_TABLES = ("safety_inspections", "safety_answers", "safety_photos", "safety_rectifications")


def png(size: tuple[int, int] = (60, 40), color: tuple[int, int, int] = (20, 20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buf, "JPEG")
    return buf.getvalue()


async def catalogue(client: Any, kind: str = "resident", user: str = "t_operator_a") -> Any:
    status, out = await call(client, "GET", f"/api/v1/safety-items?customer_kind={kind}", user)
    assert status == 200, out
    return out


def record(cat: Any, customer_id: int, fail: tuple[str, ...] = (), **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": str(uuid.uuid4()),
        "customer_id": customer_id,
        "catalogue_id": cat["catalogue_id"],
        "answers": [
            {"item_id": i["id"], "answer": "fail" if i["code"] in fail else "pass"}
            for i in cat["items"]
        ],
        "inspected_at": dt.datetime.now(dt.UTC).isoformat(),
        "notes": "厨房通风良好",
    }
    body.update(over)
    return body


def form(
    rec: dict[str, Any] | None,
    photos: list[bytes] = (),  # type: ignore[assignment]
    signature: bytes | None = None,
    sig_type: str = "image/png",
) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    if rec is not None:
        data.add_field("record", orjson.dumps(rec).decode(), content_type="application/json")
    for n, ph in enumerate(photos):
        data.add_field("photo", io.BytesIO(ph), filename=f"p{n}.jpg", content_type="image/jpeg")
    if signature is not None:
        data.add_field(
            "signature", io.BytesIO(signature), filename="sig.png", content_type=sig_type
        )
    return data


async def submit(client: Any, user: str, data: aiohttp.FormData) -> tuple[int, Any]:
    headers = await headers_for(client, user)
    resp = await client.post("/api/v1/safety-inspections", data=data, headers=headers)
    return resp.status, await resp.json()


async def counts(pool: Any) -> dict[str, int]:
    out = {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in SAFETY_TABLES}
    out["uploads"] = await pool.fetchval("SELECT count(*) FROM uploads")
    return out


def failing_record(
    cat: Any, world: World, code: str = "valve_no_leak"
) -> tuple[dict[str, Any], int]:
    item = next(i for i in cat["items"] if i["code"] == code)
    return record(cat, world.customers["A"], fail=(code,), photo_items=[item["id"]]), item["id"]


# ---------------------------------------------------------------- catalogue


async def test_catalogue_is_seeded_per_kind_and_a_new_version_leaves_the_old(
    client: Any, pool: Any
) -> None:
    res = await catalogue(client, "resident")
    rest = await catalogue(client, "restaurant")
    codes = {i["code"] for i in res["items"]}
    assert {"valve_no_leak", "hose_type", "gas_alarm"} <= codes and "storage_limit" not in codes
    assert {"storage_limit", "gas_alarm_shutoff"} <= {i["code"] for i in rest["items"]}
    items = [
        {k: i[k] for k in ("group_code", "code", "text_zh", "text_en", "photo_required_on_fail")}
        for i in (await catalogue(client, "industrial"))["items"]
    ]
    items.append(
        {"group_code": "education", "code": "drill", "text_zh": "应急演练", "text_en": "Drill"}
    )
    status, out = await call(
        client,
        "POST",
        "/api/v1/safety-items",
        "t_admin",
        {"customer_kind": "industrial", "items": items},
    )
    assert status == 201, out
    assert out["version"] >= 2 and out["items"][-1]["code"] == "drill"
    status, old = await call(
        client, "GET", "/api/v1/safety-items?customer_kind=industrial&version=1"
    )
    assert status == 200 and "drill" not in {i["code"] for i in old["items"]}
    status, _ = await call(
        client,
        "POST",
        "/api/v1/safety-items",
        "t_company_a",
        {"customer_kind": "industrial", "items": items},
    )
    assert status == 403
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'safety_catalogue.publish'"
        )
        >= 1
    )
    with pytest.raises(Exception, match="immutable"):
        await pool.execute(
            "UPDATE safety_items SET text_en = 'x' WHERE id = $1", old["items"][0]["id"]
        )


# ---------------------------------------------------------------- submission


async def test_a_submission_is_signed_and_a_replay_stores_nothing(
    client: Any, pool: Any, world: World, settings: Any
) -> None:
    cat = await catalogue(client)
    rec, item_id = failing_record(cat, world)
    status, out = await submit(client, "t_operator_a", form(rec, [jpeg()], png()))
    assert status == 201, out
    assert out["result"] == "fail" and out["seal"]["valid"] is True
    assert [r["item_id"] for r in out["rectifications"]] == [item_id]
    day = city_date(dt.datetime.fromisoformat(rec["inspected_at"]), settings.alerts)
    assert out["rectifications"][0]["deadline"] == str(day + dt.timedelta(days=1))  # a leak: 1 day
    before = await counts(pool)
    status, again = await submit(client, "t_operator_a", form(rec, [jpeg()], png()))
    assert status == 200 and again["id"] == out["id"]
    assert await counts(pool) == before
    # the files are served to those who see the record, hash checked
    status, data = await call(client, "GET", out["photos"][0]["url"], "t_company_a")
    assert status == 200 and data[:3] == b"\xff\xd8\xff"
    status, _ = await call(client, "GET", out["signature"]["url"], "t_company_b")
    assert status == 404
    # immutable in the database
    with pytest.raises(Exception, match="immutable"):
        await pool.execute("UPDATE safety_inspections SET notes = 'x' WHERE id = $1", out["id"])
    with pytest.raises(Exception, match="signed"):
        await pool.execute(
            "INSERT INTO safety_answers (inspection_id, item_id, answer) VALUES ($1, $2, 'pass')",
            out["id"],
            cat["items"][0]["id"],
        )


async def test_two_replays_at_once_store_one_record(client: Any, pool: Any, world: World) -> None:
    cat = await catalogue(client)
    rec = record(cat, world.customers["A"])
    results = await asyncio.gather(
        *(submit(client, "t_operator_a", form(rec, [], png())) for _ in range(3))
    )
    assert sorted(s for s, _ in results) == [200, 200, 201]
    assert len({o["id"] for _, o in results}) == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM safety_inspections WHERE client_id = $1",
            uuid.UUID(rec["client_id"]),
        )
        == 1
    )


async def test_a_tampered_record_is_detected(client: Any, pool: Any, world: World) -> None:
    cat = await catalogue(client)
    status, out = await submit(
        client, "t_operator_a", form(record(cat, world.customers["A"]), [], png())
    )
    assert status == 201 and out["seal"]["valid"]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")  # triggers off
        await conn.execute(
            "UPDATE safety_answers SET answer = 'na' WHERE inspection_id = $1 AND item_id = $2",
            out["id"],
            cat["items"][0]["id"],
        )
    status, after = await call(client, "GET", f"/api/v1/safety-inspections/{out['id']}")
    assert status == 200 and after["seal"]["valid"] is False


@pytest.mark.parametrize(
    "case",
    ["other_version", "no_signature", "big_photo", "not_image", "forged_field", "unanswered"],
)
async def test_refusals_store_nothing(client: Any, pool: Any, world: World, case: str) -> None:
    cat = await catalogue(client)
    rec, _ = failing_record(cat, world)
    photos, expect = [jpeg()], 400
    sig: bytes | None = png()
    if case == "other_version":
        rest = await catalogue(client, "restaurant")
        rec["answers"][0]["item_id"] = rest["items"][0]["id"]
    elif case == "no_signature":
        sig = None
    elif case == "big_photo":
        photos, expect = [b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024)], 413
    elif case == "not_image":
        photos, expect = [b"#!/bin/sh\necho pwned\n" * 10], 415
    elif case == "forged_field":
        rec["seal"] = "0" * 64
    elif case == "unanswered":
        rec["answers"].pop()
    before = await counts(pool)
    status, out = await submit(client, "t_operator_a", form(rec, photos, sig))
    assert status == expect, out
    assert set(out) == {"error"} and set(out["error"]) == {"code", "message", "details"}
    assert await counts(pool) == before


async def test_scope_per_role(client: Any, world: World) -> None:
    cat = await catalogue(client)
    status, out = await submit(
        client, "t_operator_a", form(record(cat, world.customers["A"]), [], png())
    )
    assert status == 201
    path = f"/api/v1/safety-inspections/{out['id']}"
    expect = {
        "t_admin": 200,
        "t_regulator": 200,
        "t_regulator_jinshui": 200,
        "t_officer": 200,
        "t_company_a": 200,
        "t_company_b": 404,
        "t_operator_a": 200,
        "t_inspector": 403,
        "anonymous": 401,
    }
    for user, code in expect.items():
        status, _ = await call(client, "GET", path, user)
        assert status == code, user
    status, page = await call(
        client, "GET", "/api/v1/safety-inspections?page_size=200", "t_company_b"
    )
    assert status == 200 and out["id"] not in {r["id"] for r in page["items"]}
    # an operator may not inspect another company's customer
    status, err = await submit(
        client, "t_operator_a", form(record(cat, world.customers["B"]), [], png())
    )
    assert status == 400 and err["error"]["details"]["field"] == "record.customer_id"
    status, csv = await call(client, "GET", "/api/v1/safety-inspections?format=csv", "t_company_a")
    assert status == 200 and str(out["id"]).encode() in csv


# ---------------------------------------------------------------- rectifications


async def test_recheck_closes_a_rectification(client: Any, world: World) -> None:
    cat = await catalogue(client)
    rec, _ = failing_record(cat, world)
    status, out = await submit(client, "t_operator_a", form(rec, [jpeg()], png()))
    rid = out["rectifications"][0]["id"]
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field(
        "photo", io.BytesIO(jpeg((0, 200, 0))), filename="fixed.jpg", content_type="image/jpeg"
    )
    data.add_field("note", "已更换角阀")
    resp = await client.post(
        f"/api/v1/rectifications/{rid}/recheck",
        data=data,
        headers=await headers_for(client, "t_company_b"),
    )
    assert resp.status == 404
    data2 = aiohttp.FormData(default_to_multipart=True)
    data2.add_field(
        "photo", io.BytesIO(jpeg((0, 200, 0))), filename="fixed.jpg", content_type="image/jpeg"
    )
    resp = await client.post(
        f"/api/v1/rectifications/{rid}/recheck",
        data=data2,
        headers=await headers_for(client, "t_operator_a"),
    )
    body = await resp.json()
    assert resp.status == 200 and body["state"] == "closed", body
    status, photo = await call(client, "GET", body["recheck_photo_url"], "t_officer")
    assert status == 200 and photo[:3] == b"\xff\xd8\xff"
    status, notice = await call(
        client, "GET", f"/api/v1/safety-inspections/{out['id']}/notice", "t_company_a"
    )
    assert status == 200 and notice["items"][0]["state"] == "closed"
    assert set(notice["company"]) == {"name", "code", "order_phone"}


async def test_overdue_round_marks_once_with_one_credit_event(
    client: Any, pool: Any, settings: Any, world: World
) -> None:
    cat = await catalogue(client)
    rec, _ = failing_record(cat, world)
    rec["inspected_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat()
    status, out = await submit(client, "t_operator_a", form(rec, [jpeg()], png()))
    assert status == 201
    rid = out["rectifications"][0]["id"]
    sms = msgspec.structs.replace(settings.sms, enabled=True, gateway_url="http://127.0.0.1:9/sms")
    s2 = msgspec.structs.replace(settings, sms=sms)
    results = await asyncio.gather(run_round(pool, s2), run_round(pool, s2))
    assert sum(1 for r in results for o in r if o.id == rid) == 1
    await run_round(pool, s2)
    assert (
        await pool.fetchval(
            """SELECT count(*) FROM credit_events WHERE kind = 'rectification_overdue'
              AND source_type = 'rectification' AND source_id = $1""",
            str(rid),
        )
        == 1
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE idem_key = $1", f"safety:rect:{rid}:overdue"
        )
        == 1
    )
    told = await pool.fetch(
        """SELECT mr.user_id FROM messages m JOIN message_recipients mr ON mr.message_id = m.id
            WHERE m.subject LIKE '整改逾期%' AND m.body LIKE $1""",
        f"%{out['id']}%",
    )
    assert {r["user_id"] for r in told} >= {world.users["t_operator_a"], world.users["t_company_a"]}
    # the credit round keeps the entry (derived from the same fact)
    from server.db.credit_round import recompute

    await recompute(pool, settings, trigger="test")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM credit_events WHERE kind = 'rectification_overdue' AND source_id = $1",
            str(rid),
        )
        == 1
    )
    status, after = await call(client, "GET", f"/api/v1/safety-inspections/{out['id']}")
    assert after["rectifications"][0]["overdue"] is True


# ---------------------------------------------------------------- corrections, limits, retention


async def test_a_correction_supersedes_and_carries_over(
    client: Any, pool: Any, settings: Any, world: World
) -> None:
    cat = await catalogue(client)
    ids = {i["code"]: i["id"] for i in cat["items"]}
    rec = record(
        cat,
        world.customers["A"],
        fail=("valve_no_leak", "hose_type"),
        photo_items=[ids["valve_no_leak"], ids["hose_type"]],
        inspected_at=(dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat(),
    )
    status, old = await submit(client, "t_operator_a", form(rec, [jpeg(), jpeg()], png()))
    assert status == 201, old
    await run_round(pool, settings)  # the leak (1 day) is overdue: marked, one credit event
    valve_old = next(r for r in old["rectifications"] if r["code"] == "valve_no_leak")
    fix = record(
        cat,
        world.customers["A"],
        fail=("valve_no_leak",),
        photo_items=[ids["valve_no_leak"]],
        corrects=old["id"],
    )
    status, new = await submit(client, "t_operator_a", form(fix, [jpeg()], png()))
    assert status == 201, new
    status, old_after = await call(client, "GET", f"/api/v1/safety-inspections/{old['id']}")
    assert {r["state"] for r in old_after["rectifications"]} == {"superseded"}
    assert old_after["corrected_by"] == [new["id"]]
    [carried] = new["rectifications"]
    assert carried["deadline"] == valve_old["deadline"]  # not restarted by the correction
    assert carried["overdue"] is True and carried["overdue_at"] is not None
    await run_round(pool, settings)
    from server.db.credit_round import recompute

    await recompute(pool, settings, trigger="test")
    lapses = await pool.fetchval(
        """SELECT count(*) FROM credit_events WHERE kind = 'rectification_overdue'
            AND source_id = ANY($1::text[])""",
        [str(valve_old["id"]), str(carried["id"])],
    )
    assert lapses == 1  # one lapse, counted once
    # a superseded rectification is not re-checked
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("photo", io.BytesIO(jpeg()), filename="f.jpg", content_type="image/jpeg")
    resp = await client.post(
        f"/api/v1/rectifications/{valve_old['id']}/recheck",
        data=data,
        headers=await headers_for(client, "t_operator_a"),
    )
    assert resp.status == 409


async def test_item_texts_show_the_configured_service_life(
    client: Any, pool: Any, settings: Any
) -> None:
    cat = await catalogue(client)
    texts = {i["code"]: (i["text_zh"], i["text_en"]) for i in cat["items"]}
    life, hose = settings.safety.regulator_life_months, settings.safety.hose_life_months
    assert str(life) in texts["regulator_ok"][0] and f"{life} months" in texts["regulator_ok"][1]
    assert (
        str(hose) in texts["hose_condition"][0] and f"{hose} months" in texts["hose_condition"][1]
    )
    assert "{" not in "".join(t for pair in texts.values() for t in pair)
    stored = await pool.fetchval(
        "SELECT text_en FROM safety_items WHERE id = $1",
        next(i["id"] for i in cat["items"] if i["code"] == "regulator_ok"),
    )
    assert "{regulator_life_months}" in stored  # the number is the config's, not the row's
    from types import SimpleNamespace

    from server.domain.safety import fill_text

    limits = SimpleNamespace(regulator_life_months=24, hose_life_months=24)
    assert (
        fill_text(stored, limits).endswith("at most 24 months")
        and fill_text("{x}", limits) == "{x}"
    )


def test_no_job_deletes_records_or_their_files() -> None:
    """No job deletes safety records or their uploads (docs/API.md: kept permanently): no
    code outside the migrations names such a DELETE (a retention job would have to)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = ("delete from safety_", "delete from uploads", "truncate safety_", "truncate uploads")
    for pkg in ("server", "realtime", "ingest"):
        for path in root.glob(f"{pkg}/**/*.py"):
            text = " ".join(path.read_text(encoding="utf-8").lower().split())
            if path == root / "server/kernel/uploads.py":
                # the one delete of uploads there is of old scheduled reports' files, by purpose
                deletes = text.split("delete from uploads")[1:]
                assert all("u.purpose = 'report_run'" in d.split('"""')[0] for d in deletes)
                text = text.replace("delete from uploads", "")
            assert not any(p in text for p in pattern), path


async def test_the_database_refuses_deleting_records(client: Any, pool: Any, world: World) -> None:
    cat = await catalogue(client)
    rec, _ = failing_record(cat, world)
    status, _ = await submit(client, "t_operator_a", form(rec, [jpeg()], png()))
    assert status == 201
    for table in ("safety_inspections", "safety_rectifications", "safety_answers"):
        with pytest.raises(Exception, match="immutable"):
            await pool.execute(f"DELETE FROM {table}")
