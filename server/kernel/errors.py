"""One error shape for every endpoint (docs/ARCHITECTURE.md §9): {"error": {"code", "message", "details"}}.

Codes are constants so clients and tests can rely on them. Handlers raise `ApiError`; the
middleware turns it, aiohttp's own HTTP exceptions and anything unexpected into that shape.
An unexpected exception is logged with its traceback and answered as a 500 with a reference
id, never with the traceback itself.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from redis import exceptions as redis_errors

from server.kernel.request_ids import current_request_id

log = logging.getLogger(__name__)

# Constant error codes (documented in docs/API.md; a test checks each one is listed there).
INVALID_JSON = "invalid_json"
INVALID_FIELD = "invalid_field"
INVALID_QUERY = "invalid_query"
INVALID_FILE = "invalid_file"
UNAUTHORIZED = "unauthorized"
BAD_CREDENTIALS = "bad_credentials"
FORBIDDEN = "forbidden"
CSRF_FAILED = "csrf_failed"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
CONFLICT = "conflict"
INVALID_TRANSITION = "invalid_transition"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
RATE_LIMITED = "rate_limited"
SERVICE_UNAVAILABLE = "service_unavailable"
INTERNAL_ERROR = "internal_error"

ERROR_CODES = (
    INVALID_JSON,
    INVALID_FIELD,
    INVALID_QUERY,
    INVALID_FILE,
    UNAUTHORIZED,
    BAD_CREDENTIALS,
    FORBIDDEN,
    CSRF_FAILED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CONFLICT,
    INVALID_TRANSITION,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    INTERNAL_ERROR,
)

_STATUS_CODES = {
    400: INVALID_FIELD,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    409: CONFLICT,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    429: RATE_LIMITED,
    503: SERVICE_UNAVAILABLE,
}


class ApiError(Exception):
    """An error a client caused or must be told about, with a constant code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def bad_field(field: str, message: str, **extra: Any) -> ApiError:
    return ApiError(400, INVALID_FIELD, f"{field}: {message}", {"field": field, **extra})


def bad_query(param: str, message: str) -> ApiError:
    return ApiError(400, INVALID_QUERY, f"{param}: {message}", {"field": param})


def not_found(what: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"{what} not found")


def forbidden(message: str = "your role may not do this") -> ApiError:
    return ApiError(403, FORBIDDEN, message)


def error_body(code: str, message: str, details: Any = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details}})


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(code, message, details),
        content_type="application/json",
        headers=headers,
    )


def _wants_json(request: web.Request) -> bool:
    path = request.path
    if path.startswith(("/api/", "/ws", "/metrics")):
        return True
    return "application/json" in request.headers.get("Accept", "")


def _html_error(status: int, message: str) -> web.Response:
    import html

    text = html.escape(message)
    body = (
        "<!doctype html><meta charset=utf-8><title>CylinderWatch</title>"
        f"<body style='font-family:sans-serif;margin:3em'><h1>{status}</h1><p>{text}</p>"
        "<p><a href='/'>CylinderWatch 气瓶安全追溯监管平台</a></p>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A service went away under a request (restart, failover, network): the client should
# retry, and nothing it sent was wrong, so this is a 503 with Retry-After, not a 500.
# asyncpg.InterfaceError is NOT among them as a class: it also reports our own mistakes (a
# query given the wrong number of arguments, a value of the wrong type, an operation on a
# busy connection), and a 503 "briefly unavailable" would invite the user to retry a bug.
# Only its messages about a pool or connection going away count as the service being down
# (:func:`service_down`); the rest are 500s with a reference in the log.
SERVICE_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # includes ConnectionDoesNotExistError (lost mid-query)
    asyncpg.OperatorInterventionError,  # shutting down, cannot connect now
    asyncpg.TooManyConnectionsError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    ConnectionError,
    TimeoutError,
)
_GOING_AWAY = ("pool is closing", "pool is closed", "connection is closed", "not yet ready")


def service_down(exc: BaseException) -> bool:
    """Whether *exc* means a platform service is (briefly) unreachable, not a bug."""
    if isinstance(exc, SERVICE_DOWN_ERRORS):
        return True
    if type(exc) is asyncpg.InterfaceError:  # not its subclasses (DataError: bad argument)
        return any(text in str(exc) for text in _GOING_AWAY)
    return False


SERVICE_RETRY_AFTER_S = "5"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        if _wants_json(request):
            return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
        return _html_error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, INVALID_FIELD if exc.status < 500 else INTERNAL_ERROR)
        if exc.status == 413:
            message = "request body is too large"
        elif exc.status == 404:
            message = f"no such resource: {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} is not allowed here"
        else:
            message = exc.reason or exc.text or "request failed"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        if _wants_json(request):
            return error_response(exc.status, code, message, None, headers)
        return _html_error(exc.status, message)
    except Exception as exc:
        if not service_down(exc):
            # the request's id (server.kernel.request_ids): the one search that finds the
            # traceback and every other line of the request; a fresh token outside one
            ref = current_request_id() or secrets.token_hex(6)
            log.exception("unhandled error [%s] on %s %s", ref, request.method, request.path)
            message = f"internal error (reference {ref}); it has been logged"
            if _wants_json(request):
                return error_response(500, INTERNAL_ERROR, message, {"reference": ref})
            return _html_error(500, message)
        log.warning(
            "service unavailable during %s %s: %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc,
        )
        message = "a platform service is briefly unavailable; try again in a few seconds"
        headers = {"Retry-After": SERVICE_RETRY_AFTER_S}
        if _wants_json(request):
            return error_response(503, SERVICE_UNAVAILABLE, message, None, headers)
        return _html_error(503, message)
