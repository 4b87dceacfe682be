"""Work page: the archive import (批量建档) — ``GET /registration/import``.

Who (docs/ARCHITECTURE.md §1, §8): the inspection agency and the admin import any company's
archive, a company admin its own company's. The page is a shell over
``POST /api/v1/cylinders/import``: a person chooses a CSV or XLSX file, checks it first (a dry
run: the server answers the per-row report and writes nothing), reads the report on screen —
line, column, value, reason; how many rows would be created, updated, left unchanged or
rejected — then imports for real; the rejected rows come back as a CSV in the file's own
columns plus a reason (``report=rows``), to correct and upload again. The rules a row obeys
are the server's alone (``server.archive``, ``server.domain.record_changes``): the page never
judges a row itself, it shows what the server said.

The limits a person should know before uploading are settings (``[http]``, docs/CONFIG.md)
and are shown on the page; a file beyond them comes back as the API's one error shape, which
the page shows as a readable message.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from dashboard.render import page, page_translator, render
from server.kernel.appkeys import SETTINGS
from server.kernel.principal import Principal

__all__ = ["routes"]

ENDPOINT: Final = "/api/v1/cylinders/import"
TEMPLATE: Final = "/api/v1/cylinders/import/template"
_MB: Final = 1 << 20


@page("imports")
async def imports(request: web.Request, p: Principal) -> web.StreamResponse:
    t = page_translator(request)
    http = request.app[SETTINGS].http
    return render(
        request,
        "imports.html",
        title=t("nav.imports"),
        active="imports",
        max_upload_mb=http.max_upload_mb,
        max_rows=f"{http.max_import_rows:,}",
        template_url=TEMPLATE,
        page_config={
            "imports": {
                "endpoint": ENDPOINT,
                "max_bytes": http.max_upload_mb * _MB,
                "max_upload_mb": http.max_upload_mb,
            }
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/registration/import", imports)]
