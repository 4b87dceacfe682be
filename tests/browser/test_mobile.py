"""The officer PWA (/m) in a real Chromium: login, live alerts, acknowledge/resolve, lookup,
installability (manifest, service worker, offline start) and the Web Push subscription.

Why these: an officer's phone is the last hop of an alert. The page must log in without the
desktop dashboard, receive the alerts of the officer's districts live, and send the
acknowledgement with the CSRF header the server demands (a cookie-authenticated POST
without it is refused). It must start offline from the service worker's cache and hand the
browser's push subscription to the server.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.db.alerts import alert_json
from tests.browser.conftest import Live, OpenSession
from tests.conftest import PASSWORD, World

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

# A stand-in PushManager: a subscription shaped like Chromium's (valid P-256 key and auth).
FAKE_PUSH = """
(() => {
  const endpoint = __ENDPOINT__;
  const p256dh = 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1Xbjh'
               + 'azAkj7I99e8QcYP7DkM';
  const fake = {
    endpoint,
    toJSON: () => ({ endpoint, expirationTime: null,
                     keys: { p256dh, auth: 'tBHItJI5svbpez7KI4CCXg' } }),
    unsubscribe: () => Promise.resolve(true),
  };
  let current = null;
  window.__pushKey = null;
  PushManager.prototype.subscribe = function (opts) {
    window.__pushKey = opts.applicationServerKey.length;
    current = fake;
    return Promise.resolve(fake);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();
"""


@pytest.fixture
async def officer_alert(pool: Any, world: World) -> AsyncIterator[dict[str, Any]]:
    """An open alert in 金水区 (the officer's district), removed afterwards."""
    now = dt.datetime.now(dt.UTC)
    row = await pool.fetchrow(
        """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id, site_id,
                               district_code, first_at, last_at, lat, lon)
           VALUES ('overfill', 'critical', 'cylinder', $1, $2, $3, '410105', $4, $4, 34.8, 113.65)
           RETURNING *""",
        f"M-{secrets.token_hex(4)}",
        world.companies["A"],
        world.sites["STA-A1"],
        now,
    )
    yield alert_json(row)
    await pool.execute("DELETE FROM alerts WHERE id = $1", row["id"])


async def login_in_page(page: Any, username: str = "t_officer") -> None:
    await page.goto("/m")
    await page.wait_for_selector("#login-form", state="visible")
    await page.fill("#login-username", username)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#view-app", state="visible")
    await page.wait_for_function("window.__m.wsOpens >= 1", timeout=10_000)


async def test_officer_receives_an_alert_and_handles_it(
    open_session: OpenSession, live_server: Live, officer_alert: dict[str, Any], pool: Any
) -> None:
    s = await open_session(None, viewport=PHONE)
    await login_in_page(s.page)
    aid = officer_alert["id"]
    # live: published on the bus as ingest does; the server scopes it to the officer
    live_server.publish(
        "alerts",
        officer_alert,
        district="410105",
        company_id=officer_alert["company_id"],
        site_id=officer_alert["site_id"],
    )
    card = f"#alerts li[data-id='{aid}']"
    await s.page.wait_for_selector(card, timeout=2000)
    assert await s.page.evaluate("window.__m.lastAlert.id") == aid
    # an alert of another district never reaches this officer
    other = {**officer_alert, "id": aid + 10_000_000, "district": "410103"}
    live_server.publish("alerts", other, district="410103")

    await s.page.fill(f"{card} textarea", "现场已关阀，通知企业整改")
    await s.screenshot("m-alerts")
    await s.page.click(f"{card} button[data-action=ack]")
    await s.page.wait_for_function(
        f"document.querySelector(\"{card} .state\").textContent === '已确认'", timeout=5000
    )
    row = await pool.fetchrow("SELECT state, note, acknowledged_by FROM alerts WHERE id = $1", aid)
    assert row["state"] == "acknowledged" and row["note"] == "现场已关阀，通知企业整改"

    await s.page.click(f"{card} button[data-action=resolve]")
    await s.page.wait_for_selector(card, state="detached", timeout=5000)
    assert await pool.fetchval("SELECT state FROM alerts WHERE id = $1", aid) == "resolved"
    assert await s.page.query_selector(f"#alerts li[data-id='{other['id']}']") is None
    assert s.requests.foreign() == []
    assert s.errors == [], s.errors


async def test_lookup_shows_archive_and_compliance(
    open_session: OpenSession, live_server: Live
) -> None:
    s = await open_session("t_officer", viewport=PHONE)
    await s.page.goto("/m")
    await s.page.wait_for_selector("#view-app", state="visible")
    await s.page.click(".m-tabs button[data-tab=lookup]")
    await s.page.fill("#lookup-code", "TAG-A-OVERDUE")
    await s.page.click("#lookup-form button[type=submit]")
    await s.page.wait_for_selector("#cylinder-card")
    assert await s.page.text_content("#cylinder-compliance") == "超期未检"
    text = await s.page.text_content("#cylinder-card")
    assert "ST-TAG-A-OVERDUE" in text and "测试燃气A公司" in text
    # a cylinder in another district is outside the officer's scope
    await s.page.fill("#lookup-code", "TAG-B-OK")
    await s.page.click("#lookup-form button[type=submit]")
    await s.page.wait_for_selector("#lookup-result .m-empty")
    assert s.errors == [], s.errors


async def test_installable_and_starts_offline(open_session: OpenSession, live_server: Live) -> None:
    s = await open_session("t_officer", viewport=PHONE)
    await s.page.goto("/m")
    scope = await s.page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{live_server.url}/m"
    manifest = await s.page.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())"
    )
    assert manifest["start_url"] == "/m" and manifest["display"] == "standalone"
    await s.page.wait_for_function("window.__m.sw === 'ready'")
    # the shell is cached: the app starts with the network gone
    await s.page.reload()
    await s.page.wait_for_function("navigator.serviceWorker.controller !== null")
    await s.context.set_offline(True)
    try:
        await s.page.reload()
        await s.page.wait_for_selector(".m-top .m-brand")
        assert await s.page.evaluate("typeof window.__m") == "object"
        await s.page.wait_for_selector("#m-offline", state="visible", timeout=5000)
    finally:
        await s.context.set_offline(False)


async def test_push_subscription_is_sent_to_the_server(
    open_session: OpenSession, live_server: Live, pool: Any, world: World
) -> None:
    """Headless Chromium has no push service, so PushManager.subscribe is stood in for;
    everything else — permission, the VAPID key fetch, the CSRF-protected POST — is real."""
    endpoint = f"https://push.example.invalid/send/{secrets.token_hex(8)}"
    s = await open_session("t_officer", viewport=PHONE)
    await s.context.grant_permissions(["notifications"], origin=live_server.url)
    await s.context.add_init_script(FAKE_PUSH.replace("__ENDPOINT__", json.dumps(endpoint)))
    try:
        await s.page.goto("/m")
        await s.page.wait_for_function("window.__m.sw === 'ready'")
        await s.page.click(".m-tabs button[data-tab=settings]")
        await s.page.click("#push-btn")
        await s.page.wait_for_function("document.getElementById('push-btn').dataset.on === '1'")
        assert await s.page.evaluate("window.__pushKey") == 65  # an uncompressed P-256 key
        row = await pool.fetchrow(
            "SELECT user_id FROM push_subscriptions WHERE endpoint = $1", endpoint
        )
        assert row is not None and row["user_id"] == world.users["t_officer"]
        assert s.errors == [], s.errors
    finally:
        await pool.execute("DELETE FROM push_subscriptions WHERE endpoint = $1", endpoint)
