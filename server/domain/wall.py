"""The command-centre wall's layouts (DESIGN §8 ``/big-screen``; docs/ARCHITECTURE.md §4, §8).

A layout is a grid of ``columns`` × ``rows`` cells and windows placed on it, each at a cell
(``x``, ``y``, from the top left, 0-based) with a size in cells (``w``, ``h``) and one
content: the live map, KPI tiles, the alert ticker, one of the wall's own charts, any
report's chart or table (by name, with its filters and a period of the last ``days``), or a
video or camera stream (HLS or MJPEG) by URL. This module is the one place that says what a
valid layout is — the REST API refuses anything else with the field at fault, and the wall
draws only what passed — and which wall a person may switch:

- a wall's *scope* is what its account sees: ``city`` for a city-wide account, else its
  districts' codes, sorted and joined by commas (a district wall: ``410105``);
- admins and city-wide regulators switch any wall; a district regulator only the walls of
  their own districts; nobody else switches, and only admins edit layouts.

``DEFAULT`` is the wall as it was before layouts existed; a scope with no current layout
shows it (migrations 0240/0241 also store it as the first layout, for editing and switching).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

__all__ = [
    "CHANNEL_WALL",
    "CHARTS",
    "CITY",
    "DEFAULT",
    "EDIT_ROLES",
    "KPI_KEYS",
    "SWITCH_COMMAND",
    "SWITCH_ROLES",
    "WINDOW_KINDS",
    "Layout",
    "LayoutError",
    "Limits",
    "Window",
    "may_switch",
    "scope_of",
    "scope_valid",
    "validate",
]

CHANNEL_WALL: Final = "wall"
"""The live channel a wall subscribes to: its current layout, then every switch."""
SWITCH_COMMAND: Final = "wall_switch"
"""The websocket command that switches a wall's layout (docs/WEBSOCKET.md)."""
CITY: Final = "city"
"""The scope of a city-wide wall."""
SWITCH_ROLES: Final = ("admin", "regulator")
"""Who may switch a wall's layout (授权控制): the roles that may look at the wall."""
EDIT_ROLES: Final = ("admin",)
"""Who may create, change and delete layouts."""

CHARTS: Final = (
    "fills_per_hour",
    "denials_by_reason",
    "companies_by_anomalies",
    "inspection_by_district",
)
"""The wall's own charts (``/big-screen/data/charts``)."""
KPI_KEYS: Final = (
    "registered",
    "in_service",
    "inspection_due",
    "overdue",
    "scrapped",
    "fills_today",
    "denials_today",
    "open_alerts",
)
"""The KPI tiles a window may show (the ``kpis`` channel's figures)."""
WINDOW_KINDS: Final = ("map", "kpis", "ticker", "chart", "report", "stream")

NAME_MAX: Final = 100
"""A layout's name is a label in a drop-down list, not a description."""
TITLE_MAX: Final = 60
"""A window's title fits the header of a narrow window on one line."""
URL_MAX: Final = 1000
"""Camera and HLS addresses with their query tokens stay well under this."""
REPORT_NAME_MAX: Final = 64
FILTER_MAX: Final = 64
"""A report filter value is a code or an id (``server.api.report_frame.CODE_MAX``)."""
DAYS_MAX: Final = 3660
"""Ten years: more than any report's period limit (``[reports] range_max_days``)."""
_REPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_DISTRICT = re.compile(r"^[0-9]{6,12}$")

Cell = Annotated[int, Meta(ge=0)]
Span = Annotated[int, Meta(ge=1)]
Title = Annotated[str, Meta(max_length=TITLE_MAX)]
Filter = Annotated[str, Meta(min_length=1, max_length=FILTER_MAX)]


class _Box(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", omit_defaults=True, kw_only=True
):
    x: Cell
    y: Cell
    w: Span
    h: Span
    title: Title | None = None
    """Shown in the window's header; None: the content's own name in the wall's language."""


class MapWindow(_Box, tag="map"):
    """The live map: districts, vehicles, alert markers."""


class KpiWindow(_Box, tag="kpis"):
    """KPI tiles, in the order given."""

    keys: tuple[str, ...] = KPI_KEYS


class TickerWindow(_Box, tag="ticker"):
    """The latest unresolved alerts, newest first."""


class ChartWindow(_Box, tag="chart"):
    """One of the wall's own charts."""

    chart: Literal[
        "fills_per_hour", "denials_by_reason", "companies_by_anomalies", "inspection_by_district"
    ]


