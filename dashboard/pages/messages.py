"""Work pages: messages (系统消息/发件箱) and notices to sign (通知/文件).

``GET /messages`` (docs/ARCHITECTURE.md §8): the inbox (unread first) and the outbox with
read receipts; an admin or regulator writes to users, companies or districts (pickers over
``GET /api/v1/messages/targets``, in the sender's scope); anyone answers a message they
received. ``GET /notices``: notices to sign and, for senders, the notices sent with their
progress, and the form that sends one with its PDF documents and pictures (multipart).
``GET /notices/{id}``: one notice, its files, the sign button, and for its sender who has
signed and who has not. Every page's header shows the unread count (``static/js/header.js``).

Who may do what is ``server.domain.messages``; the rows come from the REST API
(``server.api.messages``, ``server.api.notices``), which keeps every letter to its sender
and recipients.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.domain.messages import can_send
from server.kernel.appkeys import SETTINGS
from server.kernel.http import path_int
from server.kernel.principal import Principal
from server.kernel.uploads import IMAGE_TYPES

__all__ = ["routes"]

NOTICE_FILE_TYPES = ("application/pdf", *IMAGE_TYPES)
"""What the notice form's file input offers (the API sniffs and refuses anything else)."""


def _common(request: web.Request, p: Principal) -> dict[str, object]:
    settings = request.app[SETTINGS]
    return {
        "can_send": can_send(p.role),
        "me": p.user_id,
        "recipients_max": settings.messages.recipients_max,
    }


@page("messages")
async def messages(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    return render(
        request,
        "messages.html",
        title=t("nav.messages"),
        active="messages",
        can_send=can_send(p.role),
        page_config=_common(request, p),
    )


@page("notices")
async def notices(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    settings = request.app[SETTINGS]
    return render(
        request,
        "notices.html",
        title=t("nav.notices"),
        active="notices",
        can_send=can_send(p.role),
        accept=",".join(NOTICE_FILE_TYPES),
        page_config={
            **_common(request, p),
            "attachments_max": settings.messages.attachments_max,
            "file_max_mb": settings.uploads.file_max_mb,
            "image_max_mb": settings.uploads.image_max_mb,
        },
    )


@page("notices")
async def notice(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    notice_id = path_int(request)
    return render(
        request,
        "notice.html",
        title=t("notices.detail"),
        active="notices",
        page_config={**_common(request, p), "notice_id": notice_id},
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/messages", messages),
        web.get("/notices", notices),
        web.get(r"/notices/{id:\d+}", notice),
    ]
