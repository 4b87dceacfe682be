"""Request and response helpers shared by every API module: JSON in and out, query
parameters, pagination. Bad input always becomes an `ApiError` naming the field."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec
import orjson
from aiohttp import web

from server.domain.statuses import is_district_code
from server.kernel import errors
from server.kernel.appkeys import SETTINGS
from server.kernel.errors import ApiError, bad_query

T = TypeVar("T")
_PATH_RE = re.compile(r"at `\$(?P<path>[^`]*)`")
_MISSING_RE = re.compile(r"missing required field `(?P<name>[^`]+)`")
_UNKNOWN_RE = re.compile(r"unknown field `(?P<name>[^`]+)`")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(data: Any) -> bytes:
    """orjson with dates as ISO 8601 and Decimal as float."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, content_type="application/json", headers=headers
    )


def field_from_msgspec(message: str, whole: str = "body") -> str:
    """The field a msgspec validation message is about, for the error's ``field``.

    `Expected int, got str - at $.net_kg` → `net_kg` (`$[0].x` → `[0].x`); a missing or
    unknown field is named after its parent (`filter.bbox`). A message about the document
    itself names *whole*: ``body`` for a REST request, ``message`` for a websocket frame
    (docs/API.md and docs/WEBSOCKET.md "Error codes").
    """
    m = _PATH_RE.search(message)
    path = m.group("path").lstrip(".") if m else ""
    named = _MISSING_RE.search(message) or _UNKNOWN_RE.search(message)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return path or whole


async def read_json(request: web.Request, schema: type[T]) -> T:
    """Decode and validate a JSON body against a msgspec Struct (strict types)."""
    ctype = request.content_type
    if ctype != "application/json":
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            f"send JSON with Content-Type: application/json (got {ctype or 'none'})",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, errors.PAYLOAD_TOO_LARGE, "request body is too large") from None
    return decode_json(body, schema)


def decode_json(body: bytes, schema: type[T]) -> T:
    if not body.strip():
        raise ApiError(400, errors.INVALID_JSON, "request body is empty; a JSON object is expected")
    if b"\\u0000" in body:
        # JSON can carry NUL only as an escape; PostgreSQL text cannot store it at all
        raise ApiError(
            400,
            errors.INVALID_FIELD,
            "body: strings must not contain NUL characters",
            {"field": "body"},
        )
    try:
        return msgspec.json.decode(body, type=schema, strict=True)
    except msgspec.ValidationError as exc:
        field = field_from_msgspec(str(exc))
        msg = str(exc).split(" - at ")[0]
        raise ApiError(400, errors.INVALID_FIELD, f"{field}: {msg}", {"field": field}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, errors.INVALID_JSON, f"body is not valid JSON: {exc}") from None


# ------------------------------------------------------------------ query parameters


def q_str(request: web.Request, name: str, *, max_len: int = 200) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_len:
        raise bad_query(name, f"at most {max_len} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it here, not as a 500
        raise bad_query(name, "must not contain NUL characters")
    return value


def q_int(
    request: web.Request,
    name: str,
    default: int | None = None,
    *,
    lo: int | None = None,
    hi: int | None = None,
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_query(name, f"expected an integer, got {raw!r}") from None
    if lo is not None and value < lo:
        raise bad_query(name, f"must be ≥ {lo}")
    if hi is not None and value > hi:
        raise bad_query(name, f"must be ≤ {hi}")
    return value


ID_MAX: Final = 2**63 - 1
"""Largest id a query or a path may name: every id column is a PostgreSQL ``bigint``
(``bigserial`` keys and the references to them), so anything larger names nothing and is
refused before it reaches the database (where it would be an out-of-range error)."""


def q_id(request: web.Request, name: str) -> int | None:
    """An id query parameter: a whole number from 1 to :data:`ID_MAX`."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_query(name, f"expected a positive integer id, got {raw!r}") from None
    if value < 1 or value > ID_MAX:
        raise bad_query(name, "out of range")
    return value


def q_district(request: web.Request, name: str = "district") -> str | None:
    """A district filter: an administrative division code (:func:`is_district_code`)."""
    raw = request.query.get(name)
    if not raw:
        return None
    if not is_district_code(raw):
        raise bad_query(name, "expected a 6-digit administrative division code")
    return raw


def q_date(request: web.Request, name: str) -> dt.date | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise bad_query(name, f"expected a date YYYY-MM-DD, got {raw!r}") from None


def q_datetime(request: web.Request, name: str) -> dt.datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_query(name, f"expected an ISO 8601 time, got {raw!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:  # the database compares in UTC: 0001-01-01T00:00+14:00 would be year 0, a 500
        value.astimezone(dt.UTC)
    except OverflowError:
        raise bad_query(name, "out of range") from None
    return value


def q_choice(request: web.Request, name: str, choices: Sequence[str]) -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if raw not in choices:
        raise bad_query(name, f"must be one of {', '.join(choices)}")
    return raw


def q_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise bad_query(name, "expected true or false")


@dataclass(frozen=True)
class Page:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def q_page(request: web.Request) -> Page:
    """``page`` and ``page_size``; a page starting beyond ``[http] page_offset_max`` rows is
    a 400: PostgreSQL reads and discards every row before an OFFSET, so a deep page costs
    what the whole table costs (docs/API.md "Lists": narrow the search, or export)."""
    http = request.app[SETTINGS].http
    size = q_int(request, "page_size", http.page_size_default, lo=1, hi=http.page_size_max)
    assert size is not None
    page = q_int(request, "page", 1, lo=1, hi=http.page_offset_max // size + 1)
    assert page is not None
    return Page(page, size)


def paged(items: list[Any], page: Page, total: int) -> dict[str, Any]:
    """The list envelope every list endpoint returns."""
    return {"items": items, "page": page.page, "page_size": page.page_size, "total": total}


def path_int(request: web.Request, name: str = "id") -> int:
    """An id in the path, 1 to :data:`ID_MAX`; anything else names no resource (404)."""
    raw = request.match_info.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(404, errors.NOT_FOUND, f"no such resource: {request.path}") from None
    if value <= 0 or value > ID_MAX:
        raise ApiError(404, errors.NOT_FOUND, f"no such resource: {request.path}")
    return value
