"""Work page: the audit log (审计日志), who did what, when, with the values before and after.

``GET /admin/audit`` (docs/ARCHITECTURE.md §8), for admins and regulators: the filter bar
(who, role, action, target, period, text), the rows newest first, a detail view that shows a
row's recorded values as a diff (before → after where the writer kept both, the new values
otherwise), and CSV/XLSX links that follow the filters. The rows come from
``GET /api/v1/audit``, which scopes them in SQL (a district regulator sees the rows about
its districts, docs/API.md "Audit log").

The action and target vocabularies are open (each module names its own), so the filter
offers the known ones as suggestions and accepts any other.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain.statuses import ROLES
from server.kernel.principal import Principal

__all__ = ["routes"]

ACTIONS: Final = (
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "user.create",
    "user.update",
    "user.password",
    "api_key.create",
    "api_key.revoke",
    "kiosk_token.issue",
    "kiosk_token.revoke",
    "wall_layout.create",
    "wall_layout.update",
    "wall_layout.delete",
    "wall.switch",
    "report_schedule.create",
    "report_schedule.update",
    "report_schedule.delete",
    "big_screen.kiosk_session",
    "company.create",
    "company.update",
    "site.create",
    "site.update",
    "licence.suspend",
    "licence.revoke",
    "licence.reinstate",
    "customer.create",
    "customer.update",
    "device.create",
    "device.update",
    "device.credentials",
    "entrustment.create",
    "entrustment.end",
    "cylinder.create",
    "cylinder.update",
    "cylinder.inspect",
    "cylinder.scrap",
    "cylinder.import",
    "cylinder.import.changes",
    "cylinder.export",
    "alert.ack",
    "alert.resolve",
    "complaint.create",
    "push.subscribe",
    "push.unsubscribe",
    "upstream.retry",
    "audit.export",
    "article.create",
    "article.update",
    "article.publish",
    "article.unpublish",
    "article.delete",
    "article.media_add",
    "article.media_remove",
    "complaint.assign",
    "complaint.answer",
    "complaint.close",
    "credit.event",
    "credit.recompute",
    "enterprise.fills",
    "message.send",
    "message.read",
    "notice.send",
    "notice.sign",
    "safety_catalogue.publish",
    "safety_inspection.create",
    "safety_notice.share",
    "safety_rectification.close",
)
"""Actions written today, offered as suggestions (the API accepts any well-formed one)."""
ENTITIES: Final = (
    "cylinder",
    "company",
    "site",
    "customer",
    "device",
    "user",
    "alert",
    "complaint",
    "entrustment",
    "api_key",
    "kiosk_token",
    "wall_layout",
    "report_schedule",
    "push_subscription",
    "upstream_batch",
    "audit_log",
    "article",
    "credit",
    "fill",
    "message",
    "notice",
    "safety_catalogue",
    "safety_inspection",
    "safety_rectification",
)
"""Target types written today (suggestions, like ACTIONS)."""


@page("audit")
async def audit_log(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    return render(
        request,
        "audit.html",
        title=t("nav.audit"),
        active="audit",
        roles=ROLES,
        actions=ACTIONS,
        entities=ENTITIES,
        city_wide=p.city_wide,
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/admin/audit", audit_log)]
