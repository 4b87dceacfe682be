"""Live events: in-process bus, Redis bridge between processes, the /ws endpoint, Web Push.

`setup(app)` mounts ``GET /ws`` and the push API and adds one cleanup context that, once
the database pool and Redis are open (`server.app`), starts in this order and stops in
reverse: the websocket hub, the Redis bridge (publisher + subscriber; a loss it notices makes
the hub resync its subscriptions), the KPI task and the Web Push sender, the inbox's
PostgreSQL listener (`realtime.inbox`). Their counters go to ``/metrics``
(`realtime.metrics`). Protocol: docs/WEBSOCKET.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from realtime.keys import BRIDGE, HUB, INBOX, KPIS, PUSH

log = logging.getLogger(__name__)


async def _realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    from realtime import metrics, push
    from realtime.bridge import RedisBridge
    from realtime.hub import Hub
    from realtime.inbox import InboxListener
    from realtime.kpis import KpiService
    from realtime.scope import LiveFilter
    from realtime.snapshot import make_snapshot
    from server.kernel.appkeys import BUS, POOL, REDIS, SETTINGS, add_metrics_source
    from server.kernel.principal import Principal

    settings = app[SETTINGS]
    bus = app[BUS]
    pool = app[POOL]

    async def kpi_snapshot(p: Principal, flt: LiveFilter) -> list[Mapping[str, Any]]:
        return await kpis.snapshot(p, flt)  # bound below: the hub and the KPIs need each other

    hub = Hub(bus, settings.realtime, make_snapshot(pool, settings.realtime, kpi_snapshot))
    app[HUB] = hub
    kpis = KpiService(pool, settings, hub)
    app[KPIS] = kpis
    bridge = RedisBridge(bus, settings, on_loss=hub.resync)
    app[BRIDGE] = bridge
    add_metrics_source(app, lambda: metrics.render(hub, bridge))
    await bridge.start()
    sender = push.PushSender(app[POOL], app[REDIS], bus, settings)
    app[PUSH] = sender
    sender.start()
    inbox = InboxListener(settings, bus, pool)
    app[INBOX] = inbox
    inbox.start()
    kpi_task = asyncio.get_running_loop().create_task(kpis.run(), name="realtime-kpis")
    try:
        yield
    finally:
        kpi_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kpi_task
        await inbox.aclose()
        await sender.aclose()
        await bridge.aclose()
        hub.close_all()


def setup(app: web.Application) -> None:
    """Mount the websocket endpoint, the push API and the realtime background tasks."""
    from realtime import push
    from realtime.ws import websocket_handler

    app.router.add_get("/ws", websocket_handler)
    app.router.add_routes(push.routes())
    app.cleanup_ctx.append(_realtime_ctx)
