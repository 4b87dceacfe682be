"""Helpers shared by the REST API v1 modules (DESIGN §9).

Why a module of its own: every endpoint must behave alike — the same error shape, the same
pagination envelope, the same way of naming a bad field, the same "today" for compliance —
and the OpenAPI document is generated from metadata attached here (`api_doc`), so the
document cannot drift from the mounted routes.

What lives here:

- `api_doc`: per-handler metadata (summary, tags, roles, query parameters, body Struct)
  read by `server.api.openapi` when it walks the app's routes;
- `read_body`: `server.kernel.http.read_json` plus a field name for unknown/oversized fields;
- PATCH helpers (`changes`), constraint-violation mapping (`db_errors` → 409/400 naming the
  field), paging with a cheap total (`fetch_page`);
- compliance status in SQL (`compliance_case`, `compliance_where`) with the thresholds of
  `settings.dates`, written to agree with `server.domain.dates.compliance_status` (a test
  checks they agree row by row);
- streaming CSV/XLSX writers for reports (`stream_table`).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from aiohttp import web

from server.domain.dates import ComplianceStatus, compliance_status
from server.kernel import errors
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import ApiError, bad_field, bad_query, not_found
from server.kernel.http import Page, paged, read_json
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Dates, Settings

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

API = "/api/v1"
BIGINT_MAX = 2**63 - 1

# ---------------------------------------------------------------- typed body fields
# Annotated types give msgspec the limits, so a bad value is a 400 naming the field before
# any SQL runs (an int beyond bigint would otherwise be a 500 from asyncpg).
Id = Annotated[int, msgspec.Meta(ge=1, le=BIGINT_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/\-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=500)]
Phone = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9+\- ()]*$")]
District = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Measure = Annotated[float, msgspec.Meta(ge=0, le=99999)]  # numeric(7, 2) columns
Storage = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Note = Annotated[str, msgspec.Meta(max_length=2000)]

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType


# ---------------------------------------------------------------- OpenAPI metadata


@dataclass(frozen=True)
class Param:
    """A query parameter as documented in OpenAPI (type: string|integer|boolean|date|date-time)."""

    name: str
    type: str = "string"
    description: str = ""
    enum: Sequence[str] | None = None
    required: bool = False


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    tags: tuple[str, ...]
    roles: tuple[str, ...]
    body: type[Any] | None = None
    query: tuple[Param, ...] = ()
    paginated: bool = False
    formats: tuple[str, ...] = ()
    description: str = ""
    responses: Mapping[int, str] = field(default_factory=dict)


DOC_ATTR = "__api_doc__"
PAGE_PARAMS = (
    Param("page", "integer", "1-based page number"),
    Param("page_size", "integer", "rows per page (≤ settings http.page_size_max)"),
)


def api_doc(
    summary: str,
    *,
    tags: Sequence[str],
    roles: Sequence[str],
    body: type[Any] | None = None,
    query: Sequence[Param] = (),
    paginated: bool = False,
    formats: Sequence[str] = (),
    description: str = "",
    responses: Mapping[int, str] | None = None,
) -> Callable[[H], H]:
    """Attach OpenAPI metadata to a handler. `roles` lists who may call it ("public" = anyone)."""

    def wrap(handler: H) -> H:
        q = tuple(query) + (PAGE_PARAMS if paginated else ())
        setattr(
            handler,
            DOC_ATTR,
            ApiDoc(
                summary=summary,
                tags=tuple(tags),
                roles=tuple(roles),
                body=body,
                query=q,
                paginated=paginated,
                formats=tuple(formats),
                description=description or (handler.__doc__ or "").strip(),
                responses=dict(responses or {}),
            ),
        )
        return handler

    return wrap


def doc_of(handler: Any) -> ApiDoc | None:
    value = getattr(handler, DOC_ATTR, None)
    return value if isinstance(value, ApiDoc) else None


# ---------------------------------------------------------------- request helpers


async def read_body(request: web.Request, schema: type[T]) -> T:
    """The body as *schema*; kept as the API modules' name for `server.kernel.http.read_json`."""
    return await read_json(request, schema)


