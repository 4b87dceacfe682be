"""The audit log, readable: ``GET /api/v1/audit`` (docs/API.md "Audit log").

Every write by a person appends a row (``server.kernel.audit``, hash-chained by migration
0050, docs/ARCHITECTURE.md §7). This module only reads them: who (user, role), what (action),
on what (target type and id), when, and the details the writer recorded — for most changes
the new values, for some (``api_key.revoke``, imports, status changes) explicit before and
after values. The page (``dashboard.pages.audit``) shows the details as a diff.

Who reads it, and why so:

- **admin**: every row.
- **regulator**: the bureau supervises people's work as well as cylinders. A city-wide
  regulator sees every row. A district regulator sees the rows whose *target* lies in their
  districts, decided in SQL from the stored columns (``entity``, ``entity_id``) by looking the
  target up: a cylinder, site, company, customer, alert or complaint by its district; a
  device by its site's; a user by their company's or site's district (or their own
  districts); an entrustment by either company's. Rows whose target has no place
  (logins failed for unknown names, API keys, kiosk tokens, push subscriptions, upload
  batches, a whole import's summary) are city-wide only.
- Everyone else: 403. A company's own history is in its objects' trajectories.

The action vocabulary is open — every module names its own actions (``cylinder.update``,
``api_key.revoke`` …) and new ones come with new work — so an unknown action is not an
error; a malformed one is (400 ``invalid_query``). ``action=user.*`` matches a family.

Exports (``format=csv|xlsx``) stream through ``server.kernel.tabular`` (formula cells
neutralised, flat memory) and are themselves audited (``audit.export``): who took a copy of
the log is part of the log.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import asyncpg
from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    contains,
    envelope,
    plain,
    q_format,
)
from server.api.fills import time_range
from server.domain.statuses import ROLES as ALL_ROLES
from server.kernel.appkeys import POOL
from server.kernel.audit import audit
from server.kernel.errors import bad_query
from server.kernel.http import Page, json_response, q_choice, q_page, q_str
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql
from server.kernel.tabular import stream_table

ROLES: Final = ("admin", "regulator")
FORMATS: Final = ("json", "csv", "xlsx")
ACTION_RE: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$")
"""An action (``user.update``) or a family of them (``user.*``)."""
ENTITY_RE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
NAME_MAX: Final = 64
"""Longest action, target type, target id or username a filter may name (the writers'
values are short identifiers; anything longer names nothing)."""
XLSX_CELL_MAX: Final = 32_767
"""Characters Excel keeps in one cell (its specification's limit); a longer details text is
cut in an XLSX export, with a mark — the CSV keeps it whole."""

LOOKAHEAD_ROWS: Final = 1000
"""How far past the page shown a district regulator's total is counted. Placing a row in a
district looks its target up (an index probe per row: ~20–40 µs on a cache that does not
hold the cylinders, so 7–20 s for a log of 500k rows over 1M cylinders, measured on the
2-core machine); the pager needs only to know that more rows follow, so the total stops
here and the answer says so (``total_capped``)."""
NO_JIT: Final = "SET LOCAL jit = off"
"""The target lookups make a wide expression that PostgreSQL's JIT compiled for ~6 s (same
measurement) before a plan that is index probes anyway; off for these statements only."""
CURSOR_PREFETCH: Final = 2000
"""Rows per round trip of an export (as ``server.api.rows.iter_rows``): flat memory."""

_ID: Final = "(CASE WHEN a.entity_id ~ '^[0-9]{1,18}$' THEN a.entity_id::bigint END)"
"""The target's id as a bigint when it is one (CASE evaluates the cast only then)."""

