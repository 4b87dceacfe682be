"""Request body limits per route (docs/API.md "Limits").

A login or a complaint is a few hundred bytes; an archive import is megabytes. One limit for
every route would either refuse imports or let anyone make the server buffer a 200 MB
"login". Each handler therefore declares its class with `body_limit` (unmarked handlers
are ordinary JSON endpoints), and the middleware refuses a larger body before the handler
reads a byte: at once from ``Content-Length``, or while reading a chunked body (aiohttp
stops at the request's ``client_max_size``). Sizes are settings (``[http]``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from aiohttp import web

from server.kernel import errors
from server.kernel.appkeys import SETTINGS
from server.kernel.errors import ApiError
from server.kernel.settings import Http, Settings

BodyClass = Literal["small", "json", "upload"]
BodySize = Callable[[Settings], int]
"""A route's own limit in bytes, read from the settings (a batch interface sized by its own
section, e.g. ``[enterprise] max_body_mb``)."""
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
_ATTR = "__cylwatch_body_limit__"
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def body_limit(kind: BodyClass | BodySize) -> Callable[[H], H]:
    """Mark a handler: ``small`` (login, public forms), ``json`` (default), ``upload`` (files),
    or a function of the settings giving the route's own limit in bytes."""

    def mark(handler: H) -> H:
        setattr(handler, _ATTR, kind)
        return handler

    return mark


def limit_bytes(http: Http, kind: BodyClass) -> int:
    if kind == "small":
        return http.max_small_body_kb * 1024
    if kind == "upload":
        return http.max_upload_mb * 1024 * 1024
    return http.max_json_body_kb * 1024


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _NO_BODY:
        return await handler(request)
    kind: BodyClass | BodySize = getattr(request.match_info.handler, _ATTR, "json")
    settings = request.app[SETTINGS]
    limit = kind(settings) if callable(kind) else limit_bytes(settings.http, kind)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            errors.PAYLOAD_TOO_LARGE,
            f"request body is larger than this endpoint accepts ({limit} bytes)",
            {"limit_bytes": limit},
        )
    # a clone forgets an address set by an earlier clone (server.kernel.proxies): pass it on
    remote = request.remote
    if remote is None:
        return await handler(request.clone(client_max_size=limit))
    return await handler(request.clone(client_max_size=limit, remote=remote))
