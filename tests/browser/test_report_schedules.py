"""The scheduled reports page in Chromium, as a district regulator: a report page's "schedule
this report" link opens the dialog filled in with its filters; saved, run now, the run's file
downloads and opens with the report's header; pause and delete work from the list."""

from __future__ import annotations

import asyncio
import io
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from python_calamine import CalamineWorkbook

from tests.api.report_activity_city import refreshed
from tests.browser.conftest import OpenSession

pytestmark = pytest.mark.browser


async def test_schedule_from_a_link_run_download_pause_delete(
    open_session: OpenSession, pool: asyncpg.Pool, settings: Any
) -> None:
    name = f"每月保有量 {secrets.token_hex(3)}"
    s = await open_session("t_regulator_jinshui")
    page = s.page
    await page.goto("/reports/schedules?report=holdings&district=410105")
    dialog = page.get_by_test_id("schedule-dialog")
    await dialog.wait_for()
    assert await dialog.get_by_test_id("schedule-report").input_value() == "holdings"
    assert await dialog.get_by_test_id("schedule-district").input_value() == "410105"
    # holdings is a stock: it takes no group, so the dialog offers none
    assert await dialog.get_by_test_id("schedule-group").count() == 0

    # an impossible filter is refused on the page, naming it
    await dialog.get_by_test_id("schedule-district").fill("41")
    await dialog.get_by_test_id("schedule-save").click()
    error = dialog.get_by_test_id("schedule-error")
    await error.wait_for()
    assert "district" in await error.inner_text()

    await dialog.get_by_test_id("schedule-district").fill("410105")
    await dialog.get_by_test_id("schedule-frequency").select_option("daily")
    await dialog.get_by_test_id("schedule-title").fill(name)
    await dialog.get_by_test_id("schedule-save").click()
    await dialog.wait_for(state="hidden")
    sid = await pool.fetchval("SELECT id FROM report_schedules WHERE title = $1", name)
    row = page.locator(f'tr[data-schedule-id="{sid}"]')
    await row.wait_for()
    assert "410105" in await row.inner_text()

    await refreshed(pool, settings)  # holdings counts on the census (migration 0226)
    await row.get_by_test_id("run-now").click()
    link = row.get_by_test_id("run-file")
    await link.wait_for()
    async with page.expect_download() as got:
        await link.click()
    download = await got.value
    data = await asyncio.to_thread(Path(await download.path()).read_bytes)
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    assert sheet[0][:3] == ["企业代码", "企业", "合计"]
    # a district regulator's file counts only its district's cylinders
    expected = await pool.fetchval("SELECT count(*) FROM cylinders WHERE district_code = '410105'")
    assert sum(int(str(r[2]).split(".")[0]) for r in sheet[1:]) == expected

    await row.get_by_test_id("show-runs").click()
    runs = page.get_by_test_id("runs-dialog")
    await runs.locator("tr[data-state=done]").wait_for()
    await runs.get_by_role("button", name="关闭").click()

    await row.get_by_test_id("pause").click()
    await page.locator(f'tr[data-schedule-id="{sid}"][data-active="false"]').wait_for()
    await page.locator(f'tr[data-schedule-id="{sid}"]').get_by_test_id("delete").click()
    await page.get_by_test_id("delete-confirm").click()
    await page.locator(f'tr[data-schedule-id="{sid}"]').wait_for(state="detached")
    assert await pool.fetchval("SELECT count(*) FROM report_schedules WHERE id = $1", sid) == 0
    # the one refused request the page made on purpose (the impossible district), nothing else
    assert [e for e in s.errors if "400" not in e] == []
    assert len(s.errors) <= 1
