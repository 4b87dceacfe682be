"""The frame every report of the regulator's menu is built in (DESIGN §9 report names;
docs/API.md "Reports"; docs/ARCHITECTURE.md §9).

A report is a `Report` spec — what it is called, who may run it, which filters it takes,
its columns, the chart a person would rather look at, and two functions: `compute` (the
aggregate, one SQL query or a few, scoped in SQL) and `drill` (the rows behind one count).
This module and its routes (``server.api.report_http``) turn a spec into its endpoints, so
every report parses its filters, answers its errors, and writes JSON, CSV and XLSX the same way:

- ``GET /api/v1/reports/{name}`` → ``{"report", "from", "to", "group", "date", "columns",
  "rows", "totals", "previous"}`` or the same rows as CSV/XLSX (labels in the caller's
  language as the header row, formula cells neutralised by ``server.kernel.tabular``);
- ``GET /api/v1/reports/{name}/drill?measure=<column>&<key>=<value>…`` → the cylinders,
  fills, alerts, customers or events behind one count, paginated as JSON and streamed as
  CSV/XLSX (``server.api.report_drill`` holds the shared row shapes).

The context a spec computes in (`ReportContext`) is built from a plain mapping of query
parameters and a principal, not from a request, so a scheduled run (docs/API.md "Scheduled
reports") computes exactly what the page shows.

Why one frame: the period, the previous period and the group bucket are the same rule in
every report; written once here they cannot drift between a chart and its export.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

from server.api.doc import Param
from server.domain.localtime import city_zone
from server.kernel.errors import bad_query
from server.kernel.principal import Principal
from server.kernel.scope import Sql, scope_where
from server.kernel.settings import Settings

__all__ = [
    "CHART_KINDS",
    "COLUMN_TYPES",
    "FILTERS",
    "GROUPS",
    "Chart",
    "Column",
    "DrillQuery",
    "Filters",
    "Report",
    "ReportContext",
    "Result",
    "build_context",
    "compute_report",
    "label_header",
]

GROUPS: Final = ("day", "week", "month", "quarter", "year")
"""``group=``: the calendar buckets of PostgreSQL's date_trunc a regulator reports by."""
FILTERS: Final = frozenset({"period", "group", "district", "company", "station"})
COLUMN_TYPES: Final = frozenset({"text", "code", "count", "number", "kg", "rate", "date"})
CHART_KINDS: Final = frozenset({"line", "bar", "stacked_bar", "choropleth", "heat", "pie"})
DRILL_TARGETS: Final = frozenset({"cylinders", "fills", "alerts", "customers", "events"})
FORMATS: Final = ("json", "csv", "xlsx")
CODE_MAX: Final = 64
"""Longest company or station code or id a filter accepts (codes are short; ids are bigint)."""
DISTRICT_LEN: Final = 6
"""District codes are the 6-digit administrative division codes (GB/T 2260)."""


@dataclass(frozen=True)
class Column:
    """One column of a report: its key in the rows, its labels, its type (how the page
    formats and aligns it) and, for a count, what its drill-down opens."""

    key: str
    label: str
    label_en: str
    type: str = "text"
    drill: str | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.key}: unknown type {self.type}")
        if self.drill is not None and self.drill not in DRILL_TARGETS:
            raise ValueError(f"column {self.key}: unknown drill target {self.drill}")

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "label_en": self.label_en,
            "type": self.type,
            "drill": self.drill,
        }


@dataclass(frozen=True)
class Chart:
    """The chart a person would rather look at: *x* is the category (a day, a company, a
    district code for a choropleth), *series* the plotted columns, *y* the second dimension
    of a heat table (site × day) or the series-splitting column of a line per company."""

    kind: str
    x: str
    series: tuple[str, ...]
    y: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(f"chart: unknown kind {self.kind}")

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x, "series": list(self.series), "y": self.y}


