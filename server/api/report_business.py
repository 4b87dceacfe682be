"""Reports of the regulator's menu (DESIGN §9 report names; docs/API.md "Reports") — filled in
by the report work of issue 11; each spec is built in ``server.api.report_frame``."""

from __future__ import annotations

from server.api.report_frame import Report

__all__ = ["SPECS"]

SPECS: tuple[Report, ...] = ()
