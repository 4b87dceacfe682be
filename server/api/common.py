"""The REST API modules' toolkit in one import (docs/API.md "Conventions").

Every endpoint must behave alike — the same error shape, the same pagination envelope, the
same way of naming a bad field, the same "today" for compliance — so the resource modules
(companies, sites, users, reports…) take these names from here. Each lives in a module of
its own concern, which is where to read and change it:

- ``server.api.fields``: typed body fields (limits checked before any SQL);
- ``server.api.doc``: the base path and per-handler OpenAPI metadata (``api_doc``);
- ``server.api.params``: body, query parameters, PATCH fields, role-limited fields;
- ``server.api.rows``: scoped reads, pages with a cheap total, generic writes, JSON rows,
  rows through a server-side cursor;
- ``server.db.compliance``: compliance status in SQL, generated from the domain;
- ``server.kernel.http``: the id and district query parameters (``q_id``, ``q_district``);
- ``server.kernel.clock``: the city's calendar day (``today``).
"""

from __future__ import annotations

from server.api.doc import API, ApiDoc, Param, api_doc, doc_of
from server.api.fields import (
    UNSET,
    Code,
    District,
    Id,
    Lat,
    Lon,
    Name,
    Note,
    Phone,
    Storage,
    Text,
    UnsetType,
)
from server.api.params import (
    changes,
    check_query,
    contains,
    deny_fields,
    like_prefix,
    q_format,
    read_body,
    require_some,
)
from server.api.rows import (
    envelope,
    fetch_in_scope,
    fetch_page,
    insert_row,
    iter_rows,
    jsonable,
    plain,
    update_row,
)
from server.db.compliance import (
    COMPLIANCE_VALUES,
    ComplianceBounds,
    compliance_case,
)
from server.kernel.clock import city_today as today
from server.kernel.http import q_district, q_id

__all__ = [
    "API",
    "COMPLIANCE_VALUES",
    "UNSET",
    "ApiDoc",
    "Code",
    "ComplianceBounds",
    "District",
    "Id",
    "Lat",
    "Lon",
    "Name",
    "Note",
    "Param",
    "Phone",
    "Storage",
    "Text",
    "UnsetType",
    "api_doc",
    "changes",
    "check_query",
    "compliance_case",
    "contains",
    "deny_fields",
    "doc_of",
    "envelope",
    "fetch_in_scope",
    "fetch_page",
    "insert_row",
    "iter_rows",
    "jsonable",
    "like_prefix",
    "plain",
    "q_district",
    "q_format",
    "q_id",
    "read_body",
    "require_some",
    "today",
    "update_row",
]
