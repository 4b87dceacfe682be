"""The devices page in Chromium, on a real broker with the production authentication.

A company admin registers a filling gun: the page shows its MQTT password once, the gun
connects with it and a fill request over MQTT is answered ``allow`` by a real ingest worker.
The admin deactivates the gun on the page: its broker connection is closed, it cannot
reconnect, and the platform refuses its fill requests (``unknown_station``). The broker is a
private Mosquitto with the dynamic-security plugin (``config/mosquitto.conf``, set up as
docs/SECURITY.md "Broker" says); the machine's broker is anonymous and has no plugin loaded,
and ``tests/api/test_device_broker.py`` covers what holds there. A regulator reads the page
without any way to change; company B sees none of A's devices (docs/ARCHITECTURE.md §8).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import asyncpg
import msgspec
import pytest
from aiohttp import web

from ingest.broker_sync import sync_broker
from ingest.dynsec import BrokerControl
from tests.api.fill_auth import fill_outcome
from tests.browser.conftest import ARTIFACTS, VIEWPORT, OpenSession
from tests.conftest import PASSWORD, World
from tests.gun_mqtt import ADMIN, CUT_OFF_S, ask_gun, closed_within, refused, start_secure_broker
from tests.ingest.conftest import free_port, running_worker

pytestmark = pytest.mark.browser

INGEST = "cylwatch-ingest"
V5 = aiomqtt.ProtocolVersion.V5


@dataclass
class Secured:
    url: str
    settings: Any
    port: int


@pytest.fixture(scope="module")
async def secured(
    settings: Any, database: str, world: World, vendor_assets: None
) -> AsyncIterator[Secured]:
    """The app with ``[services] mqtt_admin_url`` set, on a dynamic-security broker whose
    ingest client broker-sync has set up (no device clients: the page registers its own)."""
    from server.app import create_app

    broker, admin_password = start_secure_broker()
    token = secrets.token_hex(3)
    ingest_password = secrets.token_urlsafe(12)
    admin_url = f"mqtt://{ADMIN}:{admin_password}@127.0.0.1:{broker.port}"
    services = msgspec.structs.replace(
        settings.services,
        mqtt_url=f"mqtt://{INGEST}:{ingest_password}@127.0.0.1:{broker.port}",
        mqtt_admin_url=admin_url,
    )
    ingest = msgspec.structs.replace(
        settings.ingest,
        shared_group=f"dev{token}",
        client_id_prefix=f"dev-{token}",
        session_expiry_s=60,
        batch_max_ms=50,
    )
    realtime = msgspec.structs.replace(settings.realtime, redis_channel=f"cylwatch:test:{token}")
    local = msgspec.structs.replace(settings, services=services, ingest=ingest, realtime=realtime)
    runner: web.AppRunner | None = None
    try:
        async with BrokerControl(admin_url, 5.0) as control:
            await sync_broker(
                control,
                [],
                ingest_user=INGEST,
                ingest_password=ingest_password,
                shared_group=local.ingest.shared_group,
                admin_user=None,
            )
        runner = web.AppRunner(create_app(local, with_pages=True), shutdown_timeout=0.5)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Secured(f"http://127.0.0.1:{port}", local, broker.port)
    finally:
        if runner is not None:
            await runner.cleanup()
        broker.close()


@contextlib.asynccontextmanager
async def _logged_in(
    browser: Any, base_url: str, username: str
) -> AsyncIterator[tuple[Any, list[str]]]:
    context = await browser.new_context(base_url=base_url, viewport=VIEWPORT)
    try:
        resp = await context.request.post(
            "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
        )
        assert resp.ok, await resp.text()
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        yield page, errors
    finally:
        await context.close()


async def _station_and_cylinder(pool: asyncpg.Pool, world: World) -> tuple[str, str]:
    """A licensed station of company A and a cylinder of A in date, for this test alone."""
    code = f"DST-{secrets.token_hex(3).upper()}"
    await pool.execute(
        """INSERT INTO sites (code, name, kind, company_id, district_code, licence_no,
                              licence_expiry, licence_status)
           VALUES ($1, $2, 'filling_station', $3, '410105', $4, $5, 'valid')""",
        code,
        f"设备测试站{code}",
        world.companies["A"],
        f"FL-{code}",
        world.today + dt.timedelta(days=300),
    )
    tag = f"{code}-TAG"
    await pool.execute(
        """INSERT INTO cylinders (tag, owner_company_id, spec, manufacture_date,
               next_inspection_date, scrap_date)
           VALUES ($1, $2, 'YSP35.5', current_date - 400, current_date + 600, current_date + 2000)""",
        tag,
        world.companies["A"],
    )
    return code, tag


async def test_company_admin_registers_a_gun_then_deactivates_it(
    browser: Any, secured: Secured, pool: asyncpg.Pool, world: World
) -> None:
    station, tag = await _station_and_cylinder(pool, world)
    gun = f"GUN-{station}"
    async with _logged_in(browser, secured.url, "t_company_a") as (page, errors):
        await page.goto("/admin/devices")
        await page.get_by_test_id("results").locator("tbody tr").first.wait_for()
        await page.get_by_test_id("new-device").click()
        dialog = page.get_by_test_id("device-dialog")
        await dialog.get_by_test_id("device-id").fill(gun)
        await dialog.get_by_test_id("device-kind").select_option("gun")
        await dialog.get_by_test_id("device-name").fill("1号充装枪")
        await dialog.get_by_test_id("device-site").select_option(
            label=f"设备测试站{station} ({station})"
        )
        await dialog.get_by_test_id("device-save").click()
        secret = page.get_by_test_id("secret-dialog")
        shown = secret.get_by_test_id("device-password")
        await shown.wait_for()
        password = await shown.inner_text()
        assert len(password) == 24
        assert await secret.get_by_test_id("device-username").inner_text() == gun
        assert "已在消息服务器上开通其账号" in await secret.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "devices-password.png"))
        await secret.get_by_test_id("secret-done").click()
        await secret.wait_for(state="hidden")
        assert password not in await page.content()  # shown once: gone with the dialog
        row = page.locator(f'tr[data-device="{gun}"]')
        await row.wait_for()
        assert "充装枪" in await row.inner_text() and station in await row.inner_text()
        assert await row.locator('[data-active="true"]').count() == 1

        async with running_worker(secured.settings, pool):
            before = await ask_gun(
                f"mqtt://127.0.0.1:{secured.port}", gun, tag, username=gun, password=password
            )
            assert before["decision"] == "allow", before
            device = aiomqtt.Client(
                "127.0.0.1", secured.port, username=gun, password=password, protocol=V5
            )
            await device.__aenter__()
            try:
                await row.locator('[data-action="deactivate"]').click()
                confirm = page.get_by_test_id("deactivate-dialog")
                assert gun in await confirm.inner_text()
                started = time.monotonic()
                await confirm.get_by_test_id("deactivate-confirm").click()
                assert await closed_within(device, f"cyl/v1/gun/{gun}/status", started + CUT_OFF_S)
            finally:
                with contextlib.suppress(aiomqtt.MqttError):
                    await device.__aexit__(None, None, None)
            await page.locator(f'tr[data-device="{gun}"] [data-active="false"]').wait_for()
            toast = await page.locator("#toasts").inner_text()
            assert "已断开其消息服务器连接" in toast, toast
            assert await refused(
                aiomqtt.Client(
                    "127.0.0.1", secured.port, username=gun, password=password, protocol=V5
                )
            )
        # and the platform: the gun's fill request is refused, whatever reached the broker
        outcome = await fill_outcome(secured.settings, pool, gun, tag)
        assert outcome.decision.decision == "deny"
        assert "unknown_station" in outcome.decision.reason_codes
        assert await pool.fetchval("SELECT active FROM devices WHERE device_id = $1", gun) is False
        await page.screenshot(path=str(ARTIFACTS / "devices.png"))
        assert not errors, errors


async def test_regulator_reads_without_edit_buttons(open_session: OpenSession) -> None:
    s = await open_session("t_regulator_jinshui")
    await s.page.goto("/admin/devices")
    await s.page.locator('tr[data-device="GUN-STA-A1"]').wait_for()
    assert await s.page.locator('tr[data-device="GUN-STA-B1"]').count() == 0  # 二七区
    assert await s.page.get_by_test_id("new-device").count() == 0
    assert await s.page.locator("[data-action]").count() == 0
    assert await s.page.locator("#device-dialog").count() == 0
    await s.screenshot("devices-regulator")
    assert not s.errors, s.errors


async def test_company_b_sees_none_of_a_devices(open_session: OpenSession) -> None:
    s = await open_session("t_company_b")
    await s.page.goto("/admin/devices?q=GUN-STA-A1")
    await s.page.get_by_test_id("empty-state").wait_for()
    await s.page.goto("/admin/devices")
    await s.page.locator('tr[data-device="GUN-STA-B1"]').wait_for()
    assert await s.page.locator('tr[data-device="GUN-STA-A1"]').count() == 0
    sites = await s.page.get_by_test_id("search-site").locator("option").all_inner_texts()
    assert not any("STA-A1" in o for o in sites)  # the filter offers only B's sites
    assert not s.errors, s.errors


async def test_english(open_session: OpenSession) -> None:
    s = await open_session("t_company_a")
    await s.page.goto("/admin/devices?lang=en")
    await s.page.get_by_role("heading", name="Devices").wait_for()
    await s.page.locator('tr[data-device="GUN-STA-A1"]').wait_for()
    assert "Filling gun" in await s.page.locator('tr[data-device="GUN-STA-A1"]').inner_text()
    assert not s.errors, s.errors
