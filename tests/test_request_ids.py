"""Request ids and structured logs (server/kernel/request_ids.py, docs/CONFIG.md "[logging]"):
one id in the response header, the 500's reference and every log line of the request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from server.kernel.request_ids import HEADER, JsonFormatter, RequestIdFilter


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the root logger writes with ``[logging] format = "json"``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def _app_with_a_bug(aiohttp_client: Any, app: Any) -> Any:
    from aiohttp import web

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug under test")

    app.router.add_get("/api/v1/test-boom", boom)
    return await aiohttp_client(app)


async def test_a_500_carries_the_callers_id_in_header_body_and_log(
    aiohttp_client: Any, app: Any, json_log: io.StringIO
) -> None:
    client = await _app_with_a_bug(aiohttp_client, app)
    rid = "lb-7f3a9c2e-0001"
    r = await client.get("/api/v1/test-boom", headers={HEADER: rid, "Accept": "application/json"})
    assert r.status == 500
    assert r.headers[HEADER] == rid
    body = await r.json()
    assert set(body["error"]) == {"code", "message", "details"}  # docs/API.md's shape
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["details"] == {"reference": rid}
    assert rid in body["error"]["message"]
    errors = [e for e in _lines(json_log) if e["level"] == "ERROR"]
    assert errors, "the 500 was not logged"
    assert errors[-1]["request_id"] == rid
    assert "RuntimeError: a bug under test" in errors[-1]["exc"]
    assert errors[-1]["logger"] == "server.kernel.errors"


@pytest.mark.parametrize(
    "sent",
    ["", "a" * 65, "bad id with spaces", 'x"}{"level":"forged', "line\\nbreak"],
)
async def test_an_invalid_incoming_id_is_replaced(client: Any, sent: str) -> None:
    r = await client.get("/healthz", headers={HEADER: sent})
    assert r.status == 200
    rid = r.headers[HEADER]
    assert rid != sent
    assert len(rid) == 16 and all(c in "0123456789abcdef" for c in rid)


async def test_every_response_gets_a_fresh_id(client: Any) -> None:
    first = (await client.get("/healthz")).headers[HEADER]
    second = (await client.get("/api/v1/no-such-thing")).headers[HEADER]  # an error too
    assert first != second


async def test_a_valid_id_is_kept_on_a_404(client: Any) -> None:
    rid = "0b6f2a9e-5c1d-4e8f-9a7b-3d2c1e0f9a8b"  # a UUID, as a proxy makes them
    r = await client.get("/api/v1/no-such-thing", headers={HEADER: rid})
    assert r.status == 404
    assert r.headers[HEADER] == rid


def test_json_lines_parse_with_every_field() -> None:
    record = logging.LogRecord("cyl.test", logging.WARNING, __file__, 1, "n=%d 气瓶", (3,), None)
    record.request_id = "abc"
    try:
        raise ValueError("inner")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter("7").format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "cyl.test"
    assert entry["message"] == "n=3 气瓶"
    assert entry["request_id"] == "abc" and entry["process"] == "7"
    assert entry["ts"].endswith("Z") and "T" in entry["ts"]
    assert "ValueError: inner" in entry["exc"]
    outside = logging.LogRecord("cyl.test", logging.INFO, __file__, 1, 'say "hi"\n', None, None)
    RequestIdFilter().filter(outside)
    entry = json.loads(JsonFormatter().format(outside))
    assert "request_id" not in entry and entry["message"] == 'say "hi"\n'


def test_the_format_key_is_checked(tmp_path: Any) -> None:
    from server.kernel.settings import ConfigError, load_settings

    path = tmp_path / "bad.toml"
    path.write_text('[logging]\nformat = "xml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"logging\.format"):
        load_settings(path)
    path.write_text('[logging]\nformat = "json"\n', encoding="utf-8")
    assert load_settings(path).logging.format == "json"


def test_text_lines_name_the_request() -> None:
    from server.kernel.request_ids import TEXT_FORMAT

    formatter = logging.Formatter(TEXT_FORMAT.format(tag=""))
    record = logging.LogRecord("cyl", logging.INFO, __file__, 1, "hello", None, None)
    record.request_id = "r-1"
    assert formatter.format(record).endswith("INFO cyl [r-1]: hello")


async def test_a_streamed_answer_carries_the_id(aiohttp_client: Any, app: Any) -> None:
    """An export is prepared inside its handler, before the middleware sees the response."""
    from aiohttp import web

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"a,b\n")
        return response

    app.router.add_get("/api/v1/test-stream", stream)
    client = await aiohttp_client(app)
    r = await client.get("/api/v1/test-stream", headers={HEADER: "exp-1"})
    assert r.status == 200 and await r.read() == b"a,b\n"
    assert r.headers[HEADER] == "exp-1"
