"""Typed application state (aiohttp `web.AppKey`): one place that names what the app holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

from server.config import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from realtime.bus import EventBus

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
REDIS: web.AppKey[Redis] = web.AppKey("redis")
BUS: web.AppKey[EventBus] = web.AppKey("bus")
# Free-form registry of per-feature state objects (the websocket hub, the push sender, the
# ingest worker); each feature declares its own AppKey in its own module when it needs one.
EXTRAS: web.AppKey[dict[str, Any]] = web.AppKey("extras", dict)
