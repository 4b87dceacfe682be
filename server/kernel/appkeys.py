"""Typed application state (aiohttp `web.AppKey`): one place that names what the app holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from server.kernel.events import Bus
from server.kernel.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
REDIS: web.AppKey[Redis] = web.AppKey("redis")
BUS: web.AppKey[Bus] = web.AppKey("bus")
MetricsSource = Callable[[], str]
METRICS_SOURCES: web.AppKey[list[MetricsSource]] = web.AppKey("metrics_sources", list)
"""Functions rendering Prometheus text for ``/metrics``; features (ingest, realtime) add theirs
with `add_metrics_source` so that the app root never imports them for it. Each feature keeps
its own state under an AppKey declared in its own module (e.g. `realtime.keys`)."""


def add_metrics_source(app: web.Application, source: MetricsSource) -> None:
    """Let a feature contribute to ``/metrics`` without the server importing it."""
    app[METRICS_SOURCES].append(source)
