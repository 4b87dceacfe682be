"""Every page of the navigation, under its Content-Security-Policy, as every role that may open it.

Why: the work pages (docs/ARCHITECTURE.md §8) are many and each has its own script; a module
refused by the CSP, a missing string, a rejected promise or a request the role may not make
would leave a page half-drawn while the page's own functional test looks elsewhere. The list
is :data:`dashboard.render.NAV` itself, so a new page is walked the day it is added.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dashboard.render import NAV
from tests.browser.conftest import Live
from tests.browser.data import Seeded, seed, unseed
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.browser

USER_OF_ROLE = {
    "admin": "t_admin",
    "regulator": "t_regulator_jinshui",
    "officer": "t_officer",
    "company_admin": "t_company_a",
    "station_operator": "t_operator_a",
    "inspector": "t_inspector",
}
# the widest and the narrowest role that may open each page: the page's script branches on
# what the caller may do (editors' buttons, scoped lists), and these two ends cover both
# branches without loading every page six times (docs/ARCHITECTURE.md §12: the suite's time)
NARROWEST_FIRST = (
    "station_operator",
    "inspector",
    "company_admin",
    "officer",
    "regulator",
    "admin",
)


def _ends(roles: tuple[str, ...]) -> list[str]:
    narrowest = next(r for r in NARROWEST_FIRST if r in roles)
    widest = next(r for r in reversed(NARROWEST_FIRST) if r in roles)
    return [widest] if widest == narrowest else [widest, narrowest]


WALK = [(USER_OF_ROLE[role], item.path) for item in NAV for role in _ends(item.roles)]


@pytest.fixture
async def seeded(pool: asyncpg.Pool, world: World) -> AsyncIterator[Seeded]:
    s = await seed(pool, world)
    yield s
    await unseed(pool, s)


@pytest.mark.parametrize(("username", "path"), WALK)
async def test_nav_page_draws_under_csp_without_errors(
    browser: Any, live_server: Live, seeded: Seeded, username: str, path: str
) -> None:
    context = await browser.new_context(
        base_url=live_server.url, viewport={"width": 1440, "height": 900}
    )
    try:
        resp = await context.request.post(
            "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
        )
        assert resp.ok
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        response = await page.goto(path)
        assert response is not None and response.status == 200, (username, path)
        assert "script-src 'self';" in response.headers["content-security-policy"]
        await page.wait_for_load_state("networkidle")
        # the page's menu entry is marked as the current page, and nothing is still loading
        assert await page.locator("main").count() == 1
        assert await page.locator("main .loading").count() == 0, (username, path)
        assert errors == [], (username, path, errors)
    finally:
        await context.close()
