"""The audit log page in Chromium: an admin changes a user and revokes a key, finds both by
filtering on the page, reads what was recorded (the revocation as a before → after diff) and
exports the filtered rows as CSV; a district regulator reads its districts' rows; an officer
is refused."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.api.audit_log import LOOKAHEAD_ROWS
from tests.browser.conftest import OpenSession, Session

pytestmark = pytest.mark.browser


async def _write(s: Session, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """A write through the API with the page's own session (cookie + CSRF token)."""
    csrf = next(c["value"] for c in await s.context.cookies() if c["name"] == "cylwatch_csrf")
    resp = await s.context.request.fetch(
        path, method=method, data=body, headers={"X-CSRF-Token": csrf}
    )
    assert resp.ok, await resp.text()
    return await resp.json()


async def _filter(s: Session, **values: str) -> None:
    page = s.page
    form = page.locator("#search-form")
    await form.locator('button[type="reset"]').click()
    for name, value in values.items():
        field = form.locator(f'[name="{name}"]')
        if await field.evaluate("el => el.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.get_by_test_id("search-submit").click()


async def test_admin_filters_reads_the_diff_and_exports(
    open_session: OpenSession, world: Any
) -> None:
    s = await open_session("t_admin")
    page = s.page
    new_name = f"充装工{secrets.token_hex(3)}"
    uid = world.users["t_operator_a"]
    old_name = f"旧名{secrets.token_hex(3)}"
    await _write(s, "PATCH", f"/api/v1/users/{uid}", {"display_name": old_name})
    await _write(s, "PATCH", f"/api/v1/users/{uid}", {"display_name": new_name})
    key_name = f"审计测试 {secrets.token_hex(3)}"
    made = await _write(s, "POST", "/api/v1/auth/api-keys", {"name": key_name})
    await _write(s, "DELETE", f"/api/v1/auth/api-keys/{made['id']}")

    await page.goto("/admin/audit")
    await page.get_by_test_id("results").locator("tbody tr").first.wait_for()

    # the user's change: found by action and who, the old and the new value side by side
    await _filter(s, action="user.update", user="t_admin")
    row = page.locator("tr[data-action='user.update']", has_text=new_name).first
    await row.wait_for()
    others = page.get_by_test_id("results").locator("tbody tr:not([data-action='user.update'])")
    assert await others.count() == 0
    assert "t_operator_a" in await row.inner_text()
    await row.get_by_test_id("entry-open").click()
    entry = page.get_by_test_id("entry-dialog")
    await entry.wait_for()
    changed = entry.locator("tr[data-field='display_name']")
    assert await changed.get_by_test_id("diff-after").inner_text() == new_name
    assert await changed.get_by_test_id("diff-before").inner_text() == old_name
    await s.screenshot("audit-entry-before-after")
    await entry.get_by_test_id("entry-close").click()
    await entry.wait_for(state="hidden")

    # the key's revocation: before → after
    await _filter(s, action="api_key.*", q=key_name)
    revoked = page.locator("tr[data-action='api_key.revoke']")
    await revoked.wait_for()
    listed = page.get_by_test_id("results").locator("tbody tr")
    assert await listed.count() == 2  # its creation and its revocation
    await revoked.get_by_test_id("entry-open").click()
    moved = entry.locator("tr[data-field='revoked_at']")
    await moved.wait_for()
    assert await moved.get_by_test_id("diff-before").inner_text() == "（空）"
    assert "diff-old" in (await moved.get_by_test_id("diff-before").get_attribute("class") or "")
    assert (await moved.get_by_test_id("diff-after").inner_text()).startswith("20")
    await s.screenshot("audit-entry-diff")
    await entry.get_by_test_id("entry-close").click()

    # the export follows the filters: the CSV holds the user's change
    await _filter(s, action="user.update", user="t_admin", q=new_name)
    await row.wait_for()
    async with page.expect_download() as info:
        await page.get_by_test_id("export-csv").click()
    download = await info.value
    path = await download.path()
    assert path is not None
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    assert rows[0]["action"] == "user.update" and rows[0]["username"] == "t_admin"
    assert rows[0]["entity_id"] == str(uid) and new_name in rows[0]["details"]
    assert not s.errors, s.errors


async def test_district_regulator_and_an_officer(
    open_session: OpenSession, pool: asyncpg.Pool, world: Any, settings: Any
) -> None:
    code = f"AUD-{secrets.token_hex(3)}"
    admin = await open_session("t_admin")
    for company, district, suffix in (("A", "410105", "J"), ("B", "410103", "E")):
        await _write(
            admin,
            "POST",
            "/api/v1/sites",
            {
                "code": f"{code}-{suffix}",
                "name": "审计站",
                "kind": "store",
                "company_id": world.companies[company],
                "district_code": district,
            },
        )
    s = await open_session("t_regulator_jinshui", lang="en")
    await s.page.goto(f"/admin/audit?action=site.create&q={code}&lang=en")
    rows = s.page.get_by_test_id("results").locator("tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 1
    assert f"{code}-J" in await rows.first.inner_text()

    # a long list: the district's total is counted a little past the page, and says so
    action = f"test.bulk_{secrets.token_hex(3)}"
    await pool.execute(
        """INSERT INTO audit_log (user_id, username, role, action, entity, entity_id, details)
           SELECT $1, 't_admin', 'admin', $2, 'site', $3, '{}' FROM generate_series(1, $4)""",
        world.users["t_admin"],
        action,
        str(world.sites["STA-A1"]),
        LOOKAHEAD_ROWS + 100,
    )
    await s.page.goto(f"/admin/audit?action={action}&lang=en")
    total = s.page.get_by_test_id("total")
    await total.wait_for()
    assert (await total.inner_text()).startswith(
        f"at least {settings.http.page_size_default + LOOKAHEAD_ROWS:,}"
    )
    assert not s.errors, s.errors

    officer = await open_session("t_officer")
    resp = await officer.page.goto("/admin/audit")
    assert resp is not None and resp.status == 403
    await pool.execute("DELETE FROM sites WHERE code LIKE $1", f"{code}-%")
