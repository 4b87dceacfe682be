"""The serving-side faults as rounds of `cylwatch chaos` (docs/RELIABILITY.md "Chaos runs"):
a websocket client slowed to a crawl (`server.chaos.crawl`) while the city's traffic runs.

A round of `server.chaos.runner` measures the ingest chain; this fault adds a `cylwatch
serve` process on the round's private PostgreSQL and Redis, with the live channel ingest
publishes on, logs in as the seeded city's demo administrator, and runs one crawl for the
fault's length. Its figures go into the round's note; a slow client that is not cut, or a
fast client that misses an alert, makes the note start with FAIL. The dashboard under a
kill -9 of the server needs a browser and is shown by tests/chaos/test_serving_faults.py.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from server.chaos.crawl import CrawlConfig, run_crawl
from server.chaos.services import free_port
from server.chaos.serving import LivePublisher, ServeProcess, login_token, serve_env
from server.kernel.settings import load_settings

__all__ = ["slow_client_round"]

DEMO_ADMIN: Final = ("admin", "admin-demo-2026")
"""The seeded city's administrator (server/seed/users.py ``DEMO_USERS``): sees every row."""
CRAWL_RATE: Final = 300.0
CRAWL_DETAIL_BYTES: Final = 4096
"""As tests/chaos/test_serving_faults.py: ~0.7 MB/s to each client, so the server's side of
the slow client's socket (up to 4 MB on Linux) and then its queue fill in seconds."""
ID_KEY_BYTES: Final = 32
"""`cylwatch serve` refuses to start without the ID-number hash key (docs/SECURITY.md
"Privacy"); the round's server gets a throw-away one (it hashes nothing the checks read)."""


async def slow_client_round(
    dsn: str, redis_url: str, bus_channel: str, seconds: float, workdir: Path
) -> str:
    """Serve the round's database, crawl one client for *seconds*; the note of the round."""
    dbname = urlsplit(dsn).path.lstrip("/")
    channel = bus_channel.removesuffix(f":{dbname}")  # realtime.bridge adds the name back
    key = workdir / "id_hash.key"
    key.write_bytes(secrets.token_bytes(ID_KEY_BYTES))
    base = {**os.environ, "CYL_PRIVACY__ID_HASH_KEY_FILE": str(key)}
    env = serve_env(base, dsn, redis_url, channel)
    server = ServeProcess(env, free_port(), workdir / "serve.log")
    publisher = LivePublisher(load_settings(environ=env))
    server.start()
    try:
        await server.wait_ready()
        await publisher.start()
        await publisher.wait_subscribers(1)
        token = await login_token(server.url, *DEMO_ADMIN)
        cfg = CrawlConfig(rate=CRAWL_RATE, duration_s=seconds, detail_bytes=CRAWL_DETAIL_BYTES)
        r = await run_crawl(server, publisher, token, cfg)
    finally:
        await publisher.aclose()
        server.stop()
    mib = 2**20
    ok = r.cut_after_s is not None and r.fast_alerts == [r.published_alerts] * cfg.fast_clients
    cut = "never" if r.cut_after_s is None else f"after {r.cut_after_s:.1f} s"
    return (
        f"{'' if ok else 'FAIL: '}slow client cut {cut} "
        f"({'close ' + str(r.slow_close_code) if r.slow_close_code else 'reset'}); "
        f"{cfg.fast_clients} fast clients {min(r.fast_alerts)}/{r.published_alerts} alerts, "
        f"p99 {r.latency_ms[1]:.0f} ms; serve RSS {r.rss_before / mib:.0f} → "
        f"{r.rss_peak / mib:.0f} MiB"
    )
