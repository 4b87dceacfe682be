"""Request ids, structured logs and the HTTP request counters (docs/DEPLOY.md "What to monitor").

Every request gets an id: the caller's ``X-Request-Id`` when it is a sane token (a proxy or a
load balancer in front may already have made one, so one id follows the request through
both logs), a fresh one otherwise. The id goes back in the response's ``X-Request-Id``, sits
in a context variable for the request's duration, and :class:`RequestIdFilter` copies it into
every log record written meanwhile — a 500's traceback, a warning of a query, a sender's
retry line — so an operator finds everything one request did with one search. A 500's
``reference`` (docs/API.md "Errors") is that same id (``server.kernel.errors``).

``[logging] format`` (docs/CONFIG.md) chooses the log lines: ``text`` for a person reading a
terminal or the journal, ``json`` (:class:`JsonFormatter`, one object per line) for a log
shipper that indexes fields.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from server.kernel.appkeys import add_metrics_source

__all__ = [
    "HEADER",
    "JsonFormatter",
    "RequestIdFilter",
    "configure_logging",
    "current_request_id",
    "request_id_middleware",
    "setup_http_metrics",
    "setup_request_ids",
]

HEADER: Final = "X-Request-Id"
REQUEST_ID_MAX_CHARS: Final = 64
"""Longest incoming id kept: a UUID (36) or a proxy's hex id (32) fits; a longer value is
not an id but a way to bloat every log line, so it is replaced."""
_VALID = re.compile(rf"[A-Za-z0-9._:-]{{1,{REQUEST_ID_MAX_CHARS}}}")
"""Letters, digits and ``. _ : -``: nothing that could split a log line, forge a JSON field
or an HTTP header, or need escaping in the 500's message."""
NEW_ID_BYTES: Final = 8
"""A fresh id is 16 hex characters: unique enough among a day's requests to find one in the
logs, short enough to read out over the phone from an error page."""

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cylwatch_request_id", default=None
)

TEXT_FORMAT: Final = "%(asctime)s {tag}%(levelname)s %(name)s [%(request_id)s]: %(message)s"
"""The text line: time, process tag, level, logger, request id (``-`` outside a request)."""


def current_request_id() -> str | None:
    """The id of the request this code runs for, ``None`` outside a request."""
    return _request_id.get()


def _accept(value: str | None) -> str:
    if value is not None and _VALID.fullmatch(value):
        return value
    return secrets.token_hex(NEW_ID_BYTES)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpCounters:
    """Requests answered by this process, by status class, and their total time."""

    def __init__(self) -> None:
        self.by_class: Counter[str] = Counter()
        self.seconds = 0.0

    def render(self) -> str:
        lines = [
            "# HELP cylwatch_http_requests_total HTTP requests answered, by status class.",
            "# TYPE cylwatch_http_requests_total counter",
        ]
        lines += [
            f'cylwatch_http_requests_total{{code="{k}"}} {n}'
            for k, n in sorted(self.by_class.items())
        ]
        lines += [
            "# HELP cylwatch_http_request_seconds_total Time spent answering HTTP requests"
            " (divide by cylwatch_http_requests_total for the mean).",
            "# TYPE cylwatch_http_request_seconds_total counter",
            f"cylwatch_http_request_seconds_total {self.seconds!r}",
        ]
        return "\n".join(lines) + "\n"


HTTP_COUNTERS: web.AppKey[HttpCounters] = web.AppKey("http_counters", HttpCounters)


def setup_http_metrics(app: web.Application) -> None:
    """Count this app's requests and show them on ``/metrics``."""
    counters = HttpCounters()
    app[HTTP_COUNTERS] = counters
    add_metrics_source(app, counters.render)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: the id is set before the error middleware logs a 500 and is on
    every response, an error's included. A websocket's id covers its whole life."""
    rid = _accept(request.headers.get(HEADER))
    token = _request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[HEADER] = rid
        return response
    except web.HTTPException as exc:  # a redirect or a 304 raised past the error middleware
        status = exc.status
        exc.headers[HEADER] = rid
        raise
    finally:
        _request_id.reset(token)
        counters = request.app.get(HTTP_COUNTERS)
        if counters is not None:
            counters.by_class[f"{status // 100}xx"] += 1
            counters.seconds += time.perf_counter() - started


async def _prepare_header(request: web.Request, response: web.StreamResponse) -> None:
    """A streamed answer (an export, a websocket) is prepared inside the handler, before the
    middleware sees it: the header goes on here."""
    rid = current_request_id()
    if rid is not None and HEADER not in response.headers:
        response.headers[HEADER] = rid


def setup_request_ids(app: web.Application) -> None:
    """Put the id on streamed responses too (the middleware itself is listed by the app)."""
    app.on_response_prepare.append(_prepare_header)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request): put on each handler so
    that records of every logger get it, propagated ones included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``message``,
    ``request_id`` when the record belongs to a request, ``process`` when the process has a
    tag (a worker's index), ``exc`` with the traceback when there is one."""

    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self.tag = tag

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or _request_id.get()
        if rid and rid != "-":
            entry["request_id"] = rid
        if self.tag:
            entry["process"] = self.tag
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, not the one it was made with:
    a command run in-process (the tests call ``cylwatch`` that way) must not leave the root
    logger writing to a stream that has been closed since ("I/O operation on closed file")."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(fmt: str, *, level: int = logging.INFO, tag: str = "") -> None:
    """Set the root logger's one stderr handler to *fmt* (``text`` or ``json``), with the
    request id on every record; *tag* names the process (``ingest-0``, a worker's index).
    Replaces the plain stderr handlers (``logging.basicConfig``'s, an earlier call's); leaves
    any other handler a host installed (a test runner's capture) where it is."""
    handler = StderrHandler()
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(tag))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT.format(tag=f"[{tag}] " if tag else "")))
    root = logging.getLogger()
    for old in list(root.handlers):
        if type(old) in (logging.StreamHandler, StderrHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
