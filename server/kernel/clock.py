"""The city's calendar day now: the one "today" the server judges dates by.

Why the city's and not the server's or UTC: compliance (docs/ARCHITECTURE.md §4), the
daily reports and the public page judge a cylinder on the calendar day of the city that
supervises it, in ``[alerts] timezone`` (docs/CONFIG.md); a server in UTC would otherwise
call an inspection "overdue" eight hours early in Asia/Shanghai. The domain turns a moment into the city's
day (``server.domain.localtime.city_date``) and stays pure; this is the one place that
reads the clock for it.
"""

from __future__ import annotations

import datetime as dt

from server.domain.localtime import city_date
from server.kernel.settings import Settings

__all__ = ["city_today"]


def city_today(settings: Settings) -> dt.date:
    """Today's date in the city's time zone (``settings.alerts.timezone``)."""
    return city_date(dt.datetime.now(dt.UTC), settings.alerts)