_PLACE: Final[dict[str, str]] = {
    # target type → a condition on $D (the regulator's districts) about the row named by _ID
    "cylinder": f"SELECT 1 FROM cylinders x WHERE x.id = {_ID} AND x.district_code = ANY($D)",
    "site": f"SELECT 1 FROM sites x WHERE x.id = {_ID} AND x.district_code = ANY($D)",
    "company": f"SELECT 1 FROM companies x WHERE x.id = {_ID} AND x.district_code = ANY($D)",
    "customer": f"SELECT 1 FROM customers x WHERE x.id = {_ID} AND x.district_code = ANY($D)",
    "alert": f"SELECT 1 FROM alerts x WHERE x.id = {_ID} AND x.district_code = ANY($D)",
    "complaint": f"SELECT 1 FROM complaints x WHERE x.id = {_ID} AND x.district_code = ANY($D)",
    "device": f"""SELECT 1 FROM devices x JOIN sites s ON s.id = x.site_id
                   WHERE x.id = {_ID} AND s.district_code = ANY($D)""",
    "user": f"""SELECT 1 FROM users x LEFT JOIN companies c ON c.id = x.company_id
                 LEFT JOIN sites s ON s.id = x.site_id
                 WHERE x.id = {_ID} AND (c.district_code = ANY($D) OR s.district_code = ANY($D)
                       OR x.districts && $D)""",
    "entrustment": f"""SELECT 1 FROM entrustments x JOIN companies c
                        ON c.id IN (x.owner_company_id, x.filler_company_id)
                        WHERE x.id = {_ID} AND c.district_code = ANY($D)""",
}

_LABEL: Final[dict[str, str]] = {
    # target type → a short name people recognise (the id alone says little)
    "cylinder": f"SELECT tag FROM cylinders WHERE id = {_ID}",
    "site": f"SELECT code FROM sites WHERE id = {_ID}",
    "company": f"SELECT code FROM companies WHERE id = {_ID}",
    "customer": f"SELECT account_no FROM customers WHERE id = {_ID}",
    "device": f"SELECT device_id FROM devices WHERE id = {_ID}",
    "user": f"SELECT username FROM users WHERE id = {_ID}",
    "api_key": f"SELECT prefix FROM api_keys WHERE id = {_ID}",
}


def _case(table: dict[str, str], wrap: str, default: str) -> str:
    whens = " ".join(f"WHEN '{entity}' THEN {wrap.format(sql)}" for entity, sql in table.items())
    return f"(CASE a.entity {whens} ELSE {default} END)"


_TARGET_LABEL: Final = _case(_LABEL, "({})", "NULL")
_COLUMNS: Final = (
    "a.id, a.at, a.user_id, a.username, a.role, a.action, a.entity, a.entity_id,"
    f" {_TARGET_LABEL} AS target_label, a.details, a.remote"
)

QUERY = (
    Param("user", description="username of whoever acted"),
    Param("role", description="role of whoever acted", enum=ALL_ROLES),
    Param("action", description="an action (user.update) or a family (user.*)"),
    Param("entity", description="target type (cylinder, user, site, api_key …)"),
    Param("entity_id", description="target id"),
    Param("from", "date-time", "at or after"),
    Param("to", "date-time", "before"),
    Param("q", description="text anywhere in the user, action, target or details"),
    Param("format", description="json (default), csv or xlsx", enum=FORMATS),
)


def _district_scope(p: Principal, q: Sql) -> str:
    """The rows a district regulator may read (module docstring), as one SQL condition."""
    districts = q.add(list(p.districts))
    return _case(_PLACE, "EXISTS ({})", "FALSE").replace("$D", f"{districts}::text[]")


def _where(request: web.Request, p: Principal, q: Sql) -> list[str]:
    """The caller's scope and the query's filters (every bad value a 400 first)."""
    where = ["TRUE"] if p.city_wide else [_district_scope(p, q)]
    user = q_str(request, "user", max_len=NAME_MAX)
    if user:
        where.append(f"a.username = {q.add(user)}")
    role = q_choice(request, "role", ALL_ROLES)
    if role:
        where.append(f"a.role = {q.add(role)}")
    action = q_str(request, "action", max_len=NAME_MAX)
    if action:
        if not ACTION_RE.match(action):
            raise bad_query("action", "expected an action like user.update, or a family: user.*")
        if action.endswith(".*"):
            where.append(f"starts_with(a.action, {q.add(action[:-1])})")
        else:
            where.append(f"a.action = {q.add(action)}")
    entity = q_str(request, "entity", max_len=NAME_MAX)
    if entity:
        if not ENTITY_RE.match(entity):
            raise bad_query("entity", "expected a target type like cylinder or api_key")
        where.append(f"a.entity = {q.add(entity)}")
    entity_id = q_str(request, "entity_id", max_len=NAME_MAX)
    if entity_id:
        where.append(f"a.entity_id = {q.add(entity_id)}")
    where += time_range(request, "a.at", q)
    text = q_str(request, "q", max_len=200)
    if text:
        pattern = q.add(contains(text))
        where.append(
            f"(a.username ILIKE {pattern} OR a.action ILIKE {pattern} OR a.entity ILIKE {pattern}"
            f" OR a.entity_id ILIKE {pattern} OR a.details::text ILIKE {pattern})"
        )
    return where


