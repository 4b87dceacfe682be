"""What the reports on the cylinder archive share (``server.api.report_cylinders`` and its
siblings; DESIGN §9 report names; docs/API.md "Reports"; docs/ARCHITECTURE.md §9): who runs
them, the scope and filters of a cylinder query, a drill-down's reading of a row's keys,
totals and shares.

A drill-down reproduces one cell of its report, so it reads a row's keys exactly as the
aggregate grouped them: a key whose value was null in the row (cylinders with no district)
is sent back empty — ``key=`` — and means IS NULL, where a key not sent at all means "any"
(the same reading as the business reports').
"""

from __future__ import annotations

from typing import Final

from server.api.report_common import ACTIVITY_ROLES, CYL_REPORT_ROLES
from server.api.report_frame import ReportContext
from server.api.report_values import RATE_DIGITS, key_condition, share, sums
from server.kernel.scope import Sql

__all__ = [
    "ARCHIVE_ROLES",
    "CIRCULATION_ROLES",
    "RATE_DIGITS",
    "cylinder_where",
    "key_condition",
    "share",
    "sums",
]

ARCHIVE_ROLES: Final = CYL_REPORT_ROLES
"""Reports on the archive's dates and statuses: whoever reads cylinders, inspection agencies
included (they call cylinders in for inspection and scrapping); station operators get none."""
CIRCULATION_ROLES: Final = ACTIVITY_ROLES
"""Reports on where cylinders are and how they were filled and moved: not inspection agencies,
which read neither fills nor positions (docs/ARCHITECTURE.md §7, docs/SECURITY.md "Privacy")."""


def cylinder_where(ctx: ReportContext, q: Sql, alias: str = "c") -> list[str]:
    """The caller's scope over cylinders *alias* and the district/company filters (the
    cylinder's district, its owner company)."""
    return ctx.where("cylinders", alias, q, f"{alias}.district_code", f"{alias}.owner_company_id")
