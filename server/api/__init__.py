"""REST API v1 (docs/ARCHITECTURE.md §9). Each module contributes `routes()`; `setup` mounts them all and
the OpenAPI document is generated from the mounted routes and their `api_doc` metadata."""

from __future__ import annotations

import importlib

from aiohttp import web

API_MODULES = (
    "server.api.auth",
    "server.api.api_keys",
    "server.api.kiosk_tokens",
    "server.api.wall_layouts",
    "server.api.cylinders",
    "server.api.inspections",
    "server.api.companies",
    "server.api.sites",
    "server.api.customers",
    "server.api.devices",
    "server.api.users",
    "server.api.entrustments",
    "server.api.licences",
    "server.api.audit_log",
    "server.api.fills",
    "server.api.fill_checks",
    "server.api.alerts",
    "server.api.events",
    "server.api.epcis",
    "server.api.public",
    "server.api.articles",
    "server.api.labels",
    "server.api.complaints",
    "server.api.complaints_filing",
    "server.api.complaints_public",
    "server.api.credit",
    "server.api.site_risk",
    "server.api.messages",
    "server.api.notices",
    "server.api.archive",
    "server.api.reports",
    "server.api.report_schedules",
    "server.api.outbound",
    "server.api.enterprise_ingest",
    "server.api.safety_inspections",
    "server.api.safety_share",
    "server.api.openapi",
)


def setup(app: web.Application) -> None:
    from server.api import (
        complaints,
        credit,
        customers,
        notice_reminders,
        report_scheduler,
        safety_inspections,
    )

    customers.setup(app)
    complaints.setup(app)  # the reminder round (docs/API.md "Complaints")
    credit.setup(app)  # the recomputation round (docs/API.md "Credit evaluation")
    notice_reminders.setup(app)  # the notices' reminder round (docs/API.md "Messages and notices")
    report_scheduler.setup(app)  # scheduled reports' round (docs/API.md "Scheduled reports")
    safety_inspections.setup(
        app
    )  # rectifications' overdue round (docs/API.md "Safety inspections")
    for name in API_MODULES:
        app.router.add_routes(importlib.import_module(name).routes())
