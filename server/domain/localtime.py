"""The city's clock: the time zone its calendar days and opening hours are counted in.

Compliance is judged on the city's calendar day (an inspection due "today" in Zhengzhou is
due from local midnight, not from UTC midnight), stations open by local wall time and
reports count by local day. The zone is one setting, ``[alerts] timezone``
(docs/CONFIG.md), and this module is the one place that turns it into a ``ZoneInfo``, so
the API, ingest, the pages, the wall and the simulator never disagree on what "today" is.

Pure like the rest of the domain: the caller reads the clock and passes the moment in.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from zoneinfo import ZoneInfo

from server.kernel.settings import Alerts

from .dates import require_aware

__all__ = ["city_date", "city_zone"]


@functools.cache
def _zone_named(key: str) -> ZoneInfo:
    # ZoneInfo keeps only a few zones in its own strong cache; this one never evicts the
    # city's (the settings have already refused a key that names no zone).
    return ZoneInfo(key)


def city_zone(rules: Alerts) -> ZoneInfo:
    """The city's time zone (``[alerts] timezone``), built once per process."""
    return _zone_named(rules.timezone)


def city_date(moment: datetime, rules: Alerts) -> date:
    """The city's calendar day at *moment*, an aware datetime (a naive one is refused:
    it could be UTC or local, and the two differ by a whole day around midnight)."""
    require_aware("moment", moment)
    return moment.astimezone(city_zone(rules)).date()
