"""Run the outbound senders inside a `cylwatch serve` process (docs/OUTBOUND.md "Operations").

The app root (``server.app``) appends :func:`outbound_ctx` to its cleanup contexts after
the one that opens the database pool: at start-up it writes the ``[upstream] enabled``
setting to the switch the outbox triggers read, starts each enabled sender as a task and
adds its counters to ``/metrics``; at shutdown it cancels the senders before the pool
closes. A message or batch a cancelled sender was sending stays ``sending`` and is taken
over after its ``claim_timeout_s`` — by this process when it restarts, or by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.kernel.appkeys import POOL, SETTINGS, add_metrics_source
from server.outbound.sms_sender import SmsSender
from server.outbound.upstream import UpstreamSender, write_switch

__all__ = ["outbound_ctx"]

log = logging.getLogger(__name__)


async def outbound_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = app[POOL]
    await write_switch(pool, settings.upstream.enabled)
    tasks: list[asyncio.Task[None]] = []
    if settings.sms.enabled:
        sms = SmsSender(pool, settings.sms)
        add_metrics_source(app, sms.counters.render)
        tasks.append(asyncio.create_task(sms.run(), name="sms-sender"))
    if settings.upstream.enabled:
        upstream = UpstreamSender(pool, settings.upstream)
        add_metrics_source(app, upstream.counters.render)
        tasks.append(asyncio.create_task(upstream.run(), name="upstream-sender"))
    if tasks:
        log.info("outbound senders running: %s", ", ".join(t.get_name() for t in tasks))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
