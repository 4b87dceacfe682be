"""The archive export from the pages (issue 11 item 6): the cylinder search's and the exports
page's links carry the company as the page's select gives it (an id) and the compliance
filter, and the file holds the cylinders the search lists — once it came out empty."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser


async def _download_tags(page: Any, locator: Any) -> list[str]:
    async with page.expect_download() as info:
        await locator.click()
    download = await info.value
    path = await download.path()
    assert path is not None
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8-sig")
    return [r["tag"] for r in csv.DictReader(io.StringIO(text))]


async def test_search_and_exports_page_export_what_they_filter(
    open_session: OpenSession, world: World
) -> None:
    s = await open_session("t_admin")
    page = s.page
    company = world.companies["A"]
    await page.goto(f"/cylinders?company={company}&compliance=overdue")
    listed = page.get_by_role("link", name="TAG-A-OVERDUE")
    await listed.wait_for()
    shown = await page.get_by_test_id("results").locator("tbody tr a.row-link").all_inner_texts()
    link = page.get_by_test_id("export-csv")
    href = await link.get_attribute("href")
    assert href == f"/api/v1/cylinders/export?format=csv&company={company}&compliance=overdue"
    tags = await _download_tags(page, link)
    assert "TAG-A-OVERDUE" in tags and "TAG-A-OK" not in tags
    assert sorted(tags) == sorted(shown)  # the file holds what the search lists

    await page.goto("/exports")
    await page.locator('#scope-form select[name="company"]').select_option(str(company))
    await page.get_by_test_id("archive-compliance").select_option("overdue")
    csv_link = page.locator('a[data-export="csv"]')
    assert await csv_link.get_attribute("href") == (
        f"/api/v1/cylinders/export?format=csv&company={company}&compliance=overdue"
    )
    assert sorted(await _download_tags(page, csv_link)) == sorted(tags)
    assert not s.errors, s.errors
