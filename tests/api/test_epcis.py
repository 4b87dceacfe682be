"""`GET /api/v1/epcis/events`: the EPCIS 2.0 export (docs/API.md "EPCIS 2.0 export").

Every document a test receives is validated against the GS1 EPCIS 2.0 JSON Schema with
format checking on (date-time and uri), so a malformed time or identifier fails here, not
at the partner who imports the file. The schema lives in the shared standards folder beside
the repository (`../shared/standards/epcis`); CI has it, and a missing schema fails there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator

from server.domain.events import EventKind, epcis_for
from tests.api.conftest import Fresh, headers_for, unique
from tests.conftest import World

SCHEMA = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "standards"
    / "epcis"
    / "EPCIS-JSON-Schema.json"
)
URL = "/api/v1/epcis/events"
BASE = dt.datetime(2025, 1, 10, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    if not SCHEMA.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"EPCIS schema missing at {SCHEMA}: CI must check out shared/ beside")
        pytest.skip(f"EPCIS schema not found at {SCHEMA}")
    checker = Draft7Validator.FORMAT_CHECKER
    # without these format libraries the checks pass silently: refuse to run without them
    assert {"date-time", "uri"} <= set(checker.checkers), sorted(checker.checkers)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return Draft7Validator(schema, format_checker=checker)


def assert_valid(validator: Draft7Validator, doc: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:5]


async def export(
    client: Any, user: str = "t_admin", **params: Any
) -> tuple[int, str, bytes, dict[str, str]]:
    """(status, content type, body, headers) of one export as *user*."""
    resp = await client.get(URL, params=params, headers=await headers_for(client, user))
    body = await resp.read()
    client.session.cookie_jar.clear()
    return resp.status, resp.content_type, body, dict(resp.headers)


async def document(
    client: Any, validator: Draft7Validator, user: str = "t_admin", **params: Any
) -> dict[str, Any]:
    status, ctype, body, _ = await export(client, user, **params)
    assert status == 200, body[:500]
    assert ctype == "application/ld+json"
    doc = orjson.loads(body)
    assert_valid(validator, doc)
    return dict(doc)


async def add_event(
    pool: Any,
    *,
    cylinder: int,
    tag: str,
    kind: str,
    at: dt.datetime,
    site: int | None,
    company: int,
    district: str,
    details: dict[str, Any] | None = None,
    conformant: bool = True,
    **extra: Any,
) -> str:
    """One row as the platform stores it (step and disposition from the domain table)."""
    known = kind in EventKind._value2member_map_
    mapping = epcis_for(EventKind(kind), conformant=conformant) if known else None
    msg_id = unique("MSG")
    values: dict[str, Any] = {
        "ts": at,
        "received_at": at + dt.timedelta(seconds=2),
        "msg_id": msg_id,
        "cylinder_id": cylinder,
        "tag": tag,
        "kind": kind,
        "biz_step": mapping.biz_step if mapping else None,
        "disposition": mapping.disposition if mapping else None,
        "site_id": site,
        "company_id": company,
        "district_code": district,
        "details": details or {},
        **extra,
    }
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO events ({cols}) VALUES ({marks})", *values.values())
    return msg_id


async def tagged_cylinder(pool: Any, fresh: Fresh, owner: str = "A") -> tuple[int, str]:
    cid = await fresh.cylinder(owner)
    return cid, str(await pool.fetchval("SELECT tag FROM cylinders WHERE id = $1", cid))


# (kind, details, conformant, expected ObjectEvents as (bizStep, disposition, action))
LIFE: list[tuple[str, dict[str, Any], bool, list[tuple[str | None, str, str]]]] = [
    ("register", {"spec": "YSP35.5"}, True, [("commissioning", "active", "ADD")]),
    ("fill_authorized", {"decision": "allow"}, True, [("inspecting", "conformant", "OBSERVE")]),
    (
        "fill",
        {"net_kg": 14.5, "tare_kg": 15.5, "gross_kg": 30.0, "result": "completed"},
        True,
        [("urn:cylwatch:bizstep:filling", "active", "OBSERVE")],
    ),
    ("fill_refused", {"reasons": ["overdue"]}, True, [("inspecting", "non_conformant", "OBSERVE")]),
    ("dispatch", {"action": "dispatch"}, True, [("shipping", "in_transit", "OBSERVE")]),
    (
        "deliver",
        {"action": "deliver", "customer": "CUST-A"},
        True,
        [("retail_selling", "retail_sold", "OBSERVE")],
    ),
    ("return", {"action": "return"}, True, [("receiving", "returned", "OBSERVE")]),
    ("transfer", {"action": "transfer"}, True, [("departing", "in_transit", "OBSERVE")]),
    ("receive", {"action": "receive"}, True, [("arriving", "active", "OBSERVE")]),
    ("inspection", {"result": "pass"}, True, [("inspecting", "conformant", "OBSERVE")]),
    ("inspection", {"result": "fail"}, False, [("inspecting", "non_conformant", "OBSERVE")]),
    ("status_change", {"from": "in_service", "to": "suspended"}, True, []),
    ("update", {"fields": ["barcode"]}, True, []),
    ("lost", {"from": "in_service", "to": "lost"}, True, [(None, "stolen", "OBSERVE")]),
    (
        "scrap",
        {"from": "in_service", "to": "scrapped"},
        True,
        [("decommissioning", "inactive", "DELETE"), ("destroying", "destroyed", "DELETE")],
    ),
    ("teleport", {}, True, []),
]


EXPORTED = sum(len(steps) for *_, steps in LIFE)


@pytest.fixture
async def life(pool: Any, world: World, fresh: Fresh) -> tuple[int, str]:
    """A company-A cylinder with one event of every kind, an hour apart."""
    cid, tag = await tagged_cylinder(pool, fresh)
    for i, (kind, details, conformant, _) in enumerate(LIFE):
        extra: dict[str, Any] = {}
        if kind == "deliver":  # the customer's home: none of it may reach the document
            extra = {"customer_id": world.customers["A"], "lat": 34.7712345, "lon": 113.6612345}
        await add_event(
            pool,
            cylinder=cid,
            tag=tag,
            kind=kind,
            at=BASE + dt.timedelta(hours=i),
            site=world.sites["INS-1" if kind in ("inspection", "scrap") else "STA-A1"],
            company=world.companies["A"],
            district="410105",
            details=details,
            conformant=conformant,
            **extra,
        )
    return cid, tag


async def test_every_kind_maps_to_its_cbv_step(
    client: Any, validator: Draft7Validator, life: tuple[int, str]
) -> None:
    cid, tag = life
    doc = await document(client, validator, cylinder=cid)
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    events = doc["epcisBody"]["eventList"]
    got = [(e.get("bizStep"), e["disposition"], e["action"]) for e in events]
    assert got == [step for *_, steps in LIFE for step in steps]
    assert doc["cylwatch:skippedEvents"] == {"status_change": 1, "teleport": 1, "update": 1}
    assert {e["epcList"][0] for e in events} == {f"urn:cylwatch:cylinder:{tag}"}
    assert all(e["eventTimeZoneOffset"] == "+08:00" for e in events)
    assert events[0]["eventTime"] == "2025-01-10T08:00:00+08:00"
    assert events[0]["recordTime"] == "2025-01-10T08:00:02+08:00"
    # eventIDs: unique, and the same on every export
    ids = [e["eventID"] for e in events]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:uuid:") for i in ids)
    again = await document(client, validator, cylinder=cid)
    assert [e["eventID"] for e in again["epcisBody"]["eventList"]] == ids
    by_kind = {e["cylwatch:kind"]: e for e in events}
    fill = by_kind["fill"]
    assert fill["readPoint"] == fill["bizLocation"] == {"id": "urn:cylwatch:site:STA-A1"}
    reports = fill["sensorElementList"][0]["sensorReport"]
    assert {(r["cylwatch:weighing"], r["value"], r["uom"], r["type"]) for r in reports} == {
        ("net", 14.5, "KGM", "Mass"),
        ("tare", 15.5, "KGM", "Mass"),
        ("gross", 30.0, "KGM", "Mass"),
    }
    # the cylinder left the site: read there, but not located there afterwards
    for kind in ("deliver", "dispatch", "transfer"):
        assert by_kind[kind]["readPoint"] == {"id": "urn:cylwatch:site:STA-A1"}
        assert "bizLocation" not in by_kind[kind]
    assert "readPoint" not in by_kind["lost"] and "bizStep" not in by_kind["lost"]
    assert by_kind["inspection"]["bizLocation"] == {"id": "urn:cylwatch:site:INS-1"}


async def test_no_personal_data(
    client: Any, validator: Draft7Validator, life: tuple[int, str]
) -> None:
    cid, _ = life
    status, _, body, _ = await export(client, "t_admin", cylinder=cid)
    assert status == 200
    text = body.decode()
    assert "retail_selling" in text
    for secret in ("客户A", "13800000000", "测试路1号", "410105********1234", "CUST-A"):
        assert secret not in text, secret
    assert "34.771" not in text and "113.661" not in text  # the delivery's coordinates
    assert "customer" not in text.lower()


async def test_scope(
    client: Any,
    validator: Draft7Validator,
    life: tuple[int, str],
    world: World,
    pool: Any,
    fresh: Fresh,
) -> None:
    cid, tag = life
    epc = f"urn:cylwatch:cylinder:{tag}"
    seen = await document(client, validator, "t_company_a", cylinder=cid)
    assert len(seen["epcisBody"]["eventList"]) == EXPORTED
    # company B: company A's cylinder is scoped out — empty, as the events list answers
    other = await document(client, validator, "t_company_b", cylinder=cid)
    assert other["epcisBody"]["eventList"] == []
    assert other["cylwatch:skippedEvents"] == {}
    everything = await document(client, validator, "t_company_b")
    assert epc not in orjson.dumps(everything).decode()
    # a regulator of 金水区 (410105) sees A's events, not B's in 二七区 (410103)
    b_cid, b_tag = await tagged_cylinder(pool, fresh, "B")
    await add_event(
        pool,
        cylinder=b_cid,
        tag=b_tag,
        kind="dispatch",
        at=BASE,
        site=world.sites["STA-B1"],
        company=world.companies["B"],
        district="410103",
    )
    jinshui = await document(client, validator, "t_regulator_jinshui", cylinder=cid)
    assert len(jinshui["epcisBody"]["eventList"]) == EXPORTED
    hidden = await document(client, validator, "t_regulator_jinshui", cylinder=b_cid)
    assert hidden["epcisBody"]["eventList"] == []
    city = await document(client, validator, "t_regulator", cylinder=b_cid)
    assert [e["bizStep"] for e in city["epcisBody"]["eventList"]] == ["shipping"]
    own = await document(client, validator, "t_company_b", tag=b_tag)
    assert len(own["epcisBody"]["eventList"]) == 1
    # the public: nothing, in the one error shape
    status, ctype, body, _ = await export(client, "anonymous")
    assert status == 401 and ctype == "application/json"
    assert orjson.loads(body)["error"]["code"] == "unauthorized"


async def test_filters(client: Any, validator: Draft7Validator, life: tuple[int, str]) -> None:
    cid, tag = life
    by_tag = await document(client, validator, tag=tag)
    assert len(by_tag["epcisBody"]["eventList"]) == EXPORTED
    # from/to: events at BASE + 0h … 15h; [2h, 5h) holds fill, fill_refused, dispatch
    window = await document(
        client,
        validator,
        cylinder=cid,
        **{"from": "2025-01-10T02:00:00Z", "to": "2025-01-10T13:00:00+08:00"},
    )
    kinds = [e["cylwatch:kind"] for e in window["epcisBody"]["eventList"]]
    assert kinds == ["fill", "fill_refused", "dispatch"]
    day = await document(client, validator, cylinder=cid, **{"from": "2025-01-11"})
    assert day["epcisBody"]["eventList"] == []
    company = await document(client, validator, tag=tag, company="TEST-A")
    assert len(company["epcisBody"]["eventList"]) == EXPORTED
    not_b = await document(client, validator, tag=tag, company="TEST-B")
    assert not_b["epcisBody"]["eventList"] == []
    district = await document(client, validator, tag=tag, district="410103")
    assert district["epcisBody"]["eventList"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cylinder": "abc"}, "cylinder"),
        ({"cylinder": "0"}, "cylinder"),
        ({"cylinder": str(2**63)}, "cylinder"),
        ({"company": "9" * 30}, "company"),
        ({"district": "4101"}, "district"),
        ({"from": "yesterday"}, "from"),
        ({"from": "0001-01-01T00:00:00+14:00"}, "from"),  # year 0 in UTC
        ({"to": "9999-12-31T23:59:59-14:00"}, "to"),  # year 10000 in UTC
        ({"to": "2025-13-01"}, "to"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, "to"),
        ({"tag": "x" * 65}, "tag"),
        ({"tag": "a\x00b"}, "tag"),
        ({"kind": "fill"}, "kind"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_bad_parameters_are_400(client: Any, params: dict[str, str], field: str) -> None:
    status, ctype, body, _ = await export(client, "t_admin", **params)
    assert status == 400, body[:300]
    assert ctype == "application/json"
    error = orjson.loads(body)["error"]
    assert error["code"] == "invalid_query" and error["details"]["field"] == field


def test_the_validator_really_checks_times_and_uris(validator: Draft7Validator) -> None:
    """A malformed time or identifier must fail: otherwise every other test proves nothing."""
    event = {
        "type": "ObjectEvent",
        "eventTime": "2025-01-10T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "eventID": "urn:uuid:3f0c0e3e-4b8a-5c1e-9a52-0d6f3c1b2a10",
        "epcList": ["urn:cylwatch:cylinder:TAG-1"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
    }
    doc = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-01-10T08:00:00+08:00",
        "epcisBody": {"eventList": [event]},
    }
    assert_valid(validator, doc)
    for field, bad in (
        ("eventTime", "2025-01-10 08:00"),
        ("eventTime", "2025-01-10T08:00:00"),  # no offset
        ("eventTime", "2025-02-30T08:00:00+08:00"),
        ("eventTime", "2025-01-10T25:00:00+08:00"),
        ("eventID", "not a uri"),
        ("bizStep", "urn:epcglobal:cbv:bizstep:shipping"),  # JSON wants the bare CBV name
    ):
        broken = {**doc, "epcisBody": {"eventList": [{**event, field: bad}]}}
        assert list(validator.iter_errors(broken)), (field, bad)
    assert list(validator.iter_errors({**doc, "creationDate": "10/01/2025"}))


async def test_a_large_export_streams_and_validates(
    client: Any, validator: Draft7Validator, pool: Any, world: World, fresh: Fresh
) -> None:
    """5,000 events cross several cursor batches (http.page_size_max) in one valid document."""
    cid, tag = await tagged_cylinder(pool, fresh)
    await pool.execute(
        """INSERT INTO events (ts, received_at, msg_id, cylinder_id, tag, kind, site_id,
                               company_id, district_code, details)
           SELECT $1::timestamptz + g.n * interval '1 minute', $1::timestamptz + g.n * interval '1 minute',
                  $2 || g.n, $3, $4, (ARRAY['fill', 'dispatch', 'deliver', 'return'])[1 + g.n % 4],
                  $5, $6, '410105',
                  CASE WHEN g.n % 4 = 0 THEN jsonb_build_object('net_kg', 14.5) ELSE '{}' END
             FROM generate_series(1, 5000) AS g(n)""",
        BASE,
        unique("BULK") + "-",
        cid,
        tag,
        world.sites["STA-A1"],
        world.companies["A"],
    )
    status, ctype, body, headers = await export(client, "t_company_a", cylinder=cid)
    assert status == 200 and ctype == "application/ld+json"
    assert headers.get("Transfer-Encoding") == "chunked"
    doc = orjson.loads(body)
    assert_valid(validator, doc)
    events = doc["epcisBody"]["eventList"]
    assert len(events) == 5000
    assert len({e["eventID"] for e in events}) == 5000
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    assert sum("sensorElementList" in e for e in events) == 1250
