"""The API keys page in Chromium, as a company admin: a new key is shown once (copied from the
dialog), works against the data interface, and once revoked on the page is refused at once."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.browser.conftest import Live, OpenSession

pytestmark = pytest.mark.browser


async def _status_with_key(live: Live, key: str) -> int:
    """GET /api/v1/cylinders with only the key (no cookie, no token)."""
    url = f"{live.url}/api/v1/cylinders"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"X-API-Key": key}) as resp,
    ):
        return resp.status


async def test_create_shown_once_use_and_revoke(
    open_session: OpenSession, live_server: Live, pool: asyncpg.Pool
) -> None:
    name = f"ERP 对接 {secrets.token_hex(3)}"
    s = await open_session("t_company_a")
    await s.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = s.page
    await page.goto("/admin/api-keys")
    results = page.get_by_test_id("results")
    await results.locator("table, [data-testid=empty-state]").first.wait_for()

    await page.get_by_test_id("new-key").click()
    dialog = page.get_by_test_id("key-dialog")
    # an empty name is refused on the page, nothing is sent
    await dialog.get_by_test_id("key-save").click()
    await dialog.locator("#key-form-error").wait_for()
    await dialog.get_by_test_id("key-name").fill(name)
    await dialog.get_by_test_id("key-save").click()
    value = dialog.get_by_test_id("key-value")
    await value.wait_for()
    key = await value.input_value()
    assert key.startswith("cwk_") and len(key) > 40
    warning = await dialog.get_by_test_id("key-once").inner_text()
    assert "只显示这一次" in warning
    await s.screenshot("api-keys-shown-once")
    await dialog.get_by_test_id("key-copy").click()
    await page.get_by_text("密钥已复制到剪贴板").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await dialog.get_by_test_id("key-done").click()
    await dialog.wait_for(state="hidden")

    # the list has the key by name and prefix; the key itself is nowhere on the page any more
    row = page.locator(f'tr[data-name="{name}"]')
    await row.wait_for()
    assert key[:10] in await row.inner_text()
    assert await row.get_attribute("data-active") == "true"
    assert key not in await page.content()
    assert await value.input_value() == ""

    # the key works against the data interface…
    assert await _status_with_key(live_server, key) == 200
    # …until it is revoked on the page, after a confirmation
    await row.get_by_test_id("revoke").click()
    confirm = page.get_by_test_id("revoke-dialog")
    assert name in await confirm.inner_text()
    await confirm.get_by_role("button", name="取消").click()
    await confirm.wait_for(state="hidden")
    assert await _status_with_key(live_server, key) == 200
    await row.get_by_test_id("revoke").click()
    await confirm.get_by_test_id("revoke-confirm").click()
    await page.locator(f'tr[data-name="{name}"][data-active="false"]').wait_for()
    assert await _status_with_key(live_server, key) == 401
    assert await pool.fetchval("SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = $1", name)
    await s.screenshot("api-keys-revoked")
    assert not s.errors, s.errors


async def test_a_company_admin_sees_its_staffs_keys_not_another_companys(
    open_session: OpenSession, pool: asyncpg.Pool, world: Any
) -> None:
    mine, theirs = f"op-key-{secrets.token_hex(3)}", f"b-key-{secrets.token_hex(3)}"
    for user, name in (("t_operator_a", mine), ("t_company_b", theirs)):
        await pool.execute(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, 'cwk_test00', $3)",
            world.users[user],
            name,
            secrets.token_hex(32),
        )
    s = await open_session("t_company_a", lang="en")
    await s.page.goto("/admin/api-keys?all=true&lang=en")
    await s.page.locator(f'tr[data-name="{mine}"]').wait_for()
    assert await s.page.locator(f'tr[data-name="{theirs}"]').count() == 0
    assert "t_operator_a" in await s.page.locator(f'tr[data-name="{mine}"]').inner_text()
    assert not s.errors, s.errors
