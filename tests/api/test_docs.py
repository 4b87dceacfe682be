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


async def test_openapi_names_the_media_types_and_shapes_actually_served(client: Any) -> None:
    """A client generated from the document must expect what comes back: an export's CSV or
    XLSX, a PDF, JSON-LD, a QR image; and a page envelope only where the answer is one
    (found by schemathesis, tests/fuzz/test_api_schema.py)."""
    status, raw = await call(client, "GET", "/api/v1/openapi.json", "anonymous")
    assert status == 200
    paths = (raw if isinstance(raw, dict) else orjson.loads(raw))["paths"]

    def served(path: str, method: str = "get") -> set[str]:
        return set(paths[path][method]["responses"]["200"]["content"])

    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert served("/api/v1/fills") == {"application/json", "text/csv", xlsx}
    assert served("/api/v1/reports/sales") == {"application/json", "text/csv", xlsx}
    assert served("/api/v1/cylinders/export") == {"text/csv", xlsx}
    assert served("/api/v1/cylinders/import/template") == {"text/csv", xlsx}
    assert served("/api/v1/cylinders/labels.pdf") == {"application/pdf"}
    assert served("/api/v1/epcis/events") == {"application/ld+json"}
    epcis = paths["/api/v1/epcis/events"]["get"]["responses"]["200"]["content"]
    assert epcis["application/ld+json"]["schema"] == {"type": "object"}  # JSON, not a file
    assert served("/api/v1/public/cylinders/{code}/qr.svg") == {"image/svg+xml"}
    credit = paths["/api/v1/companies/{id}/credit"]["get"]["responses"]["200"]["content"]
    schema = credit["application/json"]["schema"]
    assert schema["properties"]["ledger"] == {"$ref": "#/components/schemas/Page"}
    assert "items" not in schema.get("required", [])
