"""Typed app keys of the realtime feature (kept apart to avoid import cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from realtime.bridge import RedisBridge
    from realtime.hub import Hub
    from realtime.inbox import InboxListener
    from realtime.kpis import KpiService
    from realtime.push import PushSender

HUB: web.AppKey[Hub] = web.AppKey("realtime_hub")
BRIDGE: web.AppKey[RedisBridge] = web.AppKey("realtime_bridge")
KPIS: web.AppKey[KpiService] = web.AppKey("realtime_kpis")
PUSH: web.AppKey[PushSender] = web.AppKey("realtime_push")
INBOX: web.AppKey[InboxListener] = web.AppKey("realtime_inbox")
