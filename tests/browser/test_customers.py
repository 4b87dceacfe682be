"""The customers page in Chromium: a company admin opens a real-name account and sees the ID
number masked (never whole: not on the page, not in a URL, not in the database), finds it by
the number, closes and reopens it; a regulator reads without a way to change; company B sees
none of A's customers (docs/ARCHITECTURE.md §8)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import OpenSession
from tests.conftest import World

pytestmark = pytest.mark.browser

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number() -> str:
    """A fresh resident ID number with a valid GB 11643 check character."""
    head = "410105" + "1988" + "0512" + f"{secrets.randbelow(1000):03d}"
    total = sum(int(d) * w for d, w in zip(head, WEIGHTS, strict=True))
    return head + "10X98765432"[total % 11]


def account() -> str:
    return f"BC-{secrets.token_hex(3).upper()}"


async def _row(page: Any, account_no: str) -> Any:
    row = page.locator(f'tr[data-account="{account_no}"]')
    await row.wait_for()
    return row


async def test_company_admin_opens_an_account_and_sees_the_id_masked(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    number, acc = id_number(), account()
    masked = number[:6] + "********" + number[-4:]
    s = await open_session("t_company_a")
    await s.page.goto("/admin/customers")
    await s.page.get_by_test_id("results").locator("tbody tr").first.wait_for()
    await s.page.get_by_test_id("new-customer").click()
    dialog = s.page.get_by_test_id("customer-dialog")
    await dialog.get_by_test_id("customer-account").fill(acc)
    await dialog.get_by_test_id("customer-name").fill("孙七")
    await dialog.get_by_test_id("customer-kind").select_option("restaurant")
    await dialog.get_by_test_id("customer-phone").fill("13912345678")
    await dialog.get_by_test_id("customer-id-number").fill(number)
    await dialog.get_by_test_id("customer-address").fill("金水路 8 号")
    await s.screenshot("customers-create")
    await dialog.get_by_test_id("customer-save").click()
    row = await _row(s.page, acc)
    assert await row.get_by_test_id("id-masked").inner_text() == masked
    assert "餐饮" in await row.inner_text()
    assert number not in await s.page.content()
    assert await dialog.get_by_test_id("customer-id-number").input_value() == ""
    stored = await pool.fetchrow(
        "SELECT company_id, id_number_masked, id_number_hash FROM customers WHERE account_no = $1",
        acc,
    )
    assert stored["company_id"] == world.companies["A"] and stored["id_number_masked"] == masked
    assert number not in str(dict(stored))
    # looked up by the full number typed into the search: only its masked form leaves the page
    await s.page.goto("/admin/customers")
    await s.page.get_by_test_id("search-q").fill(number)
    await s.page.get_by_test_id("search-submit").click()
    await s.page.wait_for_function("location.search.includes('q=')")
    assert number not in s.page.url and "********" in s.page.url.replace("%2A", "*")
    await _row(s.page, acc)
    assert number not in " ".join(s.requests.urls)
    await s.screenshot("customers")
    assert not s.errors, s.errors


async def test_company_admin_closes_and_reopens_an_account(
    open_session: OpenSession, pool: asyncpg.Pool, world: World
) -> None:
    acc = account()
    await pool.execute(
        """INSERT INTO customers (company_id, account_no, name, kind, opened_on)
           VALUES ($1, $2, '周八', 'resident', current_date - 10)""",
        world.companies["A"],
        acc,
    )
    s = await open_session("t_company_a")
    await s.page.goto(f"/admin/customers?q={acc}")
    row = await _row(s.page, acc)
    await row.locator('[data-action="close"]').click()
    await s.page.get_by_test_id("close-save").click()
    await s.page.locator(f'tr[data-account="{acc}"][data-state="closed"]').wait_for()
    # the dialog proposes the browser's own day: the city's for a user in Zhengzhou, the
    # machine's (UTC) for this test's Chromium — a day apart from 16:00 UTC
    assert await pool.fetchval("SELECT closed_on FROM customers WHERE account_no = $1", acc) in (
        world.today,
        dt.date.today(),
    )
    await s.page.get_by_test_id("search-state").select_option("open")
    await s.page.get_by_test_id("search-submit").click()
    await s.page.get_by_test_id("empty-state").wait_for()
    await s.page.get_by_test_id("search-state").select_option("closed")
    await s.page.get_by_test_id("search-submit").click()
    row = await _row(s.page, acc)
    await row.locator('[data-action="reopen"]').click()
    await s.page.get_by_test_id("empty-state").wait_for()  # no longer among the closed ones
    assert await pool.fetchval("SELECT closed_on FROM customers WHERE account_no = $1", acc) is None
    await s.page.get_by_test_id("search-state").select_option("open")
    await s.page.get_by_test_id("search-submit").click()
    await s.page.locator(f'tr[data-account="{acc}"][data-state="open"]').wait_for()
    assert not s.errors, s.errors


async def test_regulator_reads_without_edit_buttons(open_session: OpenSession) -> None:
    s = await open_session("t_regulator_jinshui")
    await s.page.goto("/admin/customers")
    row = await _row(s.page, "CUST-A")
    assert await row.get_by_test_id("id-masked").inner_text() == "410105********1234"
    assert await s.page.locator('tr[data-account="CUST-B"]').count() == 0  # 二七区
    assert await s.page.get_by_test_id("new-customer").count() == 0
    assert await s.page.locator("[data-action]").count() == 0
    assert await s.page.locator("#customer-dialog").count() == 0
    assert not s.errors, s.errors


async def test_company_b_sees_none_of_a_customers(open_session: OpenSession) -> None:
    s = await open_session("t_company_b")
    await s.page.goto("/admin/customers?q=CUST-A")
    await s.page.get_by_test_id("empty-state").wait_for()
    await s.page.goto("/admin/customers")
    await _row(s.page, "CUST-B")
    accounts = await s.page.locator("tr[data-account]").evaluate_all(
        "els => els.map(e => e.dataset.account)"
    )
    assert "CUST-A" not in accounts
    assert not s.errors, s.errors


async def test_english(open_session: OpenSession) -> None:
    s = await open_session("t_company_a")
    await s.page.goto("/admin/customers?lang=en")
    await s.page.get_by_role("heading", name="Real-name customers").wait_for()
    await _row(s.page, "CUST-A")
    assert "ID number" in await s.page.locator("thead").inner_text()
    assert not s.errors, s.errors