def _item(row: Any, p: Principal) -> dict[str, Any]:
    item = plain(row)
    if p.role != "admin":
        item.pop("remote")  # a person's network address: the platform's administrators only
    return item


@api_doc(
    "Read the audit log",
    tags=["audit"],
    roles=ROLES,
    query=QUERY,
    paginated=True,
    formats=FORMATS,
    description="Newest first. Admins and city-wide regulators read every row; a district "
    "regulator the rows whose target lies in their districts. Each row: when, who "
    "(username, role), action, target (type, id, label), details (the values recorded, "
    "with before/after where the writer kept them).",
)
async def list_audit(request: web.Request) -> web.StreamResponse:
    """Audit rows in the caller's scope, filtered; a page of JSON or a whole file."""
    p = require(request, *ROLES)
    check_query(request, [x.name for x in QUERY])
    fmt = q_format(request, FORMATS)
    q = Sql()
    where = " AND ".join(_where(request, p, q))
    if fmt != "json":
        return await _export(request, p, fmt, where, q)
    page = q_page(request)
    rows, total, capped = await _page(request.app[POOL], where, q, page, not p.city_wide)
    body = envelope([_item(r, p) for r in rows], page, total)
    body["total_capped"] = capped
    return json_response(body)


async def _page(
    pool: asyncpg.Pool, where: str, q: Sql, page: Page, placed: bool
) -> tuple[list[asyncpg.Record], int, bool]:
    """One page, its total, and whether the total stopped at LOOKAHEAD_ROWS past the page
    (only when each row had to be placed in a district: *placed*)."""
    sql = (
        f"SELECT {_COLUMNS} FROM audit_log a WHERE {where} ORDER BY a.id DESC"
        f" LIMIT {page.page_size} OFFSET {page.offset}"
    )
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        if placed:
            await conn.execute(NO_JIT)
        rows = list(await conn.fetch(sql, *q.params))
        if page.offset == 0 and len(rows) < page.page_size:
            return rows, len(rows), False  # the first page holds every match
        if not placed:
            total = await conn.fetchval(
                f"SELECT count(*) FROM audit_log a WHERE {where}", *q.params
            )
            return rows, int(total), False
        limit = page.offset + page.page_size + LOOKAHEAD_ROWS
        total = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM audit_log a WHERE {where} LIMIT {limit}) s",
            *q.params,
        )
        return rows, int(total), int(total) >= limit


async def _export(
    request: web.Request, p: Principal, fmt: str, where: str, q: Sql
) -> web.StreamResponse:
    """The filtered log as CSV or XLSX, streamed; the export itself is audited first."""
    header = ["id", "at", "username", "role", "action", "entity", "entity_id", "target"]
    header += ["details"] + (["remote"] if p.role == "admin" else [])
    details = "a.details::text"
    if fmt == "xlsx":
        cut = XLSX_CELL_MAX - 1  # one character left for the mark
        details = (
            f"CASE WHEN length({details}) > {XLSX_CELL_MAX}"
            f" THEN left({details}, {cut}) || '…' ELSE {details} END"
        )
    select = (
        f"SELECT a.id, a.at, a.username, a.role, a.action, a.entity, a.entity_id,"
        f" {_TARGET_LABEL} AS target, {details} AS details, a.remote"
        f" FROM audit_log a WHERE {where} ORDER BY a.id DESC"
    )
    filters = {k: v for k, v in request.query.items() if k != "format"}
    await audit(
        request.app[POOL],
        p,
        "audit.export",
        "audit_log",
        None,
        {"format": fmt, **filters},
        request.remote,
    )
    rows = _stream(request.app[POOL], select, q.params, header, not p.city_wide)
    return await stream_table(request, fmt, "audit-log", header, rows)


async def _stream(
    pool: asyncpg.Pool, sql: str, params: Sequence[Any], columns: Sequence[str], placed: bool
) -> AsyncIterator[Sequence[Any]]:
    """The export's rows through a server-side cursor (flat memory), JIT off when placed."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        if placed:
            await conn.execute(NO_JIT)
        async for rec in conn.cursor(sql, *params, prefetch=CURSOR_PREFETCH):
            yield [rec[c] for c in columns]


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/audit", list_audit, allow_head=False)]
