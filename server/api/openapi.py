"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the mounted routes.

Why generated: a hand-written document drifts from the code. Walking
`request.app.router.routes()` includes every /api/v1 route of every module (auth, archive,
…); per-handler metadata comes from `server.api.doc.api_doc` and request body schemas
from the msgspec Structs themselves (`msgspec.json.schema_components`), so a field added
to a Struct is documented by construction. A handler without metadata still appears, with
its docstring as summary.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import msgspec
from aiohttp import web

from server.api.common import API, ApiDoc, api_doc, doc_of
from server.kernel.errors import ERROR_CODES
from server.kernel.http import json_response
from server.kernel.tabular import CSV_MIME, XLSX_MIME

BINARY: dict[str, str] = {"type": "string", "format": "binary"}
FORMAT_MEDIA_TYPES: dict[str, str] = {"csv": CSV_MIME, "xlsx": XLSX_MIME}
"""What ``format=csv|xlsx`` answers (server.kernel.tabular)."""
_PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
PAGE_SCHEMA = {
    "type": "object",
    "required": ["items", "page", "page_size", "total"],
    "properties": {
        "items": {"type": "array", "items": {"type": "object"}},
        "page": {"type": "integer"},
        "page_size": {"type": "integer"},
        "total": {"type": "integer"},
    },
}


def _path_of(route: web.AbstractRoute) -> str | None:
    info = route.resource.get_info() if route.resource is not None else {}
    path = info.get("formatter") or info.get("path")
    return str(path) if path else None


def _success_content(doc: ApiDoc) -> dict[str, Any]:
    """The success answer's media types: JSON (a page envelope, or an object holding one
    under ``page_key``), each file ``format=`` can ask for, or what ``media_types`` names."""
    page = {"$ref": "#/components/schemas/Page"}
    if not doc.paginated:
        json_schema: dict[str, Any] = {"type": "object"}
    elif doc.page_key:
        json_schema = {
            "type": "object",
            "required": [doc.page_key],
            "properties": {doc.page_key: page},
        }
    else:
        json_schema = page
    files = [FORMAT_MEDIA_TYPES[f] for f in doc.formats if f in FORMAT_MEDIA_TYPES]
    content: dict[str, Any] = {}
    if not (doc.media_types or files) or "json" in doc.formats:
        content["application/json"] = {"schema": json_schema}
    for media in (*files, *doc.media_types):
        # JSON under another name (JSON-LD) is an object too; anything else is a file
        json_like = media.endswith("+json")
        content[media] = {"schema": {"type": "object"} if json_like else BINARY}
    return content


def _operation(method: str, path: str, handler: Any, bodies: list[type[Any]]) -> dict[str, Any]:
    doc: ApiDoc | None = doc_of(handler)
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer"} if name == "id" else {"type": "string"},
        }
        for name in _PARAM_RE.findall(path)
    ]
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        "responses": {
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if doc is None:
        text = inspect.getdoc(handler) or f"{method} {path}"
        op["summary"] = text.splitlines()[0]
        op["tags"] = [path.removeprefix(API + "/").split("/")[0]]
        op["responses"]["200"] = {"description": "OK"}
    else:
        op["summary"] = doc.summary
        if doc.description:
            op["description"] = doc.description
        op["tags"] = list(doc.tags)
        op["x-roles"] = list(doc.roles)
        for p in doc.query:
            schema = dict(_TYPES.get(p.type, {"type": "string"}))
            if p.enum:
                schema["enum"] = list(p.enum)
            params.append(
                {
                    "name": p.name,
                    "in": "query",
                    "required": p.required,
                    "description": p.description,
                    "schema": schema,
                }
            )
        if doc.formats and not any(p.name == "format" for p in doc.query):
            params.append(
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": list(doc.formats)},
                }
            )
        if doc.body is not None:
            bodies.append(doc.body)
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{doc.body.__name__}"}
                    }
                },
            }
            if doc.request_example is not None:
                op["requestBody"]["content"]["application/json"]["example"] = doc.request_example
        codes = doc.responses
        ok = "201" if 201 in codes else "204" if 204 in codes and 200 not in codes else "200"
        if ok == "204":  # no content: no media type to document
            op["responses"][ok] = {"description": codes[204]}
        else:
            content = _success_content(doc)
            if doc.response_example is not None and "application/json" in content:
                content["application/json"]["example"] = doc.response_example
            op["responses"][ok] = {"description": codes.get(int(ok), "OK"), "content": content}
        for status, text in doc.responses.items():
            if str(status) != ok:
                op["responses"][str(status)] = {"description": text}
        if "public" not in doc.roles:
            op["security"] = [{"bearer": []}, {"apiKey": []}, {"cookie": []}]
    if params:
        op["parameters"] = params
    return op


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api/v1 route mounted on *app*."""
    paths: dict[str, dict[str, Any]] = {}
    bodies: list[type[Any]] = []
    for route in app.router.routes():
        path = _path_of(route)
        if path is None or not path.startswith(API) or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route.method, path, route.handler, bodies
        )
    _, components = msgspec.json.schema_components(
        list(dict.fromkeys(bodies)), ref_template="#/components/schemas/{name}"
    )
    components["Error"] = ERROR_SCHEMA
    components["Page"] = PAGE_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CylinderWatch 气瓶安全追溯监管平台 API",
            "version": "1",
            "description": "REST API v1 (docs/ARCHITECTURE.md §9). Every error has the shape "
            '{"error": {"code", "message", "details"}}; see docs/API.md.',
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cylwatch_session"},
            },
        },
    }


@api_doc("This OpenAPI 3.1 document", tags=["meta"], roles=["public"])
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document, built from the app's routes on each call (cheap, always current)."""
    return json_response(build_document(request.app))


def routes() -> list[web.RouteDef]:
    return [web.get(f"{API}/openapi.json", openapi, allow_head=False)]
