"""Credit evaluation in Chromium (docs/ARCHITECTURE.md §8), as the people who use it:

- a regulator reads the ranking (the grades' bar chart drawn, companies in rank order),
  searches by a misspelt name and filters by grade, and opens a company;
- the company's page shows score, grade, rank, breakdown and ledger, and draws the monthly
  history as a line chart;
- a regulator records good conduct there and, after the recomputation the page asks for,
  the score and the grade change on screen; an officer has no such buttons;
- the public searches a company by name with no login and sees its grade, never a score.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from server.db.credit_round import recompute
from server.kernel.appkeys import SETTINGS
from tests.browser.conftest import Live, OpenSession

pytestmark = pytest.mark.browser


@dataclass
class Rated:
    """Companies made (and rated) for one test, removed afterwards with their ledger."""

    tag: str
    good: int = 0
    fair: int = 0
    companies: list[int] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)


@pytest.fixture
async def rated(pool: asyncpg.Pool, live_server: Live) -> AsyncIterator[Rated]:
    """Two companies of 金水区: "Ranking Gas <tag>" with a clean record (100, A) and
    "信用页面测试燃气<tag>" with four suspected illegal fills (80, B)."""
    r = Rated(secrets.token_hex(3).upper())
    for name in (f"Ranking Gas {r.tag} Company", f"信用页面测试燃气{r.tag}"):
        cid = await pool.fetchval(
            """INSERT INTO companies (code, name, district_code, created_at)
               VALUES ($1, $2, '410105', now() - interval '2 years') RETURNING id""",
            f"CRB-{r.tag}-{len(r.companies)}",
            name,
        )
        r.companies.append(int(cid))
    r.good, r.fair = r.companies
    site = await pool.fetchval(
        """INSERT INTO sites (code, name, kind, company_id, district_code)
           VALUES ($1, '信用页面测试站', 'store', $2, '410105') RETURNING id""",
        f"CRB-S-{r.tag}",
        r.fair,
    )
    r.sites.append(int(site))
    now = dt.datetime.now(dt.UTC)
    await pool.execute(
        """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                               first_at, last_at, count)
           VALUES ('suspected_illegal_fill', 'critical', 'cylinder', $1, $2, $3, $4, $4, 4)""",
        f"CRB-T-{r.tag}",
        r.fair,
        site,
        now - dt.timedelta(days=1),
    )
    await recompute(pool, live_server.app[SETTINGS], trigger="test")
    yield r
    await pool.execute("DELETE FROM alerts WHERE company_id = ANY($1)", r.companies)
    await pool.execute("DELETE FROM sites WHERE id = ANY($1)", r.sites)
    await pool.execute("DELETE FROM companies WHERE id = ANY($1)", r.companies)


async def test_regulator_reads_the_ranking_and_searches(
    open_session: OpenSession, rated: Rated
) -> None:
    s = await open_session("t_regulator")
    page = s.page
    await page.goto("/credit")
    results = page.get_by_test_id("results")
    await results.locator("tbody tr").first.wait_for()
    # the grades' bar chart is drawn from the ranking's counts
    chart = page.get_by_test_id("grades-chart")
    await page.wait_for_function(
        "Number(document.querySelector('[data-testid=grades-chart]').dataset.drawn) > 0"
    )
    assert await chart.locator("canvas").count() >= 1
    assert "信用分 = 100" in await page.locator("#grading-rule").inner_text()

    # a misspelt Latin name still finds the company (pg_trgm); the rows follow the rank
    await page.get_by_test_id("search-q").fill(f"Rankng Gaz {rated.tag} Compani")
    await page.get_by_test_id("search-submit").click()
    row = results.locator(f"tr[data-company='{rated.good}']")
    await row.wait_for()
    assert "100" in await row.get_by_test_id("row-score").inner_text()
    assert await row.get_by_test_id("grade-badge").inner_text() == "A 级"

    await page.get_by_test_id("search-q").fill(rated.tag)
    await page.get_by_test_id("search-grade").select_option("B")
    await page.get_by_test_id("search-submit").click()
    await results.locator(f"tr[data-company='{rated.fair}']").wait_for()
    await page.wait_for_function(
        "document.querySelectorAll('[data-testid=results] tbody tr').length === 1"
    )
    await s.screenshot("credit-ranking")
    await results.get_by_test_id("company-link").click()
    await page.wait_for_url(f"**/credit/{rated.fair}")
    await page.get_by_test_id("score").filter(has_text="80").wait_for()
    assert s.errors == []


async def test_company_page_draws_its_history_and_a_regulator_records_conduct(
    open_session: OpenSession, rated: Rated, settings: Any
) -> None:
    s = await open_session("t_regulator_jinshui")
    page = s.page
    await page.goto(f"/credit/{rated.fair}")
    await page.get_by_test_id("score").filter(has_text="80").wait_for()
    assert await page.get_by_test_id("company-name").inner_text() == f"信用页面测试燃气{rated.tag}"
    assert await page.get_by_test_id("grade").inner_text() == "B 级"
    breakdown = page.get_by_test_id("breakdown")
    illegal = breakdown.locator("tr[data-kind='suspected_illegal_fill']")
    assert "−20" in await illegal.inner_text()
    # the monthly history: a line chart of history_months points
    history = page.get_by_test_id("history-chart")
    await history.locator("canvas").wait_for()
    assert await history.get_attribute("data-points") == str(settings.credit.history_months)
    ledger = page.get_by_test_id("ledger")
    assert await ledger.locator("tr[data-kind='suspected_illegal_fill']").count() == 1

    # good conduct: recorded, then recomputed by the page, and the score shows it
    await page.get_by_test_id("add-event").click()
    dialog = page.get_by_test_id("event-dialog")
    await dialog.wait_for()
    await page.get_by_test_id("event-kind").select_option("good_conduct")
    await page.get_by_test_id("event-points").fill("10")
    await page.get_by_test_id("event-reason").fill("主动消除安全隐患")
    await page.get_by_test_id("event-save").click()
    await dialog.wait_for(state="hidden")
    await page.get_by_test_id("score").filter(has_text="90").wait_for()
    assert await page.get_by_test_id("grade").inner_text() == "A 级"
    good = ledger.locator("tr[data-kind='good_conduct']")
    await good.wait_for()
    assert "主动消除安全隐患" in await good.inner_text()
    assert "t_regulator_jinshui" in await good.inner_text()
    await s.screenshot("credit-company", full_page=True)
    assert s.errors == []


async def test_an_officer_reads_without_acting(open_session: OpenSession, rated: Rated) -> None:
    s = await open_session("t_officer", lang="en")
    page = s.page
    await page.goto(f"/credit/{rated.good}?lang=en")
    await page.get_by_test_id("score").filter(has_text="100").wait_for()
    assert await page.get_by_test_id("add-event").count() == 0
    assert await page.get_by_test_id("recompute").count() == 0
    assert await page.get_by_test_id("ledger").get_by_test_id("empty-state").count() == 1
    # another district's company is not shown
    await page.goto("/credit/999999999")
    await page.locator("#credit-root .alert-error").wait_for()
    assert s.errors == [] or all("404" in e for e in s.errors)


async def test_public_search_shows_a_grade_only(open_session: OpenSession, rated: Rated) -> None:
    s = await open_session(None)
    page = s.page
    resp = await page.goto("/credit/search")
    assert resp is not None and resp.status == 200
    await page.get_by_test_id("search-q").fill(f"信用页面测试燃气{rated.tag}")
    await page.get_by_test_id("search-submit").click()
    result = page.get_by_test_id("results").get_by_test_id("result")
    await result.first.wait_for()
    assert await result.count() == 1
    assert await result.get_attribute("data-grade") == "B"
    shown = await page.get_by_test_id("results").inner_text()
    assert f"信用页面测试燃气{rated.tag}" in shown and "B" in shown
    assert "80" not in shown  # the score is not the public's
    await page.get_by_test_id("search-q").fill(f"没有这家公司{rated.tag}")
    await page.get_by_test_id("search-submit").click()
    await page.get_by_test_id("results").get_by_test_id("empty-state").wait_for()
    await s.screenshot("credit-public-search")
    assert s.errors == []
    assert s.requests.foreign() == []
