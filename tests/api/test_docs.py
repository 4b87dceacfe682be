"""Everything is documented: every mounted /api/v1 route is in the OpenAPI document with
its method and in docs/API.md; every error code of server.kernel.errors is in docs/API.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from server.kernel.errors import ERROR_CODES
from tests.api.conftest import call

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def mounted(app: Any) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if path.startswith("/api/v1") and route.method not in ("HEAD", "OPTIONS"):
            out.add((route.method.lower(), path))
    return out


async def test_openapi_lists_every_route(client: Any) -> None:
    status, raw = await call(client, "GET", "/api/v1/openapi.json", "anonymous")
    assert status == 200
    doc = raw if isinstance(raw, dict) else orjson.loads(raw)
    assert doc["openapi"] == "3.1.0"
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    routes = mounted(client.server.app)
    assert routes - documented == set()
    assert documented - routes == set()
    # body schemas resolve
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for op in ops.values():
            body = op.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas, (path, ref)
    assert "tag" in schemas["CylinderCreate"]["properties"]
    cyl = doc["paths"]["/api/v1/cylinders"]["get"]
    assert {"tag", "compliance", "page_size"} <= {p["name"] for p in cyl["parameters"]}


async def test_api_md_mentions_every_route_and_error_code(client: Any) -> None:
    text = DOC.read_text(encoding="utf-8")
    missing_codes = [c for c in ERROR_CODES if f"`{c}`" not in text]
    assert not missing_codes, f"error codes not in docs/API.md: {missing_codes}"
    missing = sorted({p for _, p in mounted(client.server.app) if f"`{p}`" not in text})
    assert not missing, f"routes not in docs/API.md: {missing}"
