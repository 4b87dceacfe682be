"""A restartable live server and seed data for the wall and officer-PWA tests.

Why a module and not only a conftest: the browser tests live in ``tests/browser`` (whose
conftest provides the shared session server and Chromium) and the feed tests here; both
import these (``from tests.big_screen.live import ...``). The server is the real app, in process,
on a free port of 127.0.0.1, with its own Redis channel (tests running side by side never
cross-talk). ``LiveServer.restart()`` stops it completely (the app's shutdown and cleanup
run, every websocket is closed) and starts a fresh app on the same port, which is what a
wall sees when the server is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

CHROMIUM = os.environ.get("CYL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WALL_USER = "bs_wall"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_settings(settings: Any) -> Any:
    """The session settings with a private Redis channel for this server."""
    rt = msgspec.structs.replace(
        settings.realtime, redis_channel=f"cylwatch:test:{secrets.token_hex(6)}"
    )
    return msgspec.structs.replace(settings, realtime=rt)


class LiveServer:
    """The real application served on 127.0.0.1:<port>, restartable on the same port."""

    def __init__(self, settings: Any, port: int) -> None:
        self.settings = settings
        self.port = port
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from server.app import create_app

        self.app = create_app(self.settings, with_pages=True)
        runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        for attempt in range(50):
            try:
                await site.start()
                break
            except OSError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self.runner = runner
        self.starts += 1

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self, down_s: float = 0.0) -> None:
        await self.stop()
        if down_s:
            await asyncio.sleep(down_s)
        await self.start()

    def publish(self, channel: str, data: dict[str, Any], **scope: Any) -> None:
        from server.kernel.appkeys import BUS
        from server.kernel.events import Event

        assert self.app is not None
        self.app[BUS].publish(Event(channel=channel, data=data, **scope))


@pytest.fixture
async def wall_user(pool: Any, world: Any, settings: Any) -> AsyncIterator[int]:
    """A dedicated city-wide regulator account for kiosk walls."""
    from server.kernel.passwords import hash_password

    row_id = await pool.fetchval(
        """INSERT INTO users (username, password_hash, role, display_name)
           VALUES ($1, $2, 'regulator', '指挥大屏') ON CONFLICT (username)
           DO UPDATE SET active = true RETURNING id""",
        WALL_USER,
        hash_password(settings.auth, secrets.token_urlsafe(16)),
    )
    yield int(row_id)
    with contextlib.suppress(Exception):
        await pool.execute("UPDATE users SET active = true WHERE id = $1", row_id)


@pytest.fixture
async def wall_data(pool: Any, world: Any, settings: Any) -> AsyncIterator[dict[str, Any]]:
    """Fills, refusals and alerts of today, so every chart has something to draw.

    Removed afterwards: the session database is shared with other suites that count rows.
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(dt.UTC)
    tag = secrets.token_hex(4)
    a, b = world.companies["A"], world.companies["B"]
    sa, sb = world.sites["STA-A1"], world.sites["STA-B1"]
    fills = []
    for i in range(36):
        station, company, district = (sa, a, "410105") if i % 3 else (sb, b, "410103")
        fills.append(
            (
                now - dt.timedelta(minutes=7 * i),
                f"bs-{tag}-{i}",
                f"GUN-{station}",
                station,
                company,
                district,
                "TAG-A-OK",
                14.5,
            )
        )
    await pool.executemany(
        """INSERT INTO fills (ts, msg_id, gun_id, station_id, company_id, district_code, tag,
                              net_kg)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        fills,
    )
    today = dt.datetime.now(ZoneInfo(settings.alerts.timezone)).date()
    denials = [
        (sa, today, "overdue_inspection", 5),
        (sa, today, "not_owner", 3),
        (sb, today, "scrapped", 2),
        (sb, today, "unknown_tag", 4),
    ]
    await pool.executemany(
        """INSERT INTO fill_denials_daily (station_id, day, reason, count) VALUES ($1, $2, $3, $4)
           ON CONFLICT (station_id, day, reason) DO UPDATE SET count = EXCLUDED.count""",
        denials,
    )
    # refusals are also trajectory events (the kpis channel counts those)
    await pool.executemany(
        """INSERT INTO events (ts, msg_id, tag, kind, site_id, company_id, district_code, details)
           VALUES ($1, $2, 'TAG-A-OVERDUE', 'fill_refused', $3, $4, $5, '{}')""",
        [
            (now - dt.timedelta(minutes=i), f"bs-{tag}-r{i}", station, company, district)
            for i, (station, company, district) in enumerate(
                [(sa, a, "410105")] * 8 + [(sb, b, "410103")] * 6
            )
        ],
    )
    vehicles = []
    for i in range(6):
        vehicles.append(
            await pool.fetchval(
                """INSERT INTO devices (device_id, kind, company_id, plate_no, lat, lon,
                                    position_at, last_seen_at)
               VALUES ($1, 'vehicle', $2, $3, $4, $5, $6, $6) RETURNING id""",
                f"VEH-BS-{tag}-{i}",
                a if i % 2 else b,
                f"豫A{i}{tag[:4].upper()}",
                34.67 + i * 0.03,
                113.62 + (i % 3) * 0.03,
                now,
            )
        )
    alert_ids = []
    for i, (kind, sev, company, site, district, lat) in enumerate(
        (
            ("fill_denied", "warning", a, sa, "410105", 34.80),
            ("overfill", "critical", a, sa, "410105", 34.81),
            ("repeat_fill", "warning", a, sa, "410105", 34.79),
            ("leak", "critical", b, sb, "410103", 34.70),
            ("unknown_tag", "warning", b, sb, "410103", 34.69),
        )
    ):
        alert_ids.append(
            await pool.fetchval(
                """INSERT INTO alerts (kind, severity, subject_type, subject_id, company_id,
                                   site_id, district_code, first_at, last_at, lat, lon, count)
               VALUES ($1, $2, 'cylinder', $3, $4, $5, $6, $7, $7, $8, 113.65, $9) RETURNING id""",
                kind,
                sev,
                f"BS-{tag}-{i}",
                company,
                site,
                district,
                now - dt.timedelta(minutes=i),
                lat,
                1 + i,
            )
        )
    yield {"alert_ids": alert_ids, "fills": len(fills), "tag": tag, "vehicles": len(vehicles)}
    await pool.execute("DELETE FROM devices WHERE id = ANY($1)", vehicles)
    await pool.execute("DELETE FROM events WHERE msg_id LIKE $1", f"bs-{tag}-%")
    await pool.execute("DELETE FROM alerts WHERE id = ANY($1)", alert_ids)
    await pool.execute("DELETE FROM fills WHERE msg_id LIKE $1", f"bs-{tag}-%")
    await pool.executemany(
        "DELETE FROM fill_denials_daily WHERE station_id = $1 AND day = $2 AND reason = $3",
        [d[:3] for d in denials],
    )