def changes(body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carries (UNSET ones are absent)."""
    return {
        name: getattr(body, name)
        for name in body.__struct_fields__
        if getattr(body, name) is not UNSET
    }


def require_some(fields: Mapping[str, Any]) -> None:
    if not fields:
        raise ApiError(400, errors.INVALID_FIELD, "body: no field to change", {"field": "body"})


def today(settings: Settings) -> dt.date:
    """The city's calendar day (settings.alerts.timezone): compliance is judged on it."""
    return dt.datetime.now(ZoneInfo(settings.alerts.timezone)).date()


def tz(settings: Settings) -> str:
    return settings.alerts.timezone


def q_id(request: web.Request, name: str) -> int | None:
    """An integer id query parameter that fits a bigint."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_query(name, f"expected a positive integer id, got {raw!r}") from None
    if value < 1 or value > BIGINT_MAX:
        raise bad_query(name, "out of range")
    return value


def q_district(request: web.Request, name: str = "district") -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{6}", raw):
        raise bad_query(name, "expected a 6-digit administrative division code")
    return raw


def q_format(request: web.Request, formats: Sequence[str] = ("json", "csv", "xlsx")) -> str:
    raw = request.query.get("format") or "json"
    if raw not in formats:
        raise bad_query("format", f"must be one of {', '.join(formats)}")
    return raw


def check_query(request: web.Request, allowed: Sequence[str]) -> None:
    """Refuse unknown query parameters: a misspelt filter must not silently return everything."""
    known = set(allowed) | {"page", "page_size", "lang"}
    for name, value in request.query.items():
        if name not in known:
            raise bad_query(name, f"unknown parameter; known: {', '.join(sorted(known))}")
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it here, not as a 500
            raise bad_query(name, "must not contain NUL characters")


def like_prefix(value: str) -> tuple[str, str]:
    """Bounds for a sargable prefix search with text_pattern_ops (`~>=~` / `~<~`) operators.

    `LIKE $1 || '%'` cannot use an index under a generic prepared plan; a range on the
    pattern-ops index can.
    """
    last = value[-1]
    upper = value[:-1] + chr(min(ord(last) + 1, 0x10FFFF))
    return value, upper


# ---------------------------------------------------------------- database errors

_CONSTRAINT_FIELD = re.compile(r"^(?:[a-z]+?)_(?P<field>[a-z_]+?)_(?:key|fkey|check|uidx|idx)$")


# Constraints whose name does not spell the one field a client should fix.
KNOWN_CONSTRAINTS = {
    "customers_company_id_account_no_key": "account_no",
    "devices_check": "site_id",
    "users_check": "role",
    "users_check1": "site_id",
    "users_check2": "site_id",
    "users_check3": "districts",
    "cylinders_check": "scrap_date",
}


def _field_of(exc: asyncpg.PostgresError, fallback: str) -> str:
    name = getattr(exc, "constraint_name", None) or ""
    if name in KNOWN_CONSTRAINTS:
        return KNOWN_CONSTRAINTS[name]
    table = getattr(exc, "table_name", None) or ""
    if table and name.startswith(table + "_"):
        core = name[len(table) + 1 :]
        for suffix in ("_key", "_fkey", "_check", "_uidx", "_idx"):
            if core.endswith(suffix):
                return core[: -len(suffix)]
    m = _CONSTRAINT_FIELD.match(name)
    return m.group("field") if m else fallback


@contextlib.asynccontextmanager
async def db_errors(fallback: str = "body") -> AsyncIterator[None]:
    """Turn constraint violations into 409/400 naming the field (never a 500 for bad input)."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        f = _field_of(exc, fallback)
        raise ApiError(409, errors.CONFLICT, f"{f}: already exists", {"field": f}) from None
    except asyncpg.ForeignKeyViolationError as exc:
        f = _field_of(exc, fallback)
        raise bad_field(f, "refers to a record that does not exist") from None
    except asyncpg.CheckViolationError as exc:
        f = _field_of(exc, fallback)
        raise bad_field(f, "violates a rule of the record") from None
    except asyncpg.NotNullViolationError as exc:
        f = getattr(exc, "column_name", None) or fallback
        raise bad_field(f, "is required") from None
    except (asyncpg.DataError, asyncpg.exceptions.NumericValueOutOfRangeError) as exc:
        raise bad_field(fallback, f"value out of range: {exc.__class__.__name__}") from None


# ---------------------------------------------------------------- paging


async def fetch_page(
    db: asyncpg.Pool | asyncpg.Connection,
    select: str,
    from_where: str,
    order: str,
    q: Sql,
    page: Page,
) -> tuple[list[asyncpg.Record], int]:
    """Rows of one page and the total.

    The count is skipped when the first page is not full (its length *is* the total): a
    lookup by tag, barcode or id then costs one index probe, never a `count(*)`.
    """
    sql = (
        f"SELECT {select} FROM {from_where} ORDER BY {order}"
        f" LIMIT {page.page_size} OFFSET {page.offset}"
    )
    rows = await db.fetch(sql, *q.params)
    if page.offset == 0 and len(rows) < page.page_size:
        return list(rows), len(rows)
    if rows or page.offset > 0:
        total = await db.fetchval(f"SELECT count(*) FROM {from_where}", *q.params)
        return list(rows), int(total or 0)
    return [], 0


def listing(items: list[Any], page: Page, total: int) -> dict[str, Any]:
    return paged(items, page, total)


async def fetch_in_scope(
    request: web.Request,
    p: Principal,
    *,
    entity: str,
    alias: str,
    select: str,
    row_id: int,
    what: str,
) -> asyncpg.Record:
    """One row of *entity* by id, only if the caller's scope holds it (in SQL).

    Outside the scope is a 404, the same as a row that does not exist: the existence of
    another company's cylinder, customer or device is not disclosed by a 403.
    *select* is the ``SELECT … FROM …`` part naming the row ``alias``.
    """
    q = Sql(row_id)
    row = await request.app[POOL].fetchrow(
        f"{select} WHERE {alias}.id = $1 AND {scope_where(p, entity, alias, q)}", *q.params
    )
    if row is None:
        raise not_found(f"{what} {row_id}")
    return row


def plain(record: Mapping[str, Any], drop: Sequence[str] = ()) -> dict[str, Any]:
    """A row as JSON-ready dict (Decimal → float; dates stay dates for orjson)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in drop:
            continue
        out[key] = float(value) if isinstance(value, Decimal) else value
    return out


# ---------------------------------------------------------------- compliance in SQL


@dataclass(frozen=True)
class ComplianceBounds:
    """The three dates the SQL needs, computed once per request from settings.dates."""

    today: dt.date
    inspection_due_until: dt.date
    scrap_due_until: dt.date

    @classmethod
    def of(cls, day: dt.date, rules: Dates) -> ComplianceBounds:
        return cls(
            day,
            day + dt.timedelta(days=rules.inspection_due_days),
            day + dt.timedelta(days=rules.scrap_due_days),
        )


class _Conditions:
    """The four date predicates, each adding its parameter only when used (asyncpg refuses
    parameters a statement does not reference)."""

    def __init__(self, alias: str, q: Sql, b: ComplianceBounds) -> None:
        self.a = f"{alias}." if alias else ""
        self.q = q
        self.b = b
        self._params: dict[str, str] = {}

    def _p(self, name: str) -> str:
        if name not in self._params:
            self._params[name] = self.q.add(getattr(self.b, name))
        return self._params[name]

    def scrapped(self) -> str:
        return f"({self.a}status = 'scrapped' OR {self.a}scrap_date <= {self._p('today')})"

    def overdue(self) -> str:
        a = self.a
        return f"({a}next_inspection_date IS NULL OR {a}next_inspection_date < {self._p('today')})"

    def scrap_due(self) -> str:
        return f"({self.a}scrap_date <= {self._p('scrap_due_until')})"

    def inspection_due(self) -> str:
        return f"({self.a}next_inspection_date <= {self._p('inspection_due_until')})"


def compliance_case(alias: str, q: Sql, b: ComplianceBounds) -> str:
    """SQL CASE giving the compliance status (DESIGN §4 precedence)."""
    c = _Conditions(alias, q, b)
    return (
        f"CASE WHEN {c.scrapped()} THEN 'scrapped' WHEN {c.overdue()} THEN 'overdue' "
        f"WHEN {c.scrap_due()} THEN 'scrap_due' WHEN {c.inspection_due()} THEN 'inspection_due' "
        "ELSE 'ok' END"
    )


def compliance_where(status: str, alias: str, q: Sql, b: ComplianceBounds) -> str:
    """A WHERE predicate selecting one compliance status, written so date indexes can help."""
    c = _Conditions(alias, q, b)
    if status == "scrapped":
        return c.scrapped()
    live = f"NOT {c.scrapped()} AND NOT {c.overdue()}"
    if status == "overdue":
        return f"({c.overdue()} AND NOT {c.scrapped()})"
    if status == "scrap_due":
        return f"({c.scrap_due()} AND {live})"
    if status == "inspection_due":
        return f"({c.inspection_due()} AND NOT {c.scrap_due()} AND {live})"
    if status == "ok":
        return f"(NOT {c.inspection_due()} AND NOT {c.scrap_due()} AND {live})"
    raise ValueError(status)


COMPLIANCE_VALUES = tuple(s.value for s in ComplianceStatus)


def compliance_of(record: Mapping[str, Any], settings: Settings, day: dt.date) -> str:
    """The domain's verdict for one row (the SQL above must agree with it)."""
    return compliance_status(
        record["status"], record["next_inspection_date"], record["scrap_date"], day, settings.dates
    ).value


# ---------------------------------------------------------------- streaming tables


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    return value


async def stream_table(
    request: web.Request,
    fmt: str,
    filename: str,
    header: Sequence[str],
    rows: AsyncIterator[Sequence[Any]],
) -> web.StreamResponse:
    """Stream rows as CSV (chunked) or XLSX (xlsxwriter constant_memory, temp file).

    Neither holds the full result in memory: CSV goes out in chunks as rows arrive; XLSX
    rows are written in batches off the event loop and the finished file is streamed.
    """
    if fmt == "csv":
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{filename}.csv"',
            }
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # BOM: Excel opens UTF-8 Chinese correctly
        writer.writerow(header)
        n = 0
        async for row in rows:
            writer.writerow([_cell(v) for v in row])
            n += 1
            if n % 1000 == 0:
                await resp.write(buf.getvalue().encode())
                buf.seek(0)
                buf.truncate()
        await resp.write(buf.getvalue().encode())
        await resp.write_eof()
        return resp
    return await _stream_xlsx(request, filename, header, rows)


