"""Tunables of the wall, read from an optional ``[big_screen]`` settings section.

Why a module of its own: the wall's numbers (how often charts refresh, how many ticker rows
and markers it keeps, how long a feed answer is cached) are operating choices a city may
want to change, so they must not be literals scattered through handlers and scripts. Until
``server.kernel.settings`` declares a ``[big_screen]`` section (proposed to the platform owner: the keys
are exactly the fields below), the dataclass defaults apply; once the section exists,
``of(settings)`` returns it unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from server.kernel.settings import Settings


@dataclass(frozen=True)
class BigScreenSettings:
    """Everything the wall and its feeds act on (all sent to the page but the SQL windows)."""

    feed_cache_s: float = 5.0
    """Feed answers are shared per scope for this long: N walls cost one query per period."""
    chart_refresh_s: float = 30.0
    """How often the page re-reads the chart feed."""
    ticker_max: int = 30
    """Alert rows kept in the ticker (older rows are removed from the DOM)."""
    alert_markers_max: int = 200
    """Alert markers kept on the map (oldest evicted first)."""
    alert_marker_ttl_s: float = 1800.0
    """An alert marker fades out after this long without a repeat."""
    vehicles_max: int = 5000
    """Vehicle markers kept on the map (least recently updated evicted first)."""
    vehicle_stale_s: float = 900.0
    """A vehicle not heard from for this long is removed from the map."""
    ranking_days: int = 30
    """Window of the companies-by-anomalies ranking."""
    ranking_top: int = 10
    """Companies shown in the ranking."""
    alerts_snapshot: int = 30
    """Latest alerts read at start and after each reconnect (fills gaps while offline)."""
    vehicles_snapshot_min: int = 60
    """Vehicles whose last position is newer than this many minutes are drawn at start."""
    reconnect_min_s: float = 0.5
    """First websocket reconnect delay; doubles (with jitter) up to reconnect_max_s."""
    reconnect_max_s: float = 30.0
    ping_s: float = 20.0
    """Websocket keep-alive ping; no answer within two pings means the link is dead."""


DEFAULTS = BigScreenSettings()


def of(settings: Settings) -> BigScreenSettings:
    """The wall's settings: the ``[big_screen]`` section when configured, else the defaults."""
    section: Any = getattr(settings, "big_screen", None)
    if isinstance(section, BigScreenSettings):
        return section
    if section is not None:
        return BigScreenSettings(**{k: getattr(section, k) for k in asdict(DEFAULTS)})
    return DEFAULTS


def page_config(settings: Settings) -> dict[str, Any]:
    """The subset the browser needs (sent as JSON in the page)."""
    s = of(settings)
    return {
        "chart_refresh_s": s.chart_refresh_s,
        "ticker_max": s.ticker_max,
        "alert_markers_max": s.alert_markers_max,
        "alert_marker_ttl_s": s.alert_marker_ttl_s,
        "vehicles_max": s.vehicles_max,
        "vehicle_stale_s": s.vehicle_stale_s,
        "reconnect_min_s": s.reconnect_min_s,
        "reconnect_max_s": s.reconnect_max_s,
        "ping_s": s.ping_s,
    }
