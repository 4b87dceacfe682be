"""ROLE WALK: every /api/v1 endpoint × every role of ROLE_USERS + anonymous → allow or deny.

The matrix below *is* the access policy of docs/ARCHITECTURE.md §7 as the API enforces it; each row is
one endpoint, each column one test user:

    admin  = t_admin                 reg  = t_regulator (city-wide)
    regJ   = t_regulator_jinshui      off  = t_officer (410105)
    coA    = t_company_a              coB  = t_company_b
    opA    = t_operator_a (STA-A1)    insp = t_inspector (INS-1)
    anon   = no credentials

Targets belong to company A in district 410105 (金水区), so company B's admin sees 404
(scoped out: existence not revealed) where company A's sees 200, and a role that may
never do a thing sees 403. A final test proves the table covers every mounted route.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from typing import Any

import pytest

from server.kernel import kiosk_tokens
from tests.api import roles
from tests.api.conftest import ANON, Fresh, call, unique
from tests.api.roles import Case, Maker
from tests.conftest import PASSWORD, ROLE_USERS, World, login
from tests.outbound.fakes import insert_dead_batch

USERS = (*ROLE_USERS, ANON)
COLS = ("admin", "reg", "regJ", "off", "coA", "coB", "opA", "insp", "anon")
assert len(COLS) == len(USERS)


def _site_body(w: World) -> dict[str, Any]:
    return {
        "code": unique("SITE"),
        "name": "测试门店",
        "kind": "store",
        "company_id": w.companies["A"],
        "district_code": "410105",
    }


def _cyl_body(w: World) -> dict[str, Any]:
    return {
        "tag": unique("RW"),
        "spec": "YSP35.5",
        "owner_company_id": w.companies["A"],
        "manufacture_date": (w.today - dt.timedelta(days=30)).isoformat(),
    }


def _push_body() -> dict[str, Any]:
    import base64

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(bytes([4] + [7] * (n - 1))).rstrip(b"=").decode()

    return {
        "endpoint": f"https://push.example.com/{unique('ep')}",
        "keys": {"p256dh": b64(65), "auth": b64(16)},
    }


CASES: dict[str, Case] = {
    #                                                       admin reg regJ off coA coB opA insp anon
    "cylinders.list": Case(
        "GET", "/api/v1/cylinders", (200, 200, 200, 200, 200, 200, 200, 200, 401)
    ),
    "cylinders.create": Case(
        "POST", "/api/v1/cylinders", (201, 403, 403, 403, 201, 400, 403, 201, 401), _cyl_body
    ),
    "cylinders.get": Case(
        "GET", "/api/v1/cylinders/{cyl_a}", (200, 200, 200, 200, 200, 404, 200, 200, 401)
    ),
    "cylinders.patch": Case(
        "PATCH",
        "/api/v1/cylinders/{cyl_a}",
        (200, 403, 403, 403, 200, 404, 403, 403, 401),
        lambda w: {"valve_type": "smart"},
    ),
    "cylinders.trajectory": Case(
        "GET", "/api/v1/cylinders/{cyl_a}/trajectory", (200, 200, 200, 200, 200, 404, 200, 200, 401)
    ),
    "cylinders.inspect": Case(
        "POST",
        "/api/v1/cylinders/{fresh:cylinder}/inspections",
        (201, 403, 403, 403, 403, 403, 403, 201, 401),
        lambda w: {"inspected_on": w.today.isoformat(), "result": "pass"},
    ),
    "cylinders.export": Case(
        "GET",
        "/api/v1/cylinders/export?format=csv",
        (200, 200, 200, 200, 200, 200, 200, 200, 401),
        route="/api/v1/cylinders/export",
    ),
    "cylinders.import": Case(
        "POST",
        "/api/v1/cylinders/import?dry_run=true",
        (200, 403, 403, 403, 200, 200, 403, 200, 401),
        raw=(b"tag,owner_code,spec,manufacture_date\n", "text/csv"),
        route="/api/v1/cylinders/import",
    ),
    "companies.list": Case(
        "GET", "/api/v1/companies", (200, 200, 200, 200, 200, 200, 200, 200, 401)
    ),
    "companies.create": Case(
        "POST",
        "/api/v1/companies",
        (201, 403, 403, 403, 403, 403, 403, 403, 401),
        lambda w: {"code": unique("CO"), "name": "新燃气公司", "district_code": "410105"},
    ),
    "companies.get": Case(
        "GET", "/api/v1/companies/{company_a}", (200, 200, 200, 200, 200, 404, 200, 200, 401)
    ),
    "companies.patch": Case(
        "PATCH",
        "/api/v1/companies/{company_a}",
        (200, 403, 403, 403, 200, 404, 403, 403, 401),
        lambda w: {"contact_name": "张经理"},
    ),
    "sites.list": Case("GET", "/api/v1/sites", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "sites.create": Case(
        "POST", "/api/v1/sites", (201, 403, 403, 403, 201, 403, 403, 403, 401), _site_body
    ),
    "sites.get": Case(
        "GET", "/api/v1/sites/{site_a}", (200, 200, 200, 200, 200, 404, 200, 200, 401)
    ),
    "sites.patch": Case(
        "PATCH",
        "/api/v1/sites/{site_a}",
        (200, 403, 403, 403, 200, 404, 403, 403, 401),
        lambda w: {"address": "金水路1号"},
    ),
    "customers.list": Case(
        "GET", "/api/v1/customers", (200, 200, 200, 200, 200, 200, 200, 403, 401)
    ),
    "customers.create": Case(
        "POST",
        "/api/v1/customers",
        (201, 403, 403, 403, 201, 403, 403, 403, 401),
        lambda w: {"account_no": unique("AC"), "name": "王某", "company_id": w.companies["A"]},
    ),
    "customers.get": Case(
        "GET", "/api/v1/customers/{customer_a}", (200, 200, 200, 200, 200, 404, 200, 403, 401)
    ),
    "customers.patch": Case(
        "PATCH",
        "/api/v1/customers/{customer_a}",
        (200, 403, 403, 403, 200, 404, 403, 403, 401),
        lambda w: {"phone": "13800000000"},
    ),
    "devices.list": Case("GET", "/api/v1/devices", (200, 200, 200, 200, 200, 200, 200, 403, 401)),
    "devices.create": Case(
        "POST",
        "/api/v1/devices",
        (201, 403, 403, 403, 201, 403, 403, 403, 401),
        lambda w: {"device_id": unique("HH"), "kind": "handheld", "site_id": w.sites["STA-A1"]},
    ),
    "devices.get": Case(
        "GET", "/api/v1/devices/{gun_a}", (200, 200, 200, 200, 200, 404, 200, 403, 401)
    ),
    "devices.patch": Case(
        "PATCH",
        "/api/v1/devices/{gun_a}",
        (200, 403, 403, 403, 200, 404, 403, 403, 401),
        lambda w: {"name": "1号充装枪"},
    ),
    "users.list": Case("GET", "/api/v1/users", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "users.create": Case(
        "POST",
        "/api/v1/users",
        (201, 403, 403, 403, 201, 403, 403, 403, 401),
        lambda w: {
            "username": unique("op").lower(),
            "password": PASSWORD,
            "role": "station_operator",
            "site_id": w.sites["STA-A1"],
        },
    ),
    "users.get": Case(
        "GET", "/api/v1/users/{operator_a}", (200, 404, 404, 404, 200, 404, 200, 404, 401)
    ),
    "users.patch": Case(
        "PATCH",
        "/api/v1/users/{operator_a}",
        (200, 404, 404, 404, 200, 404, 200, 404, 401),
        lambda w: {"display_name": "充装工甲"},
    ),
    "fills.list": Case("GET", "/api/v1/fills", (200, 200, 200, 200, 200, 200, 200, 403, 401)),
    "alerts.list": Case("GET", "/api/v1/alerts", (200, 200, 200, 200, 200, 200, 200, 403, 401)),
    "alerts.get": Case(
        "GET", "/api/v1/alerts/{alert_a}", (200, 200, 200, 200, 200, 404, 200, 403, 401)
    ),
    "alerts.ack": Case(
        "POST",
        "/api/v1/alerts/{fresh:alert}/ack",
        (200, 200, 200, 200, 200, 404, 403, 403, 401),
        lambda w: {"note": "已通知企业"},
    ),
    "alerts.resolve": Case(
        "POST",
        "/api/v1/alerts/{fresh:alert}/resolve",
        (200, 200, 200, 200, 403, 403, 403, 403, 401),
        lambda w: {"note": "已整改"},
    ),
    "events.list": Case("GET", "/api/v1/events", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "epcis.events": Case(
        "GET", "/api/v1/epcis/events", (200, 200, 200, 200, 200, 200, 200, 200, 401)
    ),
    "dead_letters.list": Case(
        "GET", "/api/v1/dead-letters", (200, 403, 403, 403, 403, 403, 403, 403, 401)
    ),
    "outbound.sms": Case(
        "GET", "/api/v1/outbound/sms", (200, 200, 200, 403, 403, 403, 403, 403, 401)
    ),
    "outbound.upstream": Case(
        "GET", "/api/v1/outbound/upstream", (200, 403, 403, 403, 403, 403, 403, 403, 401)
    ),
    "outbound.upstream_retry": Case(
        "POST",
        "/api/v1/outbound/upstream/{fresh:dead_batch}/retry",
        (200, 403, 403, 403, 403, 403, 403, 403, 401),
    ),
    "reports.list": Case("GET", "/api/v1/reports", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "reports.compliance": Case(
        "GET", "/api/v1/reports/compliance-summary", (200, 200, 200, 200, 200, 200, 403, 200, 401)
    ),
    "reports.inspection_due": Case(
        "GET", "/api/v1/reports/inspection-due", (200, 200, 200, 200, 200, 200, 403, 200, 401)
    ),
    "reports.fills_daily": Case(
        "GET", "/api/v1/reports/fills-daily", (200, 200, 200, 200, 200, 200, 403, 403, 401)
    ),
    "reports.denials": Case(
        "GET", "/api/v1/reports/denials", (200, 200, 200, 200, 200, 200, 403, 403, 401)
    ),
    "reports.anomalies": Case(
        "GET", "/api/v1/reports/anomalies-by-company", (200, 200, 200, 200, 200, 200, 403, 403, 401)
    ),
    "public.cylinder": Case(
        "GET",
        "/api/v1/public/cylinders/BC-TAG-A-OK",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
        route="/api/v1/public/cylinders/{code}",
    ),
    "public.complaint": Case(
        "POST",
        "/api/v1/public/complaints",
        (201, 201, 201, 201, 201, 201, 201, 201, 201),
        lambda w: {"code": "BC-TAG-A-OK", "text": "钢瓶阀门有异味"},
    ),
    "public.articles": Case(
        "GET", "/api/v1/public/articles", (200, 200, 200, 200, 200, 200, 200, 200, 200)
    ),
    "complaints.list": Case(
        "GET", "/api/v1/complaints", (200, 200, 200, 200, 200, 200, 403, 403, 401)
    ),
    "openapi": Case("GET", "/api/v1/openapi.json", (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    "auth.login": Case(
        "POST",
        "/api/v1/auth/login",
        (200, 200, 200, 200, 200, 200, 200, 200, 200),
        lambda w: {"username": "t_regulator", "password": PASSWORD},
    ),
    "auth.logout": Case(
        "POST", "/api/v1/auth/logout", (200, 200, 200, 200, 200, 200, 200, 200, 200)
    ),
    "auth.me": Case("GET", "/api/v1/auth/me", (200, 200, 200, 200, 200, 200, 200, 200, 401)),
    "push.vapid_key": Case(
        "GET", "/api/v1/push/vapid-public-key", (200, 200, 200, 200, 200, 200, 200, 200, 401)
    ),
    "push.subscribe": Case(
        "POST",
        "/api/v1/push/subscriptions",
        (201, 201, 201, 201, 201, 201, 201, 403, 401),
        lambda w: _push_body(),
    ),
    "push.unsubscribe": Case(
        "DELETE",
        "/api/v1/push/subscriptions?endpoint=https://push.example.com/x",
        (200, 200, 200, 200, 200, 200, 200, 200, 401),
        route="/api/v1/push/subscriptions",
    ),
    "auth.api_keys": Case(
        "POST",
        "/api/v1/auth/api-keys",
        (201, 403, 403, 403, 201, 201, 403, 201, 401),
        lambda w: {"name": "erp"},
    ),
    "kiosk_tokens.list": Case(
        "GET", "/api/v1/kiosk-tokens", (200, 403, 403, 403, 403, 403, 403, 403, 401)
    ),
    "kiosk_tokens.issue": Case(
        "POST",
        "/api/v1/kiosk-tokens",
        (201, 403, 403, 403, 403, 403, 403, 403, 401),
        lambda w: {"username": "t_regulator_jinshui", "note": "role walk"},
    ),
    "kiosk_tokens.revoke": Case(
        "DELETE",
        "/api/v1/kiosk-tokens/{fresh:kiosk_token}",
        (200, 403, 403, 403, 403, 403, 403, 403, 401),
    ),
}


FRESH: dict[str, Maker] = {}
for _mod in pkgutil.iter_modules(roles.__path__):
    _rows = importlib.import_module(f"{roles.__name__}.{_mod.name}")
    _twice = set(CASES) & set(getattr(_rows, "CASES", {}))
    assert not _twice, f"{_mod.name}: matrix rows defined twice: {_twice}"
    CASES.update(getattr(_rows, "CASES", {}))
    FRESH.update(getattr(_rows, "FRESH", {}))


def targets(world: World, alert_a: int) -> dict[str, int]:
    return {
        "cyl_a": world.cylinders["TAG-A-OK"],
        "company_a": world.companies["A"],
        "site_a": world.sites["STA-A1"],
        "customer_a": world.customers["A"],
        "gun_a": world.devices["GUN-A"],
        "operator_a": world.users["t_operator_a"],
        "alert_a": alert_a,
    }


async def _path(case: Case, t: dict[str, int], fresh: Fresh) -> str:
    path = case.path
    if "{fresh:cylinder}" in path:
        path = path.replace("{fresh:cylinder}", str(await fresh.cylinder("A")))
    if "{fresh:alert}" in path:
        path = path.replace("{fresh:alert}", str(await fresh.alert("A")))
    if "{fresh:kiosk_token}" in path:
        issued = await kiosk_tokens.issue(fresh.pool, fresh.world.users["t_regulator"], 60)
        path = path.replace("{fresh:kiosk_token}", str(issued.id))
    if "{fresh:dead_batch}" in path:
        path = path.replace("{fresh:dead_batch}", str(await insert_dead_batch(fresh.pool)))
    for kind, make in FRESH.items():
        if "{fresh:" + kind + "}" in path:
            path = path.replace("{fresh:" + kind + "}", str(await make(fresh)))
    return path.format(**t)


@pytest.fixture
async def alert_a(fresh: Fresh) -> int:
    return await fresh.alert("A", kind="leak")


@pytest.mark.parametrize("name", list(CASES))
async def test_role_walk(name: str, client: Any, world: World, fresh: Fresh, alert_a: int) -> None:
    case = CASES[name]
    t = targets(world, alert_a)
    got: dict[str, int] = {}
    for user in USERS:
        path = await _path(case, t, fresh)
        kw: dict[str, Any] = {}
        if case.raw is not None:
            kw["data"] = case.raw[0]
            kw["headers"] = {"Content-Type": case.raw[1]}
        if name == "auth.logout" and user != ANON:
            # a logout ends the session: use a session of its own, not the cached one
            kw["headers"] = await login(client, user)
            client.session.cookie_jar.clear()
            status, _ = await call(
                client, case.method, path, ANON, case.body(world) if case.body else None, **kw
            )
        else:
            status, _ = await call(
                client, case.method, path, user, case.body(world) if case.body else None, **kw
            )
        got[user] = status
    expected = dict(zip(USERS, case.expect, strict=True))
    wrong = {
        COLS[i]: f"{got[u]} (expected {expected[u]})"
        for i, u in enumerate(USERS)
        if got[u] != expected[u]
    }
    assert not wrong, f"{case.method} {case.path}: {wrong}"


async def test_role_walk_covers_every_route(app: Any) -> None:
    """Every mounted /api/v1 route (any module: auth, archive, ...) has a row above."""
    mounted = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if path.startswith("/api/v1") and route.method != "HEAD":
            mounted.add((route.method, path))
    walked = set()
    for case in CASES.values():
        pattern = case.route or case.path.split("?")[0]
        for fresh_kind in ("cylinder", "alert", "kiosk_token", "dead_batch", *FRESH):
            pattern = pattern.replace("{fresh:" + fresh_kind + "}", "{id}")
        for name in (
            "cyl_a",
            "company_a",
            "site_a",
            "customer_a",
            "gun_a",
            "operator_a",
            "alert_a",
        ):
            pattern = pattern.replace("{" + name + "}", "{id}")
        walked.add((case.method, pattern))
    assert mounted - walked == set(), (
        f"routes missing from the role walk: {sorted(mounted - walked)}"
    )
    assert walked - mounted == set(), (
        f"walked routes that are not mounted: {sorted(walked - mounted)}"
    )
