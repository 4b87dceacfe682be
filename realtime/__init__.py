"""Live events: in-process bus, Redis bridge between processes, the /ws endpoint, Web Push."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Mount the websocket endpoint and the Redis bridge (see realtime.ws, realtime.bridge)."""
