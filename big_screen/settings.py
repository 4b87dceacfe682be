"""What of the wall's ``[big_screen]`` settings the browser needs (docs/CONFIG.md).

The section itself is ``server.kernel.settings.BigScreen``, read like every other setting
from the TOML and ``CYL_BIG_SCREEN__*`` variables; the handlers read
``app[SETTINGS].big_screen`` directly. This module only picks the keys the page script acts
on: the feed cache and the SQL windows stay on the server.
"""

from __future__ import annotations

from typing import Any

from server.kernel.settings import Settings


def page_config(settings: Settings) -> dict[str, Any]:
    """The subset the browser needs (sent as JSON in the page)."""
    s = settings.big_screen
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
        "report_refresh_s": s.report_refresh_s,
        "grid_max": s.grid_max,
        "ranking_days": s.ranking_days,
    }