async def _stream_xlsx(
    request: web.Request, filename: str, header: Sequence[str], rows: AsyncIterator[Sequence[Any]]
) -> web.StreamResponse:
    import xlsxwriter  # imported here: only reports/exports need it

    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False})
        ws = wb.add_worksheet(filename[:31])
        ws.write_row(0, 0, list(header))
        line = 1
        batch: list[list[Any]] = []

        def flush(start: int, chunk: list[list[Any]]) -> None:
            for i, r in enumerate(chunk):
                ws.write_row(start + i, 0, r)

        async for row in rows:
            batch.append([_cell(v) for v in row])
            if len(batch) >= 5000:
                await asyncio.to_thread(flush, line, batch)
                line += len(batch)
                batch = []
        if batch:
            await asyncio.to_thread(flush, line, batch)
        await asyncio.to_thread(wb.close)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "Content-Disposition": f'attachment; filename="{filename}.xlsx"',
            }
        )
        resp.content_length = await asyncio.to_thread(os.path.getsize, path)
        await resp.prepare(request)
        for chunk in _read_chunks(path):
            await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _read_chunks(path: str, size: int = 1 << 16) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


async def iter_rows(
    pool: asyncpg.Pool, sql: str, params: Sequence[Any], columns: Sequence[str]
) -> AsyncIterator[Sequence[Any]]:
    """Rows of a query through a server-side cursor (flat memory for large exports)."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for rec in conn.cursor(sql, *params, prefetch=2000):
            yield [rec[c] for c in columns]


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def who(p: Principal) -> str:
    return f"{p.username} ({p.role})"


# ---------------------------------------------------------------- generic row writes


def contains(value: str) -> str:
    """An ILIKE pattern matching *value* anywhere, with LIKE's wildcards escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def insert_row(
    conn: asyncpg.Connection, table: str, values: Mapping[str, Any], fallback: str
) -> asyncpg.Record:
    """INSERT … RETURNING * with constraint violations mapped to 409/400 naming the field."""
    q = Sql()
    cols = ", ".join(values)
    vals = ", ".join(q.add(v) for v in values.values())
    async with db_errors(fallback):
        row = await conn.fetchrow(
            f"INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING *", *q.params
        )
    assert row is not None
    return row


async def update_row(
    conn: asyncpg.Connection, table: str, row_id: int, values: Mapping[str, Any], fallback: str
) -> asyncpg.Record:
    """UPDATE one row by id (and `updated_at`), mapping constraint violations like insert_row."""
    q = Sql(row_id)
    sets = ", ".join(f"{k} = {q.add(v)}" for k, v in values.items())
    async with db_errors(fallback):
        row = await conn.fetchrow(
            f"UPDATE {table} SET {sets}, updated_at = now() WHERE id = $1 RETURNING *", *q.params
        )
    assert row is not None
    return row


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values for an audit row's JSON details (dates as ISO strings)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, (dt.date, dt.datetime)):
            out[k] = v.isoformat()
        elif isinstance(v, Decimal):
            out[k] = float(v)
        else:
            out[k] = v
    return out


def deny_fields(p: Principal, fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """403 naming the first field the caller's role may not set."""
    for name in fields:
        if name not in allowed:
            raise ApiError(
                403,
                errors.FORBIDDEN,
                f"{name}: role {p.role} may not set this field",
                {"field": name},
            )


def envelope(items: list[Any], page: Page, total: int) -> dict[str, Any]:
    return paged(items, page, total)
