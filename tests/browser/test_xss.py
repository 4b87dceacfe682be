"""Stored XSS: markup typed into any free-text field is shown as text, never run.

Why: company, site, customer, device and user names, a cylinder's manufacturer, alert
details, dead-letter payloads and citizens' complaints all come from people or devices the
platform does not control. Every page builds its nodes with textContent (no innerHTML,
``dashboard/static/js/lib/dom.js``); Leaflet tooltips are given DOM nodes, because a string
given to ``bindTooltip`` is parsed as HTML. Each payload sets ``window.__xss`` if it runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import OpenSession, wait_ready
from tests.browser.data import Seeded, seed, unseed
from tests.conftest import World

pytestmark = pytest.mark.browser

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = '"><script>window.__xss=2</script>'
BOTH = IMG + SCRIPT


@pytest.fixture
async def planted(pool: asyncpg.Pool, world: World) -> AsyncIterator[tuple[Seeded, str]]:
    """The browser rows with every free-text field holding both payloads; restored after."""
    s = await seed(pool, world)
    company, site, customer = world.companies["A"], world.sites["STA-A1"], world.customers["A"]
    old_company = await pool.fetchval("SELECT name FROM companies WHERE id = $1", company)
    old_site = await pool.fetchval("SELECT name FROM sites WHERE id = $1", site)
    old_customer = await pool.fetchrow(
        "SELECT name, address FROM customers WHERE id = $1", customer
    )
    vehicle = f"XSS-VEH-{s.tag}"
    username = f"xss_{s.tag.lower()}"
    await pool.execute("UPDATE companies SET name = $2 WHERE id = $1", company, BOTH)
    await pool.execute("UPDATE sites SET name = $2 WHERE id = $1", site, BOTH)
    await pool.execute("UPDATE customers SET name = $2, address = $2 WHERE id = $1", customer, BOTH)
    await pool.execute("UPDATE cylinders SET manufacturer = $2 WHERE id = $1", s.cylinder_id, BOTH)
    await pool.execute(
        "UPDATE alerts SET details = $2 WHERE id = ANY($1)",
        list(s.alerts.values()),
        json.loads(json.dumps({"note": BOTH, "details": BOTH})),
    )
    await pool.execute(
        """INSERT INTO devices (device_id, kind, company_id, name, lat, lon, last_seen_at, online)
           VALUES ($1, 'vehicle', $2, $3, 34.79, 113.64, now(), true)""",
        vehicle,
        company,
        BOTH,
    )
    await pool.execute(
        """INSERT INTO users (username, password_hash, display_name, role)
           VALUES ($1, 'x', $2, 'regulator')""",
        username,
        BOTH,
    )
    await pool.execute(
        "INSERT INTO dead_letters (topic, payload, reason, worker) VALUES ($1, $2, $3, $3)",
        f"cw/xss/{BOTH}",
        BOTH.encode(),
        BOTH,
    )
    await pool.execute(
        """INSERT INTO complaints (code, cylinder_id, company_id, district_code, text, contact)
           VALUES ($1, $2, $3, '410105', $4, $4)""",
        f"BC-{s.tag}",
        s.cylinder_id,
        company,
        BOTH,
    )
    try:
        yield s, vehicle
    finally:
        await pool.execute("DELETE FROM dead_letters WHERE topic = $1", f"cw/xss/{BOTH}")
        await pool.execute("DELETE FROM users WHERE username = $1", username)
        await pool.execute("DELETE FROM devices WHERE device_id = $1", vehicle)
        await pool.execute("UPDATE companies SET name = $2 WHERE id = $1", company, old_company)
        await pool.execute("UPDATE sites SET name = $2 WHERE id = $1", site, old_site)
        await pool.execute(
            "UPDATE customers SET name = $2, address = $3 WHERE id = $1",
            customer,
            old_customer["name"],
            old_customer["address"],
        )
        await unseed(pool, s)


LOADED = "document.querySelector('#results .loading') === null"
# (who, path, what says the page is ready, whether the payload must show as literal text)
PAGES = [
    ("t_admin", "/cylinders", LOADED, True),
    ("t_admin", "/cylinders/{cylinder_id}", "document.querySelector('#trajectory tbody tr')", True),
    ("t_admin", "/fills", LOADED, False),
    ("t_admin", "/alerts", LOADED, False),
    ("t_admin", "/exports", "document.querySelector('#reports [data-report]') !== null", False),
    ("t_admin", "/admin/users", LOADED, True),
    ("t_admin", "/admin/dead-letters", LOADED, True),
    (None, "/q/BC-{tag}", "document.querySelector('[data-testid=public-status]')", False),
    ("t_officer", "/m", "window.__m && window.__m.wsOpens >= 1", False),
    ("t_regulator", "/big-screen", "window.__bs && window.__bs.charts.loads >= 1", False),
]


async def assert_not_run(page: Any, url: str) -> None:
    await page.wait_for_load_state("networkidle")
    await asyncio.sleep(0.3)  # an <img> onerror fires after its failed load
    assert await page.evaluate("typeof window.__xss") == "undefined", url


async def shown_literally(page: Any) -> bool:
    text: str = await page.evaluate("document.body.innerText")
    return IMG in text or SCRIPT.strip() in text


@pytest.mark.parametrize(("username", "path", "ready", "literal"), PAGES)
async def test_page_shows_markup_as_text(
    open_session: OpenSession,
    planted: tuple[Seeded, str],
    username: str | None,
    path: str,
    ready: str,
    literal: bool,
) -> None:
    seeded, _ = planted
    s = await open_session(username, viewport={"width": 1920, "height": 1080})
    url = path.format(tag=seeded.tag, cylinder_id=seeded.cylinder_id)
    response = await s.page.goto(url)
    assert response is not None and response.status == 200, url
    await s.page.wait_for_function(ready, timeout=15_000)
    await assert_not_run(s.page, url)
    if literal:
        assert await shown_literally(s.page), url


async def test_dashboard_map_tooltips_and_lists_show_markup_as_text(
    open_session: OpenSession, planted: tuple[Seeded, str]
) -> None:
    _, vehicle = planted
    s = await open_session("t_admin")
    await s.page.goto("/")
    await wait_ready(s.page)
    await s.page.get_by_role("tab", name="站点").click()
    await assert_not_run(s.page, "/")
    assert await shown_literally(s.page)  # the site list names the planted station
    opened = await s.page.evaluate(
        """id => {
             const v = window.cwDashboard.state.vehicles.get(id);
             if (!v) return null;
             v.marker.openTooltip();
             return v.marker.getTooltip().getElement().textContent;
           }""",
        vehicle,
    )
    assert opened is not None and IMG in opened
    await assert_not_run(s.page, "/ (vehicle tooltip)")
    # every other tooltip on the map (sites, alerts), opened as a hover would
    await s.page.evaluate(
        """() => document.querySelectorAll('.leaflet-marker-icon').forEach(n =>
             n.dispatchEvent(new MouseEvent('mouseover', { bubbles: true })))"""
    )
    await assert_not_run(s.page, "/ (hovered markers)")
    assert not s.errors, s.errors