@dataclass(frozen=True)
class Filters:
    """The parsed common filters: the period [first, last] in city days and its instants,
    the previous period of the same length just before it, the bucket, the scope narrowing."""

    first: dt.date
    last: dt.date
    start: dt.datetime
    end: dt.datetime
    prev_first: dt.date
    prev_last: dt.date
    prev_start: dt.datetime
    prev_end: dt.datetime
    group: str
    district: str | None
    company: str | None
    station: str | None
    today: dt.date
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportContext:
    """What a report computes with: the pool, the settings, who asks, the filters."""

    pool: asyncpg.Pool
    settings: Settings
    principal: Principal
    f: Filters
    zone: str
    query: Mapping[str, str] = field(default_factory=dict)

    def where(
        self,
        entity: str,
        alias: str,
        q: Sql,
        district_col: str | None,
        company_col: str | None,
        station_col: str | None = None,
    ) -> list[str]:
        """The role scope of *entity* (docs/ARCHITECTURE.md §7) and the filters, as SQL."""
        out = [scope_where(self.principal, entity, alias, q)]
        if self.f.district and district_col:
            out.append(f"{district_col} = {q.add(self.f.district)}")
        if self.f.company and company_col:
            out.append(_by_code_or_id(company_col, "companies", self.f.company, q))
        if self.f.station and station_col:
            out.append(_by_code_or_id(station_col, "sites", self.f.station, q))
        return out

    def bucket(self, col: str, q: Sql) -> str:
        """The first day of *col*'s period (day, week, month…) in the city's time zone."""
        return f"date_trunc({q.add(self.f.group)}, {col} AT TIME ZONE {q.add(self.zone)})::date"

    def day_bucket(self, day_col: str, q: Sql) -> str:
        """The same for a column that already holds a city day (a date)."""
        return f"date_trunc({q.add(self.f.group)}, {day_col}::timestamp)::date"


def _by_code_or_id(col: str, table: str, raw: str, q: Sql) -> str:
    if raw.isdigit():
        return f"{col} = {q.add(int(raw))}"
    return f"{col} = (SELECT id FROM {table} WHERE code = {q.add(raw)})"


@dataclass(frozen=True)
class Result:
    """What `compute` returns: the rows (dicts keyed by the columns), the totals over them
    (None when summing makes no sense), the previous period's totals for a volume."""

    rows: list[dict[str, Any]]
    totals: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """More keys of the JSON body: what an earlier shape of the report answered and callers
    still read (``compliance-summary``'s ``by_district``; ``inspection-due``'s page of
    cylinders), kept beside the common keys."""


@dataclass(frozen=True)
class DrillQuery:
    """The rows behind one count: a SELECT list, FROM … WHERE, ORDER BY and the header
    (the SELECT's output names in order), built by ``server.api.report_drill``."""

    select: str
    from_where: str
    order: str
    q: Sql
    columns: tuple[Column, ...]


Compute = Callable[[ReportContext], Awaitable[Result]]
Drill = Callable[[ReportContext, str, Mapping[str, str]], DrillQuery]


@dataclass(frozen=True)
class Report:
    """One report of the menu. *keys* name the columns that identify a row: the page sends
    them back with the clicked column as a drill-down's ``measure``."""

    name: str
    title: str
    title_en: str
    roles: tuple[str, ...]
    filters: frozenset[str]
    columns: tuple[Column, ...]
    compute: Compute
    keys: tuple[str, ...] = ()
    chart: Chart | None = None
    drill: Drill | None = None
    description: str = ""
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        unknown = self.filters - FILTERS
        if unknown:
            raise ValueError(f"{self.name}: unknown filters {sorted(unknown)}")
        names = {c.key for c in self.columns}
        for key in (*self.keys, *(self.chart.series if self.chart else ())):
            if key not in names:
                raise ValueError(f"{self.name}: {key} is not a column")

    def catalogue(self) -> dict[str, Any]:
        """The report as the catalogue lists it (the page builds its filter bar from it)."""
        return {
            "name": self.name,
            "path": f"/api/v1/reports/{self.name}",
            "title": self.title,
            "title_en": self.title_en,
            "summary": self.title_en,
            "roles": list(self.roles),
            "filters": sorted(self.filters),
            "params": [p.name for p in self.params],
            "columns": [c.as_json() for c in self.columns],
            "keys": list(self.keys),
            "chart": self.chart.as_json() if self.chart else None,
            "drill": self.drill is not None,
            "formats": list(FORMATS),
        }

    def query_names(self) -> list[str]:
        names = ["format"]
        if "period" in self.filters:
            names += ["from", "to"]
        if "group" in self.filters:
            names.append("group")
        names += [n for n in ("district", "company", "station") if n in self.filters]
        return names + [p.name for p in self.params]


