"""Fills (充装记录) as stored by ingest from the guns (docs/ARCHITECTURE.md §5, §9).

Read-only: a fill is a device's record, never edited by a person. Scope: a station sees
its own fills, a company its own, regulators their districts; inspection agencies none.

The list is a page of JSON or, with ``format=csv|xlsx``, every filtered row streamed
(``server.kernel.tabular.stream_table``: flat memory, formula-like text neutralised). Each
fill carries its pre/post-fill check items (DOMAIN.md "Filling checks") and the names of the
failed ones, judged by the domain's one rule (``server.domain.filling.checks_failed``: only
an explicit ``true`` passes); ``failed_check=`` selects the fills that failed one item, or
any. The same rule in SQL (:func:`failed_items_sql`) counts failures per company in
``server.api.fill_checks``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

import orjson
from aiohttp import web

from server.api.common import (
    API,
    Param,
    api_doc,
    check_query,
    envelope,
    fetch_page,
    plain,
    q_format,
)
from server.api.params import company_filter
from server.api.rows import iter_rows
from server.domain.filling import FillAssessment, checks_failed
from server.domain.localtime import city_zone
from server.domain.statuses import FILL_RESULTS, POST_CHECK_ITEMS, PRE_CHECK_ITEMS
from server.kernel.appkeys import POOL, SETTINGS
from server.kernel.errors import bad_query, forbidden
from server.kernel.http import (
    json_response,
    q_choice,
    q_datetime,
    q_district,
    q_id,
    q_page,
    q_str,
)
from server.kernel.principal import Principal, require
from server.kernel.scope import Sql, can_read, scope_where
from server.kernel.tabular import stream_table

__all__ = [
    "CHECK_STAGES",
    "FILLS_FROM",
    "READ_ROLES",
    "all_passed_sql",
    "failed_items_sql",
    "fills_where",
    "has_failed_sql",
    "routes",
    "time_range",
]

READ_ROLES = ("admin", "regulator", "officer", "company_admin", "station_operator")
ASSESSMENTS = tuple(a.value for a in FillAssessment)
COLUMNS = """f.ts, f.ts_start, f.received_at, f.msg_id, f.gun_id, f.station_id,
    s.code AS station_code, s.name AS station_name, f.company_id, co.code AS company_code,
    co.name AS company_name, f.district_code, f.cylinder_id,
    f.tag, f.spec, f.net_kg, f.tare_kg, f.gross_kg, f.result, f.assessment, f.operator,
    f.pre_check, f.post_check"""
FILLS_FROM = """fills f LEFT JOIN sites s ON s.id = f.station_id
    LEFT JOIN companies co ON co.id = f.company_id"""
NEWEST_FIRST: Final = "f.ts DESC, f.msg_id"

CHECK_STAGES: Final = ("pre", "post")
"""The two check lists of a fill, as the prefix of a failed item's name (``pre:<item>``),
in the order of ``server.domain.filling.checks_failed``."""
FAILED_ANY: Final = "any"
"""``failed_check=any``: a fill with at least one failed item."""
CHECK_ITEM_MAX: Final = 64
"""Longest item name accepted in ``failed_check`` (the gun's items are short words; the
ingest schema caps a check object's size, not its keys, so this only bounds the query)."""

EXPORT_COLUMNS: Final = (
    "time",
    "station_code",
    "station_name",
    "company_code",
    "company_name",
    "district_code",
    "gun_id",
    "tag",
    "cylinder_id",
    "spec",
    "net_kg",
    "tare_kg",
    "gross_kg",
    "result",
    "assessment",
    "operator",
    "failed_checks",
    "pre_check",
    "post_check",
    "started",
    "msg_id",
)
"""Columns of a fills file: when (in the city's time zone, ISO 8601 with its offset), where,
which cylinder, how much, how it was judged, and the checks — the failed items named
(``pre:<item>``, ``; ``-separated) and both check lists as recorded (JSON)."""

QUERY = (
    Param("station", "integer", "station (site) id"),
    Param("company", description="company code or id"),
    Param("district", description="6-digit district code"),
    Param("tag", description="cylinder tag"),
    Param("cylinder", "integer", "cylinder id"),
    Param("from", "date-time", "from this time (inclusive)"),
    Param("to", "date-time", "up to this time (exclusive)"),
    Param("assessment", enum=ASSESSMENTS),
    Param("result", enum=FILL_RESULTS),
    Param(
        "failed_check",
        description="fills that failed a check item: any, or pre:<item> / post:<item> "
        "(the items of server.domain.statuses PRE_CHECK_ITEMS / POST_CHECK_ITEMS); only an "
        "explicit true passes",
    ),
)
EXPORT_PARAM = Param(
    "format", "string", "json (a page, default), csv or xlsx (every row)", ("json", "csv", "xlsx")
)


def time_range(request: web.Request, column: str, q: Sql) -> list[str]:
    """`from`/`to` filters on a time column (to must follow from)."""
    start = q_datetime(request, "from")
    end = q_datetime(request, "to")
    if start and end and end <= start:
        raise bad_query("to", "must be after from")
    out = []
    if start:
        out.append(f"{column} >= {q.add(start)}")
    if end:
        out.append(f"{column} < {q.add(end)}")
    return out


def _checks_of(alias: str, stage: str) -> str:
    """A fill's check object of *stage*, or NULL when it is not an object (nothing to judge)."""
    col = f"{alias}.{stage}_check"
    return f"CASE WHEN jsonb_typeof({col}) = 'object' THEN {col} END"


def failed_items_sql(alias: str) -> str:
    """A subquery of the failed items of fill *alias*, one row each: ``stage`` (pre|post)
    and ``item``. The SQL twin of ``server.domain.filling.checks_failed``: an item fails
    unless its value is JSON ``true`` (``null``, ``false``, anything else fails, closed); no
    check list recorded gives nothing."""
    parts = [
        f"SELECT '{stage}'::text AS stage, k.key AS item"
        f" FROM jsonb_each({_checks_of(alias, stage)}) k WHERE k.value <> 'true'::jsonb"
        for stage in CHECK_STAGES
    ]
    return "(" + " UNION ALL ".join(parts) + ")"


def all_passed_sql(alias: str, q: Sql) -> str:
    """A cheap pretest: every item of fill *alias* is one of the domain's and true (or no
    list was recorded). One jsonb containment per list, no per-item work, so the item-by-item
    judgement (:func:`failed_items_sql`) runs only on the few fills that do not pass it —
    a month of a city's fills is counted in about a second instead of twenty. A fill that
    fails the pretest may still have no failed item (an array for a list): the judgement
    decides."""
    terms = [
        f"COALESCE({alias}.{stage}_check <@ {q.add(dict.fromkeys(items, True))}::jsonb, true)"
        for stage, items in (("pre", PRE_CHECK_ITEMS), ("post", POST_CHECK_ITEMS))
    ]
    return "(" + " AND ".join(terms) + ")"


def has_failed_sql(alias: str, passed: str) -> str:
    """Fill *alias* has a failed item; *passed* is :func:`all_passed_sql` of the statement."""
    return f"(NOT {passed} AND EXISTS {failed_items_sql(alias)})"


def failed_check_term(raw: str, alias: str, q: Sql) -> str:
    """The ``failed_check=`` condition: ``any``, or ``pre:<item>`` / ``post:<item>``."""
    if raw == FAILED_ANY:
        return has_failed_sql(alias, all_passed_sql(alias, q))
    stage, sep, item = raw.partition(":")
    if not sep or stage not in CHECK_STAGES or not item or len(item) > CHECK_ITEM_MAX:
        raise bad_query(
            "failed_check", f"expected {FAILED_ANY}, pre:<item> or post:<item>, got {raw!r}"
        )
    return f"COALESCE(({_checks_of(alias, stage)} -> {q.add(item)}) <> 'true'::jsonb, false)"


def fills_where(request: web.Request, p: Principal, q: Sql) -> list[str]:
    """Role scope (docs/ARCHITECTURE.md §7) and the filters of :data:`QUERY` on ``fills f``;
    one place for the list, its files and the check summary (which takes a subset)."""
    where = [scope_where(p, "fills", "f", q)]
    station = q_id(request, "station")
    if station:
        where.append(f"f.station_id = {q.add(station)}")
    comp = company_filter(request, "f.company_id", q)
    if comp:
        where.append(comp)
    district = q_district(request)
    if district:
        where.append(f"f.district_code = {q.add(district)}")
    tag = q_str(request, "tag", max_len=64)
    if tag:
        where.append(f"f.tag = {q.add(tag)}")
    cyl = q_id(request, "cylinder")
    if cyl:
        where.append(f"f.cylinder_id = {q.add(cyl)}")
    where += time_range(request, "f.ts", q)
    assessment = q_choice(request, "assessment", ASSESSMENTS)
    if assessment:
        where.append(f"f.assessment = {q.add(assessment)}")
    result = q_choice(request, "result", FILL_RESULTS)
    if result:
        where.append(f"f.result = {q.add(result)}")
    failed = q_str(request, "failed_check", max_len=CHECK_ITEM_MAX + 8)
    if failed:
        where.append(failed_check_term(failed, "f", q))
    return where


def _checks(value: Any) -> Mapping[str, Any] | None:
    """A stored check list as a mapping (the pool decodes jsonb; a stray non-object is none)."""
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return value if isinstance(value, Mapping) else None


def failed_of(row: Mapping[str, Any]) -> list[str]:
    """The failed items of a fill row, by the domain's rule."""
    return list(checks_failed(_checks(row["pre_check"]), _checks(row["post_check"])))


def fill_json(row: Mapping[str, Any]) -> dict[str, Any]:
    out = plain(row)
    out["failed_checks"] = failed_of(row)
    return out


async def _export_rows(
    rows: AsyncIterator[Sequence[Any]], zone: dt.tzinfo
) -> AsyncIterator[Sequence[Any]]:
    """Fill records as the file's rows (:data:`EXPORT_COLUMNS`)."""
    async for r in rows:
        rec = dict(zip(_SELECTED, r, strict=True))
        checks = [_checks(rec["pre_check"]), _checks(rec["post_check"])]
        yield [
            rec["ts"].astimezone(zone),
            rec["station_code"],
            rec["station_name"],
            rec["company_code"],
            rec["company_name"],
            rec["district_code"],
            rec["gun_id"],
            rec["tag"],
            rec["cylinder_id"],
            rec["spec"],
            rec["net_kg"],
            rec["tare_kg"],
            rec["gross_kg"],
            rec["result"],
            rec["assessment"],
            rec["operator"],
            "; ".join(checks_failed(*checks)),
            *(orjson.dumps(c).decode() if c is not None else None for c in checks),
            rec["ts_start"].astimezone(zone) if rec["ts_start"] else None,
            rec["msg_id"],
        ]


_SELECTED: Final = (
    "ts",
    "ts_start",
    "msg_id",
    "gun_id",
    "station_code",
    "station_name",
    "company_code",
    "company_name",
    "district_code",
    "cylinder_id",
    "tag",
    "spec",
    "net_kg",
    "tare_kg",
    "gross_kg",
    "result",
    "assessment",
    "operator",
    "pre_check",
    "post_check",
)


@api_doc(
    "List fills",
    tags=["fills"],
    roles=READ_ROLES,
    query=(*QUERY, EXPORT_PARAM),
    paginated=True,
    formats=("json", "csv", "xlsx"),
    description="Newest first. Each fill has its pre/post check lists (item → passed) and "
    "`failed_checks` (`pre:<item>` / `post:<item>`; only an explicit true passes). "
    "format=csv|xlsx streams every filtered row (times in the city's zone, the failed items "
    "named, formula-like text neutralised) instead of a page.",
)
async def list_fills(request: web.Request) -> web.StreamResponse:
    """Fills in the caller's scope, newest first: a page of JSON or the whole file."""
    p = require(request, *READ_ROLES)
    if not can_read(p, "fills"):
        raise forbidden()  # pragma: no cover - READ_ROLES already excludes them
    check_query(request, [x.name for x in QUERY] + ["format"])
    fmt = q_format(request)
    q = Sql()
    where = fills_where(request, p, q)
    from_where = f"{FILLS_FROM} WHERE {' AND '.join(where)}"
    pool = request.app[POOL]
    if fmt != "json":
        sql = f"SELECT {COLUMNS} FROM {from_where} ORDER BY {NEWEST_FIRST}"
        zone = city_zone(request.app[SETTINGS].alerts)
        rows = _export_rows(iter_rows(pool, sql, q.params, _SELECTED), zone)
        return await stream_table(request, fmt, "fills", EXPORT_COLUMNS, rows)
    page = q_page(request)
    rows_, total = await fetch_page(pool, COLUMNS, from_where, NEWEST_FIRST, q, page)
    return json_response(envelope([fill_json(r) for r in rows_], page, total))


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/fills", list_fills, allow_head=False)]