class ReportFilters(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The report's own filters (``GET /api/v1/reports/{name}``); the period is ``days``."""

    group: Literal["day", "week", "month", "quarter", "year"] | None = None
    district: Filter | None = None
    company: Filter | None = None
    station: Filter | None = None


class ReportWindow(_Box, tag="report"):
    """Any report of the catalogue, as its chart or its table."""

    report: Annotated[str, Meta(min_length=1, max_length=REPORT_NAME_MAX)]
    view: Literal["chart", "table"] = "chart"
    days: Annotated[int, Meta(ge=1, le=DAYS_MAX)] | None = None
    """The period: the last *days* city days up to today; None: the report's default."""
    filters: ReportFilters = msgspec.field(default_factory=ReportFilters)


class StreamWindow(_Box, tag="stream"):
    """A video or camera stream, played by the wall itself (no page of another site)."""

    url: Annotated[str, Meta(min_length=1, max_length=URL_MAX)]
    format: Literal["hls", "mjpeg"]


Window = MapWindow | KpiWindow | TickerWindow | ChartWindow | ReportWindow | StreamWindow


class Layout(msgspec.Struct, forbid_unknown_fields=True):
    """What is stored (``wall_layouts``) and what the wall draws."""

    name: Annotated[str, Meta(min_length=1, max_length=NAME_MAX)]
    columns: Span
    rows: Span
    windows: list[Window]


@dataclass(frozen=True)
class Limits:
    """The settings a layout is checked against (``[big_screen]``, docs/CONFIG.md)."""

    grid_max: int
    windows_max: int
    stream_origins: Sequence[str]
    report_names: frozenset[str] | None = None
    """The reports that exist; None: not checked (the wall then shows the report's error)."""


class LayoutError(ValueError):
    """A layout that may not be saved: *field* names the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL without credentials, else None."""
    if any(c.isspace() for c in url) or any(c in url for c in '<>"\\'):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _check_window(i: int, win: Window, layout: Layout, limits: Limits) -> None:
    at = f"windows[{i}]"
    if win.x + win.w > layout.columns:
        raise LayoutError(
            f"{at}.w", f"x + w = {win.x + win.w} exceeds the {layout.columns} columns"
        )
    if win.y + win.h > layout.rows:
        raise LayoutError(f"{at}.h", f"y + h = {win.y + win.h} exceeds the {layout.rows} rows")
    if win.title is not None and not win.title.strip():
        raise LayoutError(f"{at}.title", "a title is not blank (leave it out for the default)")
    if isinstance(win, KpiWindow):
        if not win.keys:
            raise LayoutError(f"{at}.keys", "at least one KPI")
        unknown = [k for k in win.keys if k not in KPI_KEYS]
        if unknown:
            raise LayoutError(
                f"{at}.keys", f"unknown KPI {unknown[0]!r}; known: {', '.join(KPI_KEYS)}"
            )
        if len(set(win.keys)) != len(win.keys):
            raise LayoutError(f"{at}.keys", "a KPI is listed twice")
    elif isinstance(win, ReportWindow):
        if not _REPORT_NAME.match(win.report):
            raise LayoutError(f"{at}.report", "a report name is lower-case letters, digits and -")
        if limits.report_names is not None and win.report not in limits.report_names:
            raise LayoutError(f"{at}.report", f"no report {win.report!r}")
        if win.filters.district is not None and not _DISTRICT.match(win.filters.district):
            raise LayoutError(f"{at}.filters.district", "a district is its numeric code")
    elif isinstance(win, StreamWindow):
        origin = _origin(win.url)
        if origin is None:
            raise LayoutError(
                f"{at}.url", "an http:// or https:// address with a host and no user or password"
            )
        allowed = {o.lower().rstrip("/") for o in limits.stream_origins}
        if origin.lower() not in allowed:
            shown = ", ".join(sorted(allowed)) or "none configured"
            raise LayoutError(
                f"{at}.url",
                f"{origin} is not among the allowed stream origins"
                f" ([big_screen] stream_origins: {shown})",
            )


def validate(layout: Layout, limits: Limits) -> Layout:
    """*layout* if the wall can draw it as saved; else a `LayoutError` naming the field.

    Windows lie inside the grid and do not overlap (a window hidden under another is a
    mistake, never a design); a stream comes from an allowed origin, so the wall's
    Content-Security-Policy lets it play.
    """
    if not layout.name.strip():
        raise LayoutError("name", "a name is not blank")
    for key, value in (("columns", layout.columns), ("rows", layout.rows)):
        if value > limits.grid_max:
            raise LayoutError(key, f"at most {limits.grid_max} ([big_screen] grid_max)")
    if not layout.windows:
        raise LayoutError("windows", "at least one window")
    if len(layout.windows) > limits.windows_max:
        raise LayoutError("windows", f"at most {limits.windows_max} ([big_screen] windows_max)")
    for i, win in enumerate(layout.windows):
        _check_window(i, win, layout, limits)
    for i, a in enumerate(layout.windows):
        for j in range(i):
            b = layout.windows[j]
            if a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h:
                raise LayoutError(f"windows[{i}]", f"overlaps windows[{j}]")
    return layout


# ---------------------------------------------------------------- scopes


def scope_of(city_wide: bool, districts: Iterable[str]) -> str:
    """The wall an account's screen is: ``city`` or its districts, sorted, comma-joined."""
    if city_wide:
        return CITY
    codes = sorted(set(districts))
    return ",".join(codes) if codes else CITY


def scope_valid(scope: str) -> bool:
    """``city`` or comma-separated district codes in ascending order, none twice."""
    if scope == CITY:
        return True
    codes = scope.split(",")
    return all(_DISTRICT.match(c) for c in codes) and codes == sorted(set(codes))


def may_switch(role: str, city_wide: bool, districts: Iterable[str], scope: str) -> bool:
    """May an account switch the wall of *scope* (see the module docstring)?"""
    if role not in SWITCH_ROLES:
        return False
    if city_wide:
        return True
    if scope == CITY:
        return False
    return set(scope.split(",")) <= set(districts)


# ---------------------------------------------------------------- today's wall

DEFAULT: Final = Layout(
    name="今日大屏",
    columns=30,
    rows=12,
    windows=[
        ChartWindow(x=0, y=0, w=8, h=4, chart="fills_per_hour"),
        ChartWindow(x=0, y=4, w=8, h=4, chart="denials_by_reason"),
        ChartWindow(x=0, y=8, w=8, h=4, chart="inspection_by_district"),
        KpiWindow(x=8, y=0, w=14, h=2),
        MapWindow(x=8, y=2, w=14, h=10),
        TickerWindow(x=22, y=0, w=8, h=7),
        ChartWindow(x=22, y=7, w=8, h=5, chart="companies_by_anomalies"),
    ],
)
"""The wall before layouts: charts left, KPI tiles over the map, ticker and ranking right
(the side columns a little over a quarter of the width each, as they always were)."""