# ---------------------------------------------------------------- parsing


def _date(query: Mapping[str, str], name: str) -> dt.date | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise bad_query(name, f"expected a date YYYY-MM-DD, got {raw!r}") from None


def _code(query: Mapping[str, str], name: str) -> str | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > CODE_MAX or "\x00" in raw:
        raise bad_query(name, f"at most {CODE_MAX} characters")
    if raw.isdigit() and int(raw) >= 2**63:
        raise bad_query(name, "out of range")
    return raw


def parse_filters(
    spec: Report, query: Mapping[str, str], settings: Settings, today: dt.date
) -> Filters:
    """The common filters of *spec* from *query*; every impossible value is a 400."""
    known = set(spec.query_names()) | {"lang", "page", "page_size", "measure", *spec.keys}
    for name, value in query.items():
        if name not in known:
            raise bad_query(name, f"unknown parameter; known: {', '.join(sorted(known))}")
        if "\x00" in value:
            raise bad_query(name, "must not contain NUL characters")
    rs = settings.reports
    zone = city_zone(settings.alerts)
    last = _date(query, "to") or today
    try:
        first = _date(query, "from") or last - dt.timedelta(days=rs.default_range_days - 1)
    except OverflowError:
        raise bad_query("from", "out of range") from None
    if first > last:
        raise bad_query("to", "must not be before from")
    span = (last - first).days + 1
    if span > rs.range_max_days:
        raise bad_query("from", f"a period is at most {rs.range_max_days} days")
    try:
        prev_last = first - dt.timedelta(days=1)
        prev_first = prev_last - dt.timedelta(days=span - 1)
    except OverflowError:
        raise bad_query("from", "out of range") from None
    try:
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    except OverflowError:  # to=9999-12-31: the day after it is no date
        raise bad_query("to", "out of range") from None
    group = query.get("group") or "day"
    if group not in GROUPS:
        raise bad_query("group", f"must be one of {', '.join(GROUPS)}")
    district = (query.get("district") or "").strip() or None
    if district is not None and (len(district) != DISTRICT_LEN or not district.isdigit()):
        raise bad_query("district", "expected a 6-digit district code")
    extra = {p.name: query[p.name] for p in spec.params if query.get(p.name)}
    return Filters(
        first=first,
        last=last,
        start=dt.datetime.combine(first, dt.time(), zone),
        end=end,
        prev_first=prev_first,
        prev_last=prev_last,
        prev_start=dt.datetime.combine(prev_first, dt.time(), zone),
        prev_end=dt.datetime.combine(first, dt.time(), zone),
        group=group,
        district=district,
        company=_code(query, "company"),
        station=_code(query, "station"),
        today=today,
        extra=extra,
    )


def build_context(
    pool: asyncpg.Pool,
    settings: Settings,
    principal: Principal,
    spec: Report,
    query: Mapping[str, str],
) -> ReportContext:
    """The context of one run, from plain query parameters (a page's or a schedule's)."""
    zone = city_zone(settings.alerts)
    today = dt.datetime.now(zone).date()
    return ReportContext(
        pool=pool,
        settings=settings,
        principal=principal,
        f=parse_filters(spec, query, settings, today),
        zone=settings.alerts.timezone,
        query=dict(query),
    )


async def compute_report(ctx: ReportContext, spec: Report) -> dict[str, Any]:
    """The report's JSON body (also what a scheduled run writes to its file)."""
    result = await spec.compute(ctx)
    return {
        "report": spec.name,
        "from": ctx.f.first if "period" in spec.filters else None,
        "to": ctx.f.last if "period" in spec.filters else None,
        "group": ctx.f.group if "group" in spec.filters else None,
        "date": ctx.f.today,
        "columns": [c.as_json() for c in spec.columns],
        "rows": result.rows,
        "totals": result.totals,
        "previous": result.previous,
        **result.extra,
    }


def label_header(columns: Sequence[Column], lang: str) -> list[str]:
    """Column labels in *lang* for a file's header row."""
    return [c.label_en if lang.startswith("en") else c.label for c in columns]
