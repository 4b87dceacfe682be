"""What the business reports share (``server.api.report_business`` and its siblings; DESIGN
§9 report names; docs/API.md "Reports"; docs/ARCHITECTURE.md §9): the period column, the
drill-down's reading of a row's keys, totals and shares.

A drill-down reproduces one cell of its report, so it must read a row's keys exactly as the
aggregate grouped them: the ``period`` key is the bucket's first day (``ctx.bucket`` /
``ctx.day_bucket``, compared as the same SQL expression), and a key whose value was null in
the row (a delivery of a tag with no company, an inspection with no agency) is sent back
empty — ``key=`` — and means IS NULL here, where a key not sent at all means "any".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Final

from server.api.report_frame import Column
from server.api.report_values import RATE_DIGITS, key_condition, share, sums
from server.kernel.errors import bad_query
from server.kernel.scope import Sql

__all__ = [
    "PERIOD",
    "RATE_DIGITS",
    "key_condition",
    "period_condition",
    "share",
    "sums",
]

PERIOD: Final = Column("period", "期间", "Period", "date")
"""The first day of a row's bucket (``group=day|week|month|quarter|year``) in city time."""


def period_condition(
    keys: Mapping[str, str], bucket: Callable[[], str], q: Sql, op: str = "="
) -> str | None:
    """The row's bucket: the aggregate's own bucket expression (*bucket* builds it, adding
    its parameters to *q* only when it is used: asyncpg refuses a parameter the statement
    leaves out) equal to the ``period`` key, a date (*op* ``<=``: up to the end of that
    bucket); None when the key is not sent (the whole period)."""
    raw = keys.get("period")
    if raw is None:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise bad_query("period", f"expected a date YYYY-MM-DD, got {raw!r}") from None
    return f"{bucket()} {op} {q.add(day)}"
