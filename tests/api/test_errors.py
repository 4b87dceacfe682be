"""ONE canonical error-shape test over every endpoint with bad input.

Each row: a request with something wrong (wrong types, unknown query values, malformed
JSON, missing fields, oversized page_size, non-numeric or huge ids, ...) → a 4xx with
`{"error": {"code", "message", "details"}}`, a documented code, the offending field named
where there is one — and never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest

from server.kernel.errors import ERROR_CODES
from tests.api.conftest import call
from tests.conftest import World

LISTS = (
    "/api/v1/cylinders",
    "/api/v1/companies",
    "/api/v1/sites",
    "/api/v1/customers",
    "/api/v1/devices",
    "/api/v1/users",
    "/api/v1/fills",
    "/api/v1/alerts",
    "/api/v1/events",
    "/api/v1/dead-letters",
    "/api/v1/complaints",
    "/api/v1/reports/inspection-due",
)
ITEMS = ("cylinders", "companies", "sites", "customers", "devices", "users", "alerts")
CREATES = (
    "/api/v1/cylinders",
    "/api/v1/companies",
    "/api/v1/sites",
    "/api/v1/customers",
    "/api/v1/devices",
    "/api/v1/users",
    "/api/v1/public/complaints",
)
HUGE = 2**70

# (method, path, json body or raw (bytes, content type), expected status, expected field)
BAD: list[tuple[str, str, Any, int, str | None]] = []
for path in LISTS:
    BAD += [
        ("GET", f"{path}?page=0", None, 400, "page"),
        ("GET", f"{path}?page=abc", None, 400, "page"),
        ("GET", f"{path}?page_size=1000000", None, 400, "page_size"),
        ("GET", f"{path}?page_size=-1", None, 400, "page_size"),
        ("GET", f"{path}?nonsense=1", None, 400, "nonsense"),
    ]
for item in ITEMS:
    BAD += [
        ("GET", f"/api/v1/{item}/abc", None, 404, None),
        ("GET", f"/api/v1/{item}/0", None, 404, None),
        ("GET", f"/api/v1/{item}/{HUGE}", None, 404, None),
        ("GET", f"/api/v1/{item}/999999999", None, 404, None),
    ]
for item in ("cylinders", "companies", "sites", "customers", "devices", "users"):
    BAD += [
        ("PATCH", f"/api/v1/{item}/1", (b"{not json", "application/json"), 400, None),
        ("PATCH", f"/api/v1/{item}/1", (b"x=1", "application/x-www-form-urlencoded"), 415, None),
        ("PATCH", f"/api/v1/{item}/1", {}, 400, "body"),
        ("PATCH", f"/api/v1/{item}/1", {"no_such_field": 1}, 400, "no_such_field"),
        ("PATCH", f"/api/v1/{item}/{HUGE}", {}, 404, None),
    ]
for path in CREATES:
    BAD += [
        ("POST", path, (b"{not json", "application/json"), 400, None),
        ("POST", path, (b"", "application/json"), 400, None),
        ("POST", path, (b"[1, 2]", "application/json"), 400, None),
        ("POST", path, (b"x=1", "text/plain"), 415, None),
        ("POST", path, {"no_such_field": 1}, 400, None),
    ]
BAD += [
    # cylinders: search values
    ("GET", "/api/v1/cylinders?status=broken", None, 400, "status"),
    ("GET", "/api/v1/cylinders?compliance=fine", None, 400, "compliance"),
    ("GET", "/api/v1/cylinders?district=12", None, 400, "district"),
    ("GET", f"/api/v1/cylinders?company={HUGE}", None, 400, "company"),
    ("GET", f"/api/v1/cylinders?site={HUGE}", None, 400, "site"),
    ("GET", "/api/v1/cylinders?site=x", None, 400, "site"),
    ("GET", "/api/v1/cylinders?tag=" + "T" * 500, None, 400, "tag"),
    # cylinders: create
    ("POST", "/api/v1/cylinders", {"spec": "YSP35.5"}, 400, "tag"),
    (
        "POST",
        "/api/v1/cylinders",
        {"tag": 5, "spec": "YSP35.5", "manufacture_date": "2020-01-01"},
        400,
        "tag",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {"tag": "X1", "spec": "YSP35.5", "manufacture_date": "2020-13-01", "owner_company_id": 1},
        400,
        "manufacture_date",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {
            "tag": "X1",
            "spec": "YSP35.5",
            "manufacture_date": "2020-01-01",
            "owner_company_id": HUGE,
        },
        400,
        "owner_company_id",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {
            "tag": "X1",
            "spec": "YSP35.5",
            "manufacture_date": "2020-01-01",
            "owner_company_id": 1,
            "tare_kg": "heavy",
        },
        400,
        "tare_kg",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {
            "tag": "X1",
            "spec": "YSP35.5",
            "manufacture_date": "2020-01-01",
            "owner_company_id": 1,
            "tare_kg": 1e12,
        },
        400,
        "tare_kg",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {"tag": "X1", "spec": "YSP35.5", "manufacture_date": "9999-12-31", "owner_company_id": 1},
        400,
        "manufacture_date",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {
            "tag": "X1",
            "spec": "YSP35.5",
            "manufacture_date": "2020-01-01",
            "owner_company_id": 1,
            "valve_type": "gold",
        },
        400,
        "valve_type",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {
            "tag": "X1",
            "spec": "YSP35.5",
            "manufacture_date": "2020-01-01",
            "owner_company_id": 999999,
        },
        400,
        "owner_company_id",
    ),
    (
        "POST",
        "/api/v1/cylinders",
        {
            "tag": "X 1;DROP",
            "spec": "YSP35.5",
            "manufacture_date": "2020-01-01",
            "owner_company_id": 1,
        },
        400,
        "tag",
    ),
    ("PATCH", "/api/v1/cylinders/1", {"status": "melted"}, 400, "status"),
    ("PATCH", "/api/v1/cylinders/1", {"spec": None}, 400, "spec"),
    (
        "PATCH",
        "/api/v1/cylinders/1",
        {"next_inspection_date": "1990-01-01"},
        400,
        "next_inspection_date",
    ),
    ("POST", "/api/v1/cylinders/1/inspections", {"inspected_on": "2020-01-01"}, 400, "result"),
    (
        "POST",
        "/api/v1/cylinders/1/inspections",
        {"inspected_on": "2020-01-01", "result": "meh"},
        400,
        "result",
    ),
    (
        "POST",
        "/api/v1/cylinders/1/inspections",
        {"inspected_on": "2999-01-01", "result": "pass"},
        400,
        "inspected_on",
    ),
    ("GET", "/api/v1/cylinders/1/trajectory?page_size=0", None, 400, "page_size"),
    # other resources
    (
        "POST",
        "/api/v1/companies",
        {"code": "NEW", "name": "x", "licence_status": "maybe"},
        400,
        "licence_status",
    ),
    (
        "POST",
        "/api/v1/companies",
        {"code": "NEW", "name": "x", "district_code": "abc"},
        400,
        "district_code",
    ),
    ("POST", "/api/v1/companies", {"code": "TEST-A", "name": "dup"}, 409, "code"),
    (
        "POST",
        "/api/v1/companies",
        {"code": "NEW2", "name": "x", "district_code": "999999"},
        400,
        "district_code",
    ),
    ("POST", "/api/v1/sites", {"code": "S1", "name": "x", "kind": "castle"}, 400, "kind"),
    ("POST", "/api/v1/sites", {"code": "S1", "name": "x", "kind": "store", "lat": 91}, 400, "lat"),
    (
        "POST",
        "/api/v1/sites",
        {"code": "S1", "name": "x", "kind": "store", "company_id": 999999},
        400,
        "company_id",
    ),
    ("GET", "/api/v1/sites?kind=castle", None, 400, "kind"),
    (
        "POST",
        "/api/v1/customers",
        {"account_no": "Z", "name": "x", "company_id": 1, "id_number": "123"},
        400,
        "id_number",
    ),
    ("POST", "/api/v1/customers", {"account_no": "Z", "name": "x"}, 400, "company_id"),
    (
        "POST",
        "/api/v1/customers",
        {"account_no": "Z", "name": "x", "company_id": 1, "kind": "alien"},
        400,
        "kind",
    ),
    ("GET", "/api/v1/customers?id_number=12345", None, 400, "id_number"),
    ("POST", "/api/v1/devices", {"device_id": "G1", "kind": "toaster"}, 400, "kind"),
    ("POST", "/api/v1/devices", {"device_id": "G1", "kind": "gun"}, 400, "site_id"),
    (
        "POST",
        "/api/v1/devices",
        {"device_id": "G1", "kind": "handheld", "site_id": 999999},
        400,
        "site_id",
    ),
    ("GET", "/api/v1/devices?online=maybe", None, 400, "online"),
    (
        "POST",
        "/api/v1/users",
        {"username": "newbie", "password": "x", "role": "admin"},
        400,
        "password",
    ),
    (
        "POST",
        "/api/v1/users",
        {"username": "newbie", "password": "long-enough-1", "role": "king"},
        400,
        "role",
    ),
    (
        "POST",
        "/api/v1/users",
        {"username": "newbie", "password": "long-enough-1", "role": "officer"},
        400,
        "districts",
    ),
    (
        "POST",
        "/api/v1/users",
        {"username": "newbie", "password": "long-enough-1", "role": "station_operator"},
        400,
        "site_id",
    ),
    (
        "POST",
        "/api/v1/users",
        {"username": "t_admin", "password": "long-enough-1", "role": "admin"},
        409,
        "username",
    ),
    (
        "POST",
        "/api/v1/users",
        {"username": "a b", "password": "long-enough-1", "role": "admin"},
        400,
        "username",
    ),
    ("GET", "/api/v1/fills?from=yesterday", None, 400, "from"),
    ("GET", "/api/v1/fills?from=2024-02-01&to=2024-01-01", None, 400, "to"),
    ("GET", "/api/v1/fills?assessment=great", None, 400, "assessment"),
    ("GET", "/api/v1/alerts?state=closed", None, 400, "state"),
    ("GET", "/api/v1/alerts?severity=apocalyptic", None, 400, "severity"),
    ("POST", "/api/v1/alerts/1/ack", {"note": 5}, 400, "note"),
    ("POST", f"/api/v1/alerts/{HUGE}/ack", {}, 404, None),
    ("POST", "/api/v1/alerts/999999999/resolve", {}, 404, None),
    ("GET", "/api/v1/events?kind=party", None, 400, "kind"),
    ("GET", "/api/v1/events?cylinder=-4", None, 400, "cylinder"),
    ("GET", "/api/v1/reports/compliance-summary?format=pdf", None, 400, "format"),
    ("GET", "/api/v1/reports/fills-daily?from=2024-02-30", None, 400, "from"),
    ("GET", "/api/v1/reports/denials?from=2024-02-01&to=2024-01-01", None, 400, "to"),
    ("GET", "/api/v1/reports/anomalies-by-company?to=9999-12-31", None, 400, "to"),
    ("GET", "/api/v1/reports/no-such-report", None, 404, None),
    ("GET", "/api/v1/public/cylinders/NOPE-NOT-THERE", None, 404, None),
    ("GET", "/api/v1/public/cylinders/%E2%98%83", None, 404, None),
    ("POST", "/api/v1/public/complaints", {"text": ""}, 400, "text"),
    ("POST", "/api/v1/public/complaints", {"text": "   "}, 400, "text"),
    ("POST", "/api/v1/public/complaints", {"text": "x" * 5_000}, 400, "text"),
    # a public form is a small-body route: 100 KB is refused before it is read
    ("POST", "/api/v1/public/complaints", {"text": "x" * 100_000}, 413, None),
    ("POST", "/api/v1/public/complaints", {"text": "hi", "contact": "c" * 500}, 400, "contact"),
    ("DELETE", "/api/v1/cylinders", None, 405, None),
    # NUL cannot be stored by PostgreSQL: refused up front, never a 500
    ("GET", "/api/v1/cylinders?tag=%00", None, 400, "tag"),
    ("GET", "/api/v1/customers?q=a%00b", None, 400, "q"),
    ("POST", "/api/v1/companies", {"code": "NUL", "name": "a\u0000b"}, 400, "body"),
    ("POST", "/api/v1/public/complaints", {"text": "\u0000"}, 400, "body"),
    ("GET", "/api/v1/reports/denials?to=0001-01-05", None, 400, "from"),
    ("GET", "/api/v1/nothing-here", None, 404, None),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    BAD,
    ids=[f"{m} {p[:70]} {str(b)[:40]}" for m, p, b, _, _ in BAD],
)
async def test_bad_input_is_a_4xx_in_the_one_error_shape(
    client: Any, world: World, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    kw: dict[str, Any] = {}
    if isinstance(body, tuple):
        kw["data"], ctype = body
        kw["headers"] = {"Content-Type": ctype}
        body = None
    got, payload = await call(client, method, path, "t_admin", body, **kw)
    assert got == status, payload
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    err = payload["error"]
    assert set(err) == {"code", "message", "details"}
    assert err["code"] in ERROR_CODES
    assert isinstance(err["message"], str) and err["message"]
    if field is not None:
        assert isinstance(err["details"], dict), err
        assert err["details"].get("field") == field, err
        assert field in err["message"]


async def test_anonymous_and_forbidden_share_the_shape(client: Any) -> None:
    for user, expected in (("anonymous", 401), ("t_inspector", 403)):
        got, payload = await call(client, "GET", "/api/v1/fills", user)
        assert got == expected
        assert payload["error"]["code"] in ("unauthorized", "forbidden")


WEIRD = (
    "'",
    "9" * 30,
    "-1",
    "0",
    "2024-13-45",
    "雪",
    "%",
    "a_b",
    "true",
    "\U0010ffff",
    " ",
    "x" * 199,
)


async def test_no_query_value_makes_a_500(client: Any, world: World) -> None:
    """Every documented query parameter of every GET endpoint, with odd values: never a 500."""
    status, doc = await call(client, "GET", "/api/v1/openapi.json", "anonymous")
    assert status == 200
    checked = 0
    for path, ops in doc["paths"].items():
        op = ops.get("get")
        if op is None or "{" in path:
            continue
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            for value in WEIRD:
                got, body = await call(
                    client, "GET", path, "t_admin", params={param["name"]: value}
                )
                assert got < 500, (path, param["name"], value, body)
                checked += 1
    assert checked > 300
