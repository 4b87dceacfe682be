"""No page logs an error on load: every page of the platform, opened in a real Chromium by a
user who may see it, finishes loading with no console error and no uncaught exception.

Why a test of its own: a script error on one page (a missing element, a module that fails
to import, a rejected promise nobody catches) leaves that page half-drawn while every
functional test looks elsewhere. The pages share one set of browser modules
(``dashboard/static/js/lib``), so a fault there shows on pages no other test opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import Live, OpenSession, wait_ready
from tests.browser.data import Seeded, seed, unseed
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.browser

FULL_HD = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}

# (who, path, what says the page is ready); None: nobody logged in
PAGES = [
    (None, "/login", "document.querySelector('form[data-testid=login-form]') !== null"),
    (None, "/q/BC-{tag}", "document.querySelector('[data-testid=public-status][data-compliance]')"),
    ("t_admin", "/", None),
    ("t_admin", "/cylinders", "document.querySelector('#results .loading') === null"),
    ("t_admin", "/cylinders/{cylinder_id}", "document.querySelector('#trajectory tbody tr')"),
    ("t_admin", "/fills", "document.querySelector('#results .loading') === null"),
    ("t_admin", "/alerts", "document.querySelector('#results .loading') === null"),
    ("t_admin", "/exports", "document.querySelector('#reports [data-report]') !== null"),
    ("t_admin", "/admin/users", "document.querySelector('#results .loading') === null"),
    ("t_admin", "/admin/dead-letters", "document.querySelector('#results .loading') === null"),
    ("t_company_a", "/admin/users", "document.querySelector('#results .loading') === null"),
    ("t_inspector", "/cylinders", "document.querySelector('#results .loading') === null"),
    ("t_operator_a", "/", None),
    ("t_regulator_jinshui", "/", None),
    (
        "t_regulator",
        "/big-screen",
        "window.__bs && window.__bs.ws.state === 'live' && window.__bs.charts.loads >= 1",
    ),
    ("t_officer", "/m", "window.__m && window.__m.wsOpens >= 1"),
]


@pytest.fixture
async def seeded(pool: asyncpg.Pool, world: World) -> AsyncIterator[Seeded]:
    s = await seed(pool, world)
    yield s
    await unseed(pool, s)


@pytest.mark.parametrize(("username", "path", "ready"), PAGES)
async def test_page_loads_without_console_errors(
    open_session: OpenSession, seeded: Seeded, username: str | None, path: str, ready: str | None
) -> None:
    viewport = (
        FULL_HD if path == "/big-screen" else PHONE if path.startswith(("/m", "/q")) else None
    )
    s = await open_session(username, viewport=viewport)
    url = path.format(tag=seeded.tag, cylinder_id=seeded.cylinder_id)
    response = await s.page.goto(url)
    assert response is not None and response.status == 200, url
    if ready is None:
        await wait_ready(s.page)  # the dashboard says when its first load is done
    else:
        await s.page.wait_for_function(ready, timeout=15_000)
    await s.page.wait_for_load_state("networkidle")
    assert s.errors == [], (url, s.errors)
    assert s.requests.foreign() == [], url


# (who, path, a selector that appears once the page's scripts have run)
UNDER_CSP = [
    ("t_admin", "/", "body[data-ready='1']"),
    ("t_admin", "/cylinders/{cylinder_id}", "#trajectory tbody tr"),
    ("t_regulator", "/big-screen", "#conn[data-state='live']"),
    ("t_officer", "/m", "#m-conn[data-state='live']"),
    (None, "/q/BC-{tag}", "[data-testid=public-status][data-compliance]"),
]


@pytest.mark.parametrize(("username", "path", "ready"), UNDER_CSP)
async def test_pages_run_under_their_content_security_policy(
    browser: Any,
    live_server: Live,
    seeded: Seeded,
    username: str | None,
    path: str,
    ready: str,
) -> None:
    """The other browser tests bypass the CSP (Playwright evaluates strings); here the
    policy is enforced: no inline script, scripts from this server only, and the pages still
    draw — a refused script or module would show as a console error."""
    context = await browser.new_context(base_url=live_server.url, viewport=FULL_HD)
    try:
        if username is not None:
            resp = await context.request.post(
                "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
            )
            assert resp.ok
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        url = path.format(tag=seeded.tag, cylinder_id=seeded.cylinder_id)
        response = await page.goto(url)
        assert response is not None
        assert "script-src 'self';" in response.headers["content-security-policy"]
        await page.wait_for_selector(ready, state="attached", timeout=15_000)
        await page.wait_for_load_state("networkidle")
        assert errors == [], (url, errors)
    finally:
        await context.close()
