"""OpenAPI metadata attached to each REST handler (docs/API.md; served at /api/v1/openapi.json).

Why on the handler: ``server.api.openapi`` builds the document by walking the mounted
routes and reading this metadata, so the document cannot drift from what is served — a
route without ``api_doc`` is a test failure, not a silent gap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aiohttp import web

__all__ = ["API", "ApiDoc", "Param", "api_doc", "doc_of"]

API: Final = "/api/v1"
"""Base path of every REST route (the version is in the path, docs/API.md)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Param:
    """A query parameter as documented in OpenAPI (type: string|integer|boolean|date|date-time)."""

    name: str
    type: str = "string"
    description: str = ""
    enum: Sequence[str] | None = None
    required: bool = False


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    tags: tuple[str, ...]
    roles: tuple[str, ...]
    body: type[Any] | None = None
    query: tuple[Param, ...] = ()
    paginated: bool = False
    formats: tuple[str, ...] = ()
    description: str = ""
    responses: Mapping[int, str] = field(default_factory=dict)
    request_example: Any = None
    """An example request body (OpenAPI ``example`` of the request's media type)."""
    response_example: Any = None
    """An example of the success answer (``example`` of its media type)."""
    media_types: tuple[str, ...] = ()
    """What the success answer is when not JSON (a PDF, JSON-LD, an image); ``formats``
    adds the media types of ``format=csv|xlsx`` by itself."""
    page_key: str = ""
    """The key of the answer that holds the page envelope, when ``paginated`` pages a part of
    the answer (a company's credit ledger) rather than being it."""


_DOC_ATTR: Final = "__api_doc__"
_PAGE_PARAMS: Final = (
    Param("page", "integer", "1-based page number"),
    Param("page_size", "integer", "rows per page (≤ settings http.page_size_max)"),
)


def api_doc(
    summary: str,
    *,
    tags: Sequence[str],
    roles: Sequence[str],
    body: type[Any] | None = None,
    query: Sequence[Param] = (),
    paginated: bool = False,
    formats: Sequence[str] = (),
    description: str = "",
    responses: Mapping[int, str] | None = None,
    request_example: Any = None,
    response_example: Any = None,
    media_types: Sequence[str] = (),
    page_key: str = "",
) -> Callable[[H], H]:
    """Attach OpenAPI metadata to a handler. `roles` lists who may call it ("public" = anyone)."""

    def wrap(handler: H) -> H:
        q = tuple(query) + (_PAGE_PARAMS if paginated else ())
        setattr(
            handler,
            _DOC_ATTR,
            ApiDoc(
                summary=summary,
                tags=tuple(tags),
                roles=tuple(roles),
                body=body,
                query=q,
                paginated=paginated,
                formats=tuple(formats),
                description=description or (handler.__doc__ or "").strip(),
                responses=dict(responses or {}),
                request_example=request_example,
                response_example=response_example,
                media_types=tuple(media_types),
                page_key=page_key,
            ),
        )
        return handler

    return wrap


def doc_of(handler: Any) -> ApiDoc | None:
    value = getattr(handler, _DOC_ATTR, None)
    return value if isinstance(value, ApiDoc) else None
