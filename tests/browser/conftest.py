"""Browser-test fixtures: the real app on 127.0.0.1, a real Chromium, logged-in pages.

Why in-process: the tests publish live events on the app's own bus (as ingest does) and
read the database the pages show, so the server must be the real `create_app` with the
session database and Redis of ``tests/conftest.py``. It listens on a free port of
127.0.0.1 with a private Redis channel, so parallel runs never cross-talk. Every page a
test opens records each request it makes; ``OutsideRequests`` proves nothing left the
machine (supervision networks are often offline, docs/ARCHITECTURE.md §8).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from aiohttp import web

from tests.conftest import PASSWORD
from tests.tools import missing

CHROMIUM = os.environ.get("CYL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1440, "height": 900}

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Live:
    """The running app: its URL and the application object (bus, pool, settings)."""

    url: str
    app: web.Application

    def publish(self, channel: str, data: dict[str, Any], **scope: Any) -> None:
        """Publish a live event on the app's bus, exactly as an ingest worker does."""
        from server.kernel.appkeys import BUS
        from server.kernel.events import Event

        self.app[BUS].publish(Event(channel=channel, data=data, **scope))


@pytest.fixture(scope="session")
def vendor_assets() -> None:
    """The vendored libraries (``make assets``), built here if a checkout lacks them."""
    from dashboard.build_assets import ensure_assets

    ensure_assets()


@pytest.fixture(scope="session")
async def live_server(
    settings: Any, database: str, world: Any, vendor_assets: None
) -> AsyncIterator[Live]:
    from server.app import create_app

    rt = msgspec.structs.replace(
        settings.realtime, redis_channel=f"cylwatch:test:{secrets.token_hex(6)}"
    )
    app = create_app(msgspec.structs.replace(settings, realtime=rt), with_pages=True)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium at {CHROMIUM}", "apt-get install chromium")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


class OutsideRequests:
    """Collects every request of a browser context; ``foreign()`` lists any not to 127.0.0.1."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, request: Any) -> None:
        self.urls.append(request.url)

    def foreign(self) -> list[str]:
        out = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about", "chrome-error"):
                continue
            if parts.hostname != "127.0.0.1":
                out.append(url)
        return out


@dataclasses.dataclass
class Session:
    """A browser context (optionally logged in), its first page and what it requested."""

    context: Any
    page: Any
    requests: OutsideRequests
    errors: list[str]

    async def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


OpenSession = Callable[..., Awaitable[Session]]


@pytest.fixture
async def open_session(browser: Any, live_server: Live) -> AsyncIterator[OpenSession]:
    """``await open_session("t_admin")`` → a logged-in Session (``None``: anonymous).

    Logging in goes through the real JSON endpoint with the context's own request client,
    so the page gets the same HttpOnly session cookie and CSRF cookie as after the form.
    Page script errors are collected; tests assert there are none.
    """
    contexts: list[Any] = []

    async def make(username: str | None, *, lang: str = "zh-CN", viewport: Any = None) -> Session:
        # bypass_csp: Playwright evaluates test code as strings, which the pages' CSP
        # forbids; it also lets the request log see every fetch a page *tries* (a CSP
        # would silently block a CDN URL instead of showing it here).
        context = await browser.new_context(
            base_url=live_server.url, viewport=viewport or VIEWPORT, locale=lang, bypass_csp=True
        )
        contexts.append(context)
        log = OutsideRequests()
        context.on("request", log)
        if username is not None:
            resp = await context.request.post(
                "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
            )
            assert resp.ok, await resp.text()
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: errors.append(msg.text) if msg.type == "error" else None,
        )
        return Session(context, page, log, errors)

    yield make
    for c in contexts:
        await c.close()


async def wait_ready(page: Any, timeout_ms: int = 10_000) -> None:
    """Wait for the dashboard's first load (sites, cylinders, vehicles, alerts)."""
    await page.wait_for_load_state("domcontentloaded")
    await page.wait_for_function(
        "document.body !== null && document.body.dataset.ready === '1'", timeout=timeout_ms
    )


async def settle(seconds: float = 0.2) -> None:
    await asyncio.sleep(seconds)
