"""Device ingest: MQTT consumer, validation, dead letters, batched writes, fill authorization,
rules that raise alerts (docs/ARCHITECTURE.md §2, §5).

``setup(app)`` runs one :class:`~ingest.worker.IngestWorker` inside ``cylwatch serve`` on the
app's pool and bus; ``cylwatch ingest --workers N`` (:mod:`server.cli_ingest`) runs more in their
own processes. The worker is started from a ``cleanup_ctx`` so that it stops — committing
and acknowledging what it has received — before the pool it writes with is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from server.kernel.appkeys import BUS, POOL, SETTINGS, add_metrics_source

if TYPE_CHECKING:
    from ingest.worker import IngestWorker

__all__ = ["INGEST_WORKER", "setup"]

log = logging.getLogger(__name__)

INGEST_WORKER: web.AppKey[IngestWorker] = web.AppKey("ingest_worker")
"""The process's running worker (its ``metrics`` feed ``/metrics``)."""


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_ingest_ctx)
    add_metrics_source(app, lambda: _render_metrics(app))


def _render_metrics(app: web.Application) -> str:
    worker = app.get(INGEST_WORKER)
    return "" if worker is None else str(worker.metrics.render_prometheus())


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    from ingest.worker import IngestWorker

    settings = app[SETTINGS]
    # `cylwatch serve --workers N` numbers its processes; keep their client ids apart from
    # each other and from `cylwatch ingest` workers (one id = one broker session).
    index = os.environ.get("CYL_WORKER_INDEX", "0")
    worker: IngestWorker = IngestWorker(
        settings, app[POOL], app[BUS], client_id=f"{settings.ingest.client_id_prefix}-serve-{index}"
    )
    app[INGEST_WORKER] = worker
    task = asyncio.create_task(worker.run(), name="ingest-worker")
    try:
        yield
    finally:
        await worker.stop()
        try:
            await task
        except Exception:
            log.exception("ingest worker ended with an error")
