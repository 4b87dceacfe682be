"""Values every framed report computes the same way (docs/ARCHITECTURE.md §9 "Reports under
/api/v1/reports/{name}"): a share to fixed places, totals over rows, and a drill-down's
reading of one row key.

A drill-down reproduces one cell of its report, so it reads a row's keys exactly as the
aggregate grouped them: a key whose value was null in the row (cylinders with no district, a
delivery with no company) is sent back empty — ``key=`` — and means IS NULL, where a key not
sent at all means "any". One reading for every report, so the page sends keys one way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from server.api.report_frame import ReportContext
from server.kernel.scope import Sql

__all__ = ["RATE_DIGITS", "key_condition", "share", "sums"]

RATE_DIGITS: Final = 4
"""A share as a fraction to four places: a hundredth of a percent, finer than any target."""


def key_condition(
    ctx: ReportContext, keys: Mapping[str, str], name: str, col: str, q: Sql
) -> str | None:
    """``col = <value>`` for a key sent with a value, ``col IS NULL`` for one sent empty (the
    row's value was null), None for a key not sent (every value)."""
    if name in keys:
        return f"{col} = {q.add(keys[name])}"
    if name in ctx.query:
        return f"{col} IS NULL"
    return None


def share(part: int, whole: int) -> float | None:
    """*part* of *whole* as a fraction, None when there is nothing to divide."""
    if not whole:
        return None
    return round(part / whole, RATE_DIGITS)


def sums(rows: Iterable[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """Each of *keys* summed over *rows* (zero when there are none)."""
    keys = tuple(keys)
    out: dict[str, Any] = dict.fromkeys(keys, 0)
    for r in rows:
        for k in keys:
            out[k] += r[k] or 0
    return out
